//! MemStore's own behaviour through the proxy: the suite setup, capacity,
//! and health details.

use std::time::Duration;

use prism_proto::{keyvalue::v1::SetRequest, lifecycle::v1::HealthStatus};
use prism_tests::ProxyBuilder;
use tonic::Code;

use crate::{
    keyvalue::{KvEnv, NS, with_kv_namespace},
    pubsub::{self, PubSubEnv, with_ps_namespace},
};

/// Setup for the KeyValue suite on MemStore.
pub(crate) async fn kv_env(builder: ProxyBuilder) -> KvEnv {
    let proxy = with_kv_namespace(builder, "backend: memstore")
        .start()
        .await;
    proxy.wait_healthy(NS).await;
    KvEnv {
        proxy,
        _backend: None,
    }
}

/// Setup for the PubSub suite on MemStore (at most once).
pub(crate) async fn pubsub_env(builder: ProxyBuilder) -> PubSubEnv {
    let proxy = with_ps_namespace(builder, "backend: memstore")
        .start()
        .await;
    proxy.wait_healthy(pubsub::NS).await;
    PubSubEnv {
        proxy,
        durable: false,
        _backend: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_refuses_new_keys_and_degrades_health() {
    let proxy = ProxyBuilder::new()
        .supervisor("health_interval_ms", "100")
        .namespace("{name: small, pattern: keyvalue, backend: memstore, config: {max_keys: 10}}")
        .start()
        .await;
    let info = proxy.wait_healthy("small").await;
    let details = &info.health.as_ref().unwrap().details;
    assert_eq!(
        details["max_keys"], "10",
        "Initialize got the namespace's config"
    );
    assert_eq!(details["keys"], "0");

    let mut kv = proxy.kv("small").await;
    for i in 0..9 {
        kv.set(SetRequest {
            key: format!("k{i}"),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap();
    }
    let info = proxy
        .wait_pattern("small", Duration::from_secs(5), "DEGRADED at 90%", |p| {
            p.health
                .as_ref()
                .is_some_and(|h| h.status() == HealthStatus::Degraded)
        })
        .await;
    assert_eq!(info.health.unwrap().details["keys"], "9");

    kv.set(SetRequest {
        key: "k9".into(),
        value: b"v".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .expect("the 10th key fits");
    let err = kv
        .set(SetRequest {
            key: "k10".into(),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("max_keys"), "{}", err.message());
    kv.set(SetRequest {
        key: "k0".into(),
        value: b"again".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .expect("overwriting an existing key still works when full");
}
