//! No credential in any log line at any level: a proxy run with
//! `RUST_LOG=trace` serves a NATS namespace that logs in with a user and
//! password and Redis namespaces with a password (as a field and inside
//! the address), is exercised, and its stderr (which is also where its
//! patterns log) is searched for the secrets.

use std::{collections::HashMap, time::Duration};

use prism_proto::{
    admin::v1::ListPatternsRequest,
    keyvalue::v1::{GetRequest, SetRequest},
    pubsub::v1::{PublishRequest, SubscribeRequest, pub_sub_client::PubSubClient},
};
use prism_tests::{NatsServer, ProxyBuilder, RedisServer, eventually, proxy::NamespaceHeader};

const NATS_USER: &str = "prism-user";
const NATS_PASSWORD: &str = "Nats-Pa55word-7f3c";
const REDIS_PASSWORD: &str = "Redis-Pa55word-9d1e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_password() {
    let nats = NatsServer::start_with_auth(NATS_USER, NATS_PASSWORD).await;
    let redis = RedisServer::start_with(&["--requirepass", REDIS_PASSWORD]).await;
    let nats_url = format!(
        "nats://{NATS_USER}:{NATS_PASSWORD}@127.0.0.1:{}",
        nats.port()
    );
    let redis_url_with_password = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", redis.port());
    let proxy = ProxyBuilder::new()
        .env("RUST_LOG", "trace")
        .namespace(&format!(
            "{{name: events, pattern: pubsub, backend: nats, config: {{url: \"{nats_url}\", jetstream: true}}}}"
        ))
        .namespace(&format!(
            "{{name: cache, pattern: keyvalue, backend: redis, config: {{address: \"{}\", password: \"{REDIS_PASSWORD}\"}}}}",
            redis.url()
        ))
        .namespace(&format!(
            "{{name: sessions, pattern: keyvalue, backend: redis, config: {{address: \"{redis_url_with_password}\"}}}}"
        ))
        .start()
        .await;
    for namespace in ["events", "cache", "sessions"] {
        proxy.wait_healthy(namespace).await;
    }

    for namespace in ["cache", "sessions"] {
        let mut kv = proxy.kv(namespace).await;
        kv.set(SetRequest {
            key: "k".into(),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("set on {namespace}: {e}"));
        let value = kv.get(GetRequest { key: "k".into() }).await.unwrap();
        assert_eq!(value.into_inner().value, b"v");
    }

    let mut ps =
        PubSubClient::with_interceptor(proxy.channel().await, NamespaceHeader::new("events"));
    let mut stream = ps
        .subscribe(SubscribeRequest {
            topic: "orders".into(),
            subscriber_id: "auditor".into(),
            manual_ack: false,
        })
        .await
        .expect("subscribe")
        .into_inner();
    ps.publish(PublishRequest {
        topic: "orders".into(),
        payload: b"hello".to_vec(),
        metadata: HashMap::new(),
    })
    .await
    .expect("publish");
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message in time")
        .expect("no stream error")
        .expect("stream open");
    assert_eq!(message.payload, b"hello");

    let listed = proxy
        .admin()
        .await
        .list_patterns(ListPatternsRequest {})
        .await
        .expect("ListPatterns")
        .into_inner();
    let admin_output = format!("{listed:?}");
    for secret in [NATS_PASSWORD, REDIS_PASSWORD] {
        assert!(
            !admin_output.contains(secret),
            "admin output shows a secret"
        );
    }

    // The clients logged their connections at trace level, then (once the
    // log has caught up) nothing anywhere in it holds a secret.
    let log = eventually(
        Duration::from_secs(10),
        "trace lines from the clients",
        || {
            let log = proxy.log();
            async move { (log.contains("async_nats") && log.contains("TRACE")).then_some(log) }
        },
    )
    .await;
    for secret in [NATS_PASSWORD, REDIS_PASSWORD] {
        let leaks: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(secret))
            .take(3)
            .collect();
        assert!(
            leaks.is_empty(),
            "the log holds a secret:\n{}",
            leaks.join("\n")
        );
    }
    assert!(log.contains("***"), "something was redacted on the way");
    drop(nats);
    drop(redis);
}
