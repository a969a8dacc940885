//! The Redis registry slot against a real `redis-server`.

use std::time::Duration;

use prism_harness::{Redis, RedisServer, wait::poll};
use serde_json::json;

use super::*;
use crate::pattern::now_ms;

pub(super) async fn redis() -> RedisServer {
    Redis::default().start().await.expect("redis-server starts")
}

pub(super) fn slot(server: &RedisServer, namespace: &str, max_identities: usize) -> RedisRegistry {
    RedisRegistry::open(
        namespace,
        &json!({"address": server.url(), "health_timeout_ms": 500, "read_retries": 0}),
        max_identities,
    )
    .unwrap()
}

pub(super) fn registration(identity: &str, metadata: Value, ttl_seconds: u64) -> Registration {
    Registration {
        identity: identity.to_string(),
        metadata,
        ttl: (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds)),
    }
}

pub(super) fn all() -> Filter {
    Filter::parse(&json!({})).unwrap()
}

pub(super) fn ids(page: &Page) -> Vec<&str> {
    page.records.iter().map(|r| r.identity.as_str()).collect()
}

/// Every identity the filter selects, page by page of `limit`, checking
/// each page's total and that pages run in order.
async fn walk(slot: &RedisRegistry, filter: &Filter, limit: usize, now: i64) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = slot
            .select(filter, after.as_deref(), limit, now)
            .await
            .unwrap();
        assert!(page.records.len() <= limit);
        seen.extend(page.records.iter().map(|r| r.identity.clone()));
        if !page.more {
            assert_eq!(page.total as usize, seen.len(), "total counts every page");
            return seen;
        }
        after = page.records.last().map(|r| r.identity.clone());
    }
}

#[tokio::test]
async fn register_refresh_get_unregister() {
    let server = redis().await;
    let slot = slot(&server, "ns", 100);
    let now = now_ms();

    let first = slot
        .register(&registration("sensor-1", json!({"floor": 1}), 30), now)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.expires_at_ms, Some(now + 30_000));

    let again = slot
        .register(&registration("sensor-1", json!({"floor": 2}), 0), now + 5)
        .await
        .unwrap();
    assert!(!again.created, "registering again is a refresh");
    assert_eq!(again.expires_at_ms, None, "no TTL now: never expires");
    let record = slot.get("sensor-1", now + 60_000).await.unwrap().unwrap();
    assert_eq!(*record.metadata, json!({"floor": 2}), "metadata replaced");
    assert_eq!(record.registered_at_ms, now + 5);
    assert_eq!(record.expires_at_ms, None);

    assert!(slot.unregister("sensor-1", now).await.unwrap());
    assert!(
        !slot.unregister("sensor-1", now).await.unwrap(),
        "idempotent"
    );
    assert_eq!(slot.get("sensor-1", now).await.unwrap(), None);
    assert_eq!(slot.select(&all(), None, 10, now).await.unwrap().total, 0);
}

#[tokio::test]
async fn pages_never_skip_or_repeat_across_chunks() {
    let server = redis().await;
    let mut slot = slot(&server, "ns", 10_000);
    // Smaller than a page, so pages and chunks cross each other.
    slot.select_chunk = 16;
    let now = now_ms();
    let mut expected: Vec<String> = (0..250)
        .map(|i| match i % 5 {
            0 => format!("dev {i}"),
            1 => format!("gerät-{i}"),
            2 => format!("a.b*>{i}"),
            _ => format!("id-{i:03}"),
        })
        .collect();
    for (i, identity) in expected.iter().enumerate() {
        let metadata = json!({"n": i, "even": i % 2 == 0});
        slot.register(&registration(identity, metadata, 0), now)
            .await
            .unwrap();
    }
    expected.sort();

    for limit in [1, 7, 100, 250, 1000] {
        let seen = walk(&slot, &all(), limit, now).await;
        assert_eq!(seen, expected, "limit {limit}");
    }
    let even = Filter::parse(&json!({"even": true})).unwrap();
    let seen = walk(&slot, &even, 9, now).await;
    assert_eq!(seen.len(), 125);
    let page = slot.select(&even, None, 10, now).await.unwrap();
    assert_eq!((page.records.len(), page.more, page.total), (10, true, 125));
    assert!(page.records.iter().all(|r| r.metadata["even"] == true));
    let none = Filter::parse(&json!({"n": {"$gt": 1000}})).unwrap();
    let page = slot.select(&none, None, 10, now).await.unwrap();
    assert_eq!((page.records.len(), page.more, page.total), (0, false, 0));
}

#[tokio::test]
async fn expired_identities_never_appear_even_before_the_sweep() {
    let server = redis().await;
    let slot = slot(&server, "ns", 100);
    let now = now_ms();
    slot.register(&registration("short", json!({"k": 1}), 1), now)
        .await
        .unwrap();
    slot.register(&registration("long", json!({"k": 1}), 600), now)
        .await
        .unwrap();

    // By the caller's clock, whatever Redis has dropped yet.
    let later = now + 1000;
    assert!(slot.get("short", now).await.unwrap().is_some());
    assert_eq!(slot.get("short", later).await.unwrap(), None);
    let page = slot.select(&all(), None, 10, later).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec!["long"], 1));
    assert!(!slot.unregister("short", later).await.unwrap(), "expired");

    // And by the real clock: the record goes with its Redis TTL.
    let gone = poll(Duration::from_secs(10), || async {
        let page = slot.select(&all(), None, 10, now_ms()).await.unwrap();
        (ids(&page) == ["long"] && slot.get("short", now_ms()).await.unwrap().is_none())
            .then_some(())
    })
    .await;
    assert!(gone.is_some(), "short expired within 10 s");
}

