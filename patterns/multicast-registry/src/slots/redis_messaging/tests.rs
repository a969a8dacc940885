//! The Redis Pub/Sub messaging slot against a real `redis-server`.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;
use prism_harness::{Redis, RedisServer, wait::poll};
use serde_json::json;

use super::*;
use crate::slots::SlotState;

const WAIT: Duration = Duration::from_secs(10);

async fn redis() -> RedisServer {
    Redis::default().start().await.expect("redis-server starts")
}

fn slot(server: &RedisServer, namespace: &str) -> RedisMessaging {
    RedisMessaging::open(
        namespace,
        &json!({"address": server.url(), "health_timeout_ms": 500}),
    )
    .unwrap()
}

fn envelope(n: u32) -> Envelope {
    Envelope {
        message_id: format!("m-{n}"),
        multicast_id: "mc-1".into(),
        payload: Arc::from(n.to_be_bytes().as_slice()),
        metadata: Arc::new(HashMap::from([("k".to_string(), "v".to_string())])),
        sent_at_ms: 1_700_000_000_000,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    }
}

/// The inbox's next item within [`WAIT`]: `Some(Ok)`, `Some(Err)` or
/// `None` when the stream ended.
async fn next(inbox: &mut Inbox) -> Option<Result<Envelope, Error>> {
    tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("the inbox answers within the wait")
        .map(|item| item.map(|incoming| incoming.envelope))
}

fn receivers(health: &SlotHealth) -> &str {
    health
        .details
        .iter()
        .find(|(k, _)| k == "receivers")
        .map(|(_, v)| v.as_str())
        .expect("receivers in health")
}

#[tokio::test]
async fn delivered_to_a_receiver_failed_without_one() {
    let server = redis().await;
    let slot = slot(&server, "ns");
    let mut inbox = slot.attach("sensor-1").await.unwrap();
    assert_eq!(receivers(&slot.health().await), "1");

    let sent = envelope(1);
    assert_eq!(
        slot.deliver("sensor-1", &sent).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(next(&mut inbox).await.unwrap().unwrap(), sent);

    assert_eq!(
        slot.deliver("sensor-2", &envelope(2)).await.unwrap(),
        Outcome::Failed("no receiver attached; Redis Pub/Sub keeps nothing".into())
    );
    assert_eq!(slot.health().await.state, SlotState::Ready);
}

#[tokio::test]
async fn receivers_in_other_processes_each_get_every_message_of_their_identity() {
    let server = redis().await;
    let (sender, holder) = (slot(&server, "ns"), slot(&server, "ns"));
    let stranger = slot(&server, "other");
    let mut first = holder.attach("a.b *>").await.unwrap();
    let mut second = holder.attach("a.b *>").await.unwrap();
    let mut elsewhere = stranger.attach("a.b *>").await.unwrap();
    let mut neighbour = holder.attach("a.b").await.unwrap();

    for n in 0..3 {
        assert_eq!(
            sender.deliver("a.b *>", &envelope(n)).await.unwrap(),
            Outcome::Delivered
        );
    }
    for inbox in [&mut first, &mut second] {
        for n in 0..3 {
            assert_eq!(next(inbox).await.unwrap().unwrap(), envelope(n), "in order");
        }
    }
    // Another namespace and another identity heard nothing: a message sent
    // to them now is the first they get.
    stranger.deliver("a.b *>", &envelope(9)).await.unwrap();
    assert_eq!(next(&mut elsewhere).await.unwrap().unwrap(), envelope(9));
    holder.deliver("a.b", &envelope(8)).await.unwrap();
    assert_eq!(next(&mut neighbour).await.unwrap().unwrap(), envelope(8));
}

#[tokio::test]
async fn a_dropped_inbox_unsubscribes() {
    let server = redis().await;
    let slot = slot(&server, "ns");
    let inbox = slot.attach("x").await.unwrap();
    assert_eq!(
        slot.deliver("x", &envelope(1)).await.unwrap(),
        Outcome::Delivered
    );
    drop(inbox);
    let detached = poll(WAIT, || async {
        let failed = matches!(
            slot.deliver("x", &envelope(2)).await.unwrap(),
            Outcome::Failed(_)
        );
        (failed && receivers(&slot.health().await) == "0").then_some(())
    })
    .await;
    assert!(detached.is_some(), "no subscriber left for x");
}

#[tokio::test]
async fn forget_and_stop_end_receivers() {
    let server = redis().await;
    let (one, two) = (slot(&server, "ns"), slot(&server, "ns"));
    let mut gone = two.attach("gone").await.unwrap();
    let mut kept = two.attach("kept").await.unwrap();
    one.forget("gone").await.unwrap();
    assert!(next(&mut gone).await.is_none(), "forgotten: stream ends");
    one.deliver("kept", &envelope(1)).await.unwrap();
    assert_eq!(next(&mut kept).await.unwrap().unwrap(), envelope(1));

    two.stop().await;
    assert!(next(&mut kept).await.is_none(), "stopped: stream ends");
    assert!(matches!(
        two.attach("kept").await,
        Err(Error::Unreachable { .. })
    ));
}

#[tokio::test]
async fn a_receiver_that_falls_behind_is_detached_with_an_error() {
    let server = redis().await;
    let slot = slot(&server, "ns");
    let mut inbox = slot.attach("slow").await.unwrap();
    let sent = RECEIVER_QUEUE + 10;
    for n in 0..sent {
        slot.deliver("slow", &envelope(u32::try_from(n).unwrap()))
            .await
            .unwrap();
    }
    let mut received = 0;
    let err = loop {
        match next(&mut inbox).await {
            Some(Ok(envelope)) => {
                assert_eq!(envelope.message_id, format!("m-{received}"));
                received += 1;
            }
            Some(Err(err)) => break err,
            None => panic!("ended without saying why after {received}"),
        }
    };
    assert_eq!(received, RECEIVER_QUEUE, "the queue, then the error");
    assert!(
        matches!(&err, Error::Exhausted(m) if m.contains("1024")),
        "{err}"
    );
    assert!(next(&mut inbox).await.is_none());
    assert!(matches!(
        slot.deliver("slow", &envelope(0)).await.unwrap(),
        Outcome::Failed(_)
    ));
}

#[tokio::test]
async fn a_dead_redis_is_unreachable_everywhere() {
    let mut server = redis().await;
    let slot = slot(&server, "ns");
    let mut inbox = slot.attach("x").await.unwrap();

    server.kill();
    match next(&mut inbox).await {
        Some(Err(Error::Unreachable {
            backend: "redis", ..
        })) => {}
        other => panic!(
            "expected UNAVAILABLE, got {:?}",
            other.map(|r| r.map(|_| ()))
        ),
    }
    assert!(next(&mut inbox).await.is_none());
    assert!(matches!(
        slot.deliver("x", &envelope(1)).await,
        Err(Error::Unreachable {
            backend: "redis",
            ..
        })
    ));
    assert!(matches!(
        slot.attach("x").await,
        Err(Error::Unreachable {
            backend: "redis",
            ..
        })
    ));
    let health = slot.health().await;
    assert!(
        matches!(
            health.state,
            SlotState::Unreachable {
                backend: "redis",
                ..
            }
        ),
        "{health:?}"
    );
    assert_eq!(receivers(&health), "0");

    server.restart().await.unwrap();
    let mut inbox = poll(WAIT, || async { slot.attach("x").await.ok() })
        .await
        .expect("attaches again once redis is back");
    assert_eq!(
        slot.deliver("x", &envelope(2)).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(next(&mut inbox).await.unwrap().unwrap(), envelope(2));
}
