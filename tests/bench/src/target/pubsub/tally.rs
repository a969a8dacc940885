//! What the subscribers of one path saw, and what it adds up to. Each
//! subscriber keeps a [`Tally`]: the publish→deliver latency of measured
//! messages and the set of their sequence numbers. At the end, [`summarize`]
//! holds each set against the set of messages whose publish call succeeded
//! in the measured window: what is in the latter and not the former was
//! lost, what came twice was duplicated. Sets rather than gap counting,
//! because a closed loop's workers interleave their sequence numbers and
//! the window's edges cut through them. Pure: no clocks, no I/O.

use std::collections::BTreeMap;

use super::stamp::Stamp;
use crate::{
    report::{PubsubReport, SubscriberReport, ratio},
    stats::Recorder,
};

/// Sequence numbers at or above this are not the bench's (its set would
/// need more than 128 MiB); such messages count as foreign.
const MAX_SEQ: u64 = 1 << 30;

/// A set of sequence numbers, as a bitset that grows to the largest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; false when it was there already.
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.len += u64::from(new);
        new
    }

    /// Adds `start..start + count`.
    pub(crate) fn insert_range(&mut self, start: u64, count: u64) {
        for seq in start..start + count {
            self.insert(seq);
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.words
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1u64 << (seq % 64)) != 0)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// How many of `self` are not in `other`.
    pub(crate) fn count_not_in(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| (w & !other.words.get(i).copied().unwrap_or(0)).count_ones() as u64)
            .sum()
    }
}

/// What one subscriber received.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Publish→deliver latency of measured messages (first deliveries).
    pub latency: Recorder,
    /// Measured messages received.
    pub seen: SeqSet,
    pub duplicates: u64,
    /// Drops the server reported on measured deliveries.
    pub dropped_before: u64,
    /// Messages published during the warm-up.
    pub warmup: u64,
    pub probes: u64,
    /// Payloads that carry no stamp of this run.
    pub foreign: u64,
    /// When the last measured message arrived, on the stamps' clock.
    pub last_ns: Option<u64>,
}

/// What one delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Probe,
    Warmup,
    Measured,
    Duplicate,
    Foreign,
}

impl Tally {
    /// Counts a delivery of `payload` that arrived at `received_ns`.
    /// Messages sent at or after `window_ns` are measured; `dropped_before`
    /// is what the server said it dropped before this one.
    pub(crate) fn receive(
        &mut self,
        payload: &[u8],
        dropped_before: u64,
        received_ns: u64,
        window_ns: u64,
    ) -> Delivery {
        let Some(stamp) = Stamp::read(payload) else {
            self.foreign += 1;
            return Delivery::Foreign;
        };
        if stamp.is_probe() {
            self.probes += 1;
            return Delivery::Probe;
        }
        if stamp.seq >= MAX_SEQ {
            self.foreign += 1;
            return Delivery::Foreign;
        }
        if stamp.sent_ns < window_ns {
            self.warmup += 1;
            return Delivery::Warmup;
        }
        self.dropped_before += dropped_before;
        self.last_ns = Some(self.last_ns.map_or(received_ns, |t| t.max(received_ns)));
        if !self.seen.insert(stamp.seq) {
            self.duplicates += 1;
            return Delivery::Duplicate;
        }
        let latency = received_ns.saturating_sub(stamp.sent_ns);
        self.latency
            .record_ok(std::time::Duration::from_nanos(latency));
        Delivery::Measured
    }
}

/// One subscriber's tally and, if its stream ended before it was stopped,
/// the gRPC code and message it ended with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub tally: Tally,
    pub error: Option<(&'static str, String)>,
}

