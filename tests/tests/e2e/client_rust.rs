//! The Rust client (`prism-client`) through a real proxy: KeyValue round
//! trips and scans over several pages, errors by code with the call's trace
//! id, PubSub streams, a token provider against a proxy with auth on,
//! retries across a pattern restart, and its example program.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use jsonwebtoken::Algorithm;
use prism_auth::TokenProvider;
use prism_client::{Error, PrismClient};
use prism_harness::jwt::{SigningKey, TestIssuer};
use prism_proto::admin::v1::RestartPatternRequest;
use prism_tests::{Proxy, auth::auth_block, bins};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

const NAMESPACES: &str = "namespaces:
  - name: kv
    pattern: keyvalue
  - name: events
    pattern: pubsub
";

async fn proxy() -> Proxy {
    let proxy = Proxy::start_with_config(NAMESPACES).await;
    proxy.wait_healthy("kv").await;
    proxy.wait_healthy("events").await;
    proxy
}

async fn client(proxy: &Proxy) -> PrismClient {
    PrismClient::builder(proxy.data_addr.to_string())
        .timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

fn assert_trace_id(error: &Error) {
    let id = error
        .trace_id()
        .unwrap_or_else(|| panic!("no trace id: {error}"));
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert!(
        error.to_string().contains(id),
        "Display shows the id: {error}"
    );
}

#[tokio::test]
async fn keyvalue_set_get_exists_delete_and_scan_every_page() {
    let proxy = proxy().await;
    let kv = client(&proxy).await.kv("kv");
    kv.set("user:1", "ada", None).await.unwrap();
    assert_eq!(kv.get("user:1").await.unwrap(), b"ada");
    assert!(kv.exists("user:1").await.unwrap());
    assert!(kv.delete("user:1").await.unwrap());
    assert!(!kv.exists("user:1").await.unwrap());
    assert!(
        !kv.delete("user:1").await.unwrap(),
        "a second delete finds nothing"
    );

    // 250 keys: three pages at the pattern's default page size of 100.
    let written: BTreeSet<String> = (0..250).map(|i| format!("scan:{i:03}")).collect();
    for key in &written {
        kv.set(key, key.as_bytes(), Some(Duration::from_secs(600)))
            .await
            .unwrap();
    }
    kv.set("other:1", "x", None).await.unwrap();
    let keys: Vec<String> = kv.scan("scan:").try_collect().await.unwrap();
    assert_eq!(keys.len(), 250, "every key once");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), written);
    let none: Vec<String> = kv.scan("nothing:").try_collect().await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn errors_carry_their_code_the_proxys_message_and_the_trace_id() {
    let proxy = proxy().await;
    let client = client(&proxy).await;
    let kv = client.kv("kv");
    let missing = kv.get("absent").await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");
    assert_trace_id(&missing);

    let empty_key = kv.set("", "v", None).await.unwrap_err();
    assert!(
        matches!(empty_key, Error::InvalidArgument(_)),
        "{empty_key}"
    );
    assert!(empty_key.to_string().contains("key"), "{empty_key}");
    assert_trace_id(&empty_key);

    let unknown = client.kv("no-such-namespace").get("k").await.unwrap_err();
    assert!(matches!(unknown, Error::NotFound(_)), "{unknown}");
    assert!(
        unknown.to_string().contains("no-such-namespace"),
        "{unknown}"
    );
    assert_trace_id(&unknown);
}

/// With `tracing-opentelemetry` installed, a call made inside the app's span
/// continues the app's trace: the proxy answers with the span's trace id.
#[tokio::test(flavor = "current_thread")]
async fn a_call_continues_the_trace_of_the_callers_span() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    let proxy = proxy().await;
    let kv = client(&proxy).await.kv("kv");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    // The test runs on one thread, so the thread's default reaches every poll.
    let _default = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!("app.request");
    let app_trace = prism_observability::grpc::trace_id_of(&span)
        .expect("the app's span has a trace id")
        .to_string();
    let error = kv.get("absent").instrument(span).await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    assert_eq!(error.trace_id(), Some(app_trace.as_str()), "{error}");

    // Outside any span the proxy starts a trace of its own.
    let other = kv.get("absent").await.unwrap_err();
    assert_trace_id(&other);
    assert_ne!(other.trace_id(), Some(app_trace.as_str()));
}

#[tokio::test]
async fn pubsub_delivers_published_messages_to_a_subscription_stream() {
    let proxy = proxy().await;
    let events = client(&proxy).await.pubsub("events");
    let mut subscription = events.subscribe("orders.*").await.unwrap();
    assert!(subscription.trace_id().is_some());
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            events
                .publish("orders.created", format!("order {i}"))
                .await
                .unwrap(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let message = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a message within the wait")
            .expect("the stream is open")
            .unwrap();
        assert_eq!(&message.message_id, id);
        assert_eq!(message.topic, "orders.created");
        assert_eq!(message.payload, format!("order {i}").as_bytes());
    }
    let batch = events
        .publish_batch([("orders.paid", "a"), ("orders.paid", "b")])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    for (id, payload) in batch.iter().zip(["a", "b"]) {
        let message = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a batch message within the wait")
            .expect("the stream is open")
            .unwrap();
        assert_eq!(&message.message_id, id);
        assert_eq!(message.payload, payload.as_bytes());
    }
    let bad = events.publish("", "x").await.unwrap_err();
    assert!(matches!(bad, Error::InvalidArgument(_)), "{bad}");
    assert_trace_id(&bad);
}

