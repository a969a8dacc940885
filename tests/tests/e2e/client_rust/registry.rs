//! The multicast registry through the Rust client on the MemStore slots:
//! RFC-018 POC 4's filtered multicast with its typed report, register as
//! heartbeat, get, enumerate by JSON and by the typed filter, pending
//! messages taken by `receive`, unregister, and refusals with the trace id.

use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use prism_client::{DeliveryStatus, Error, Filter, Inbox, InboxMessage, MulticastReport, Registry};
use prism_tests::{ProxyBuilder, eventually};
use serde_json::json;

use super::{WAIT, assert_trace_id, client};
use crate::registry::envs::{NS, RegistryEnv, memstore_env};

async fn registry() -> (RegistryEnv, Registry) {
    let env = memstore_env(ProxyBuilder::new()).await;
    let registry = client(&env.proxy).await.registry(NS);
    (env, registry)
}

async fn next(inbox: &mut Inbox) -> InboxMessage {
    tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("a message within the wait")
        .expect("the inbox is open")
        .unwrap()
}

/// The message of multicast `id`, skipping copies of earlier multicasts
/// (sends repeated until a receiver was attached).
async fn message_of(inbox: &mut Inbox, id: &str) -> InboxMessage {
    loop {
        let message = next(inbox).await;
        if message.multicast_id == id {
            return message;
        }
    }
}

/// Nothing arrives within `quiet`.
async fn silent(inbox: &mut Inbox, quiet: Duration) -> bool {
    tokio::time::timeout(quiet, inbox.next()).await.is_err()
}

