//! What happened and when: a bounded log of events (restarts, health
//! transitions, reloads) with a broadcast for live watchers, and a change
//! counter that wakes snapshot watchers whenever any namespace's status moves.

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
    log: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
    changes: watch::Sender<u64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            log: Mutex::new(VecDeque::with_capacity(64)),
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
            at: SystemTime::now(),
            namespace: namespace.to_string(),
            kind,
            reason,
            pid: None,
            actor: actor.to_string(),
        });
    }

    fn record(&self, event: Event) {
        {
            let mut log = self.log.lock().expect("event log");
            if log.len() == KEPT_EVENTS {
                log.pop_front();
            }
            log.push_back(event.clone());
        }
        let _ = self.live.send(event);
        self.touch();
    }

    /// Marks that some status changed.
    pub(crate) fn touch(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// The last `limit` events (all kept when 0) of one namespace or all, oldest first.
    pub(crate) fn recent(&self, namespace: Option<&str>, limit: usize) -> Vec<Event> {
        let log = self.log.lock().expect("event log");
        let matching: Vec<&Event> = log
            .iter()
            .filter(|e| namespace.is_none_or(|ns| e.namespace == ns))
            .collect();
        let skip = if limit == 0 {
            0
        } else {
            matching.len().saturating_sub(limit)
        };
        matching.into_iter().skip(skip).cloned().collect()
    }
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
            .recent(Some("x"), 2)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(last2, ["3", "4"]);
        assert_eq!(a.recent(None, 0).len(), 6);
        assert_eq!(a.recent(Some("y"), 0)[0].kind, EventKind::NamespaceFailed);
    }

    #[test]
    fn log_is_bounded() {
        let a = Activity::default();
        for i in 0..(KEPT_EVENTS + 10) {
            a.emit("x", EventKind::HealthChanged, i.to_string(), None);
        }
        let all = a.recent(None, 0);
        assert_eq!(all.len(), KEPT_EVENTS);
        assert_eq!(all[0].reason, "10");
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
}
