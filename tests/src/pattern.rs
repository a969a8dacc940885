//! A pattern binary run on its own, without a proxy: it listens on a free
//! port and the test drives its lifecycle (`Initialize` with a real config,
//! `Start`) and data plane directly, as the proxy would.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use prism_proto::lifecycle::v1::{
    HealthCheckRequest, HealthCheckResponse, InitializeRequest, PatternMetadata, StartRequest,
    pattern_lifecycle_client::PatternLifecycleClient,
};
use tonic::transport::Channel;

use crate::{bins, procs};

/// How long a pattern may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct PatternProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// What `Initialize` answered.
    pub metadata: PatternMetadata,
    dir: tempfile::TempDir,
}

impl PatternProcess {
    /// Spawns the built binary `name` (e.g. `prism-nats`) on a free port with
    /// `env`, then calls `Initialize` (`namespace`, `config`) and `Start`.
    /// Panics with the pattern's log when any step fails.
    pub async fn start(
        name: &str,
        namespace: &str,
        config: serde_json::Value,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = fs::File::create(dir.path().join("pattern.log")).expect("log file");
        let mut child = Command::new(bins::bin(name))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .env("RUST_LOG", "info")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().copied())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .strip_prefix("listening on ")
                        .and_then(|a| a.parse().ok())
                    {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log =
                        fs::read_to_string(dir.path().join("pattern.log")).unwrap_or_default();
                    panic!("{name} did not report its address; log:\n{log}");
                }
            }
        };
        let mut process = Self {
            child: Some(child),
            addr,
            metadata: PatternMetadata::default(),
            dir,
        };
        let mut lifecycle = process.lifecycle().await;
        let initialized = lifecycle
            .initialize(InitializeRequest {
                name: namespace.to_string(),
                version: "test".into(),
                config: Some(prism_proto::json::to_struct(&config)),
            })
            .await
            .unwrap_or_else(|e| panic!("Initialize: {e}; log:\n{}", process.log()));
        process.metadata = initialized.into_inner().metadata.unwrap_or_default();
        lifecycle
            .start(StartRequest {})
            .await
            .unwrap_or_else(|e| panic!("Start: {e}; log:\n{}", process.log()));
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pattern.log")).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr))
    }

    pub async fn lifecycle(&self) -> PatternLifecycleClient<Channel> {
        PatternLifecycleClient::new(self.channel().await)
    }

    pub async fn health(&self) -> HealthCheckResponse {
        self.lifecycle()
            .await
            .health_check(HealthCheckRequest {})
            .await
            .expect("HealthCheck")
            .into_inner()
    }
}

impl Drop for PatternProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- pattern log ---\n{}", self.log());
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        procs::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