/// The PubSub figures of a path. `acked`: the messages of the publish calls
/// that succeeded in the measured window; `publish_elapsed_s`: from the
/// window's start to the last such reply; `window_ns`: the window's start on
/// the stamps' clock.
pub(crate) fn summarize(
    outcomes: &[Outcome],
    acked: &SeqSet,
    publish_elapsed_s: f64,
    window_ns: u64,
) -> PubsubReport {
    let elapsed_s =
        |last: Option<u64>| last.map_or(0.0, |last| last.saturating_sub(window_ns) as f64 / 1e9);
    let mut latency = Recorder::new();
    let mut subscriber_errors = BTreeMap::new();
    let mut subscribers = Vec::with_capacity(outcomes.len());
    for Outcome { tally, error } in outcomes {
        latency.merge(&tally.latency);
        if let Some((code, _)) = error {
            *subscriber_errors.entry(code.to_string()).or_default() += 1;
        }
        subscribers.push(SubscriberReport {
            delivered: tally.seen.len(),
            delivered_per_s: ratio(tally.seen.len() as f64, elapsed_s(tally.last_ns))
                .unwrap_or(0.0),
            lost: acked.count_not_in(&tally.seen),
            duplicates: tally.duplicates,
            unexpected: tally.seen.count_not_in(acked),
            dropped_before: tally.dropped_before,
            error: error
                .as_ref()
                .map(|(code, message)| format!("{code}: {message}")),
        });
    }
    let sum = |f: fn(&SubscriberReport) -> u64| subscribers.iter().map(f).sum::<u64>();
    let delivered = sum(|s| s.delivered);
    let last = outcomes.iter().filter_map(|o| o.tally.last_ns).max();
    let deliver_elapsed_s = elapsed_s(last);
    PubsubReport {
        published: acked.len(),
        published_per_s: ratio(acked.len() as f64, publish_elapsed_s).unwrap_or(0.0),
        delivered,
        delivered_per_s: ratio(delivered as f64, deliver_elapsed_s).unwrap_or(0.0),
        deliver_elapsed_s,
        expected: acked.len() * outcomes.len() as u64,
        lost: sum(|s| s.lost),
        duplicates: sum(|s| s.duplicates),
        unexpected: sum(|s| s.unexpected),
        dropped_before: sum(|s| s.dropped_before),
        warmup: outcomes.iter().map(|o| o.tally.warmup).sum(),
        foreign: outcomes.iter().map(|o| o.tally.foreign).sum(),
        deliver_latency_us: latency.summary(),
        subscriber_errors,
        subscribers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::pubsub::stamp::Payloads;

    const WINDOW: u64 = 1_000_000;

    fn payload(seq: u64, sent_ns: u64) -> Vec<u8> {
        Payloads::new(32).make(Stamp { seq, sent_ns })
    }

    #[test]
    fn a_seq_set_counts_each_number_once_and_differences() {
        let mut a = SeqSet::default();
        assert!(a.insert(3));
        assert!(!a.insert(3));
        a.insert_range(100, 5);
        assert_eq!(a.len(), 6);
        assert!(a.contains(104) && !a.contains(105) && !a.contains(1 << 20));
        let mut b = SeqSet::default();
        b.insert_range(100, 3);
        b.insert(7);
        // a \ b = {3, 103, 104}; b \ a = {7}; works whichever is longer.
        assert_eq!(a.count_not_in(&b), 3);
        assert_eq!(b.count_not_in(&a), 1);
        assert_eq!(a.count_not_in(&SeqSet::default()), 6);
        assert_eq!(SeqSet::default().count_not_in(&a), 0);
    }

    #[test]
    fn a_tally_sorts_deliveries_and_measures_from_the_send_time() {
        let mut t = Tally::default();
        let probe = Payloads::new(32).make(Stamp::probe());
        assert_eq!(t.receive(&probe, 0, 5, WINDOW), Delivery::Probe);
        assert_eq!(t.receive(&payload(0, 10), 0, 20, WINDOW), Delivery::Warmup);
        assert_eq!(
            t.receive(&payload(1, WINDOW), 2, WINDOW + 300_000, WINDOW),
            Delivery::Measured
        );
        assert_eq!(
            t.receive(&payload(1, WINDOW), 0, WINDOW + 400_000, WINDOW),
            Delivery::Duplicate
        );
        assert_eq!(t.receive(b"short", 0, 0, WINDOW), Delivery::Foreign);
        assert_eq!(
            t.receive(&payload(MAX_SEQ, WINDOW), 0, WINDOW, WINDOW),
            Delivery::Foreign
        );
        assert_eq!((t.probes, t.warmup, t.duplicates, t.foreign), (1, 1, 1, 2));
        assert_eq!(t.dropped_before, 2);
        assert_eq!(t.seen.len(), 1);
        assert_eq!(t.latency.ok(), 1, "a duplicate is not a second latency");
        let p50 = t.latency.summary().p50_us;
        assert!((299.0..=301.0).contains(&p50), "{p50}");
        assert_eq!(t.last_ns, Some(WINDOW + 400_000));
    }

    /// Two subscribers; messages 0..10 acked in the window. The first gets
    /// all but 4 and 7, one twice; the second gets all, plus 10 whose
    /// publish call failed.
    #[test]
    fn losses_duplicates_and_rates_add_up_over_subscribers() {
        let mut acked = SeqSet::default();
        acked.insert_range(0, 10);
        let mut first = Outcome::default();
        for seq in (0..10).filter(|s| ![4, 7].contains(s)) {
            first
                .tally
                .receive(&payload(seq, WINDOW), 0, WINDOW + 1_000, WINDOW);
        }
        first
            .tally
            .receive(&payload(2, WINDOW), 0, WINDOW + 2_000, WINDOW);
        first.error = Some(("UNAVAILABLE", "pattern went away".into()));
        let mut second = Outcome::default();
        for seq in 0..=10 {
            second
                .tally
                .receive(&payload(seq, WINDOW), 1, WINDOW + 500_000_000, WINDOW);
        }
        let report = summarize(&[first, second], &acked, 0.5, WINDOW);
        assert_eq!(report.published, 10);
        assert_eq!(report.published_per_s, 20.0);
        assert_eq!(report.expected, 20);
        assert_eq!(report.delivered, 8 + 11);
        assert_eq!(report.lost, 2);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.unexpected, 1);
        assert_eq!(report.dropped_before, 11);
        assert_eq!(report.deliver_elapsed_s, 0.5);
        assert_eq!(report.delivered_per_s, 38.0);
        assert_eq!(report.subscribers[0].lost, 2);
        assert_eq!(report.subscribers[1].lost, 0);
        assert_eq!(report.subscribers[1].delivered_per_s, 22.0);
        assert_eq!(report.subscriber_errors["UNAVAILABLE"], 1);
        assert_eq!(
            report.subscribers[0].error.as_deref(),
            Some("UNAVAILABLE: pattern went away")
        );
    }

    #[test]
    fn nothing_received_is_everything_lost_and_no_rate() {
        let mut acked = SeqSet::default();
        acked.insert_range(0, 5);
        let report = summarize(&[Outcome::default()], &acked, 1.0, WINDOW);
        assert_eq!((report.delivered, report.lost), (0, 5));
        assert_eq!(report.delivered_per_s, 0.0);
        assert_eq!(report.deliver_latency_us.p50_us, 0.0);
    }
}
