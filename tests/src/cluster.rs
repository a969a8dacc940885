//! Local clusters for the scale-out suites: a Redis Cluster of three masters
//! and three replicas, and a three-node NATS cluster with JetStream (see
//! [`prism_harness::redis_cluster`] and [`prism_harness::nats_cluster`]).
//! These wrappers panic with the harness's error, as a test wants.

pub use prism_harness::{NatsCluster, RedisCluster};

/// Starts a Redis Cluster and waits until every node reports it healthy.
pub async fn redis_cluster() -> RedisCluster {
    RedisCluster::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a NATS cluster and waits until JetStream answers on every node.
pub async fn nats_cluster() -> NatsCluster {
    NatsCluster::start().await.unwrap_or_else(|e| panic!("{e}"))
}

/// The `cluster:` setting naming every node, as a YAML flow list.
pub fn redis_cluster_yaml(cluster: &RedisCluster) -> String {
    format!("[{}]", cluster.urls().join(", "))
}
