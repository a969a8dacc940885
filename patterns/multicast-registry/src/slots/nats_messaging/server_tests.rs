//! The NATS messaging slot against a real `nats-server` (started by
//! `prism-harness` on a free port; `NATS_SERVER` names the binary, see
//! `scripts/tools.sh`): delivery outcomes, receivers in two processes'
//! worth of slots, redelivery, forget, and health through an outage.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::StreamExt;
use prism_harness::{Nats, NatsServer, wait::poll};
use serde_json::json;

use super::NatsMessaging;
use crate::slots::{Envelope, Inbox, Incoming, Outcome, SlotState};

/// Generous: the machine running the tests may be loaded.
const WAIT: Duration = Duration::from_secs(20);

async fn server() -> NatsServer {
    Nats {
        jetstream: true,
        auth: None,
    }
    .start()
    .await
    .expect("nats-server starts (NATS_SERVER from scripts/tools.sh)")
}

async fn slot(server: &NatsServer, jetstream: bool, extra: serde_json::Value) -> NatsMessaging {
    let mut options =
        json!({"url": server.url(), "jetstream": jetstream, "request_timeout_ms": 10000});
    if let (Some(o), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
        o.extend(extra.clone());
    }
    let slot = NatsMessaging::open("iot", &options).expect("valid options");
    slot.start().await.expect("started");
    poll(WAIT, || async {
        (slot.health().await.state == SlotState::Ready).then_some(())
    })
    .await
    .expect("connected");
    slot
}

fn envelope(n: usize) -> Envelope {
    Envelope {
        message_id: format!("m-{n}"),
        multicast_id: "mc-1".into(),
        payload: Arc::from(format!("payload {n}").as_bytes()),
        metadata: Arc::new([("kind".to_string(), "cmd".to_string())].into()),
        sent_at_ms: 1_700_000_000_000 + n as i64,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    }
}

async fn next(inbox: &mut Inbox) -> Incoming {
    tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("a message in time")
        .expect("the inbox is open")
        .expect("not an error")
}

fn ack(mut incoming: Incoming) -> Envelope {
    if let Some(ack) = incoming.ack.take() {
        ack();
    }
    incoming.envelope
}

#[tokio::test]
async fn core_delivers_to_a_receiver_and_fails_without_one() {
    let nats = server().await;
    let slot = slot(&nats, false, json!({})).await;
    assert_eq!(slot.backend(), "nats");

    let none = slot.deliver("sensor-1", &envelope(0)).await.unwrap();
    match none {
        Outcome::Failed(why) => assert!(why.contains("no receiver attached"), "{why}"),
        other => panic!("{other:?}"),
    }

    let mut inbox = slot.attach("sensor-1").await.unwrap();
    assert_eq!(
        slot.deliver("sensor-1", &envelope(1)).await.unwrap(),
        Outcome::Delivered
    );
    let got = next(&mut inbox).await;
    assert!(got.ack.is_none(), "core NATS has nothing to acknowledge");
    assert_eq!(
        got.envelope,
        envelope(1),
        "every field travels, traceparent too"
    );
    let health = slot.health().await;
    assert!(
        health.details.contains(&("receivers".into(), "1".into())),
        "{health:?}"
    );

    // Another identity's receiver does not make this one deliverable.
    assert!(matches!(
        slot.deliver("sensor-2", &envelope(2)).await.unwrap(),
        Outcome::Failed(_)
    ));
}

#[tokio::test]
async fn core_stops_delivering_once_the_inbox_is_dropped() {
    let nats = server().await;
    let slot = slot(&nats, false, json!({})).await;
    let inbox = slot.attach("a.b *>").await.unwrap();
    assert_eq!(
        slot.deliver("a.b *>", &envelope(1)).await.unwrap(),
        Outcome::Delivered
    );
    drop(inbox);
    poll(WAIT, || async {
        matches!(
            slot.deliver("a.b *>", &envelope(2)).await,
            Ok(Outcome::Failed(_))
        )
        .then_some(())
    })
    .await
    .expect("FAILED once nobody holds the inbox");
    poll(WAIT, || async {
        let h = slot.health().await;
        h.details
            .contains(&("receivers".into(), "0".into()))
            .then_some(())
    })
    .await
    .expect("no receiver counted");
}

