//! The Redis pattern through the proxy against a real `redis-server`: the
//! suite setup, healing after Redis dies, config reaching Redis, health
//! details, and scans that Redis's glob syntax must not confuse.

use std::{collections::HashSet, time::Duration};

use ::redis::AsyncCommands;
use prism_proto::{
    admin::v1::PatternState,
    keyvalue::v1::{GetRequest, ScanRequest},
    lifecycle::v1::HealthStatus,
};
use prism_tests::{Proxy, ProxyBuilder, RedisServer, procs, proxy::KvClient};
use tokio::time::Instant;

use crate::keyvalue::set;
use tonic::Code;

use crate::keyvalue::{KvEnv, NS, with_kv_namespace};

/// Setup for the KeyValue suite on Redis: a server of its own, kept alive
/// by the env.
pub(crate) async fn kv_env(builder: ProxyBuilder) -> KvEnv {
    let server = RedisServer::start().await;
    let backend = format!("backend: redis, config: {{address: {}}}", server.url());
    let proxy = with_kv_namespace(builder, &backend).start().await;
    proxy.wait_healthy(NS).await;
    KvEnv {
        proxy,
        _backend: Some(Box::new(server)),
    }
}

/// A proxy that polls health every 200 ms and never restarts a pattern for
/// being UNHEALTHY, so healing has to come from the pattern itself.
fn patient_proxy() -> ProxyBuilder {
    ProxyBuilder::new()
        .supervisor("health_interval_ms", "200")
        .supervisor("unhealthy_threshold", "1000")
}

fn redis_namespace(name: &str, config: &str) -> String {
    format!("{{name: {name}, pattern: keyvalue, backend: redis, config: {{{config}}}}}")
}

fn has_status(p: &prism_proto::admin::v1::PatternInfo, status: HealthStatus) -> bool {
    p.health.as_ref().is_some_and(|h| h.status() == status)
}

