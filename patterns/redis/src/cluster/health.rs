//! Health of a Redis Cluster from what one probe saw: the node list of
//! `CLUSTER NODES` and a PING to every node.
//!
//! - UNHEALTHY (backend unreachable) when some slot has no reachable,
//!   non-failing master: calls on keys there cannot succeed.
//! - DEGRADED when every slot is served but some node is unreachable or
//!   flagged failing (a master whose slots a promoted replica took over, a
//!   dead replica: the next failure may uncover slots), or a PING was slow.
//! - HEALTHY otherwise.

use std::time::Duration;

use prism_pattern_sdk::{Health, HealthStatus};

use super::SLOTS;

/// One node as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    pub host: String,
    pub port: u16,
    pub master: bool,
    /// `fail` or `fail?` among its flags.
    pub failing: bool,
    /// Slots it serves (masters only).
    pub slots: usize,
    /// Round trip of its PING; `None` when it did not answer.
    pub ping: Option<Duration>,
}

impl NodeView {
    fn up(&self) -> bool {
        self.ping.is_some() && !self.failing
    }

    fn describe(&self) -> String {
        let role = if self.master {
            format!("master, {} slots", self.slots)
        } else {
            "replica".to_string()
        };
        match self.ping {
            Some(rtt) if !self.failing => {
                format!("{role}, ping {:.1} ms", rtt.as_secs_f64() * 1000.0)
            }
            Some(_) => format!("{role}, flagged failing"),
            None => format!("{role}, unreachable"),
        }
    }
}

/// Parses `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> <ping>
/// <pong> <epoch> <link> <slot ranges…>`; a node without an address yet
/// (`:0`) is left out.
pub(crate) fn parse_nodes(text: &str) -> Vec<NodeView> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields.get(1)?.split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
            let flags: Vec<&str> = fields.get(2)?.split(',').collect();
            let slots = fields
                .iter()
                .skip(8)
                // `[slot->-id]` marks a slot being migrated, not served.
                .filter(|range| !range.starts_with('['))
                .map(|range| match range.split_once('-') {
                    Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                        (Ok(a), Ok(b)) if b >= a => b - a + 1,
                        _ => 0,
                    },
                    None => usize::from(range.parse::<usize>().is_ok()),
                })
                .sum();
            Some(NodeView {
                host: host.to_string(),
                port,
                master: flags.contains(&"master"),
                failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
                slots,
                ping: None,
            })
        })
        .collect()
}

/// Health from the probe's outcome (`Err`: no node listed the cluster).
pub(crate) fn health_for(probe: Result<Vec<NodeView>, String>, slow_ping: Duration) -> Health {
    let nodes = match probe {
        Ok(nodes) => nodes,
        Err(reason) => {
            return Health::backend_unreachable(
                "redis",
                format!("redis cluster unreachable: {reason}"),
            );
        }
    };
    let covered: usize = nodes
        .iter()
        .filter(|n| n.master && n.up())
        .map(|n| n.slots)
        .sum();
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| !n.up())
        .map(|n| format!("{}:{}", n.host, n.port))
        .collect();
    let slowest = nodes.iter().filter_map(|n| n.ping).max();
    let health = if covered < usize::from(SLOTS) {
        Health::backend_unreachable(
            "redis",
            format!(
                "{} of {SLOTS} slots have no reachable master (down: {})",
                usize::from(SLOTS) - covered,
                list(&down)
            ),
        )
    } else if !down.is_empty() {
        Health::new(
            HealthStatus::Degraded,
            format!(
                "every slot is served, but {} unreachable or failing",
                list(&down)
            ),
        )
    } else if let Some(rtt) = slowest.filter(|rtt| *rtt > slow_ping) {
        Health::new(
            HealthStatus::Degraded,
            format!(
                "PING took {} ms (slow_ping_ms {})",
                rtt.as_millis(),
                slow_ping.as_millis()
            ),
        )
    } else {
        Health::healthy()
    };
    let health = health
        .detail("cluster_nodes", nodes.len())
        .detail("slots_covered", covered);
    nodes.iter().fold(health, |health, n| {
        health.detail(&format!("node {}:{}", n.host, n.port), n.describe())
    })
}