#[tokio::test]
async fn jetstream_keeps_messages_pending_until_a_receiver_attaches() {
    let nats = server().await;
    for storage in ["file", "memory"] {
        pending_then_delivered(&nats, storage).await;
    }
}

async fn pending_then_delivered(nats: &NatsServer, storage: &str) {
    let slot = slot(nats, true, json!({"consumer_storage": storage})).await;
    assert_eq!(slot.backend(), "nats-jetstream");
    // Each storage gets its own identities: the stream is shared.
    let sensor = format!("sensor-{storage}");
    let sensor = sensor.as_str();
    for n in 0..3 {
        assert_eq!(
            slot.deliver(sensor, &envelope(n)).await.unwrap(),
            Outcome::Pending
        );
    }
    let mut inbox = slot.attach(sensor).await.unwrap();
    for n in 0..3 {
        assert_eq!(
            ack(next(&mut inbox).await),
            envelope(n),
            "pending first, in order"
        );
    }
    assert_eq!(
        slot.deliver(sensor, &envelope(3)).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(ack(next(&mut inbox).await), envelope(3));

    // One message id sent to several identities is stored for each (the
    // stream's de-duplication spans every inbox).
    let (x, y) = (format!("x-{storage}"), format!("y-{storage}"));
    for identity in [&x, &y] {
        assert_eq!(
            slot.deliver(identity, &envelope(9)).await.unwrap(),
            Outcome::Pending
        );
    }
    for identity in [&x, &y] {
        let mut inbox = slot.attach(identity).await.unwrap();
        assert_eq!(ack(next(&mut inbox).await), envelope(9), "{identity}");
    }
}

#[tokio::test]
async fn jetstream_redelivers_what_a_receiver_did_not_acknowledge() {
    let nats = server().await;
    let slot = slot(&nats, true, json!({})).await;
    let mut inbox = slot.attach("sensor-1").await.unwrap();
    for n in 0..2 {
        assert_eq!(
            slot.deliver("sensor-1", &envelope(n)).await.unwrap(),
            Outcome::Delivered
        );
    }
    assert_eq!(ack(next(&mut inbox).await), envelope(0));
    let unacked = next(&mut inbox).await;
    assert_eq!(unacked.envelope, envelope(1));
    // The receiver goes away before its client has the message.
    drop(unacked);
    drop(inbox);

    let mut again = slot.attach("sensor-1").await.unwrap();
    assert_eq!(
        ack(next(&mut again).await),
        envelope(1),
        "only the unacknowledged message comes again"
    );
    assert_eq!(
        slot.deliver("sensor-1", &envelope(2)).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(ack(next(&mut again).await), envelope(2));
}

#[tokio::test]
async fn jetstream_delivers_a_thousand_messages_once_each() {
    let nats = server().await;
    let slot = Arc::new(slot(&nats, true, json!({})).await);
    let mut inbox = slot.attach("worker").await.unwrap();
    let sender = {
        let slot = slot.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..1000)
                .map(|n| {
                    let slot = slot.clone();
                    async move { slot.deliver("worker", &envelope(n)).await }
                })
                .buffer_unordered(64)
                .collect::<Vec<_>>()
                .await
        })
    };
    let mut seen = HashSet::new();
    while seen.len() < 1000 {
        let envelope = ack(next(&mut inbox).await);
        assert!(
            seen.insert(envelope.message_id.clone()),
            "duplicate {}",
            envelope.message_id
        );
    }
    let outcomes = sender.await.unwrap();
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(Outcome::Delivered))),
        "{:?}",
        outcomes
            .iter()
            .find(|o| !matches!(o, Ok(Outcome::Delivered)))
    );
    // Nothing comes twice: the inbox stays quiet after the thousand.
    let extra = tokio::time::timeout(Duration::from_millis(1500), inbox.next()).await;
    assert!(
        extra.is_err(),
        "an extra message: {:?}",
        extra.map(|m| m.map(|m| m.map(|m| m.envelope)))
    );
}

