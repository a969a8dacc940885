//! A real Redis Cluster of three masters and three replicas on free ports:
//! six `redis-server --cluster-enabled yes`, each with an append-only file
//! fsynced on every write, joined by `redis-cli --cluster create …
//! --cluster-replicas 1`, and ready once every node says `cluster_state:ok`
//! and knows all six. Each node is stopped by PID on drop.
//!
//! The cluster bus listens on the client port + 10000, so every client port
//! is chosen below 55535 with that second port free too. `REDIS_CLI` names
//! `redis-cli` (`scripts/tools.sh` exports it); otherwise it is looked up on
//! `PATH`.

use std::{
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    HarnessError, procs,
    redis::Redis,
    server::{Launch, ServerProcess},
    wait::poll,
};

/// The cluster bus is this far above the client port.
const BUS_OFFSET: u16 = 10_000;
/// Candidate ports tried before giving up on finding a pair.
const PORT_TRIES: usize = 200;
/// How long forming the cluster may take on a loaded machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// A master silent this long is failed over to its replica.
pub const NODE_TIMEOUT_MS: u64 = 2_000;

/// One cluster node: a [`Redis`] with cluster mode on.
#[derive(Debug, Clone, Default)]
pub struct ClusterNode {
    pub redis: Redis,
}

impl Launch for ClusterNode {
    const NAME: &'static str = "redis-server";
    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    fn binary(&self) -> String {
        self.redis.binary()
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        self.redis.args(command, port, dir, log);
        command
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // Replicas sync at once instead of waiting for more to join.
            .args(["--repl-diskless-sync-delay", "0"]);
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        self.redis.ready(port)
    }

    fn pick_port(&self) -> Result<u16, HarnessError> {
        for _ in 0..PORT_TRIES {
            let port = procs::free_port()?;
            if port < u16::MAX - BUS_OFFSET
                && TcpListener::bind(("127.0.0.1", port + BUS_OFFSET)).is_ok()
            {
                return Ok(port);
            }
        }
        // The ephemeral range may sit above 55535: walk down from below it.
        (20_000..u16::MAX - BUS_OFFSET)
            .rev()
            .step_by(7)
            .find(|&port| {
                TcpListener::bind(("127.0.0.1", port)).is_ok()
                    && TcpListener::bind(("127.0.0.1", port + BUS_OFFSET)).is_ok()
            })
            .ok_or_else(|| {
                HarnessError::io(
                    "finding a port pair for a Redis Cluster node",
                    std::io::Error::from(std::io::ErrorKind::AddrInUse),
                )
            })
    }
}

pub type ClusterNodeProcess = ServerProcess<ClusterNode>;

/// Three masters with one replica each.
pub struct RedisCluster {
    pub nodes: Vec<ClusterNodeProcess>,
}

/// A node's role as `CLUSTER NODES` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRole {
    pub port: u16,
    pub master: bool,
    /// `fail` or `fail?` among its flags.
    pub failing: bool,
    /// Slots it serves (masters only).
    pub slots: usize,
}

impl RedisCluster {
    /// Starts six nodes, forms the cluster and waits until every node
    /// reports it healthy.
    pub async fn start() -> Result<Self, HarnessError> {
        let mut nodes = Vec::with_capacity(6);
        for _ in 0..6 {
            let node = ClusterNode {
                redis: Redis {
                    append_only: true,
                    ..Redis::default()
                },
            };
            nodes.push(ServerProcess::launch(node).await?);
        }
        let cluster = Self { nodes };
        cluster.create()?;
        cluster.wait_ok(FORM_TIMEOUT).await?;
        Ok(cluster)
    }

