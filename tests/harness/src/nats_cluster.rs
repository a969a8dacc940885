//! A real three-node NATS cluster with JetStream on free ports: each
//! `nats-server -js` has its own `--server_name` and store folder, a
//! cluster port, and routes to the other two. It is ready once every node
//! answers a JetStream API request (so the JetStream meta group has a
//! leader). Each node is stopped by PID on drop.

use std::{path::Path, process::Command, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{
    HarnessError,
    nats::Nats,
    procs,
    server::{Launch, ServerProcess},
    wait::poll,
};

/// How long the cluster may take to elect its JetStream leader.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
const NODES: usize = 3;
/// Fresh sets of cluster ports tried when a node cannot take its own.
const CLUSTER_ATTEMPTS: usize = 3;

/// One cluster node: a [`Nats`] with JetStream, a name, a cluster port and
/// routes to its peers.
#[derive(Debug, Clone)]
pub struct NatsClusterNode {
    /// The plain server's options (JetStream on; its binary and probe).
    pub nats: Nats,
    pub name: String,
    pub cluster_port: u16,
    pub routes: Vec<u16>,
}

impl Launch for NatsClusterNode {
    const NAME: &'static str = "nats-server";
    const READY_TIMEOUT: Duration = Duration::from_secs(15);

    fn binary(&self) -> String {
        self.nats.binary()
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        command
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--server_name", &self.name])
            .args(["--cluster_name", "prism"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.cluster_port),
            ])
            .args(["--routes", &routes.join(",")])
            .arg("-sd")
            .arg(dir.join("store"))
            .arg("-l")
            .arg(log);
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        self.nats.ready(port)
    }
}

pub type NatsClusterNodeProcess = ServerProcess<NatsClusterNode>;

pub struct NatsCluster {
    pub nodes: Vec<NatsClusterNodeProcess>,
}

impl NatsCluster {
    /// Starts three routed nodes and waits until JetStream answers on each.
    /// A node's cluster port is chosen before any node starts (its peers
    /// route to it), so another process can take it meanwhile; then the
    /// whole cluster starts again on fresh cluster ports.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(|| (0..NODES).map(|_| procs::free_port()).collect()).await
    }

    /// [`NatsCluster::start`] with the cluster ports of each attempt chosen
    /// by `cluster_ports` (three per call).
    pub async fn start_with(
        mut cluster_ports: impl FnMut() -> Result<Vec<u16>, HarnessError>,
    ) -> Result<Self, HarnessError> {
        let mut attempt = 1;
        loop {
            match Self::start_on(&cluster_ports()?).await {
                Ok(cluster) => return Ok(cluster),
                Err(e) if attempt == CLUSTER_ATTEMPTS => return Err(e),
                Err(_) => attempt += 1,
            }
        }
    }

    /// Starts one node per cluster port, each routed to the others; the
    /// nodes already started stop on error.
    async fn start_on(cluster_ports: &[u16]) -> Result<Self, HarnessError> {
        let mut nodes = Vec::with_capacity(cluster_ports.len());
        for (i, &cluster_port) in cluster_ports.iter().enumerate() {
            let routes = cluster_ports
                .iter()
                .copied()
                .filter(|&p| p != cluster_port)
                .collect();
            let node = NatsClusterNode {
                nats: Nats {
                    jetstream: true,
                    auth: None,
                },
                name: format!("n{}", i + 1),
                cluster_port,
                routes,
            };
            nodes.push(ServerProcess::launch(node).await?);
        }
        let cluster = Self { nodes };
        cluster.wait_jetstream(FORM_TIMEOUT).await?;
        Ok(cluster)
    }

    /// Every node's client URL, comma separated, as a `url:` setting.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port()))
            .collect()
    }

    /// Waits until every running node answers `$JS.API.INFO` without an
    /// error (JetStream has a meta leader and this node reaches it).
    pub async fn wait_jetstream(&self, timeout: Duration) -> Result<(), HarnessError> {
        let ports: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.pid().is_some())
            .map(|n| n.port())
            .collect();
        let ok = poll(timeout, || {
            let ports = ports.clone();
            async move {
                for port in ports {
                    if !jetstream_ready(port).await {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
        ok.ok_or_else(|| HarnessError::NotReady {
            what: "NATS cluster JetStream".into(),
            timeout,
            detail: "a node did not answer $JS.API.INFO".into(),
        })
    }

    /// `$JS.API.STREAM.INFO.<stream>` as the first running node answers it
    /// (JSON; `config.num_replicas` says how many copies the stream keeps).
    pub async fn stream_info(&self, stream: &str) -> Option<String> {
        let node = self.nodes.iter().find(|n| n.pid().is_some())?;
        js_api(node.port(), &format!("$JS.API.STREAM.INFO.{stream}")).await
    }

    /// The node serving clients on `port`.
    pub fn node_mut(&mut self, port: u16) -> Option<&mut NatsClusterNodeProcess> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }
}

/// True when the server on `port` answers a JetStream account-info request
/// with no error in it.
async fn jetstream_ready(port: u16) -> bool {
    js_api(port, "$JS.API.INFO")
        .await
        .is_some_and(|reply| !reply.contains("\"error\""))
}

/// The JSON reply to an empty request on the JetStream API `subject`, sent
/// to the server on `port` over a bare protocol exchange.
async fn js_api(port: u16, subject: &str) -> Option<String> {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let (read, mut write) = stream.split();
        let mut lines = BufReader::new(read).lines();
        lines.next_line().await.ok()??;
        let request = format!(
            "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.probe 1\r\nPUB {subject} _INBOX.probe 0\r\n\r\n"
        );
        write.write_all(request.as_bytes()).await.ok()?;
        loop {
            let line = lines.next_line().await.ok()??;
            if line.starts_with("MSG ") {
                return lines.next_line().await.ok()?;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_named_and_routed_to_its_peers() {
        let node = NatsClusterNode {
            nats: Nats::default(),
            name: "n2".into(),
            cluster_port: 6222,
            routes: vec![6223, 6224],
        };
        let mut command = Command::new("nats-server");
        node.args(&mut command, 4222, Path::new("/d"), Path::new("/d/log"));
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("--server_name n2"), "{joined}");
        assert!(
            joined.contains("--cluster nats://127.0.0.1:6222"),
            "{joined}"
        );
        assert!(
            joined.contains("--routes nats://127.0.0.1:6223,nats://127.0.0.1:6224"),
            "{joined}"
        );
        assert!(joined.contains("-sd /d/store"), "{joined}");
    }
}