/// Multicasts until `expected` targets report DELIVERED (a receiver is
/// attached a moment after its stream opens); earlier sends are PENDING
/// and reach the receiver too.
async fn multicast_until_delivered(
    registry: &Registry,
    filter: &Filter,
    payload: &[u8],
    expected: u32,
) -> MulticastReport {
    eventually(WAIT, "every receiver attached", || async {
        let report = registry.multicast(filter.clone(), payload).await.unwrap();
        (report.delivered == expected).then_some(report)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc018_filtered_multicast_reaches_only_floor_one_sensors() {
    let (_env, registry) = registry().await;
    let ttl = Some(Duration::from_secs(600));
    for (identity, metadata) in [
        ("sensor-1", json!({"type": "sensor", "floor": 1})),
        ("sensor-2", json!({"type": "sensor", "floor": 2})),
        ("actuator-1", json!({"type": "actuator", "floor": 1})),
    ] {
        let registration = registry.register(identity, metadata, ttl).await.unwrap();
        assert!(registration.created, "{identity} is new");
    }
    let mut s1 = registry.receive("sensor-1").await.unwrap();
    let mut s2 = registry.receive("sensor-2").await.unwrap();
    let mut a1 = registry.receive("actuator-1").await.unwrap();
    assert!(s1.trace_id().is_some());

    let floor_one_sensors = Filter::from(json!({"type": "sensor", "floor": 1}));
    let report =
        multicast_until_delivered(&registry, &floor_one_sensors, br#"{"command":"read"}"#, 1).await;
    assert_eq!(report.target, 1, "only sensor-1: {report:?}");
    assert_eq!((report.delivered, report.pending, report.failed), (1, 0, 0));
    assert_eq!(report.results.len(), 1);
    assert_eq!(
        report.status_of("sensor-1").unwrap().status,
        DeliveryStatus::Delivered
    );
    assert!(!report.multicast_id.is_empty());
    let message = message_of(&mut s1, &report.multicast_id).await;
    assert_eq!(message.payload, br#"{"command":"read"}"#);
    assert!(silent(&mut s2, Duration::from_millis(300)).await, "floor 2");
    assert!(
        silent(&mut a1, Duration::from_millis(300)).await,
        "no sensor"
    );

    // The typed filter selects the same way: every sensor on floor >= 1.
    let sensors = Filter::all().eq("type", "sensor").gte("floor", 1);
    let report = registry.multicast(sensors, "all-sensors").await.unwrap();
    assert_eq!((report.target, report.delivered), (2, 2), "{report:?}");
    let targets: Vec<&str> = report.results.iter().map(|d| d.identity.as_str()).collect();
    assert_eq!(targets, ["sensor-1", "sensor-2"], "in identity order");
    let id = &report.multicast_id;
    assert_eq!(message_of(&mut s1, id).await.payload, b"all-sensors");
    assert_eq!(next(&mut s2).await.payload, b"all-sensors");
    assert!(silent(&mut a1, Duration::from_millis(300)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_get_enumerate_pending_and_unregister() {
    let (_env, registry) = registry().await;
    let before = SystemTime::now() - Duration::from_secs(60);
    let first = registry
        .register(
            "dev-1",
            json!({"zone": "a", "rev": 1}),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(first.created);
    assert!(first.registered_at > before);
    assert!(first.expires_at.unwrap() > first.registered_at);
    // Registering again is the heartbeat: new metadata, no expiry now.
    let again = registry
        .register("dev-1", json!({"zone": "a", "rev": 2}), None)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.expires_at, None);
    let got = registry.get("dev-1").await.unwrap();
    assert_eq!(got.metadata, json!({"zone": "a", "rev": 2}));
    assert_eq!(got.expires_at, None);

    // 120 more: enumerate pages through every one (100 per page).
    for i in 0..120 {
        let zone = if i % 2 == 0 { "a" } else { "b" };
        registry
            .register(&format!("dev-{i:03}"), json!({"zone": zone, "n": i}), None)
            .await
            .unwrap();
    }
    let all: Vec<_> = registry
        .enumerate(Filter::all())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 121);
    let zone_a: Vec<_> = registry
        .enumerate(json!({"zone": "a"}))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(zone_a.len(), 61, "60 even ones and dev-1");
    assert!(zone_a.iter().all(|i| i.metadata["zone"] == "a"));
    let names: Vec<&str> = zone_a.iter().map(|i| i.identity.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "in identity order");
    let typed = Filter::all().eq("zone", "b").lt("n", 11);
    assert_eq!(registry.count(typed).await.unwrap(), 5, "1, 3, 5, 7, 9");

    // No receiver: the MemStore slot keeps it PENDING until one attaches.
    let report = registry.multicast(json!({"n": 7}), "hello").await.unwrap();
    assert_eq!((report.target, report.pending), (1, 1), "{report:?}");
    assert_eq!(
        report.status_of("dev-007").unwrap().status,
        DeliveryStatus::Pending
    );
    let mut inbox = registry.receive("dev-007").await.unwrap();
    let message = next(&mut inbox).await;
    assert_eq!(message.payload, b"hello");
    assert_eq!(message.multicast_id, report.multicast_id);
    drop(inbox);

    assert!(registry.unregister("dev-007").await.unwrap());
    assert!(!registry.unregister("dev-007").await.unwrap(), "idempotent");
    let gone = registry.get("dev-007").await.unwrap_err();
    assert!(matches!(gone, Error::NotFound(_)), "{gone}");
    assert_trace_id(&gone);
    let no_inbox = registry.receive("dev-007").await.unwrap_err();
    assert!(matches!(no_inbox, Error::NotFound(_)), "{no_inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_metadata_are_refused_with_a_clear_error() {
    let (_env, registry) = registry().await;
    let bad_operator = registry
        .multicast(json!({"floor": {"$between": [1, 2]}}), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(bad_operator, Error::InvalidArgument(_)),
        "{bad_operator}"
    );
    assert!(
        bad_operator.to_string().contains("$between"),
        "{bad_operator}"
    );
    assert_trace_id(&bad_operator);
    let empty = registry.register("", json!({}), None).await.unwrap_err();
    assert!(matches!(empty, Error::InvalidArgument(_)), "{empty}");
    assert!(empty.to_string().contains("identity"), "{empty}");
    // Shapes that cannot travel are refused before any call.
    let not_object = registry.register("d", json!([1]), None).await.unwrap_err();
    assert!(
        matches!(
            not_object,
            Error::Local {
                what: "metadata",
                ..
            }
        ),
        "{not_object}"
    );
    let filter: Result<Vec<_>, _> = registry.enumerate(json!("sensor")).try_collect().await;
    let filter = filter.unwrap_err();
    assert!(
        matches!(filter, Error::Local { what: "filter", .. }),
        "{filter}"
    );
}
