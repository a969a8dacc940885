//! What happened and when: a bounded log of events (restarts, health
//! transitions, reloads) with a broadcast for live watchers, and a change
//! counter that wakes snapshot watchers whenever any namespace's status moves.
//! Each event gets the next `seq` (from 1) under the log's lock, and goes out
//! on the broadcast under it too, so log order, broadcast order and seq
//! order agree and a watcher can resume after any seq it saw.

use std::{collections::VecDeque, sync::Mutex, time::SystemTime};

use tokio::sync::{broadcast, watch};

/// Events kept for `ListEvents`.
pub(crate) const KEPT_EVENTS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    PatternStarted,
    PatternExited,
    PatternRestarting,
    HealthChanged,
    NamespaceFailed,
    ReloadStarted,
    ReloadSucceeded,
    ReloadFailed,
    ConfigReloaded,
    ConfigReloadFailed,
    PatternStopped,
    RestartRequested,
    NamespaceAdded,
    NamespaceRemoved,
    /// An admin call that changed something; `actor` says who asked.
    AdminAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// Set when recorded; 0 before.
    pub seq: u64,
    pub at: SystemTime,
    /// Empty for proxy-wide events.
    pub namespace: String,
    pub kind: EventKind,
    pub reason: String,
    pub pid: Option<u32>,
    /// Who caused it, for admin actions (a principal name); empty otherwise.
    pub actor: String,
}

pub(crate) struct Activity {
    log: Mutex<Log>,
    live: broadcast::Sender<Event>,
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct Log {
    events: VecDeque<Event>,
    /// The seq of the last event recorded.
    last_seq: u64,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            log: Mutex::new(Log {
                events: VecDeque::with_capacity(64),
                last_seq: 0,
            }),
            live: broadcast::channel(256).0,
            changes: watch::channel(0).0,
        }
    }
}

impl Activity {
    pub(crate) fn emit(
        &self,
        namespace: &str,
        kind: EventKind,
        reason: impl Into<String>,
        pid: Option<u32>,
    ) {
        self.record(Event {
            seq: 0,
            at: SystemTime::now(),
            namespace: namespace.to_string(),
            kind,
            reason: reason.into(),
            pid,
            actor: String::new(),
        });
    }

    /// An event someone caused (an admin call), naming them.
    pub(crate) fn emit_by(&self, namespace: &str, kind: EventKind, reason: String, actor: &str) {
        self.record(Event {
            seq: 0,
            at: SystemTime::now(),
            namespace: namespace.to_string(),
            kind,
            reason,
            pid: None,
            actor: actor.to_string(),
        });
    }

    fn record(&self, mut event: Event) {
        {
            let mut log = self.log.lock().expect("event log");
            log.last_seq += 1;
            event.seq = log.last_seq;
            if log.events.len() == KEPT_EVENTS {
                log.events.pop_front();
            }
            log.events.push_back(event.clone());
            // Sent under the lock: watchers see events in seq order.
            let _ = self.live.send(event);
        }
        self.touch();
    }

