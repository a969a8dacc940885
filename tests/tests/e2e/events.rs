//! Proxy-wide events through a real proxy: a rejected config reload is an
//! event with its reason, every event has a seq, and a watcher that
//! reconnects with the last seq it saw gets each later event exactly once —
//! no duplicate, no gap — including the ones emitted while it was away.

use std::time::Duration;

use prism_proto::admin::v1::{
    Event, EventKind, ListEventsRequest, ReloadConfigRequest, WatchEventsRequest,
    admin_client::AdminClient,
};
use prism_tests::Proxy;
use tonic::{Code, Streaming, transport::Channel};

const WAIT: Duration = Duration::from_secs(20);
const GOOD: &str =
    "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: memstore}\n";
const BAD: &str =
    "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: mongo}\n";

async fn reject(admin: &mut AdminClient<Channel>) {
    let err = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

/// Reads events until `failures` CONFIG_RELOAD_FAILED have arrived.
async fn until_failures(stream: &mut Streaming<Event>, failures: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|e: &&Event| e.kind() == EventKind::ConfigReloadFailed)
        .count()
        < failures
    {
        let next = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no event within {WAIT:?}; so far {events:?}"))
            .expect("the stream stays up")
            .expect("the stream does not end");
        events.push(next);
    }
    events
}

fn consecutive(events: &[Event], after: u64) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let want: Vec<u64> = (after + 1..=after + seqs.len() as u64).collect();
    assert_eq!(seqs, want, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_watcher_sees_no_duplicate_and_no_gap() {
    let proxy = Proxy::start_with_config(GOOD).await;
    proxy.wait_healthy("default").await;
    std::fs::write(proxy.config_path(), BAD).unwrap();
    let mut admin = proxy.admin().await;

    let mut first = admin
        .watch_events(WatchEventsRequest {
            namespace: String::new(),
            after_seq: 0,
        })
        .await
        .unwrap()
        .into_inner();
    reject(&mut admin).await;
    reject(&mut admin).await;
    let seen = until_failures(&mut first, 2).await;
    let start = seen[0].seq - 1;
    consecutive(&seen, start);
    let failed = seen
        .iter()
        .find(|e| e.kind() == EventKind::ConfigReloadFailed)
        .unwrap();
    assert!(failed.reason.contains("mongo"), "{failed:?}");
    assert!(failed.namespace.is_empty(), "proxy-wide: {failed:?}");
    let last = seen.last().unwrap().seq;
    drop(first);

    // While nobody watches.
    reject(&mut admin).await;
    reject(&mut admin).await;

    let mut second = admin
        .watch_events(WatchEventsRequest {
            namespace: String::new(),
            after_seq: last,
        })
        .await
        .unwrap()
        .into_inner();
    reject(&mut admin).await;
    let resumed = until_failures(&mut second, 3).await;
    consecutive(&resumed, last);

    let listed = admin
        .list_events(ListEventsRequest {
            namespace: String::new(),
            limit: 0,
            after_seq: last,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(listed.len() >= resumed.len(), "{listed:?}");
    assert_eq!(
        listed[..resumed.len()]
            .iter()
            .map(|e| (e.seq, e.kind, e.reason.clone()))
            .collect::<Vec<_>>(),
        resumed
            .iter()
            .map(|e| (e.seq, e.kind, e.reason.clone()))
            .collect::<Vec<_>>(),
        "the stream and the log agree"
    );
}
