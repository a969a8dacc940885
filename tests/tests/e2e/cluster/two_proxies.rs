//! Two proxies (and so two sets of pattern processes) serving the same
//! namespaces from the same Redis Cluster and NATS cluster: a key written
//! through one is read through the other, a message published through one
//! reaches a subscriber attached to the other, and the multicast registry
//! (its Redis registry slot on the cluster) agrees across both.

use std::collections::HashSet;

use prism_proto::keyvalue::v1::{GetRequest, ScanRequest, SetRequest};
use prism_proto::pubsub::v1::pub_sub_client::PubSubClient;
use prism_tests::{
    Proxy, ProxyBuilder,
    cluster::{nats_cluster, redis_cluster, redis_cluster_yaml},
    proxy::NamespaceHeader,
};

use crate::pubsub::{next, publish, subscribe};

const KEYS: usize = 60;

fn namespaces(builder: ProxyBuilder, redis: &str, nats: &str) -> ProxyBuilder {
    builder
        .namespace(&format!(
            "{{name: kv, pattern: keyvalue, backend: redis, config: {{cluster: {redis}}}}}"
        ))
        .namespace(&format!(
            "{{name: ps, pattern: pubsub, backend: nats, config: {{url: '{nats}', jetstream: true, replicas: 3}}}}"
        ))
}

async fn start(redis: &str, nats: &str) -> Proxy {
    let proxy = namespaces(ProxyBuilder::new(), redis, nats).start().await;
    proxy.wait_healthy("kv").await;
    proxy.wait_healthy("ps").await;
    proxy
}

async fn ps(proxy: &Proxy) -> crate::pubsub::PsClient {
    PubSubClient::with_interceptor(proxy.channel().await, NamespaceHeader::new("ps"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_over_the_clusters_share_keys_and_messages() {
    let redis = redis_cluster().await;
    let nats = nats_cluster().await;
    let (redis_yaml, nats_url) = (redis_cluster_yaml(&redis), nats.url());
    let a = start(&redis_yaml, &nats_url).await;
    let b = start(&redis_yaml, &nats_url).await;

    // Keys hash to every master; each is written on one side, read on the other.
    let mut kv_a = a.kv("kv").await;
    let mut kv_b = b.kv("kv").await;
    for i in 0..KEYS {
        let (writer, key) = if i % 2 == 0 {
            (&mut kv_a, format!("two:{i}"))
        } else {
            (&mut kv_b, format!("two:{i}"))
        };
        writer
            .set(SetRequest {
                key,
                value: format!("v{i}").into_bytes(),
                ttl_seconds: 0,
            })
            .await
            .unwrap();
    }
    for i in 0..KEYS {
        let reader = if i % 2 == 0 { &mut kv_b } else { &mut kv_a };
        let value = reader
            .get(GetRequest {
                key: format!("two:{i}"),
            })
            .await
            .unwrap_or_else(|e| panic!("two:{i} through the other proxy: {e}"))
            .into_inner()
            .value;
        assert_eq!(value, format!("v{i}").into_bytes());
    }
    // A scan through either proxy walks every master and sees each key once.
    for kv in [&mut kv_a, &mut kv_b] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = kv
                .scan(ScanRequest {
                    prefix: "two:".into(),
                    cursor: cursor.clone(),
                    limit: 7,
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.keys);
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a key repeated: {seen:?}");
        assert_eq!(seen.len(), KEYS, "{seen:?}");
    }

    // A subscriber on B receives what is published through A, and back.
    let (mut ps_a, mut ps_b) = (ps(&a).await, ps(&b).await);
    let mut on_b = subscribe(&mut ps_b, "across", "sub-b").await;
    let mut on_a = subscribe(&mut ps_a, "back", "sub-a").await;
    for i in 0..5 {
        publish(&mut ps_a, "across", format!("a{i}").as_bytes()).await;
        publish(&mut ps_b, "back", format!("b{i}").as_bytes()).await;
    }
    for i in 0..5 {
        assert_eq!(next(&mut on_b).await.payload, format!("a{i}").into_bytes());
        assert_eq!(next(&mut on_a).await.payload, format!("b{i}").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_over_the_clusters_agree_on_the_registry() {
    let redis = redis_cluster().await;
    let nats = nats_cluster().await;
    crate::registry::shared::two_proxies_agree_and_deliver_across(
        &format!(
            "{{backend: redis, cluster: {}}}",
            redis_cluster_yaml(&redis)
        ),
        &format!("{{backend: nats, url: '{}', jetstream: true}}", nats.url()),
    )
    .await;
}
