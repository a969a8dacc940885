//! The multicast registry section of ACCEPTANCE.md, written once and run on
//! every slot combination that makes sense (`registry_suite!` below and its
//! setups in `registry/envs.rs`), through the proxy: register, heartbeat,
//! unregister, expiry before the sweep and the sweep itself, filters,
//! paging, RFC-018's filtered multicast, what a multicast reports when a
//! receiver is attached or not, concurrent register/unregister/multicast,
//! and refusals of bad input.

mod demo;
pub(crate) mod envs;
pub(crate) mod shared;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use prism_proto::{
    json,
    registry::v1::{
        DeliveryStatus, EnumerateRequest, GetRequest, InboxMessage, MulticastRequest,
        MulticastResponse, ReceiveRequest, RegisterRequest, UnregisterRequest,
    },
};
pub(crate) use prism_tests::{assert_invalid_field, eventually};
use serde_json::{Value, json};
use tonic::{Code, Streaming};

pub(crate) use envs::{RegClient, RegistryEnv};

const WAIT: Duration = Duration::from_secs(15);

macro_rules! registry_suite {
    ($name:ident, $setup:path) => {
        mod $name {
            use prism_tests::ProxyBuilder;

            use super::registry as suite;

            macro_rules! case {
                ($case:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        suite::$case(&$setup(ProxyBuilder::new()).await).await;
                    }
                };
            }

            case!(register_stores_metadata_and_registering_again_is_the_heartbeat);
            case!(unregister_is_idempotent);
            case!(expired_identities_never_appear_even_before_the_sweep);
            case!(the_sweep_removes_expired_identities);
            case!(filters_select_as_the_language_says);
            case!(pages_never_skip_or_repeat_an_identity);
            case!(rfc018_filtered_multicast_reaches_only_the_match);
            case!(a_multicast_with_no_match_is_zero_not_an_error);
            case!(an_identity_without_a_receiver_is_pending_or_failed_as_the_slot_keeps);
            case!(a_receiver_that_never_reads_does_not_delay_the_others);
            case!(concurrent_register_unregister_and_multicast_leave_no_phantom);
            case!(bad_requests_are_refused_naming_the_field);
        }
    };
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub(crate) async fn register(reg: &mut RegClient, identity: &str, metadata: Value, ttl: i64) {
    reg.register(RegisterRequest {
        identity: identity.into(),
        metadata: Some(json::to_struct(&metadata)),
        ttl_seconds: ttl,
    })
    .await
    .unwrap_or_else(|e| panic!("register {identity}: {e}"));
}

/// Every identity the filter selects, over all pages.
pub(crate) async fn enumerate_all(reg: &mut RegClient, filter: Value) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page = reg
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(&filter)),
                limit: 1000,
                cursor: cursor.clone(),
                include_metadata: false,
            })
            .await
            .unwrap_or_else(|e| panic!("enumerate {filter}: {e}"))
            .into_inner();
        for identity in page.identities {
            assert!(
                all.insert(identity.identity.clone()),
                "repeated {identity:?}"
            );
        }
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

pub(crate) async fn multicast(
    reg: &mut RegClient,
    filter: Value,
    payload: &[u8],
) -> MulticastResponse {
    reg.multicast(MulticastRequest {
        filter: Some(json::to_struct(&filter)),
        payload: payload.to_vec(),
        metadata: HashMap::from([("command".to_string(), "read".to_string())]),
        timeout_ms: 5000,
    })
    .await
    .unwrap_or_else(|e| panic!("multicast {filter}: {e}"))
    .into_inner()
}

/// A receiver for `identity`, attached once the call returns its stream.
pub(crate) async fn receive(reg: &mut RegClient, identity: &str) -> Streaming<InboxMessage> {
    reg.receive(ReceiveRequest {
        identity: identity.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("receive {identity}: {e}"))
    .into_inner()
}

pub(crate) async fn next(stream: &mut Streaming<InboxMessage>) -> InboxMessage {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message within the wait")
        .expect("no stream error")
        .expect("the stream is still open")
}

/// True when nothing arrives within `quiet`.
pub(crate) async fn silent(stream: &mut Streaming<InboxMessage>, quiet: Duration) -> bool {
    match tokio::time::timeout(quiet, stream.message()).await {
        Err(_) | Ok(Ok(None)) | Ok(Err(_)) => true,
        Ok(Ok(Some(m))) => panic!("unexpected message {:?}", m.payload),
    }
}

/// Reads whatever arrives until the stream stays quiet for a moment.
pub(crate) async fn drain(stream: &mut Streaming<InboxMessage>) {
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(300), stream.message()).await
    {}
}