#[tokio::test]
async fn a_token_provider_authenticates_and_is_read_again_when_its_file_changes() {
    let key = SigningKey::generate(Algorithm::ES256, "key-1").unwrap();
    let issuer = TestIssuer::start(key).await.unwrap();
    let yaml = format!(
        "{}namespaces:
  - name: kv
    pattern: keyvalue
    access:
      read: [\"sub:app\"]
      write: [\"sub:app\"]
",
        auth_block(issuer.issuer(), "")
    );
    let proxy = Proxy::start_with_config(&yaml).await;
    proxy.wait_serving("kv").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = |sub: &str| issuer.token(sub, Duration::from_secs(3600), json!({}));
    std::fs::write(&token_file, token("app")).unwrap();

    let address = proxy.data_addr.to_string();
    let with_provider = PrismClient::builder(address.clone())
        .timeout(WAIT)
        .token_provider(TokenProvider::from_file(token_file.clone()).unwrap())
        .connect()
        .await
        .unwrap();
    let shown = format!("{with_provider:?}");
    assert!(shown.contains("--token-file"), "{shown}");
    assert!(!shown.contains("eyJ"), "no token in {shown}");
    let authed = with_provider.kv("kv");
    authed.set("k", "v", None).await.unwrap();
    assert_eq!(authed.get("k").await.unwrap(), b"v");

    let anonymous = client(&proxy).await.kv("kv");
    let refused = anonymous.get("k").await.unwrap_err();
    assert!(matches!(refused, Error::Unauthenticated(_)), "{refused}");
    assert_trace_id(&refused);

    // Another subject's token in the same file: the next call sends it.
    std::fs::write(&token_file, token("stranger")).unwrap();
    let denied = prism_tests::eventually(WAIT, "the rewritten token file to be used", || async {
        match authed.get("k").await {
            Err(e @ Error::PermissionDenied(_)) => Some(e),
            _ => None,
        }
    })
    .await;
    assert_trace_id(&denied);
}

#[tokio::test]
async fn idempotent_calls_ride_out_a_pattern_restart() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let proxy = proxy().await;
    let kv = client(&proxy).await.kv("kv");
    let before = proxy.pattern("kv").await.pid;
    let restarted = Arc::new(AtomicBool::new(false));
    let done = restarted.clone();
    let calls = tokio::spawn(async move {
        // Calls run before, during and after the restart (twenty rounds
        // past it); MemStore forgets on restart, so each round writes first.
        let (mut rounds, mut after) = (0u32, 0u32);
        while after < 20 {
            let key = format!("k{rounds}");
            kv.set(&key, "v", None)
                .await
                .map_err(|e| format!("set: {e}"))?;
            kv.exists(&key).await.map_err(|e| format!("exists: {e}"))?;
            rounds += 1;
            if done.load(Ordering::SeqCst) {
                after += 1;
            }
        }
        Ok::<_, String>(rounds)
    });
    let response = proxy
        .admin()
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: "kv".into(),
        })
        .await
        .unwrap()
        .into_inner();
    restarted.store(true, Ordering::SeqCst);
    assert_ne!(response.pattern.unwrap().pid, before);
    let rounds = tokio::time::timeout(WAIT, calls)
        .await
        .expect("the calls end within the wait")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rounds >= 20);
}

#[tokio::test]
async fn a_subscription_stream_keeps_delivering_after_its_pattern_restarts() {
    let proxy = proxy().await;
    let events = client(&proxy).await.pubsub("events");
    let mut subscription = events.subscribe("jobs").await.unwrap();
    let before = proxy.pattern("events").await.pid;
    proxy
        .admin()
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: "events".into(),
        })
        .await
        .unwrap();
    assert_ne!(proxy.pattern("events").await.pid, before);
    // The proxy subscribes again on the new process by itself: publish
    // until a message makes it through the same stream.
    let deadline = tokio::time::Instant::now() + WAIT;
    let got = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery after the restart"
        );
        match events.publish("jobs", "after restart").await {
            // Publish is not retried by the client; this loop retries it.
            Ok(_) | Err(Error::Unavailable(_)) => {}
            Err(e) => panic!("publish: {e}"),
        }
        match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
            Ok(Some(Ok(message))) => break message,
            Ok(Some(Err(e))) => panic!("the stream failed: {e}"),
            Ok(None) => panic!("the stream ended"),
            Err(_) => {}
        }
    };
    assert_eq!(got.payload, b"after restart");
}

#[tokio::test]
async fn the_kv_example_runs_against_a_proxy() {
    let proxy = Proxy::start_default().await;
    let example = bins::bin_dir().join("examples").join("kv");
    assert!(
        example.is_file(),
        "{} is not built: `cargo build -p prism-client --examples` (scripts/test.sh does)",
        example.display()
    );
    let output = tokio::process::Command::new(&example)
        .arg(proxy.data_addr.to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("greeting = hello"), "{stdout}");
    assert!(stdout.contains("[\"greeting\"]"), "{stdout}");
    let kv = client(&proxy).await.kv("default");
    assert_eq!(kv.get("greeting").await.unwrap(), b"hello");
}
