//! `WatchEvents` that can resume: the kept events after the watcher's last
//! seq, then live ones, each exactly once and in seq order. A watcher that
//! falls behind the live broadcast catches up from the log instead of
//! losing events (unless they already left the 1000 kept).

use std::sync::Arc;

use prism_proto::admin::v1 as pb;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tonic::Status;

use crate::{activity::Event, state::ProxyState};

/// Streams the events of `namespace` (every one when empty) after
/// `after_seq` into `tx` until the watcher or the proxy goes away.
pub(super) fn spawn_watch(
    state: Arc<ProxyState>,
    namespace: String,
    after_seq: u64,
    tx: mpsc::Sender<Result<pb::Event, Status>>,
) {
    // Subscribed before the call returns: a watcher sees every event after
    // its reply, even one emitted before this task first runs.
    let (backlog, last, mut live) = state.activity.watch(after_seq);
    tokio::spawn(async move {
        let mut watcher = Watcher {
            namespace,
            last,
            tx,
        };
        if !watcher.send_all(backlog).await {
            return;
        }
        loop {
            let next = tokio::select! {
                next = live.recv() => next,
                _ = watcher.tx.closed() => return,
                _ = state.stopped() => return,
            };
            let sent = match next {
                Ok(e) => watcher.send_all([e]).await,
                Err(RecvError::Lagged(_)) => {
                    let missed = state.activity.since(watcher.last);
                    watcher.send_all(missed).await
                }
                Err(RecvError::Closed) => false,
            };
            if !sent {
                return;
            }
        }
    });
}

struct Watcher {
    namespace: String,
    /// The seq of the last event passed on (or skipped for its namespace).
    last: u64,
    tx: mpsc::Sender<Result<pb::Event, Status>>,
}

impl Watcher {
    /// Sends the events newer than the last one passed on; false once the
    /// watcher is gone.
    async fn send_all(&mut self, events: impl IntoIterator<Item = Event>) -> bool {
        for e in events {
            if e.seq <= self.last {
                continue;
            }
            self.last = e.seq;
            if (self.namespace.is_empty() || e.namespace == self.namespace)
                && self.tx.send(Ok(super::event(&e))).await.is_err()
            {
                return false;
            }
        }
        true
    }
}