/// Per identity, the status a multicast reported.
pub(crate) fn statuses(response: &MulticastResponse) -> BTreeMap<String, DeliveryStatus> {
    response
        .results
        .iter()
        .map(|r| (r.identity.clone(), r.status()))
        .collect()
}

/// A Multicast whose filter selects the given identities; with receivers
/// that attach asynchronously, it is sent until every one of them is
/// DELIVERED (a receive call returns before every backend has subscribed).
pub(crate) async fn multicast_until_delivered(
    reg: &mut RegClient,
    filter: Value,
    payload: &[u8],
    expected: usize,
) -> MulticastResponse {
    eventually(WAIT, "every receiver attached", || {
        let mut reg = reg.clone();
        let filter = filter.clone();
        async move {
            let response = multicast(&mut reg, filter, payload).await;
            (response.delivered_count as usize == expected).then_some(response)
        }
    })
    .await
}

pub(crate) async fn register_stores_metadata_and_registering_again_is_the_heartbeat(
    env: &RegistryEnv,
) {
    let mut reg = env.client().await;
    let before = now_ms();
    let first = reg
        .register(RegisterRequest {
            identity: "sensor-1".into(),
            metadata: Some(json::to_struct(&json!({"type": "sensor", "floor": 1}))),
            ttl_seconds: 60,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    assert!((before - 5_000..=before + 60_000).contains(&first.registered_at_ms));
    assert!(
        (first.registered_at_ms + 59_000..=first.registered_at_ms + 61_000)
            .contains(&first.expires_at_ms),
        "expires a TTL after registering: {first:?}"
    );
    let got = reg
        .get(GetRequest {
            identity: "sensor-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .identity
        .unwrap();
    assert_eq!(
        json::from_struct(&got.metadata.unwrap()),
        json!({"type": "sensor", "floor": 1})
    );

    // The heartbeat: new metadata replaces the old, the TTL starts again.
    let again = reg
        .register(RegisterRequest {
            identity: "sensor-1".into(),
            metadata: Some(json::to_struct(&json!({"type": "sensor", "floor": 3}))),
            ttl_seconds: 120,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created, "registering again is not a creation");
    assert!(again.expires_at_ms > first.expires_at_ms + 50_000);
    let got = reg
        .get(GetRequest {
            identity: "sensor-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .identity
        .unwrap();
    assert_eq!(
        json::from_struct(&got.metadata.unwrap()),
        json!({"type": "sensor", "floor": 3})
    );
    assert_eq!(got.expires_at_ms, again.expires_at_ms);

    // TTL 0 never expires.
    let forever = reg
        .register(RegisterRequest {
            identity: "hub".into(),
            metadata: None,
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forever.expires_at_ms, 0);
}

pub(crate) async fn unregister_is_idempotent(env: &RegistryEnv) {
    let mut reg = env.client().await;
    register(&mut reg, "gone-soon", json!({}), 60).await;
    let unregister = |reg: &mut RegClient| {
        let mut reg = reg.clone();
        async move {
            reg.unregister(UnregisterRequest {
                identity: "gone-soon".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .existed
        }
    };
    assert!(unregister(&mut reg).await);
    assert!(
        !unregister(&mut reg).await,
        "the second time it was not there"
    );
    let err = reg
        .get(GetRequest {
            identity: "gone-soon".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("gone-soon"), "{err:?}");
    assert!(enumerate_all(&mut reg, json!({})).await.is_empty());
}

pub(crate) async fn expired_identities_never_appear_even_before_the_sweep(env: &RegistryEnv) {
    // The suite's namespace sweeps once an hour: only reads can hide these.
    let mut reg = env.client().await;
    register(&mut reg, "brief", json!({"kind": "brief"}), 1).await;
    register(&mut reg, "lasting", json!({"kind": "lasting"}), 600).await;
    assert_eq!(enumerate_all(&mut reg, json!({})).await.len(), 2);
    eventually(WAIT, "the 1 s identity to expire", || {
        let mut reg = reg.clone();
        async move {
            let all = enumerate_all(&mut reg, json!({})).await;
            (all == BTreeSet::from(["lasting".to_string()])).then_some(())
        }
    })
    .await;
    let err = reg
        .get(GetRequest {
            identity: "brief".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let response = multicast(&mut reg, json!({"kind": "brief"}), b"late").await;
    assert_eq!(response.target_count, 0, "an expired identity is no target");
    // Registering it again brings it back as new.
    let again = reg
        .register(RegisterRequest {
            identity: "brief".into(),
            metadata: None,
            ttl_seconds: 60,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.created, "an expired identity registers anew");
}

pub(crate) async fn the_sweep_removes_expired_identities(env: &RegistryEnv) {
    let mut reg = env.swept_client().await;
    for i in 0..5 {
        register(&mut reg, &format!("short-{i}"), json!({}), 1).await;
    }
    register(&mut reg, "long", json!({}), 600).await;
    // The pattern's own count (its health details) shows the sweep at work:
    // reads hide expired identities, only the sweep removes them.
    eventually(
        WAIT,
        "the sweep to remove the expired identities",
        || async {
            let info = env.proxy.pattern(envs::SWEPT).await;
            let details = info.health?.details;
            (details.get("registry.identities").map(String::as_str) == Some("1")).then_some(())
        },
    )
    .await;
    assert_eq!(
        enumerate_all(&mut reg, json!({})).await,
        BTreeSet::from(["long".to_string()])
    );
}

pub(crate) async fn filters_select_as_the_language_says(env: &RegistryEnv) {
    let mut reg = env.client().await;
    let fleet = [
        (
            "s1",
            json!({"type": "sensor", "floor": 1, "loc": {"building": "a"}, "tags": ["temp"]}),
        ),
        (
            "s2",
            json!({"type": "sensor", "floor": 2.0, "loc": {"building": "b"}, "tags": ["temp", "co2"]}),
        ),
        ("s3", json!({"type": "sensor", "floor": 3, "fw": "2.1.0"})),
        (
            "a1",
            json!({"type": "actuator", "floor": 1, "loc": {"building": "a"}}),
        ),
        ("h1", json!({"type": "hub", "name": "hub-north"})),
    ];
    for (identity, metadata) in &fleet {
        register(&mut reg, identity, metadata.clone(), 600).await;
    }
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["a1", "h1", "s1", "s2", "s3"]),
        (json!({"type": "sensor"}), &["s1", "s2", "s3"]),
        (json!({"floor": 2}), &["s2"]),
        (json!({"floor": {"$gte": 2}}), &["s2", "s3"]),
        (json!({"floor": {"$lt": 2.5, "$ne": 1}}), &["s2"]),
        (json!({"type": {"$in": ["hub", "actuator"]}}), &["a1", "h1"]),
        (json!({"type": {"$nin": ["sensor"]}}), &["a1", "h1"]),
        (json!({"floor": {"$exists": false}}), &["h1"]),
        (json!({"loc.building": "a"}), &["a1", "s1"]),
        (json!({"name": {"$prefix": "hub-"}}), &["h1"]),
        (json!({"fw": {"$suffix": ".0"}}), &["s3"]),
        (json!({"tags": {"$contains": "co2"}}), &["s2"]),
        (json!({"fw": {"$regex": "^2\\.[0-9]+"}}), &["s3"]),
        (
            json!({"$or": [{"floor": 3}, {"type": "hub"}]}),
            &["h1", "s3"],
        ),
        (
            json!({"$and": [{"type": "sensor"}, {"floor": {"$lte": 2}}]}),
            &["s1", "s2"],
        ),
        (json!({"$not": {"type": "sensor"}}), &["a1", "h1"]),
        (
            json!({"type": "sensor", "floor": {"$not": {"$gt": 1}}}),
            &["s1"],
        ),
        (json!({"floor": "1"}), &[]),
        (json!({"type": "robot"}), &[]),
    ];
    for (filter, expected) in cases {
        let got = enumerate_all(&mut reg, filter.clone()).await;
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "filter {filter}");
    }
    let bad: &[(Value, &str, &str)] = &[
        (json!({"floor": {"$near": 1}}), "filter.floor", "$near"),
        (json!({"$or": []}), "filter.$or", "empty"),
        (json!({"fw": {"$regex": "("}}), "filter.fw.$regex", "regex"),
        (
            json!({"$not": {"$not": {"$not": {"$not": {"$not": {"a": 1}}}}}}),
            "filter",
            "deeper than the limit of 5",
        ),
        (
            Value::Object((0..21).map(|i| (format!("f{i}"), json!(i))).collect()),
            "filter",
            "clauses",
        ),
    ];
    for (filter, field, word) in bad {
        let err = reg
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(filter)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{filter}: {err:?}");
        assert!(
            err.message().starts_with(field),
            "{filter}: {}",
            err.message()
        );
        assert!(err.message().contains(word), "{filter}: {}", err.message());
        let err = reg
            .multicast(MulticastRequest {
                filter: Some(json::to_struct(filter)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "multicast {filter}: {err:?}"
        );
    }
}

pub(crate) async fn pages_never_skip_or_repeat_an_identity(env: &RegistryEnv) {
    let mut reg = env.client().await;
    let mut even = BTreeSet::new();
    for i in 0..250 {
        let identity = format!("dev-{i:03}");
        register(
            &mut reg,
            &identity,
            json!({"n": i, "even": i % 2 == 0}),
            600,
        )
        .await;
        if i % 2 == 0 {
            even.insert(identity);
        }
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = reg
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(&json!({"even": true}))),
                limit: 7,
                cursor: cursor.clone(),
                include_metadata: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_count, 125, "the total counts every page");
        assert!(page.identities.len() <= 7);
        for identity in &page.identities {
            assert!(identity.metadata.is_none(), "metadata only when asked");
            seen.push(identity.identity.clone());
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no identity repeated");
    assert_eq!(unique, even, "none skipped");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages run in identity order");

    let with_metadata = reg
        .enumerate(EnumerateRequest {
            filter: Some(json::to_struct(&json!({"n": 7}))),
            include_metadata: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_metadata.identities.len(), 1);
    assert_eq!(
        json::from_struct(with_metadata.identities[0].metadata.as_ref().unwrap()),
        json!({"n": 7, "even": false})
    );
}

pub(crate) async fn rfc018_filtered_multicast_reaches_only_the_match(env: &RegistryEnv) {
    let mut reg = env.client().await;
    register(
        &mut reg,
        "sensor-1",
        json!({"type": "sensor", "floor": 1}),
        600,
    )
    .await;
    register(
        &mut reg,
        "sensor-2",
        json!({"type": "sensor", "floor": 2}),
        600,
    )
    .await;
    register(
        &mut reg,
        "actuator-1",
        json!({"type": "actuator", "floor": 1}),
        600,
    )
    .await;
    let mut s1 = receive(&mut reg, "sensor-1").await;
    let mut s2 = receive(&mut reg, "sensor-2").await;
    let mut a1 = receive(&mut reg, "actuator-1").await;

    let response = multicast_until_delivered(
        &mut reg,
        json!({"type": "sensor", "floor": 1}),
        br#"{"command":"read"}"#,
        1,
    )
    .await;
    assert_eq!(response.target_count, 1, "only sensor-1: {response:?}");
    assert_eq!(response.delivered_count, 1);
    assert_eq!((response.pending_count, response.failed_count), (0, 0));
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].identity, "sensor-1");
    assert!(!response.multicast_id.is_empty());

    let message = next(&mut s1).await;
    assert_eq!(message.payload, br#"{"command":"read"}"#);
    assert_eq!(message.multicast_id, response.multicast_id);
    assert_eq!(message.metadata["command"], "read");
    assert!(!message.message_id.is_empty());
    assert!((now_ms() - 60_000..=now_ms() + 5_000).contains(&message.sent_at_ms));
    assert!(
        silent(&mut s2, Duration::from_millis(300)).await,
        "sensor-2 is on floor 2"
    );
    assert!(
        silent(&mut a1, Duration::from_millis(300)).await,
        "actuator-1 is no sensor"
    );
    // Sends repeated while the receivers attached reached sensor-1 only too.
    drain(&mut s1).await;

    // Every sensor: two targets, both delivered, each gets it once.
    let response = multicast(&mut reg, json!({"type": "sensor"}), b"all-sensors").await;
    assert_eq!(
        (response.target_count, response.delivered_count),
        (2, 2),
        "{response:?}"
    );
    assert_eq!(next(&mut s1).await.payload, b"all-sensors");
    assert_eq!(next(&mut s2).await.payload, b"all-sensors");
    assert!(silent(&mut a1, Duration::from_millis(300)).await);
}

pub(crate) async fn a_multicast_with_no_match_is_zero_not_an_error(env: &RegistryEnv) {
    let mut reg = env.client().await;
    let response = multicast(&mut reg, json!({"type": "sensor"}), b"x").await;
    assert_eq!(
        (
            response.target_count,
            response.delivered_count,
            response.pending_count,
            response.failed_count
        ),
        (0, 0, 0, 0)
    );
    assert!(response.results.is_empty());
    register(&mut reg, "lamp", json!({"type": "actuator"}), 600).await;
    let response = multicast(&mut reg, json!({"type": "sensor"}), b"x").await;
    assert_eq!(response.target_count, 0);
}

pub(crate) async fn an_identity_without_a_receiver_is_pending_or_failed_as_the_slot_keeps(
    env: &RegistryEnv,
) {
    let mut reg = env.client().await;
    register(&mut reg, "online", json!({"group": "g"}), 600).await;
    register(&mut reg, "offline", json!({"group": "g"}), 600).await;
    let mut online = receive(&mut reg, "online").await;
    let response = eventually(WAIT, "the online receiver attached", || {
        let mut reg = reg.clone();
        async move {
            let response = multicast(&mut reg, json!({"group": "g"}), b"first").await;
            (statuses(&response)["online"] == DeliveryStatus::Delivered).then_some(response)
        }
    })
    .await;
    assert_eq!(response.target_count, 2);
    let offline = &response
        .results
        .iter()
        .find(|r| r.identity == "offline")
        .unwrap();
    if env.stores {
        assert_eq!(offline.status(), DeliveryStatus::Pending, "{response:?}");
        assert_eq!(response.pending_count, 1);
        assert_eq!(response.failed_count, 0);
    } else {
        assert_eq!(offline.status(), DeliveryStatus::Failed, "{response:?}");
        assert!(offline.error.contains("no receiver"), "{response:?}");
        assert_eq!(response.failed_count, 1);
    }
    assert_eq!(next(&mut online).await.payload, b"first");

    // Attaching later: what was pending arrives first (stores), else nothing.
    let mut late = receive(&mut reg, "offline").await;
    if env.stores {
        // One message per multicast sent while waiting for `online`.
        let mut ids = vec![next(&mut late).await.multicast_id];
        while let Ok(Ok(Some(m))) =
            tokio::time::timeout(Duration::from_millis(300), late.message()).await
        {
            assert_eq!(m.payload, b"first");
            ids.push(m.multicast_id);
        }
        assert!(ids.contains(&response.multicast_id), "{ids:?}");
    } else {
        assert!(silent(&mut late, Duration::from_millis(500)).await);
    }

    // Receive of an identity nobody registered is NOT_FOUND.
    let err = reg
        .receive(ReceiveRequest {
            identity: "stranger".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

pub(crate) async fn a_receiver_that_never_reads_does_not_delay_the_others(env: &RegistryEnv) {
    let mut reg = env.client().await;
    let live = 10;
    let mut streams = Vec::new();
    for i in 0..live {
        let identity = format!("live-{i:02}");
        register(&mut reg, &identity, json!({"fleet": "f"}), 600).await;
        streams.push(receive(&mut reg, &identity).await);
    }
    // `stuck` attaches on a connection of its own and never reads: its
    // stream, the proxy's and the pattern's buffers fill up.
    register(&mut reg, "stuck", json!({"fleet": "f"}), 600).await;
    let _stuck = receive(&mut env.client().await, "stuck").await;
    multicast_until_delivered(&mut reg, json!({"fleet": "f"}), b"warm-up", live + 1).await;
    for stream in &mut streams {
        drain(stream).await;
    }
    let big = vec![7u8; envs::MAX_PAYLOAD];
    for round in 0..100 {
        let started = std::time::Instant::now();
        let response = reg
            .multicast(MulticastRequest {
                filter: Some(json::to_struct(&json!({"fleet": "f"}))),
                payload: big.clone(),
                metadata: HashMap::new(),
                timeout_ms: 2000,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "round {round} took {:?}: the deadline bounds every call",
            started.elapsed()
        );
        assert_eq!(response.target_count as usize, live + 1);
        let s = statuses(&response);
        for i in 0..live {
            assert_eq!(
                s[&format!("live-{i:02}")],
                DeliveryStatus::Delivered,
                "round {round}: {response:?}"
            );
        }
        for stream in &mut streams {
            // Readers keep up; only `stuck` falls behind.
            assert_eq!(next(stream).await.payload.len(), big.len());
        }
    }
}

pub(crate) async fn concurrent_register_unregister_and_multicast_leave_no_phantom(
    env: &RegistryEnv,
) {
    let reg = env.client().await;
    let tasks = 8;
    let per_task = 40;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut reg = reg.clone();
        handles.push(tokio::spawn(async move {
            let mut kept = BTreeSet::new();
            for i in 0..per_task {
                let identity = format!("t{t}-{i:02}");
                register(&mut reg, &identity, json!({"task": t, "i": i}), 600).await;
                // Every third one is unregistered again.
                if i % 3 == 0 {
                    let existed = reg
                        .unregister(UnregisterRequest {
                            identity: identity.clone(),
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .existed;
                    assert!(existed, "{identity} was registered by this task");
                } else {
                    kept.insert(identity);
                }
                if i % 10 == 0 {
                    let response = multicast(&mut reg, json!({"task": t}), b"tick").await;
                    assert!(response.target_count as usize <= per_task);
                    for result in &response.results {
                        assert!(result.identity.starts_with(&format!("t{t}-")));
                    }
                }
            }
            kept
        }));
    }
    let mut expected = BTreeSet::new();
    for handle in handles {
        expected.extend(handle.await.unwrap());
    }
    let mut reg = reg.clone();
    assert_eq!(
        enumerate_all(&mut reg, json!({})).await,
        expected,
        "no lost and no phantom identity"
    );
    let response = multicast(&mut reg, json!({}), b"all").await;
    assert_eq!(response.target_count as usize, expected.len());
}

pub(crate) async fn bad_requests_are_refused_naming_the_field(env: &RegistryEnv) {
    let mut reg = env.client().await;
    let register_err = |identity: &str, metadata: Value, ttl: i64| {
        let mut reg = reg.clone();
        let identity = identity.to_string();
        async move {
            reg.register(RegisterRequest {
                identity,
                metadata: Some(json::to_struct(&metadata)),
                ttl_seconds: ttl,
            })
            .await
            .unwrap_err()
        }
    };
    let err = register_err("", json!({}), 10).await;
    assert_invalid_field(&err, "identity", "empty identity");
    let err = register_err(&"x".repeat(100_000), json!({}), 10).await;
    assert_invalid_field(&err, "identity", "huge identity");
    let err = register_err("ok", json!({}), -1).await;
    assert_invalid_field(&err, "ttl_seconds", "negative ttl");
    let err = register_err("ok", json!({"blob": "x".repeat(70_000)}), 10).await;
    assert_invalid_field(&err, "metadata", "huge metadata");

    let err = reg
        .enumerate(EnumerateRequest {
            limit: 10_001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "limit", "page too big");
    let err = reg
        .enumerate(EnumerateRequest {
            cursor: "not-a-cursor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "cursor", "forged cursor");
    let err = reg
        .multicast(MulticastRequest {
            timeout_ms: 600_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "timeout_ms", "timeout too long");
    let err = reg
        .multicast(MulticastRequest {
            payload: vec![0; envs::MAX_PAYLOAD + 1],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "payload", "payload over max_value_bytes");
    assert!(err.message().contains("max_value_bytes"), "{err:?}");
    let err = reg
        .multicast(MulticastRequest {
            metadata: HashMap::from([("traceparent".to_string(), "x".to_string())]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "metadata", "reserved header");
    let err = reg
        .receive(ReceiveRequest {
            identity: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "identity", "receive without identity");
    // Nothing was registered by any of that.
    assert!(enumerate_all(&mut reg, json!({})).await.is_empty());
}
