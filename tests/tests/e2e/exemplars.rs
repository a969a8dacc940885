//! Trace exemplars and error accounting through a real proxy: a slow call
//! (a 2 MiB value read back) and a failed one (UNAVAILABLE from a namespace
//! whose Redis is not there) show up in `GetExemplars` with the trace id the caller got in
//! `x-prism-trace-id`, which is also the id exported to a real OTLP
//! receiver and the one `/metrics` offers as an OpenMetrics exemplar.
//! NOT_FOUND counts as a caller outcome, apart from ERR%.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prism_harness::procs::ClosedPort;
use prism_proto::{
    admin::v1::{GetExemplarsRequest, GetLatencyRequest},
    keyvalue::v1::{GetRequest, SetRequest},
};
use prism_tests::{
    Proxy, ProxyBuilder,
    otlp::{OtlpReceiver, trace_id_header},
};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);
const BIG: usize = 2 * 1024 * 1024;

/// `default` on MemStore, and `cache` on a Redis address where nothing
/// listens for as long as the returned port lives.
async fn traced_proxy(receiver: &OtlpReceiver) -> (Proxy, ClosedPort) {
    let closed = ClosedPort::new().unwrap();
    let proxy = ProxyBuilder::new()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .namespace(&format!(
            "{{name: cache, pattern: keyvalue, backend: redis, config: {{address: \"redis://{}\"}}}}",
            closed.addr()
        ))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start()
        .await;
    proxy.wait_healthy("default").await;
    (proxy, closed)
}

fn get(key: &str) -> GetRequest {
    GetRequest { key: key.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_and_a_failure_carry_the_callers_trace_id_everywhere() {
    let receiver = OtlpReceiver::start().await;
    let (proxy, _closed) = traced_proxy(&receiver).await;
    let mut kv = proxy.kv("default").await;
    kv.set(SetRequest {
        key: "big".into(),
        value: vec![7u8; BIG],
        ttl_seconds: 0,
    })
    .await
    .unwrap();
    kv.set(SetRequest {
        key: "small".into(),
        value: b"x".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .unwrap();
    for _ in 0..20 {
        kv.get(get("small")).await.unwrap();
    }
    // The slow call: 2 MiB back through the proxy, far slower than a
    // one-byte read even on a loaded machine.
    let started = Instant::now();
    let slow = kv.get(get("big")).await.unwrap();
    let slow_elapsed = started.elapsed();
    assert_eq!(slow.get_ref().value.len(), BIG);
    let slow_id = trace_id_header(slow.metadata());
    // Caller outcomes, not errors.
    for _ in 0..4 {
        let missing = kv.get(get("missing")).await.unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
    }
    // The failure: a namespace whose Redis is not there answers
    // UNAVAILABLE, a server-side failure, with the caller's trace id.
    let mut cache = proxy.kv("cache").await;
    let failed = cache.get(get("k")).await.unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    let failed_id = trace_id_header(failed.metadata());
    assert_ne!(failed_id, slow_id);

    let mut admin = proxy.admin().await;
    let exemplars = admin
        .get_exemplars(GetExemplarsRequest {
            namespace: "default".into(),
            operation: "Get".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let failures = admin
        .get_exemplars(GetExemplarsRequest {
            namespace: "cache".into(),
            operation: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .failures;
    let kept = exemplars
        .slowest
        .iter()
        .find(|e| e.trace_id == slow_id)
        .unwrap_or_else(|| panic!("{slow_id} not among the slowest: {exemplars:?}"));
    assert_eq!(kept.operation, "Get");
    assert_eq!(kept.code_name, "OK");
    assert!(
        kept.latency_us > 0 && kept.latency_us <= slow_elapsed.as_micros() as u64,
        "{} µs recorded, {slow_elapsed:?} seen by the caller",
        kept.latency_us
    );
    assert!(exemplars.slowest.len() <= 5, "{exemplars:?}");
    assert!(
        exemplars
            .slowest
            .windows(2)
            .all(|w| w[0].latency_us >= w[1].latency_us),
        "slowest first: {exemplars:?}"
    );
    assert!(
        exemplars.failures.is_empty(),
        "NOT_FOUND is no failure: {exemplars:?}"
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(failure.trace_id, failed_id);
    assert_eq!(failure.operation, "Get");
    assert_eq!(failure.code_name, "UNAVAILABLE");
    assert!(!failure.message.is_empty(), "{failure:?}");

    // The same ids reached the OTLP receiver as the proxy's server spans.
    for (id, code) in [(&slow_id, "0"), (&failed_id, "14")] {
        let spans = receiver
            .wait_trace(id, WAIT, |spans| {
                spans
                    .iter()
                    .any(|s| s.service == "prism-proxy" && s.kind == SpanKind::Server)
            })
            .await;
        let server = spans
            .iter()
            .find(|s| s.service == "prism-proxy" && s.kind == SpanKind::Server)
            .unwrap();
        assert_eq!(server.name, "prism.keyvalue.v1.KeyValue/Get");
        assert_eq!(server.attr("rpc.grpc.status_code"), Some(code));
    }

    // Error accounting: NOT_FOUND apart from errors.
    let latency = admin
        .get_latency(GetLatencyRequest {
            namespace: "default".into(),
            operation: "Get".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (latency.count, latency.errors, latency.client_errors),
        (25, 0, 4)
    );
    assert_eq!(latency.error_rate, 0.0, "{latency:?}");
    assert!((latency.client_error_rate - 4.0 / 25.0).abs() < 1e-9);
    let traffic = proxy.pattern("default").await.traffic.unwrap();
    assert_eq!((traffic.errors, traffic.client_errors), (0, 4));
    let traffic = proxy.pattern("cache").await.traffic.unwrap();
    assert_eq!((traffic.count, traffic.errors), (1, 1));
    assert_eq!(traffic.error_rate, 1.0);

    // OpenMetrics: the slowest Get's id on its latency bucket; Prometheus
    // text unchanged, with the outcome label.
    let slowest_id = &exemplars.slowest[0].trace_id;
    let open = proxy
        .metrics_accepting(Some("application/openmetrics-text; version=1.0.0"))
        .await;
    assert!(
        open.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{open}"
    );
    let bucket = open
        .lines()
        .find(|l| l.contains(&format!("# {{trace_id=\"{slowest_id}\"}}")))
        .unwrap_or_else(|| panic!("no exemplar {slowest_id}:\n{open}"));
    assert!(
        bucket.starts_with(
            "prism_request_duration_seconds_bucket{namespace=\"default\",operation=\"Get\",le="
        ),
        "{bucket}"
    );
    assert!(open.contains("# TYPE prism_requests counter"), "{open}");
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    let plain = proxy.metrics().await;
    assert!(
        plain.contains("content-type: text/plain; version=0.0.4"),
        "{plain}"
    );
    assert!(!plain.contains("# {trace_id"), "{plain}");
    for needle in [
        r#"prism_requests_total{namespace="default",operation="Get",code="NOT_FOUND",outcome="client_error"} 4"#,
        r#"prism_requests_total{namespace="cache",operation="Get",code="UNAVAILABLE",outcome="error"} 1"#,
        r#"prism_requests_total{namespace="default",operation="Get",code="OK",outcome="ok"} 21"#,
    ] {
        assert!(plain.contains(needle), "{needle} missing from:\n{plain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_of_an_unknown_namespace_are_not_found() {
    let proxy = Proxy::start_default().await;
    let err = proxy
        .admin()
        .await
        .get_exemplars(GetExemplarsRequest {
            namespace: "nope".into(),
            operation: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"), "{err:?}");
}
