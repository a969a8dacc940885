//! RFC-018's POC 1–3 through the Rust client, written once and run on every
//! backend the KeyValue and PubSub suites use (`on_backend!` in the
//! parent instantiates them): the same client code on MemStore, Redis, core
//! NATS and JetStream.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use prism_client::{Error, Message, Subscription};

use super::{WAIT, assert_trace_id, client};
use crate::{keyvalue::KvEnv, pubsub::PubSubEnv};

/// POC 1 and 2: set, get, exists, delete, and a scan over several pages.
pub(crate) async fn keyvalue_round_trips_and_scans_every_page(env: &KvEnv) {
    let kv = client(&env.proxy).await.kv(crate::keyvalue::NS);
    kv.set("user:1", "ada", None).await.unwrap();
    assert_eq!(kv.get("user:1").await.unwrap(), b"ada");
    assert!(kv.exists("user:1").await.unwrap());
    assert!(kv.delete("user:1").await.unwrap());
    assert!(!kv.exists("user:1").await.unwrap());
    assert!(
        !kv.delete("user:1").await.unwrap(),
        "a second delete finds nothing"
    );
    let missing = kv.get("user:1").await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");
    assert_trace_id(&missing);

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

async fn next(subscription: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("a message within the wait")
        .expect("the stream is open")
        .unwrap()
}

/// POC 3: three subscribers each get every message in order; a batch
/// arrives whole; unsubscribing one ends its stream while the others go on.
pub(crate) async fn pubsub_fans_out_in_order_and_unsubscribe_stops_delivery(env: &PubSubEnv) {
    let client = client(&env.proxy).await;
    let events = client.pubsub(crate::pubsub::NS);
    let mut subscribers = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let subscription = events.subscribe_as("orders.*", name, false).await.unwrap();
        assert!(subscription.trace_id().is_some());
        subscribers.push(subscription);
    }
    // Subscribing is asynchronous on some backends: publish until each of
    // the three has seen a first message, then start counting.
    let deadline = tokio::time::Instant::now() + WAIT;
    for subscription in &mut subscribers {
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a subscription saw nothing within the wait"
            );
            events.publish("orders.warmup", "w").await.unwrap();
            match tokio::time::timeout(Duration::from_millis(300), subscription.next()).await {
                Ok(Some(Ok(_))) => break,
                Ok(other) => panic!("the stream failed: {other:?}"),
                Err(_) => {}
            }
        }
    }
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            events
                .publish("orders.created", format!("order {i}"))
                .await
                .unwrap(),
        );
    }
    let batch = events
        .publish_batch([("orders.paid", "a"), ("orders.paid", "b")])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    for subscription in &mut subscribers {
        let mut got = Vec::new();
        while got.len() < ids.len() + batch.len() {
            let message = next(subscription).await;
            // Warm-up messages sent to the others may still arrive first.
            if message.topic != "orders.warmup" {
                got.push(message);
            }
        }
        let got_ids: Vec<&str> = got.iter().map(|m| m.message_id.as_str()).collect();
        let want: Vec<&str> = ids.iter().chain(&batch).map(String::as_str).collect();
        assert_eq!(got_ids, want, "every message once, in order");
        assert_eq!(got[0].payload, b"order 0");
        assert_eq!(got[0].topic, "orders.created");
        assert_eq!(got[11].payload, b"b");
    }

    assert!(events.unsubscribe("orders.*", "s3").await.unwrap());
    let last = events.publish("orders.created", "last").await.unwrap();
    for subscription in &mut subscribers[..2] {
        assert_eq!(next(subscription).await.message_id, last);
    }
    let ended = tokio::time::timeout(WAIT, subscribers[2].next())
        .await
        .expect("the unsubscribed stream ends within the wait");
    assert!(ended.is_none(), "it ends with nothing after: {ended:?}");
    assert!(!events.unsubscribe("orders.*", "s3").await.unwrap());

    let bad = events.publish("", "x").await.unwrap_err();
    assert!(matches!(bad, Error::InvalidArgument(_)), "{bad}");
    assert_trace_id(&bad);
}