    /// Marks that some status changed.
    pub(crate) fn touch(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    #[cfg(test)]
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// A live subscription and, taken at the same instant, the kept events
    /// after `after_seq` and the seq the watcher is at: every later event
    /// arrives on the receiver, none of the returned ones does. `after_seq`
    /// 0 means live events only; one above the last seq comes from an
    /// earlier run of the proxy, whose seqs started again, so every kept
    /// event is new to that watcher.
    pub(crate) fn watch(&self, after_seq: u64) -> (Vec<Event>, u64, broadcast::Receiver<Event>) {
        let log = self.log.lock().expect("event log");
        let (backlog, at) = match after_seq {
            0 => (Vec::new(), log.last_seq),
            n if n > log.last_seq => (log.events.iter().cloned().collect(), 0),
            n => (after(&log.events, n), n),
        };
        (backlog, at, self.live.subscribe())
    }

    /// The kept events with a seq above `after_seq`, oldest first.
    pub(crate) fn since(&self, after_seq: u64) -> Vec<Event> {
        after(&self.log.lock().expect("event log").events, after_seq)
    }

    /// The last `limit` events (all kept when 0) of one namespace or all
    /// with a seq above `after_seq`, oldest first.
    pub(crate) fn recent(
        &self,
        namespace: Option<&str>,
        limit: usize,
        after_seq: u64,
    ) -> Vec<Event> {
        let log = self.log.lock().expect("event log");
        let matching: Vec<&Event> = log
            .events
            .iter()
            .filter(|e| e.seq > after_seq && namespace.is_none_or(|ns| e.namespace == ns))
            .collect();
        let skip = if limit == 0 {
            0
        } else {
            matching.len().saturating_sub(limit)
        };
        matching.into_iter().skip(skip).cloned().collect()
    }
}

fn after(events: &VecDeque<Event>, after_seq: u64) -> Vec<Event> {
    // Seqs are consecutive in the log, so the first wanted one is found by index.
    let skip = events
        .front()
        .map_or(0, |first| after_seq.saturating_sub(first.seq - 1) as usize);
    events.iter().skip(skip).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events_per_namespace() {
        let a = Activity::default();
        for i in 0..5 {
            a.emit("x", EventKind::PatternStarted, format!("{i}"), Some(i));
        }
        a.emit("y", EventKind::NamespaceFailed, "boom", None);
        let last2: Vec<_> = a
            .recent(Some("x"), 2, 0)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(last2, ["3", "4"]);
        assert_eq!(a.recent(None, 0, 0).len(), 6);
        assert_eq!(
            a.recent(Some("y"), 0, 0)[0].kind,
            EventKind::NamespaceFailed
        );
        let after4: Vec<u64> = a.recent(None, 0, 4).iter().map(|e| e.seq).collect();
        assert_eq!(after4, [5, 6]);
    }

    #[test]
    fn log_is_bounded() {
        let a = Activity::default();
        for i in 0..(KEPT_EVENTS + 10) {
            a.emit("x", EventKind::HealthChanged, i.to_string(), None);
        }
        let all = a.recent(None, 0, 0);
        assert_eq!(all.len(), KEPT_EVENTS);
        assert_eq!(all[0].reason, "10");
        assert_eq!(all[0].seq, 11);
        let since: Vec<u64> = a
            .since(KEPT_EVENTS as u64 + 7)
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(since, [1008, 1009, 1010]);
        assert_eq!(a.since(0).len(), KEPT_EVENTS, "older than kept: all kept");
        assert!(a.since(5000).is_empty());
    }

    #[tokio::test]
    async fn emitting_wakes_watchers() {
        let a = Activity::default();
        let mut changes = a.changes();
        let mut live = a.subscribe();
        a.emit("x", EventKind::PatternStarted, "up", Some(1));
        changes.changed().await.unwrap();
        assert_eq!(live.recv().await.unwrap().reason, "up");
    }

    #[test]
    fn seqs_increase_by_one_and_watch_splits_backlog_from_live() {
        let a = Activity::default();
        for i in 0..3 {
            a.emit("x", EventKind::HealthChanged, i.to_string(), None);
        }
        let (backlog, last, mut live) = a.watch(1);
        assert_eq!(backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(last, 1, "the watcher starts where it asked");
        a.emit("", EventKind::ConfigReloaded, "later", None);
        let next = live.try_recv().unwrap();
        assert_eq!((next.seq, next.reason.as_str()), (4, "later"));
        assert!(live.try_recv().is_err(), "nothing twice");
        let (backlog, last, _) = a.watch(0);
        assert!(backlog.is_empty());
        assert_eq!(last, 4);
        // A seq from an earlier run of the proxy: everything kept is new.
        let (backlog, last, _) = a.watch(99);
        assert_eq!(backlog.len(), 4);
        assert_eq!(last, 0);
    }
}