#[tokio::test]
async fn a_delivery_from_one_process_reaches_a_receiver_attached_to_another() {
    let nats = server().await;
    for jetstream in [false, true] {
        let (a, b) = (
            slot(&nats, jetstream, json!({})).await,
            slot(&nats, jetstream, json!({})).await,
        );
        let identity = format!("shared-{jetstream}");
        let mut inbox = b.attach(&identity).await.unwrap();
        assert_eq!(
            a.deliver(&identity, &envelope(1)).await.unwrap(),
            Outcome::Delivered,
            "jetstream: {jetstream}"
        );
        assert_eq!(ack(next(&mut inbox).await), envelope(1));
        drop(inbox);
        if jetstream {
            // Stored for the identity whichever process it comes back to.
            poll(WAIT, || async {
                matches!(
                    a.deliver(&identity, &envelope(2)).await,
                    Ok(Outcome::Pending)
                )
                .then_some(())
            })
            .await
            .expect("PENDING once the receiver left");
            let mut back = a.attach(&identity).await.unwrap();
            assert_eq!(ack(next(&mut back).await).message_id, "m-2");
        }
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test]
async fn forget_drops_the_inbox_and_ends_its_receivers() {
    let nats = server().await;
    let slot = slot(&nats, true, json!({})).await;
    let mut inbox = slot.attach("gone").await.unwrap();
    slot.forget("gone").await.unwrap();
    let end = tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("ends in time");
    assert!(end.is_none(), "the stream ends");

    for n in 0..2 {
        assert_eq!(
            slot.deliver("gone", &envelope(n)).await.unwrap(),
            Outcome::Pending
        );
    }
    slot.forget("gone").await.unwrap();
    slot.forget("never-attached").await.unwrap();
    assert_eq!(
        slot.deliver("gone", &envelope(5)).await.unwrap(),
        Outcome::Pending
    );
    let mut fresh = slot.attach("gone").await.unwrap();
    assert_eq!(
        ack(next(&mut fresh).await).message_id,
        "m-5",
        "what was pending before forget is gone"
    );
}

#[tokio::test]
async fn a_full_jetstream_inbox_fails_the_delivery() {
    let nats = server().await;
    let slot = slot(&nats, true, json!({"inbox_max_msgs": 2})).await;
    for n in 0..2 {
        assert_eq!(
            slot.deliver("s", &envelope(n)).await.unwrap(),
            Outcome::Pending
        );
    }
    match slot.deliver("s", &envelope(2)).await.unwrap() {
        Outcome::Failed(why) => assert_eq!(why, "inbox full: 2 messages pending (inbox_max_msgs)"),
        other => panic!("{other:?}"),
    }
    // Other identities have their own room.
    assert_eq!(
        slot.deliver("t", &envelope(3)).await.unwrap(),
        Outcome::Pending
    );
}

#[tokio::test]
async fn health_turns_unreachable_while_nats_is_down_and_recovers() {
    let mut nats = server().await;
    let slot = slot(&nats, true, json!({"request_timeout_ms": 1000})).await;
    nats.kill();
    let down = poll(WAIT, || async {
        match slot.health().await.state {
            SlotState::Unreachable { backend, reason } => Some((backend, reason)),
            _ => None,
        }
    })
    .await
    .expect("unreachable past the grace");
    assert_eq!(down.0, "nats");
    assert!(down.1.contains("NATS"), "{}", down.1);
    assert!(matches!(
        slot.deliver("s", &envelope(0)).await,
        Err(crate::error::Error::Unreachable {
            backend: "nats",
            ..
        })
    ));

    nats.restart().await.expect("nats-server restarts");
    poll(WAIT, || async {
        (slot.health().await.state == SlotState::Ready).then_some(())
    })
    .await
    .expect("ready again");
    poll(WAIT, || async {
        matches!(slot.deliver("s", &envelope(1)).await, Ok(Outcome::Pending)).then_some(())
    })
    .await
    .expect("delivering again");
}

#[tokio::test]
async fn a_jetstream_receiver_carries_on_after_nats_restarts() {
    let mut nats = server().await;
    let slot = slot(&nats, true, json!({})).await;
    let mut inbox = slot.attach("s").await.unwrap();
    assert_eq!(
        slot.deliver("s", &envelope(0)).await.unwrap(),
        Outcome::Delivered
    );
    let held = next(&mut inbox).await;
    assert_eq!(held.envelope, envelope(0));

    nats.restart().await.expect("nats-server restarts");
    poll(WAIT, || async {
        matches!(
            slot.deliver("s", &envelope(1)).await,
            Ok(Outcome::Delivered)
        )
        .then_some(())
    })
    .await
    .expect("the receiver answers again once NATS is back");
    assert_eq!(ack(next(&mut inbox).await), envelope(1));
    // The message taken before the restart and never acknowledged comes again.
    drop(held);
    assert_eq!(ack(next(&mut inbox).await), envelope(0));
}

#[tokio::test]
async fn memory_consumers_end_receivers_after_a_restart_and_keep_the_messages() {
    let mut nats = server().await;
    let slot = slot(&nats, true, json!({"consumer_storage": "memory"})).await;
    let mut inbox = slot.attach("s").await.unwrap();
    assert_eq!(
        slot.deliver("s", &envelope(0)).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(ack(next(&mut inbox).await), envelope(0));
    let unacked = next_after(&slot, &mut inbox, 1).await;

    nats.restart().await.expect("nats-server restarts");
    let ended = tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("the stream ends in time");
    assert!(
        matches!(ended, Some(Err(crate::error::Error::Unreachable { .. }))),
        "UNAVAILABLE, so the client calls Receive again"
    );
    drop(unacked);
    let mut again = poll(WAIT, || async { slot.attach("s").await.ok() })
        .await
        .expect("attaches again");
    assert_eq!(
        ack(next(&mut again).await),
        envelope(1),
        "the unacknowledged message, and not the acknowledged one"
    );
}

/// Delivers envelope `n` and takes it from `inbox` without acknowledging it.
async fn next_after(slot: &NatsMessaging, inbox: &mut Inbox, n: usize) -> Incoming {
    assert_eq!(
        slot.deliver("s", &envelope(n)).await.unwrap(),
        Outcome::Delivered
    );
    let incoming = next(inbox).await;
    assert_eq!(incoming.envelope, envelope(n));
    incoming
}

/// Not a check: a measurement for BENCHMARKS.md. One multicast's worth of
/// deliveries (1,000 identities, each with a live receiver, 256 in flight)
/// per round; prints how long until every `deliver` returned and until the
/// last receiver had its message. Run with
/// `cargo test -p prism-multicast-registry --release --lib fanout_to_a_thousand -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn fanout_to_a_thousand_receivers() {
    const TARGETS: usize = 1000;
    const ROUNDS: usize = 30;
    let nats = server().await;
    for (jetstream, storage) in [(false, "file"), (true, "file"), (true, "memory")] {
        let options = json!({ "consumer_storage": storage });
        let slot = Arc::new(slot(&nats, jetstream, options).await);
        let identities: Vec<String> = (0..TARGETS)
            .map(|i| format!("device-{storage}-{i:04}"))
            .collect();
        let mut inboxes = Vec::new();
        for identity in &identities {
            inboxes.push(slot.attach(identity).await.expect("attached"));
        }
        let (mut calls, mut lasts) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let started = tokio::time::Instant::now();
            let receivers: Vec<_> = std::mem::take(&mut inboxes)
                .into_iter()
                .map(|mut inbox| {
                    tokio::spawn(async move {
                        let got = ack(next(&mut inbox).await);
                        (inbox, got, tokio::time::Instant::now())
                    })
                })
                .collect();
            let outcomes: Vec<_> = futures_util::stream::iter(identities.iter())
                .map(|identity| {
                    let slot = slot.clone();
                    async move { slot.deliver(identity, &envelope(round)).await }
                })
                .buffer_unordered(256)
                .collect()
                .await;
            calls.push(started.elapsed());
            assert!(outcomes.iter().all(|o| matches!(o, Ok(Outcome::Delivered))));
            let mut last = started;
            for receiver in receivers {
                let (inbox, got, at) = receiver.await.unwrap();
                assert_eq!(got.message_id, format!("m-{round}"));
                last = last.max(at);
                inboxes.push(inbox);
            }
            lasts.push(last - started);
        }
        calls.sort();
        lasts.sort();
        let pct = |v: &[Duration], p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
        println!(
            "{} (consumer_storage {storage}): {TARGETS} receivers, {ROUNDS} rounds: all delivers returned p50 {:?} p99 {:?}; last receiver had it p50 {:?} p99 {:?} max {:?}",
            slot.backend(),
            pct(&calls, 50),
            pct(&calls, 99),
            pct(&lasts, 50),
            pct(&lasts, 99),
            lasts[lasts.len() - 1],
        );
        drop(inboxes);
        for identity in &identities {
            slot.forget(identity).await.unwrap();
        }
        slot.stop().await;
    }
}
