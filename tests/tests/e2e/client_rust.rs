//! The Rust client (`prism-client`) through a real proxy: errors by code
//! with the call's trace id, the caller's trace continued, a token provider
//! against a proxy with auth on, retries and subscriptions across a pattern
//! restart; RFC-018's POC 1–3 on every backend (`backends`), the registry
//! (`registry`), TLS and mTLS (`tls`), and the example programs
//! (`examples`).
//!
//! Every test runs on a multi-thread runtime: when a test ends, the proxy
//! is stopped by a blocking drop, and the client's connection must still be
//! driven then (closed, or answering the proxy's GOAWAY and PING) or the
//! proxy waits out its close grace for it, five seconds per test.

mod backends;
mod examples;
mod registry;
mod tls;

use std::time::Duration;

use futures_util::StreamExt;
use jsonwebtoken::Algorithm;
use prism_auth::TokenProvider;
use prism_client::{Error, PrismClient};
use prism_harness::jwt::{SigningKey, TestIssuer};
use prism_proto::admin::v1::RestartPatternRequest;
use prism_tests::{Proxy, auth::auth_block};
use serde_json::json;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

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

/// A client of `proxy`'s data port with the tests' generous deadline.
pub(crate) async fn client(proxy: &Proxy) -> PrismClient {
    PrismClient::builder(proxy.data_addr.to_string())
        .timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

/// The error carries a trace id (32 hex digits) and shows it.
pub(crate) fn assert_trace_id(error: &Error) {
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

/// Runs the POC case `$case` (in `backends`) on one backend, with the
/// setup the KeyValue or PubSub suite uses for it.
macro_rules! on_backend {
    ($case:ident, $backend:ident, $setup:path) => {
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let env = $setup(prism_tests::ProxyBuilder::new()).await;
                crate::client_rust::backends::$case(&env).await;
            }
        }
    };
}

/// POC 1 and 2: the same KeyValue code on MemStore and Redis.
mod keyvalue {
    on_backend!(
        keyvalue_round_trips_and_scans_every_page,
        memstore,
        crate::memstore::kv_env
    );
    on_backend!(
        keyvalue_round_trips_and_scans_every_page,
        redis,
        crate::redis::kv_env
    );
}

/// POC 3: the same PubSub code on MemStore, core NATS and JetStream.
mod pubsub {
    on_backend!(
        pubsub_fans_out_in_order_and_unsubscribe_stops_delivery,
        memstore,
        crate::memstore::pubsub_env
    );
    on_backend!(
        pubsub_fans_out_in_order_and_unsubscribe_stops_delivery,
        nats_core,
        crate::nats::pubsub_core_env
    );
    on_backend!(
        pubsub_fans_out_in_order_and_unsubscribe_stops_delivery,
        nats_jetstream,
        crate::nats::pubsub_jetstream_env
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_continues_the_trace_of_the_callers_span() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing::Instrument;
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::layer::SubscriberExt;

    let proxy = proxy().await;
    let kv = client(&proxy).await.kv("kv");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    // The app's subscriber, for the span and for every poll of the calls
    // (whichever worker thread polls them).
    let dispatch = tracing::Dispatch::new(subscriber);
    let span = tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("app.request"));
    let app_trace = prism_observability::grpc::trace_id_of(&span)
        .expect("the app's span has a trace id")
        .to_string();
    let error = kv
        .get("absent")
        .instrument(span)
        .with_subscriber(dispatch.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    assert_eq!(error.trace_id(), Some(app_trace.as_str()), "{error}");

    // Outside any span the proxy starts a trace of its own.
    let other = kv
        .get("absent")
        .with_subscriber(dispatch)
        .await
        .unwrap_err();
    assert_trace_id(&other);
    assert_ne!(other.trace_id(), Some(app_trace.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
