//! Which faults the soak injects and when: a pure function of the seed, so a
//! run that found something can be repeated with `--seed`.

use std::{fmt, str::FromStr, time::Duration};

use serde::Serialize;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL of one namespace's pattern process; the proxy restarts it.
    PatternKill,
    /// `redis-server` killed, down for the outage, started again on the same
    /// port and append-only file.
    RedisRestart,
    /// `nats-server` killed, down for the outage, started again on the same
    /// port and JetStream store.
    NatsRestart,
    /// Admin `ReloadPattern` of one namespace (make-before-break).
    HotReload,
    /// The watched config file replaced by an equivalent one.
    ConfigRewrite,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        Self::PatternKill,
        Self::RedisRestart,
        Self::NatsRestart,
        Self::HotReload,
        Self::ConfigRewrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PatternKill => "pattern-kill",
            Self::RedisRestart => "redis-restart",
            Self::NatsRestart => "nats-restart",
            Self::HotReload => "hot-reload",
            Self::ConfigRewrite => "config-rewrite",
        }
    }

    /// True for the faults that pick one namespace.
    pub fn targets_a_namespace(self) -> bool {
        matches!(self, Self::PatternKill | Self::HotReload)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault `{s}` (one of {})", names.join(", "))
            })
    }
}

/// One planned fault: when (from the start of load), what, and on which of
/// the namespaces (an index; ignored by faults that take none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub kind: FaultKind,
    pub namespace: usize,
}

/// SplitMix64: tiny, and the same sequence for a seed on every platform and
/// version, unlike a library generator that may change its algorithm.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Faults from `kinds`, at gaps drawn uniformly from half to one and a half
/// times `interval`, from one interval after the start until `quiet_tail`
/// before `duration` ends (so the last fault can heal while load still
/// runs). Kinds are drawn uniformly; namespaces from `0..namespaces`.
pub fn plan(
    seed: u64,
    kinds: &[FaultKind],
    interval: Duration,
    duration: Duration,
    quiet_tail: Duration,
    namespaces: usize,
) -> Vec<Planned> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    if kinds.is_empty() || interval.is_zero() {
        return out;
    }
    let end = duration.saturating_sub(quiet_tail);
    let interval_ms = interval.as_millis().max(2) as u64;
    let mut at = interval;
    while at < end {
        out.push(Planned {
            at,
            kind: kinds[rng.below(kinds.len() as u64) as usize],
            namespace: rng.below(namespaces.max(1) as u64) as usize,
        });
        let gap = interval_ms / 2 + rng.below(interval_ms);
        at += Duration::from_millis(gap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let kinds = FaultKind::ALL;
        let a = plan(7, &kinds, S(5), S(600), S(10), 3);
        assert_eq!(a, plan(7, &kinds, S(5), S(600), S(10), 3));
        assert_ne!(a, plan(8, &kinds, S(5), S(600), S(10), 3));
    }

    #[test]
    fn faults_stay_inside_the_window_at_bounded_gaps() {
        let p = plan(1, &FaultKind::ALL, S(4), S(120), S(20), 3);
        assert!(!p.is_empty());
        assert_eq!(p[0].at, S(4));
        for pair in p.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= S(2) && gap < S(6), "{gap:?}");
        }
        assert!(p.iter().all(|f| f.at < S(100) && f.namespace < 3));
        // Every kind turns up in a long enough run.
        for kind in FaultKind::ALL {
            assert!(p.iter().any(|f| f.kind == kind), "{kind} missing");
        }
    }

    #[test]
    fn only_the_chosen_kinds_and_none_without_any() {
        let only = [FaultKind::HotReload];
        assert!(
            plan(3, &only, S(1), S(60), S(5), 3)
                .iter()
                .all(|f| f.kind == FaultKind::HotReload)
        );
        assert!(plan(3, &[], S(1), S(60), S(5), 3).is_empty());
        assert!(plan(3, &only, S(10), S(10), S(5), 3).is_empty());
    }

    /// The seed the 60-second CI soak (`tests/tests/e2e/chaos.rs`) uses:
    /// every kind of fault, a pattern kill on the Redis namespace among them.
    #[test]
    fn the_ci_seed_injects_every_kind_of_fault() {
        let p = plan(14, &FaultKind::ALL, S(5), S(60), S(10), 3);
        for kind in FaultKind::ALL {
            assert!(p.iter().any(|f| f.kind == kind), "{kind} missing");
        }
        assert!(
            p.iter()
                .any(|f| f.kind == FaultKind::PatternKill && f.namespace == 1)
        );
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
        let err = "reboot".parse::<FaultKind>().unwrap_err();
        assert!(
            err.contains("reboot") && err.contains("pattern-kill"),
            "{err}"
        );
    }
}
