//! Every call the soak makes, with when it started and ended and how it
//! came out, and what callers saw around each fault: error codes and
//! counts, and the time to heal.

use std::{collections::BTreeMap, sync::Mutex, time::Instant};

use serde::Serialize;

use super::report::Totals;

/// The three kinds of namespace under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Surface {
    /// KeyValue on MemStore.
    Memstore,
    /// KeyValue on Redis.
    Redis,
    /// PubSub on NATS JetStream.
    Jetstream,
}

impl Surface {
    pub const ALL: [Surface; 3] = [Self::Memstore, Self::Redis, Self::Jetstream];

    pub fn name(self) -> &'static str {
        match self {
            Self::Memstore => "memstore",
            Self::Redis => "redis",
            Self::Jetstream => "jetstream",
        }
    }
}

/// One finished call; times in ms since load began.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub start_ms: u64,
    pub end_ms: u64,
    pub surface: Surface,
    /// `None`: OK; else the gRPC code's name.
    pub error: Option<&'static str>,
}

/// The log all load tasks append to.
pub struct CallLog {
    epoch: Instant,
    calls: Mutex<Vec<Call>>,
}

impl CallLog {
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since load began.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn record(&self, surface: Surface, start_ms: u64, error: Option<&'static str>) {
        let call = Call {
            start_ms,
            end_ms: self.now_ms(),
            surface,
            error,
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    pub fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// What callers of the affected namespaces saw from a fault until the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Calls started in the window.
    pub calls: u64,
    /// Failed calls by gRPC code.
    pub errors: BTreeMap<&'static str, u64>,
    /// From the fault to the first success that started after the first
    /// failure (0 when nothing failed); `None`: no success came at all.
    pub heal_ms: Option<u64>,
    /// From the fault to the end of the window's last failed call.
    pub errors_until_ms: Option<u64>,
}

/// What the calls on `surfaces` that ran within `[from_ms, to_ms)` saw (a
/// call still running when the next fault came may be that fault's);
/// healing is looked for past `to_ms` too, as a fault may outlast the
/// window.
pub fn observe(calls: &[Call], surfaces: &[Surface], from_ms: u64, to_ms: u64) -> Observed {
    let affected = |c: &&Call| surfaces.contains(&c.surface);
    let mut seen = Observed::default();
    let mut first_error: Option<u64> = None;
    for call in calls
        .iter()
        .filter(affected)
        .filter(|c| c.start_ms >= from_ms && c.end_ms < to_ms)
    {
        seen.calls += 1;
        if let Some(code) = call.error {
            *seen.errors.entry(code).or_default() += 1;
            first_error = Some(first_error.map_or(call.start_ms, |f| f.min(call.start_ms)));
            let until = call.end_ms.saturating_sub(from_ms);
            seen.errors_until_ms = Some(seen.errors_until_ms.map_or(until, |u| u.max(until)));
        }
    }
    seen.heal_ms = match first_error {
        None => Some(0),
        Some(first) => calls
            .iter()
            .filter(affected)
            .filter(|c| c.error.is_none() && c.start_ms > first)
            .map(|c| c.end_ms)
            .min()
            .map(|end| end.saturating_sub(from_ms)),
    };
    seen
}

/// Calls and failures by code, per namespace kind, over the whole run.
pub fn totals(calls: &[Call]) -> BTreeMap<&'static str, Totals> {
    let mut totals: BTreeMap<&'static str, Totals> = BTreeMap::new();
    for call in calls {
        let t = totals.entry(call.surface.name()).or_default();
        t.calls += 1;
        if let Some(code) = call.error {
            *t.errors.entry(code).or_default() += 1;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start_ms: u64, end_ms: u64, surface: Surface, error: Option<&'static str>) -> Call {
        Call {
            start_ms,
            end_ms,
            surface,
            error,
        }
    }

    #[test]
    fn counts_errors_on_the_affected_surfaces_and_the_time_to_heal() {
        let calls = [
            call(90, 95, Surface::Redis, None),
            call(100, 101, Surface::Redis, Some("UNAVAILABLE")),
            call(150, 151, Surface::Memstore, Some("INTERNAL")),
            call(200, 210, Surface::Redis, Some("UNAVAILABLE")),
            call(300, 320, Surface::Redis, None),
            call(400, 401, Surface::Redis, None),
            // Still running when the next fault came at 1000.
            call(999, 1200, Surface::Redis, Some("UNAVAILABLE")),
        ];
        let seen = observe(&calls, &[Surface::Redis], 100, 1000);
        assert_eq!(seen.calls, 4);
        assert_eq!(seen.errors, BTreeMap::from([("UNAVAILABLE", 2)]));
        assert_eq!(seen.heal_ms, Some(220));
        assert_eq!(seen.errors_until_ms, Some(110));
    }

    #[test]
    fn nothing_failed_heals_at_once_and_no_success_never_heals() {
        let ok = [call(10, 11, Surface::Jetstream, None)];
        assert_eq!(observe(&ok, &[Surface::Jetstream], 0, 100).heal_ms, Some(0));
        let down = [call(10, 11, Surface::Jetstream, Some("UNAVAILABLE"))];
        let seen = observe(&down, &[Surface::Jetstream], 0, 100);
        assert_eq!(seen.heal_ms, None);
        assert_eq!(seen.errors_until_ms, Some(11));
    }

    #[test]
    fn totals_count_calls_and_codes_per_namespace_kind() {
        let calls = [
            call(1, 2, Surface::Redis, None),
            call(3, 4, Surface::Redis, Some("UNAVAILABLE")),
            call(5, 6, Surface::Jetstream, None),
        ];
        let totals = totals(&calls);
        assert_eq!(totals["redis"].calls, 2);
        assert_eq!(totals["redis"].errors, BTreeMap::from([("UNAVAILABLE", 1)]));
        assert!(totals["jetstream"].errors.is_empty());
        assert!(!totals.contains_key("memstore"));
    }

    #[test]
    fn healing_is_found_after_the_window() {
        let calls = [
            call(10, 11, Surface::Redis, Some("UNAVAILABLE")),
            call(150, 160, Surface::Redis, None),
        ];
        assert_eq!(
            observe(&calls, &[Surface::Redis], 0, 100).heal_ms,
            Some(160)
        );
    }
}