/// A Get with a 2 s deadline must fail with UNAVAILABLE well before it.
async fn assert_fails_fast(kv: &mut KvClient) {
    let deadline = Duration::from_secs(2);
    let mut request = tonic::Request::new(GetRequest { key: "k".into() });
    request.set_timeout(deadline);
    let start = Instant::now();
    let err = kv.get(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(start.elapsed() < deadline, "answered after the deadline");
}

async fn wait_status(proxy: &Proxy, ns: &str, timeout: Duration, status: HealthStatus) {
    proxy
        .wait_pattern(ns, timeout, &format!("{status:?}"), |p| {
            p.state() == PatternState::Running && has_status(p, status)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heals_by_itself_after_redis_is_killed_and_restarted() {
    let mut server = RedisServer::start().await;
    let proxy = patient_proxy()
        .namespace(&redis_namespace(
            "cache",
            &format!("address: {}", server.url()),
        ))
        .start()
        .await;
    let pid = proxy.wait_healthy("cache").await.pid;
    let mut kv = proxy.kv("cache").await;
    kv.set(set("k", b"before", 0)).await.expect("Set");

    server.kill();
    wait_status(
        &proxy,
        "cache",
        Duration::from_secs(2),
        HealthStatus::Unhealthy,
    )
    .await;
    for _ in 0..3 {
        assert_fails_fast(&mut kv).await;
    }
    let err = kv.set(set("k", b"v", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());

    server.restart().await;
    wait_status(
        &proxy,
        "cache",
        Duration::from_secs(2),
        HealthStatus::Healthy,
    )
    .await;
    kv.set(set("k", b"after", 0))
        .await
        .expect("Set after the restart");
    let value = kv.get(GetRequest { key: "k".into() }).await.expect("Get");
    assert_eq!(value.into_inner().value, b"after");

    let info = proxy.pattern("cache").await;
    assert_eq!(info.pid, pid, "the pattern healed without a restart");
    assert_eq!(info.restart_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_calls_before_the_deadline() {
    let server = RedisServer::start().await;
    let config = format!(
        "address: {}, connect_timeout_ms: 300, command_timeout_ms: 300, health_timeout_ms: 300",
        server.url()
    );
    let proxy = patient_proxy()
        .namespace(&redis_namespace("cache", &config))
        .start()
        .await;
    proxy.wait_healthy("cache").await;
    let mut kv = proxy.kv("cache").await;
    kv.set(set("k", b"v", 0)).await.expect("Set");

    // A stopped process keeps its sockets open but never answers.
    let pid = server.pid().expect("running");
    procs::signal(pid, libc::SIGSTOP);
    for _ in 0..2 {
        assert_fails_fast(&mut kv).await;
    }
    wait_status(
        &proxy,
        "cache",
        Duration::from_secs(2),
        HealthStatus::Unhealthy,
    )
    .await;

    procs::signal(pid, libc::SIGCONT);
    wait_status(
        &proxy,
        "cache",
        Duration::from_secs(2),
        HealthStatus::Healthy,
    )
    .await;
    let value = kv.get(GetRequest { key: "k".into() }).await.expect("Get");
    assert_eq!(value.into_inner().value, b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_unhealthy_while_redis_is_down_then_heals() {
    let mut server = RedisServer::start().await;
    server.kill();
    let proxy = patient_proxy()
        .namespace(&redis_namespace(
            "cache",
            &format!("address: {}", server.url()),
        ))
        .start()
        .await;
    let info = proxy
        .wait_pattern(
            "cache",
            Duration::from_secs(15),
            "RUNNING and UNHEALTHY",
            |p| {
                // Past the proxy's own "starting" placeholder: the pattern's verdict.
                p.state() == PatternState::Running
                    && has_status(p, HealthStatus::Unhealthy)
                    && p.health
                        .as_ref()
                        .is_some_and(|h| h.message.contains("unreachable"))
            },
        )
        .await;
    assert_fails_fast(&mut proxy.kv("cache").await).await;

    server.restart().await;
    wait_status(
        &proxy,
        "cache",
        Duration::from_secs(2),
        HealthStatus::Healthy,
    )
    .await;
    proxy
        .kv("cache")
        .await
        .set(set("k", b"v", 0))
        .await
        .expect("serving once Redis is up");
    assert_eq!(proxy.pattern("cache").await.pid, info.pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_address_fails_the_namespace_and_nothing_else() {
    let proxy = ProxyBuilder::new()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .namespace(&redis_namespace("bad", "address: 'http://127.0.0.1:6379'"))
        .start()
        .await;
    let info = proxy
        .wait_pattern("bad", Duration::from_secs(15), "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(info.last_error.contains("address"), "{}", info.last_error);
    proxy.wait_healthy("default").await;
    proxy
        .kv("default")
        .await
        .set(set("k", b"v", 0))
        .await
        .expect("the other namespace serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_details_show_the_pool_and_ping() {
    let server = RedisServer::start().await;
    let proxy = ProxyBuilder::new()
        .namespace(&redis_namespace(
            "cache",
            &format!("address: {}, pool_size: 4", server.url()),
        ))
        .start()
        .await;
    let info = proxy.wait_healthy("cache").await;
    let details = &info.health.as_ref().unwrap().details;
    assert_eq!(details["pool_size"], "4", "{details:?}");
    assert_eq!(details["address"], format!("127.0.0.1:{}", server.port()));
    for key in [
        "ping_ms",
        "pool_open",
        "pool_in_use",
        "pool_available",
        "pool_waiting",
    ] {
        assert!(details.contains_key(key), "{key} missing: {details:?}");
    }
    let ping_ms: f64 = details["ping_ms"].parse().expect("ping_ms is a number");
    assert!(ping_ms < 100.0, "{ping_ms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_db_and_ttl_reach_redis() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]).await;
    let proxy = patient_proxy()
        .namespace(&redis_namespace(
            "cache",
            &format!("address: {}, password: s3cret, db: 3", server.url()),
        ))
        .namespace(&redis_namespace(
            "wrong",
            &format!("address: {}, password: nope", server.url()),
        ))
        .start()
        .await;
    proxy.wait_healthy("cache").await;
    let mut kv = proxy.kv("cache").await;
    kv.set(set("k", b"v", 100)).await.expect("Set with TTL");

    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port());
    let mut direct = ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect with the password");
    let ttl: i64 = direct.ttl("k").await.unwrap();
    assert!((1..=100).contains(&ttl), "TTL set with the write: {ttl}");
    let value: Vec<u8> = direct.get("k").await.unwrap();
    assert_eq!(value, b"v", "written to db 3");

    kv.set(set("k", b"v2", 0)).await.unwrap();
    let ttl: i64 = direct.ttl("k").await.unwrap();
    assert_eq!(ttl, -1, "an overwrite without TTL clears it");

    let info = proxy
        .wait_pattern("wrong", Duration::from_secs(15), "UNHEALTHY", |p| {
            p.state() == PatternState::Running
                && has_status(p, HealthStatus::Unhealthy)
                && p.health
                    .as_ref()
                    .is_some_and(|h| h.message.contains("authentication"))
        })
        .await;
    let message = &info.health.unwrap().message;
    assert!(!message.contains("nope"), "the password leaked: {message}");
    let err = proxy
        .kv("wrong")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    // Alive but not ready (Redis refuses it): no calls reach the pattern,
    // they fail fast naming Redis and why.
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(
        err.message().contains("backend redis unreachable")
            && err.message().contains("authentication"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("nope"), "{}", err.message());
}

async fn scan_all(kv: &mut KvClient, prefix: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = kv
            .scan(ScanRequest {
                prefix: prefix.into(),
                limit,
                cursor,
            })
            .await
            .expect("Scan")
            .into_inner();
        pages.push(page.keys);
        if page.next_cursor.is_empty() {
            return pages;
        }
        assert!(pages.len() < 10_000, "scan does not terminate");
        cursor = page.next_cursor;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_prefixes_with_glob_characters_match_only_themselves() {
    let env = kv_env(ProxyBuilder::new()).await;
    let mut kv = env.kv().await;
    let keys = [
        "a*b:1",
        "a*b:2",
        "axb:1",
        "q?:1",
        "qq:1",
        "[x]:1",
        "x:1",
        r"back\slash",
        "backslash",
    ];
    for key in keys {
        kv.set(set(key, b"v", 0)).await.unwrap();
    }
    for (prefix, expected) in [
        ("a*b", vec!["a*b:1", "a*b:2"]),
        ("q?", vec!["q?:1"]),
        ("[x]", vec!["[x]:1"]),
        (r"back\", vec![r"back\slash"]),
    ] {
        let found: HashSet<String> = scan_all(&mut kv, prefix, 0)
            .await
            .concat()
            .into_iter()
            .collect();
        let expected: HashSet<String> = expected.into_iter().map(String::from).collect();
        assert_eq!(found, expected, "prefix {prefix:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_pages_a_large_keyspace_without_repeats_or_gaps() {
    let env = kv_env(ProxyBuilder::new()).await;
    let kv = env.kv().await;
    let writers: Vec<_> = (0..10)
        .map(|w| {
            let mut kv = kv.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    kv.set(set(&format!("bulk:{w}:{i}"), b"v", 0))
                        .await
                        .unwrap();
                    kv.set(set(&format!("noise:{w}:{i}"), b"v", 0))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    for limit in [7, 100, 250] {
        let pages = scan_all(&mut kv.clone(), "bulk:", limit).await;
        assert!(
            pages.iter().all(|p| p.len() <= limit as usize),
            "page over {limit}"
        );
        let all = pages.concat();
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), unique.len(), "a key came twice (limit {limit})");
        assert_eq!(unique.len(), 500, "a key was missed (limit {limit})");
        assert!(all.iter().all(|k| k.starts_with("bulk:")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_reaches_from_the_caller_to_redis() {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prism_tests::otlp::OtlpReceiver;

    let server = RedisServer::start().await;
    let receiver = OtlpReceiver::start().await;
    let proxy = ProxyBuilder::new()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .namespace(&redis_namespace(
            "cache",
            &format!("address: {}", server.url()),
        ))
        .start()
        .await;
    proxy.wait_healthy("cache").await;
    let response = proxy
        .kv("cache")
        .await
        .set(set("secret-key", b"secret-value", 0))
        .await
        .expect("Set");
    let trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    let find = |spans: &[prism_tests::otlp::ReceivedSpan], service: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.service == service && s.kind == kind)
            .cloned()
    };
    let spans = receiver
        .wait_trace(&trace_id, Duration::from_secs(15), |spans| {
            find(spans, "prism-redis", SpanKind::Client).is_some()
                && find(spans, "prism-redis", SpanKind::Server).is_some()
                && find(spans, "prism-proxy", SpanKind::Server).is_some()
        })
        .await;
    let pattern = find(&spans, "prism-redis", SpanKind::Server).unwrap();
    let redis = find(&spans, "prism-redis", SpanKind::Client).unwrap();
    assert_eq!(
        redis.parent_span_id, pattern.span_id,
        "the Redis span is the pattern's child"
    );
    assert_eq!(redis.attr("db.system"), Some("redis"));
    assert_eq!(redis.attr("db.operation.name"), Some("SET"));
    assert_eq!(
        redis.attr("server.port"),
        Some(server.port().to_string().as_str())
    );
    assert!(redis.name.starts_with("redis"), "{}", redis.name);
    for span in &spans {
        for value in span.attributes.values() {
            assert!(
                !value.contains("secret"),
                "a key or value leaked into {span:?}"
            );
        }
    }
}
