//! A real `prism-proxy` process on free ports, with clients for its data
//! plane, admin API and health service.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use prism_proto::{
    admin::v1::{
        ListPatternsRequest, ListPatternsResponse, PatternInfo, PatternState,
        admin_client::AdminClient,
    },
    keyvalue::v1::key_value_client::KeyValueClient,
    lifecycle::v1::HealthStatus,
};
use tonic::{
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{bins, procs, wait::eventually};

/// How long a proxy may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds a proxy config; namespaces are YAML list items.
#[derive(Default)]
pub struct ProxyBuilder {
    namespaces: Vec<String>,
    supervisor: Vec<String>,
    env: Vec<(String, String)>,
}

impl ProxyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a namespace given as the body of a YAML list item (flow or block
    /// mapping), e.g. `{name: kv, pattern: keyvalue, backend: memstore}`.
    pub fn namespace(mut self, yaml: &str) -> Self {
        self.namespaces.push(yaml.to_string());
        self
    }

    /// Sets one `supervisor:` field, e.g. `("restart_backoff_initial_ms", "50")`.
    pub fn supervisor(mut self, field: &str, value: &str) -> Self {
        self.supervisor.push(format!("  {field}: {value}"));
        self
    }

    /// Sets an environment variable for the proxy (and the patterns it spawns).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn config_yaml(&self) -> String {
        let mut yaml = String::new();
        if !self.supervisor.is_empty() {
            yaml.push_str("supervisor:\n");
            for line in &self.supervisor {
                yaml.push_str(line);
                yaml.push('\n');
            }
        }
        if !self.namespaces.is_empty() {
            yaml.push_str("namespaces:\n");
            for ns in &self.namespaces {
                yaml.push_str("  - ");
                yaml.push_str(&ns.replace('\n', "\n    "));
                yaml.push('\n');
            }
        }
        yaml
    }

    /// Starts the proxy and waits until it listens (not until its patterns run).
    pub async fn start(self) -> Proxy {
        let config = (!self.namespaces.is_empty() || !self.supervisor.is_empty())
            .then(|| self.config_yaml());
        Proxy::spawn(config.as_deref(), &self.env)
    }
}