fn list(nodes: &[String]) -> String {
    if nodes.is_empty() {
        "none".into()
    } else {
        nodes.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:30002@40002 master - 0 0 2 connected 5461-10922
a3 127.0.0.1:30003@40003 master - 0 0 3 connected 10923-16383
b1 127.0.0.1:30004@40004 slave a1 0 0 1 connected
b2 127.0.0.1:30005@40005 slave a2 0 0 2 connected
b3 127.0.0.1:30006@40006 slave a3 0 0 3 connected
";
    const SLOW: Duration = Duration::from_millis(100);
    const QUICK: Option<Duration> = Some(Duration::from_millis(1));

    fn answered(text: &str) -> Vec<NodeView> {
        parse_nodes(text)
            .into_iter()
            .map(|n| NodeView { ping: QUICK, ..n })
            .collect()
    }

    #[test]
    fn nodes_roles_and_slots_are_read() {
        let nodes = parse_nodes(NODES);
        assert_eq!(nodes.len(), 6);
        assert_eq!(
            (nodes[0].port, nodes[0].master, nodes[0].slots),
            (30001, true, 5461)
        );
        assert_eq!(nodes[2].slots, 5461);
        assert!(!nodes[3].master && nodes[3].slots == 0);
        let odd = parse_nodes("x 127.0.0.1:1@2 master - 0 0 1 connected 7 9-10 [11->-y]\n");
        assert_eq!(odd[0].slots, 3, "a single slot, a range, a migration");
        assert!(parse_nodes("x :0@0 master,noaddr - 0 0 0 connected\n").is_empty());
    }

    #[test]
    fn every_node_up_is_healthy_with_a_detail_per_node() {
        let h = health_for(Ok(answered(NODES)), SLOW);
        assert_eq!(h.status, HealthStatus::Healthy, "{}", h.message);
        assert_eq!(h.details["slots_covered"], "16384");
        assert_eq!(h.details["cluster_nodes"], "6");
        assert_eq!(
            h.details["node 127.0.0.1:30001"],
            "master, 5461 slots, ping 1.0 ms"
        );
        assert_eq!(h.details["node 127.0.0.1:30004"], "replica, ping 1.0 ms");
    }

    #[test]
    fn a_dead_master_before_failover_uncovers_its_slots() {
        let mut nodes = answered(NODES);
        nodes[1].ping = None;
        let h = health_for(Ok(nodes), SLOW);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.unreachable_backend.as_deref(), Some("redis"));
        assert!(h.message.contains("5462 of 16384"), "{}", h.message);
        assert!(h.message.contains("127.0.0.1:30002"), "{}", h.message);
    }

    #[test]
    fn a_failed_master_whose_replica_took_over_is_degraded() {
        let after = "\
a1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:30002@40002 master,fail - 0 0 2 disconnected
a3 127.0.0.1:30003@40003 master - 0 0 3 connected 10923-16383
b1 127.0.0.1:30004@40004 slave a1 0 0 1 connected
b2 127.0.0.1:30005@40005 master - 0 0 4 connected 5461-10922
b3 127.0.0.1:30006@40006 slave a3 0 0 3 connected
";
        let mut nodes = answered(after);
        nodes[1].ping = None;
        let h = health_for(Ok(nodes), SLOW);
        assert_eq!(h.status, HealthStatus::Degraded, "{}", h.message);
        assert!(h.message.contains("127.0.0.1:30002"), "{}", h.message);
        assert_eq!(
            h.details["node 127.0.0.1:30002"],
            "master, 0 slots, unreachable"
        );
    }

    #[test]
    fn a_dead_replica_is_degraded_and_a_slow_ping_too() {
        let mut nodes = answered(NODES);
        nodes[4].ping = None;
        assert_eq!(health_for(Ok(nodes), SLOW).status, HealthStatus::Degraded);
        let mut nodes = answered(NODES);
        nodes[2].ping = Some(Duration::from_millis(150));
        let h = health_for(Ok(nodes), SLOW);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.message.contains("slow_ping_ms"), "{}", h.message);
    }

    #[test]
    fn no_node_answering_is_unreachable() {
        let h = health_for(Err("connection refused".into()), SLOW);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.unreachable_backend.as_deref(), Some("redis"));
        assert!(h.message.contains("connection refused"), "{}", h.message);
    }
}