    /// `redis://127.0.0.1:PORT` of every node, masters and replicas.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect()
    }

    fn create(&self) -> Result<(), HarnessError> {
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_string());
        let mut command = Command::new(&cli);
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port()));
        }
        command.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let output =
            command
                .stdin(Stdio::null())
                .output()
                .map_err(|source| HarnessError::Spawn {
                    binary: cli.clone().into(),
                    source,
                })?;
        if output.status.success() {
            return Ok(());
        }
        Err(HarnessError::NotReady {
            what: "redis-cli --cluster create".into(),
            timeout: FORM_TIMEOUT,
            detail: format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// Waits until every running node says `cluster_state:ok`, knows every
    /// node and sees all 16384 slots served, and every replica has finished
    /// its sync with its master (a replica that never synced cannot take
    /// over).
    pub async fn wait_ok(&self, timeout: Duration) -> Result<(), HarnessError> {
        let ports: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.pid().is_some())
            .map(|n| n.port())
            .collect();
        let all = self.nodes.len();
        let ok = poll(timeout, || {
            let ports = ports.clone();
            async move {
                let running = ports.len();
                let mut synced_replicas = 0;
                for port in ports {
                    let info = cluster_info(port).await?;
                    let healthy = info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_ok:16384")
                        && info.contains(&format!("cluster_known_nodes:{all}"));
                    if !healthy {
                        return None;
                    }
                    let replication = query(port, redis::cmd("INFO").arg("replication")).await?;
                    if replication.contains("role:slave") {
                        if !replication.contains("master_link_status:up") {
                            return None;
                        }
                        synced_replicas += 1;
                    }
                }
                // With every node running, every master has its replica.
                (running < all || synced_replicas == all / 2).then_some(())
            }
        })
        .await;
        ok.ok_or_else(|| HarnessError::NotReady {
            what: "Redis Cluster".into(),
            timeout,
            detail: "not every node reported cluster_state:ok".into(),
        })
    }

    /// Every node's role as a running node sees it (the first that answers).
    pub async fn roles(&self) -> Option<Vec<NodeRole>> {
        for node in self.nodes.iter().filter(|n| n.pid().is_some()) {
            if let Some(text) = query(node.port(), redis::cmd("CLUSTER").arg("NODES")).await {
                return Some(parse_nodes(&text));
            }
        }
        None
    }

    /// The node process serving on `port`.
    pub fn node_mut(&mut self, port: u16) -> Option<&mut ClusterNodeProcess> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }
}

/// `CLUSTER INFO` of the node on `port`, if it answers.
async fn cluster_info(port: u16) -> Option<String> {
    query(port, redis::cmd("CLUSTER").arg("INFO")).await
}

async fn query(port: u16, cmd: &redis::Cmd) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let work = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        cmd.query_async::<String>(&mut conn).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .ok()
        .flatten()
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> … <slots…>`.
pub fn parse_nodes(text: &str) -> Vec<NodeRole> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields.get(1)?;
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .map(|range| match range.split_once('-') {
                    Some((a, b)) => {
                        b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0)
                    }
                    None => 1,
                })
                .sum();
            Some(NodeRole {
                port,
                master: flags.split(',').any(|f| f == "master"),
                failing: flags.split(',').any(|f| f == "fail" || f == "fail?"),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_are_parsed() {
        let text = "\
a 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:30002@40002 master,fail - 0 0 2 disconnected
c 127.0.0.1:30003@40003 slave a 0 0 1 connected
d 127.0.0.1:30004@40004 master - 0 0 3 connected 5461 5462-10922 [10923->-e]
";
        let roles = parse_nodes(text);
        assert_eq!(roles.len(), 4);
        assert_eq!(
            (roles[0].port, roles[0].master, roles[0].slots),
            (30001, true, 5461)
        );
        assert!(roles[1].failing && roles[1].master && roles[1].slots == 0);
        assert!(!roles[2].master);
        assert_eq!(roles[3].slots, 5462);
    }

    #[test]
    fn a_node_runs_in_cluster_mode_with_persistence() {
        let node = ClusterNode {
            redis: Redis {
                append_only: true,
                ..Redis::default()
            },
        };
        let mut command = Command::new("redis-server");
        node.args(&mut command, 30001, Path::new("/d"), Path::new("/d/log"));
        let joined: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = joined.join(" ");
        assert!(joined.contains("--cluster-enabled yes"), "{joined}");
        assert!(joined.contains("--appendfsync always"), "{joined}");
        let port = node.pick_port().unwrap();
        assert!(port < 55_535, "{port}");
    }
}
