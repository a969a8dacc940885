//! Beyond one machine: the unchanged KeyValue and PubSub suites on a local
//! Redis Cluster (three masters, three replicas) and a three-node NATS
//! cluster with JetStream (setups here, instantiated in `main`), failover
//! under load ([`failover`]), two proxies over the same clusters
//! ([`two_proxies`]) and the deployment manifests ([`deploy`]).

mod deploy;
mod failover;
mod two_proxies;

use prism_tests::{
    ProxyBuilder,
    cluster::{nats_cluster, redis_cluster, redis_cluster_yaml},
};

use crate::{
    keyvalue::{KvEnv, NS as KV_NS, with_kv_namespace},
    pubsub::{NS as PS_NS, PubSubEnv, with_ps_namespace},
};

/// Setup for the KeyValue suite on a Redis Cluster of its own.
pub(crate) async fn redis_cluster_kv_env(builder: ProxyBuilder) -> KvEnv {
    let cluster = redis_cluster().await;
    let backend = format!(
        "backend: redis, config: {{cluster: {}}}",
        redis_cluster_yaml(&cluster)
    );
    let proxy = with_kv_namespace(builder, &backend).start().await;
    proxy.wait_healthy(KV_NS).await;
    KvEnv {
        proxy,
        _backend: Some(Box::new(cluster)),
    }
}

/// Setup for the PubSub suite on JetStream over a NATS cluster of its own,
/// the stream kept on all three nodes and `url` a YAML list.
pub(crate) async fn nats_cluster_jetstream_env(builder: ProxyBuilder) -> PubSubEnv {
    let cluster = nats_cluster().await;
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("'{u}'")).collect();
    let backend = format!(
        "backend: nats, config: {{url: [{}], jetstream: true, replicas: 3}}",
        urls.join(", ")
    );
    let proxy = with_ps_namespace(builder, &backend).start().await;
    proxy.wait_healthy(PS_NS).await;
    PubSubEnv {
        proxy,
        durable: true,
        _backend: Some(Box::new(cluster)),
    }
}

/// Setup for the PubSub suite on core NATS over a NATS cluster of its own,
/// `url` a comma list.
pub(crate) async fn nats_cluster_core_env(builder: ProxyBuilder) -> PubSubEnv {
    let cluster = nats_cluster().await;
    let backend = format!(
        "backend: nats, config: {{url: '{}', jetstream: false}}",
        cluster.url()
    );
    let proxy = with_ps_namespace(builder, &backend).start().await;
    proxy.wait_healthy(PS_NS).await;
    PubSubEnv {
        proxy,
        durable: false,
        _backend: Some(Box::new(cluster)),
    }
}

/// A cluster port taken by another process between being chosen and being
/// bound does not fail the cluster: it starts again on fresh ports.
#[tokio::test]
async fn a_nats_cluster_forms_when_a_chosen_cluster_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let mut attempts = 0;
    let cluster = prism_tests::cluster::NatsCluster::start_with(|| {
        attempts += 1;
        let fresh = if attempts == 1 { 2 } else { 3 };
        let mut ports = (0..fresh)
            .map(|_| prism_harness::procs::free_port())
            .collect::<Result<Vec<u16>, _>>()?;
        if attempts == 1 {
            ports.insert(0, taken_port);
        }
        Ok(ports)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(attempts, 2, "the first set held a taken port");
    assert_eq!(cluster.nodes.len(), 3);
    assert!(
        cluster
            .nodes
            .iter()
            .all(|n| n.launcher().cluster_port != taken_port),
        "no node serves its routes on the taken port"
    );
    assert!(
        cluster
            .wait_jetstream(std::time::Duration::from_secs(5))
            .await
            .is_ok()
    );
}