pub struct Proxy {
    child: Option<Child>,
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Proxy {
    /// A proxy with no config file at all: `default` on MemStore.
    pub async fn start_default() -> Self {
        let proxy = Self::spawn(None, &[]);
        proxy.wait_healthy("default").await;
        proxy
    }

    pub async fn start_with_config(yaml: &str) -> Self {
        Self::spawn(Some(yaml), &[])
    }

    fn spawn(config: Option<&str>, env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(bins::bin("prism-proxy"));
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        if let Some(yaml) = config {
            let path = dir.path().join("prism.yaml");
            fs::write(&path, yaml).expect("write config");
            command.arg("--config").arg(path);
        }
        let log = fs::File::create(dir.path().join("proxy.log")).expect("log file");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .env("RUST_LOG", "info")
            // The harness decides about export; the developer's shell does not.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .expect("spawn prism-proxy");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut metrics_addr = None;
        let (data_addr, admin_addr) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addrs) = parse_listening(&line) {
                        break addrs;
                    }
                    if let Some(addr) = parse_metrics(&line) {
                        metrics_addr = Some(addr);
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default();
                    panic!("prism-proxy did not report its addresses; log:\n{log}");
                }
            }
        };
        Self {
            child: Some(child),
            data_addr,
            admin_addr,
            metrics_addr: metrics_addr.expect("the metrics line comes before the listening line"),
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prism.yaml")
    }

    /// The body of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .expect("connect to /metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: prism\r\nConnection: close\r\n\r\n")
            .await
            .expect("send request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }

    pub async fn channel(&self) -> Channel {
        connect(self.data_addr).await
    }

    /// A KeyValue client whose calls carry `x-prism-namespace: namespace`.
    pub async fn kv(&self, namespace: &str) -> KvClient {
        KeyValueClient::with_interceptor(self.channel().await, NamespaceHeader::new(namespace))
            .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
    }

    pub async fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(connect(self.admin_addr).await)
    }

    pub async fn list(&self) -> ListPatternsResponse {
        self.admin()
            .await
            .list_patterns(ListPatternsRequest {})
            .await
            .expect("ListPatterns")
            .into_inner()
    }

    pub async fn pattern(&self, namespace: &str) -> PatternInfo {
        self.list()
            .await
            .patterns
            .into_iter()
            .find(|p| p.namespace == namespace)
            .unwrap_or_else(|| panic!("namespace {namespace} not listed"))
    }

    /// `grpc.health.v1` status of `service` on the data port.
    pub async fn serving_status(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let mut client = HealthClient::new(self.channel().await);
        let response = client
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    /// Waits until the namespace is RUNNING and HEALTHY; returns its info.
    pub async fn wait_healthy(&self, namespace: &str) -> PatternInfo {
        self.wait_pattern(
            namespace,
            Duration::from_secs(15),
            "RUNNING and HEALTHY",
            |p| {
                p.state() == PatternState::Running
                    && p.health
                        .as_ref()
                        .is_some_and(|h| h.status() == HealthStatus::Healthy)
            },
        )
        .await
    }

    /// Waits until `check` holds for the namespace.
    pub async fn wait_pattern(
        &self,
        namespace: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&PatternInfo) -> bool,
    ) -> PatternInfo {
        let what = format!("namespace {namespace} to be {what}");
        eventually(timeout, &what, || async {
            let info = self.pattern(namespace).await;
            check(&info).then_some(info)
        })
        .await
    }

    pub fn signal(&self, signal: i32) {
        procs::signal(self.pid(), signal);
    }

    /// Waits for the proxy to exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = eventually(timeout, "prism-proxy to exit", || {
            let status = child.try_wait().expect("try_wait");
            async move { status }
        })
        .await;
        self.child = None;
        status
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Ask nicely so patterns are stopped too, then insist.
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

fn parse_metrics(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("prism-proxy metrics on http://")?
        .strip_suffix("/metrics")?
        .parse()
        .ok()
}

fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("prism-proxy listening on ")?;
    let (data, admin) = rest.split_once(" (admin ")?;
    Some((
        data.parse().ok()?,
        admin.trim_end_matches(')').parse().ok()?,
    ))
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Adds `x-prism-namespace` to every call.
#[derive(Clone)]
pub struct NamespaceHeader(MetadataValue<tonic::metadata::Ascii>);

impl NamespaceHeader {
    pub fn new(namespace: &str) -> Self {
        Self(namespace.parse().expect("ASCII namespace"))
    }
}

impl Interceptor for NamespaceHeader {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("x-prism-namespace", self.0.clone());
        Ok(request)
    }
}

pub type KvClient = KeyValueClient<InterceptedService<Channel, NamespaceHeader>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        let (data, admin) =
            parse_listening("prism-proxy listening on 127.0.0.1:1 (admin 127.0.0.1:2)").unwrap();
        assert_eq!(data.port(), 1);
        assert_eq!(admin.port(), 2);
        assert!(parse_listening("something else").is_none());
        assert_eq!(
            parse_metrics("prism-proxy metrics on http://127.0.0.1:3/metrics")
                .unwrap()
                .port(),
            3
        );
    }

    #[test]
    fn builds_namespace_yaml() {
        let yaml = ProxyBuilder::new()
            .supervisor("max_consecutive_failures", "2")
            .namespace("{name: kv, pattern: keyvalue, backend: memstore}")
            .config_yaml();
        assert_eq!(
            yaml,
            "supervisor:\n  max_consecutive_failures: 2\nnamespaces:\n  - {name: kv, pattern: keyvalue, backend: memstore}\n"
        );
    }
}
