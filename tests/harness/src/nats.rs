//! A real `nats-server` (with JetStream unless asked otherwise) on a free
//! port, its store in the server's folder (so streams and durable consumers
//! survive a restart on the same port), stopped by PID on drop.
//!
//! `NATS_SERVER` names the binary (`scripts/tools.sh` installs and exports
//! it); otherwise `nats-server` is looked up on `PATH`.

use std::{path::Path, process::Command, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{
    HarnessError,
    server::{Launch, ServerProcess},
};

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A running `nats-server`; see [`ServerProcess`] for kill, restart and logs.
pub type NatsServer = ServerProcess<Nats>;

/// How a `nats-server` is run.
#[derive(Debug, Clone, Default)]
pub struct Nats {
    pub jetstream: bool,
    /// `--user` and `--pass`: clients must log in.
    pub auth: Option<(String, String)>,
}

impl Nats {
    /// Starts it on a free port and waits until it answers PING.
    pub async fn start(self) -> Result<NatsServer, HarnessError> {
        ServerProcess::launch(self).await
    }
}

impl NatsServer {
    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }
}

impl Launch for Nats {
    const NAME: &'static str = "nats-server";
    const READY_TIMEOUT: Duration = Duration::from_secs(15);

    fn binary(&self) -> String {
        std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_string())
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        if self.jetstream {
            command.arg("-js");
        }
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(dir.join("store"))
            .arg("-l")
            .arg(log);
        if let Some((user, pass)) = &self.auth {
            command.args(["--user", user, "--pass", pass]);
        }
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        let mut connect = serde_json::json!({ "verbose": false });
        if let Some((user, pass)) = &self.auth {
            connect["user"] = user.as_str().into();
            connect["pass"] = pass.as_str().into();
        }
        ping(port, format!("CONNECT {connect}\r\nPING\r\n"))
    }
}

/// True when a NATS server on `port` greets with INFO and answers the PING
/// after `connect` (a `CONNECT … PING` exchange).
async fn ping(port: u16, connect: String) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let (read, mut write) = stream.split();
        let mut lines = BufReader::new(read).lines();
        let info = lines.next_line().await.ok()??;
        if !info.starts_with("INFO ") {
            return None;
        }
        write.write_all(connect.as_bytes()).await.ok()?;
        loop {
            let line = lines.next_line().await.ok()??;
            if line == "PONG" {
                return Some(());
            }
        }
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(()))
    )
}
