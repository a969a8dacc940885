//! A real `prism-proxy` process on free ports, with clients for its data
//! plane, admin API and health service.

use std::{fs, net::SocketAddr, path::PathBuf, process::ExitStatus, time::Duration};

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

use prism_harness::{ProxyConfig, ProxyProcess, child::ChildProcess};

use crate::{bins, procs, tls::ClientTls, wait::eventually};

/// Builds a proxy config; namespaces are YAML list items.
#[derive(Default)]
pub struct ProxyBuilder {
    namespaces: Vec<String>,
    supervisor: Vec<String>,
    env: Vec<(String, String)>,
    /// A `tls:` block, and what the proxy's clients then trust and show.
    tls: Option<(String, ClientTls)>,
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

    /// Serves TLS with `yaml` (a `tls:` block); the proxy's clients (data,
    /// admin, metrics) connect with `client`.
    pub fn tls(mut self, yaml: &str, client: ClientTls) -> Self {
        self.tls = Some((yaml.to_string(), client));
        self
    }

    pub fn config_yaml(&self) -> String {
        let mut yaml = String::new();
        if let Some((tls, _)) = &self.tls {
            yaml.push_str(tls);
        }
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
        let config =
            (!self.namespaces.is_empty() || !self.supervisor.is_empty() || self.tls.is_some())
                .then(|| self.config_yaml());
        let client = self.tls.map(|(_, client)| client);
        Proxy::spawn(config.as_deref(), &self.env, client).await
    }
}

pub struct Proxy {
    /// Declared before `dir`: the process stops before its folder goes.
    process: ChildProcess,
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// How the helpers connect when the proxy serves TLS.
    pub tls: Option<ClientTls>,
}

impl Proxy {
    /// A proxy with no config file at all: `default` on MemStore.
    pub async fn start_default() -> Self {
        let proxy = Self::spawn(None, &[], None).await;
        proxy.wait_healthy("default").await;
        proxy
    }

    pub async fn start_with_config(yaml: &str) -> Self {
        Self::spawn(Some(yaml), &[], None).await
    }

    /// A proxy with the config `yaml` and extra environment variables.
    pub async fn start_with_config_env(yaml: &str, env: &[(String, String)]) -> Self {
        Self::spawn(Some(yaml), env, None).await
    }

    async fn spawn(config: Option<&str>, env: &[(String, String)], tls: Option<ClientTls>) -> Self {
        let config = match config {
            Some(yaml) => ProxyConfig::Text(yaml.to_string()),
            None => ProxyConfig::None,
        };
        let ProxyProcess {
            process,
            data_addr,
            admin_addr,
            metrics_addr,
            dir,
            ..
        } = ProxyProcess::start(&bins::bin("prism-proxy"), config, env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            process,
            data_addr,
            admin_addr,
            metrics_addr,
            dir,
            tls,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prism.yaml")
    }

    /// The body of `GET /metrics` (over HTTPS under TLS).
    pub async fn metrics(&self) -> String {
        self.metrics_accepting(None).await
    }

    /// The whole response (status line, headers, body) of `GET /metrics`
    /// sent with `Accept: <accept>` (plain HTTP only).
    pub async fn metrics_accepting(&self, accept: Option<&str>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Some(tls) = &self.tls {
            let response = tls
                .https_get(self.metrics_addr, "/metrics")
                .await
                .expect("GET /metrics over HTTPS");
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            return response;
        }
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .expect("connect to /metrics");
        stream
            .write_all(
                format!(
                    "GET /metrics HTTP/1.1\r\nHost: prism\r\nConnection: close\r\n{}\r\n",
                    accept
                        .map(|a| format!("Accept: {a}\r\n"))
                        .unwrap_or_default()
                )
                .as_bytes(),
            )
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
        self.connect(self.data_addr).await
    }

    /// A channel to `addr`, under TLS when the proxy serves it.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Channel {
        match &self.tls {
            None => connect(addr).await,
            Some(tls) => tls
                .channel(addr)
                .await
                .unwrap_or_else(|e| panic!("connect to {addr} over TLS: {e}")),
        }
    }

    /// A KeyValue client whose calls carry `x-prism-namespace: namespace`.
    pub async fn kv(&self, namespace: &str) -> KvClient {
        KeyValueClient::with_interceptor(self.channel().await, NamespaceHeader::new(namespace))
            .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
    }

    pub async fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.connect(self.admin_addr).await)
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
        let process = &mut self.process;
        eventually(timeout, "prism-proxy to exit", || {
            let status = process.try_wait().expect("try_wait");
            async move { status }
        })
        .await
    }
}

pub async fn connect(addr: SocketAddr) -> Channel {
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
