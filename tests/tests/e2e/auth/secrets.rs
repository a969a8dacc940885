//! After calls with good and bad tokens at `RUST_LOG=trace`, no token — nor
//! any recognisable part of one — is in the proxy's log (which holds its
//! patterns' logs too), its spans, its metrics or its admin output.

use std::time::Duration;

use prism_proto::{
    admin::v1::{ListEventsRequest, ListPatternsRequest, RestartPatternRequest},
    keyvalue::v1::{GetRequest, SetRequest},
};
use prism_tests::{eventually, otlp::OtlpReceiver};
use serde_json::json;

use super::{NAMESPACES, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_in_logs_spans_metrics_or_admin_output() {
    let receiver = OtlpReceiver::start().await;
    let setup = Setup::start_with_env(
        "  admin:\n    admin: [\"sub:root\"]\n",
        NAMESPACES,
        &[
            ("RUST_LOG".to_string(), "trace".to_string()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
                receiver.endpoint(),
            ),
        ],
    )
    .await;
    setup.proxy.wait_serving("orders").await;
    let good = setup.writer();
    let root = setup.token("root", json!({}));
    let expired = setup.issuer.mint(&setup.issuer.claims(
        "svc-writer",
        Duration::from_secs(0),
        json!({"exp": 1_000_000}),
    ));
    let forged = format!("{}x", &good[..good.len() - 1]);
    let mut tokens = vec![good.clone(), root.clone(), expired.clone(), forged.clone()];

    let mut kv = setup.proxy.kv_as("orders", Some(&good)).await;
    kv.set(SetRequest {
        key: "k".into(),
        value: b"v".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .expect("set");
    kv.get(GetRequest { key: "k".into() }).await.expect("get");
    for bad in [&expired, &forged] {
        let _ = setup
            .proxy
            .kv_as("orders", Some(bad))
            .await
            .get(GetRequest { key: "k".into() })
            .await
            .expect_err("refused");
    }
    let mut admin = setup.proxy.admin_as(Some(&root)).await;
    admin
        .restart_pattern(RestartPatternRequest {
            namespace: "orders".into(),
        })
        .await
        .expect("restart");
    let listed = admin
        .list_patterns(ListPatternsRequest {})
        .await
        .unwrap()
        .into_inner();
    let events = admin
        .list_events(ListEventsRequest {
            namespace: String::new(),
            limit: 0,
            after_seq: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let metrics = setup.proxy.metrics().await;

    // Tokens as they travel, and their signatures alone.
    let signatures: Vec<String> = tokens
        .iter()
        .map(|t| t.rsplit('.').next().unwrap().to_string())
        .collect();
    tokens.extend(signatures);
    let log = eventually(Duration::from_secs(10), "trace lines", || {
        let log = setup.proxy.log();
        async move { log.contains("TRACE").then_some(log) }
    })
    .await;
    let spans = format!("{:?}", receiver.spans());
    for (place, text) in [
        ("the log", &log),
        ("the spans", &spans),
        ("/metrics", &metrics),
        ("ListPatterns", &format!("{listed:?}")),
        ("ListEvents", &format!("{events:?}")),
    ] {
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "{place} holds a token or its signature"
            );
        }
        assert!(!text.contains("eyJ"), "{place} holds something JWT-shaped");
    }
    assert!(
        log.contains("sub:svc-writer") || log.contains("sub:root"),
        "callers are named by subject"
    );
}
