//! What every benchmark message carries in its first [`STAMP_BYTES`] bytes:
//! its sequence number and when it was sent, as nanoseconds since a
//! [`Clock`] base shared by the publishers and subscribers of the bench
//! process. The rest of the payload is filler. Pure.

use std::time::Instant;

/// Bytes of the payload the stamp takes: the sequence number, then the send
/// time, both little-endian `u64`.
pub(crate) const STAMP_BYTES: usize = 16;
/// The sequence number of probe messages, which only show that a subscriber
/// is subscribed and are never counted.
const PROBE_SEQ: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub seq: u64,
    /// Open loop: the intended send time of the publish call that carried
    /// it; closed loop: its actual send time.
    pub sent_ns: u64,
}

impl Stamp {
    pub(crate) fn probe() -> Self {
        Self {
            seq: PROBE_SEQ,
            sent_ns: 0,
        }
    }

    pub(crate) fn is_probe(&self) -> bool {
        self.seq == PROBE_SEQ
    }

    /// The stamp at the start of `payload`, if it is long enough to hold one.
    pub(crate) fn read(payload: &[u8]) -> Option<Self> {
        let seq = payload.get(..8)?.try_into().ok()?;
        let sent = payload.get(8..STAMP_BYTES)?.try_into().ok()?;
        Some(Self {
            seq: u64::from_le_bytes(seq),
            sent_ns: u64::from_le_bytes(sent),
        })
    }

    fn write(&self, payload: &mut [u8]) {
        payload[..8].copy_from_slice(&self.seq.to_le_bytes());
        payload[8..STAMP_BYTES].copy_from_slice(&self.sent_ns.to_le_bytes());
    }
}

/// Builds payloads of one size: a stamp, then filler.
#[derive(Debug, Clone)]
pub(crate) struct Payloads {
    template: Vec<u8>,
}

impl Payloads {
    /// Payloads of `size` bytes; `size` must be at least [`STAMP_BYTES`].
    pub(crate) fn new(size: usize) -> Self {
        assert!(size >= STAMP_BYTES, "a payload holds at least its stamp");
        let template = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        Self { template }
    }

    pub(crate) fn make(&self, stamp: Stamp) -> Vec<u8> {
        let mut payload = self.template.clone();
        stamp.write(&mut payload);
        payload
    }
}

/// Nanoseconds since one instant, the base every stamp of a run counts from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
        }
    }

    /// `at` as nanoseconds since the base (0 for anything before it).
    pub(crate) fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.ns(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_payload_carries_its_stamp_then_filler() {
        let payloads = Payloads::new(40);
        let stamp = Stamp {
            seq: 0x0102_0304_0506_0708,
            sent_ns: 12_345_678_901,
        };
        let payload = payloads.make(stamp);
        assert_eq!(payload.len(), 40);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(payload[0], 0x08, "little-endian");
        assert_eq!(&payload[STAMP_BYTES..STAMP_BYTES + 3], b"qrs");
        // The smallest payload is the stamp alone.
        let small = Payloads::new(STAMP_BYTES).make(stamp);
        assert_eq!(Stamp::read(&small), Some(stamp));
    }

    #[test]
    fn short_payloads_have_no_stamp_and_probes_are_marked() {
        assert_eq!(Stamp::read(&[0; STAMP_BYTES - 1]), None);
        assert_eq!(Stamp::read(&[]), None);
        let probe = Payloads::new(64).make(Stamp::probe());
        assert!(Stamp::read(&probe).unwrap().is_probe());
        assert!(!Stamp { seq: 0, sent_ns: 0 }.is_probe());
    }

    #[test]
    fn the_clock_counts_from_its_base() {
        let clock = Clock::new();
        let later = clock.base + Duration::from_micros(1500);
        assert_eq!(clock.ns(later), 1_500_000);
        if let Some(earlier) = clock.base.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.ns(earlier), 0);
        }
        assert!(clock.now_ns() < 60_000_000_000);
    }
}