#[tokio::test]
async fn sweep_removes_expired_identities_once_and_counts_them_until_then() {
    let server = redis().await;
    let slot = slot(&server, "ns", 3);
    let now = now_ms();
    for identity in ["a", "b", "c"] {
        slot.register(&registration(identity, json!({}), 60), now)
            .await
            .unwrap();
    }
    // Refreshed: it stays.
    slot.register(&registration("b", json!({}), 600), now)
        .await
        .unwrap();
    let expired_at = now + 60_000;

    // Unswept identities still hold their places.
    let err = slot
        .register(&registration("d", json!({}), 0), expired_at)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Exhausted(m) if m == "max_identities (3) reached"),
        "{err}"
    );
    let refreshed = slot
        .register(&registration("c", json!({}), 60), expired_at)
        .await
        .unwrap();
    assert!(refreshed.created, "it had expired: created again");
    assert_eq!(identities(&slot).await, "3");

    let mut swept = slot.sweep(expired_at).await.unwrap();
    swept.sort();
    assert_eq!(swept, ["a"]);
    assert_eq!(slot.sweep(expired_at).await.unwrap(), Vec::<String>::new());
    assert_eq!(identities(&slot).await, "2");
    let page = slot.select(&all(), None, 10, expired_at).await.unwrap();
    assert_eq!(ids(&page), ["b", "c"]);
    slot.register(&registration("d", json!({}), 0), expired_at)
        .await
        .unwrap();
}

async fn identities(slot: &RedisRegistry) -> String {
    let health = slot.health().await;
    assert_eq!(health.state, SlotState::Ready, "{health:?}");
    health
        .details
        .iter()
        .find(|(k, _)| k == "identities")
        .map(|(_, v)| v.clone())
        .expect("identities in health")
}

#[tokio::test]
async fn two_slots_on_one_redis_agree_and_namespaces_stay_apart() {
    let server = redis().await;
    let (one, two) = (slot(&server, "ns", 100), slot(&server, "ns", 100));
    let other = slot(&server, "other", 100);
    let now = now_ms();
    one.register(&registration("x", json!({"v": 1}), 0), now)
        .await
        .unwrap();
    let created = two
        .register(&registration("y", json!({"v": 2}), 0), now)
        .await
        .unwrap();
    assert!(created.created);
    for slot in [&one, &two] {
        let page = slot.select(&all(), None, 10, now).await.unwrap();
        assert_eq!(ids(&page), ["x", "y"]);
    }
    assert_eq!(
        *two.get("x", now).await.unwrap().unwrap().metadata,
        json!({"v": 1})
    );
    assert!(two.unregister("x", now).await.unwrap());
    assert_eq!(one.get("x", now).await.unwrap(), None);
    assert_eq!(other.select(&all(), None, 10, now).await.unwrap().total, 0);

    // Concurrent sweeps hand each expired identity to one of them.
    for i in 0..50 {
        one.register(&registration(&format!("t{i}"), json!({}), 1), now)
            .await
            .unwrap();
    }
    let later = now + 5_000;
    let (a, b) = tokio::join!(one.sweep(later), two.sweep(later));
    let mut swept = [a.unwrap(), b.unwrap()].concat();
    assert_eq!(swept.len(), 50);
    swept.sort();
    swept.dedup();
    assert_eq!(swept.len(), 50, "no identity swept twice");
}

#[tokio::test]
async fn a_dead_redis_is_unreachable_and_the_slot_heals() {
    let mut server = redis().await;
    let slot = slot(&server, "ns", 100);
    let now = now_ms();
    slot.register(&registration("x", json!({}), 0), now)
        .await
        .unwrap();
    assert_eq!(
        ids(&slot.select(&all(), None, 10, now).await.unwrap()),
        ["x"]
    );
    assert_eq!(slot.health().await.state, SlotState::Ready);

    server.kill();
    let err = slot
        .register(&registration("y", json!({}), 0), now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unreachable {
                backend: "redis",
                ..
            }
        ),
        "{err}"
    );
    let err = slot.select(&all(), None, 10, now).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(matches!(
        slot.health().await.state,
        SlotState::Unreachable {
            backend: "redis",
            ..
        }
    ));

    server.restart().await.unwrap();
    let healed = poll(Duration::from_secs(10), || async {
        slot.register(&registration("y", json!({}), 0), now_ms())
            .await
            .ok()
    })
    .await;
    assert!(healed.is_some(), "registers again once redis is back");
    assert_eq!(slot.health().await.state, SlotState::Ready);
    // The restarted server kept nothing: neither does the copy.
    let page = slot.select(&all(), None, 10, now_ms()).await.unwrap();
    assert_eq!(ids(&page), ["y"]);
}
