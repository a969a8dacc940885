//! The copy `select` filters: following other processes' changes,
//! reading whole when it must, and a timing run over 10,000 identities.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use prism_proto::{filter::Filter, registry::Registration};
use serde_json::json;

use super::super::{expired, tests::*};
use super::Cache;
use crate::pattern::now_ms;

/// Times `select` over 10,000 identities with a filter that matches few of
/// them, and how much of that is Redis (the id walk and MGETs alone).
/// Run with `cargo test --release -p prism-multicast-registry --lib
/// select_timing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing run, not a check"]
async fn select_timing_over_10_000_identities() {
    let server = redis().await;
    let slot = Arc::new(slot(&server, "bench", 1_000_000));
    let now = now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20 {
        let slot = slot.clone();
        tasks.spawn(async move {
            for i in (worker..10_000).step_by(20) {
                let kind = ["sensor", "actuator", "gateway"][i % 3];
                let metadata = json!({
                    "type": kind,
                    "floor": i % 20,
                    "zone": format!("zone-{}", i % 7),
                    "fw": {"version": format!("1.{}.{}", i % 5, i % 11), "signed": i % 2 == 0},
                    "tags": ["a", "b", format!("t{}", i % 13)],
                });
                slot.register(&registration(&format!("device-{i:05}"), metadata, 600), now)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let filter = Filter::parse(&json!({"type": "sensor", "floor": {"$in": [3, 4]}})).unwrap();
    let sensors_on_3_or_4 = (0..10_000)
        .filter(|i| i % 3 == 0 && [3, 4].contains(&(i % 20)))
        .count();
    let mut unchanged = Vec::new();
    let mut after_heartbeats = Vec::new();
    let mut reload = Vec::new();
    let mut filter_only = Vec::new();
    // The first select reads the whole set (timed below as a reload).
    slot.select(&filter, None, 100, now_ms()).await.unwrap();
    for round in 0..50 {
        {
            let cache = slot.cache.lock().await;
            let started = std::time::Instant::now();
            let now = now_ms();
            let matched = cache
                .records
                .values()
                .filter(|r| !expired(r, now) && filter.matches(&r.metadata))
                .count();
            filter_only.push(started.elapsed());
            assert_eq!(matched, sensors_on_3_or_4);
        }
        let started = std::time::Instant::now();
        let page = slot.select(&filter, None, 100, now_ms()).await.unwrap();
        unchanged.push(started.elapsed());
        assert_eq!(page.total as usize, sensors_on_3_or_4);

        // 100 identities heartbeat (somewhere), then a select.
        for i in 0..100 {
            let identity = format!("device-{:05}", (round * 100 + i) % 10_000);
            let record = slot.get(&identity, now).await.unwrap().unwrap();
            let refresh = Registration {
                identity,
                metadata: (*record.metadata).clone(),
                ttl: Some(Duration::from_secs(600)),
            };
            slot.register(&refresh, now).await.unwrap();
        }
        let started = std::time::Instant::now();
        let page = slot.select(&filter, None, 100, now_ms()).await.unwrap();
        after_heartbeats.push(started.elapsed());
        assert_eq!(page.total as usize, sensors_on_3_or_4);

        if round % 5 == 0 {
            let started = std::time::Instant::now();
            let mut fresh = Cache::default();
            slot.catch_up(&mut fresh).await.unwrap();
            reload.push(started.elapsed());
            assert_eq!(fresh.records.len(), 10_000);
        }
    }
    // Eight callers at once, nothing changing.
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (slot, filter) = (slot.clone(), filter.clone());
        callers.spawn(async move {
            let mut times = Vec::new();
            for _ in 0..25 {
                let started = std::time::Instant::now();
                slot.select(&filter, None, 100, now_ms()).await.unwrap();
                times.push(started.elapsed());
            }
            times
        });
    }
    let mut concurrent = Vec::new();
    while let Some(times) = callers.join_next().await {
        concurrent.extend(times.unwrap());
    }
    for (what, times) in [
        ("select, nothing changed", &mut unchanged),
        ("select, 8 callers at once", &mut concurrent),
        ("select after 100 heartbeats", &mut after_heartbeats),
        (
            "reading all 10,000 records (ids + MGET + decode)",
            &mut reload,
        ),
        ("the filter alone over the copy", &mut filter_only),
    ] {
        times.sort();
        eprintln!(
            "{what}: p50 {:?}  p99 {:?}  max {:?}",
            times[times.len() / 2],
            times[times.len() * 99 / 100],
            times[times.len() - 1]
        );
    }
}

#[tokio::test]
async fn a_copy_follows_changes_made_by_other_processes() {
    let server = redis().await;
    let (reader, writer) = (slot(&server, "ns", 100), slot(&server, "ns", 100));
    let now = now_ms();
    let floor = |n: i64| Filter::parse(&json!({ "floor": n })).unwrap();
    for identity in ["x", "y"] {
        writer
            .register(&registration(identity, json!({"floor": 1}), 0), now)
            .await
            .unwrap();
    }
    let page = reader.select(&floor(1), None, 10, now).await.unwrap();
    assert_eq!(ids(&page), ["x", "y"]);

    writer
        .register(&registration("x", json!({"floor": 2}), 0), now)
        .await
        .unwrap();
    assert!(writer.unregister("y", now).await.unwrap());
    writer
        .register(&registration("z", json!({"floor": 2}), 1), now)
        .await
        .unwrap();
    assert!(ids(&reader.select(&floor(1), None, 10, now).await.unwrap()).is_empty());
    let page = reader.select(&floor(2), None, 10, now).await.unwrap();
    assert_eq!(ids(&page), ["x", "z"]);

    assert_eq!(writer.sweep(now + 5_000).await.unwrap(), ["z"]);
    let page = reader.select(&all(), None, 10, now).await.unwrap();
    assert_eq!(ids(&page), ["x"], "swept by another process");
    assert!(!writer.unregister("y", now).await.unwrap());
    assert_eq!(
        reader.reloads.load(Ordering::Relaxed),
        1,
        "read whole once, then replayed"
    );
}

#[tokio::test]
async fn a_copy_reloads_when_the_change_log_was_trimmed_past_it() {
    let server = redis().await;
    let reader = slot(&server, "ns", 1000);
    let mut writer = slot(&server, "ns", 1000);
    writer.change_log = 5;
    let now = now_ms();
    writer
        .register(&registration("a", json!({}), 0), now)
        .await
        .unwrap();
    assert_eq!(
        ids(&reader.select(&all(), None, 100, now).await.unwrap()),
        ["a"]
    );
    for i in 0..20 {
        writer
            .register(&registration(&format!("b{i:02}"), json!({}), 0), now)
            .await
            .unwrap();
    }
    assert!(writer.unregister("a", now).await.unwrap());
    let page = reader.select(&all(), None, 100, now).await.unwrap();
    assert_eq!(page.total, 20);
    assert!(!ids(&page).contains(&"a"));
    assert_eq!(
        reader.reloads.load(Ordering::Relaxed),
        2,
        "a gap: read whole"
    );

    writer
        .register(&registration("c", json!({}), 0), now)
        .await
        .unwrap();
    let page = reader.select(&all(), None, 100, now).await.unwrap();
    assert_eq!(page.total, 21);
    assert_eq!(reader.reloads.load(Ordering::Relaxed), 2, "replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_replayed_during_concurrent_writes_ends_exact() {
    let server = redis().await;
    let writers = [
        Arc::new(slot(&server, "ns", 10_000)),
        Arc::new(slot(&server, "ns", 10_000)),
    ];
    let reader = Arc::new(slot(&server, "ns", 10_000));
    let now = now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let writer = writers[task % 2].clone();
        tasks.spawn(async move {
            for i in 0..60 {
                let identity = format!("t{task}-{i:02}");
                writer
                    .register(&registration(&identity, json!({"i": i}), 0), now)
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    assert!(writer.unregister(&identity, now).await.unwrap());
                }
            }
        });
    }
    // Selects racing the writes, replaying as they go.
    let selecting = {
        let reader = reader.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                reader.select(&all(), None, 10, now).await.unwrap();
            }
        })
    };
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    selecting.await.unwrap();

    let mut expected: Vec<String> = (0..8)
        .flat_map(|task| {
            (0..60)
                .filter(|i| i % 3 != 0)
                .map(move |i| format!("t{task}-{i:02}"))
        })
        .collect();
    expected.sort();
    let fresh = Arc::new(slot(&server, "ns", 10_000));
    for copy in [&reader, &writers[0], &fresh] {
        let page = copy.select(&all(), None, 10_000, now).await.unwrap();
        assert_eq!(ids(&page), expected, "no identity lost, none left over");
    }
}
