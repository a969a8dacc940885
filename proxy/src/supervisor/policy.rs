//! When to start a namespace's pattern process again, and when to call the
//! namespace FAILED: a pure state machine fed what happened to the process
//! (and how long it ran), answering with what to do next. The run loop only
//! carries the answer out, so every decision here is unit-tested without
//! processes or clocks.
//!
//! Also which health checks are worth an event ([`health_event`]).
//!
//! FAILED is shown, never final: a FAILED namespace is still retried at the
//! capped backoff, like a crash-loop back-off, so it heals by itself once
//! the cause (a missing Redis, a broken binary, a full fd table) is gone.

use std::time::Duration;

use rand::Rng;

use prism_proto::lifecycle::v1::HealthStatus;

use crate::{config::SupervisorConfig, namespace::Health};

/// What happened to the namespace's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// It was running for `ran_for`, then died or was found broken.
    Crashed { ran_for: Duration },
    /// It could not be brought up. `permanent` when the same binary and
    /// config cannot do better (missing binary, rejected config) — though
    /// the file may yet be fixed, so it is still retried.
    StartFailed { permanent: bool },
    /// An operator asked for a restart (or a reload of a process that is down).
    OperatorRestart,
}

/// What the run loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    StartNow,
    /// Show RESTARTING, wait, then start.
    StartAfter(Duration),
    /// Show FAILED with the reason, wait, then start again.
    FailThenStartAfter(Duration),
}

/// Counts consecutive failures and turns events into [`Action`]s.
#[derive(Debug, Clone)]
pub(crate) struct RestartPolicy {
    initial_ms: u64,
    max_ms: u64,
    max_failures: u32,
    stable_after: Duration,
    failures: u32,
}

impl RestartPolicy {
    pub(crate) fn new(config: &SupervisorConfig) -> Self {
        Self {
            initial_ms: config.restart_backoff_initial_ms,
            max_ms: config.restart_backoff_max_ms,
            max_failures: config.max_consecutive_failures.max(1),
            stable_after: config.stable_after(),
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn next(&mut self, event: Event, rng: &mut impl Rng) -> Action {
        match event {
            // At once, but it forgives nothing: a restart into the same
            // fault goes straight back to FAILED and the capped backoff.
            Event::OperatorRestart => return Action::StartNow,
            Event::Crashed { ran_for } => {
                // A process that served for a while was no crash loop.
                if ran_for >= self.stable_after {
                    self.failures = 0;
                }
                self.failures = self.failures.saturating_add(1);
            }
            Event::StartFailed { permanent } => {
                self.failures = self.failures.saturating_add(1);
                if permanent {
                    self.failures = self.failures.max(self.max_failures);
                }
            }
        }
        if self.failures >= self.max_failures {
            Action::FailThenStartAfter(jittered(self.max_ms, rng))
        } else {
            Action::StartAfter(backoff(self.failures, self.initial_ms, self.max_ms, rng))
        }
    }
}

/// Exponential backoff with "equal jitter": the step doubles per failure up
/// to `max_ms`; half of it is fixed, half random.
pub(crate) fn backoff(failures: u32, initial_ms: u64, max_ms: u64, rng: &mut impl Rng) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    jittered(initial_ms.saturating_mul(1 << exp).min(max_ms), rng)
}

fn jittered(step: u64, rng: &mut impl Rng) -> Duration {
    let half = step / 2;
    Duration::from_millis(half + rng.random_range(0..=step - half))
}

/// The event a health check is worth, if any: a change from `before`, or a
/// new process (`before` is `None`) that does not start HEALTHY — one that
/// does is said by its PatternStarted event already.
pub(crate) fn health_event(before: Option<HealthStatus>, health: &Health) -> Option<String> {
    match before {
        Some(before) if before != health.status => Some(format!(
            "{} → {}: {}",
            before.as_str_name(),
            health.status.as_str_name(),
            health.message
        )),
        Some(_) => None,
        None if health.status == HealthStatus::Healthy => None,
        None => Some(format!(
            "{} at start: {}",
            health.status.as_str_name(),
            health.message
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn config() -> SupervisorConfig {
        SupervisorConfig {
            restart_backoff_initial_ms: 100,
            restart_backoff_max_ms: 1000,
            max_consecutive_failures: 3,
            stable_after_ms: 10_000,
            ..Default::default()
        }
    }

    const QUICK: Event = Event::Crashed {
        ran_for: Duration::from_millis(5),
    };

    fn millis(action: Action) -> u64 {
        match action {
            Action::StartAfter(d) | Action::FailThenStartAfter(d) => d.as_millis() as u64,
            other => panic!("no wait in {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut rng = StdRng::seed_from_u64(7);
        for (failures, step) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            for _ in 0..50 {
                let d = backoff(failures, 100, 1000, &mut rng).as_millis() as u64;
                assert!((step / 2..=step).contains(&d), "failures {failures}: {d}ms");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let mut rng = StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(3, 100, 10_000, &mut rng)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn quick_crashes_back_off_then_fail_and_keep_retrying_at_the_cap() {
        let mut policy = RestartPolicy::new(&config());
        let mut rng = StdRng::seed_from_u64(3);
        let first = policy.next(QUICK, &mut rng);
        assert!(matches!(first, Action::StartAfter(_)), "{first:?}");
        assert!((50..=100).contains(&millis(first)));
        let second = policy.next(QUICK, &mut rng);
        assert!(matches!(second, Action::StartAfter(_)), "{second:?}");
        assert!((100..=200).contains(&millis(second)));
        for round in 0..10 {
            let action = policy.next(QUICK, &mut rng);
            assert!(
                matches!(action, Action::FailThenStartAfter(_)),
                "round {round}: FAILED retries forever: {action:?}"
            );
            assert!((500..=1000).contains(&millis(action)), "at the cap");
        }
        assert_eq!(policy.failures(), 12);
    }

    #[test]
    fn a_stable_run_forgives_earlier_failures() {
        let mut policy = RestartPolicy::new(&config());
        let mut rng = StdRng::seed_from_u64(3);
        policy.next(QUICK, &mut rng);
        policy.next(QUICK, &mut rng);
        let action = policy.next(
            Event::Crashed {
                ran_for: Duration::from_secs(10),
            },
            &mut rng,
        );
        assert!(matches!(action, Action::StartAfter(_)), "{action:?}");
        assert_eq!(policy.failures(), 1);
    }

    #[test]
    fn a_permanent_start_failure_fails_at_once_and_is_still_retried() {
        let mut policy = RestartPolicy::new(&config());
        let mut rng = StdRng::seed_from_u64(3);
        let action = policy.next(Event::StartFailed { permanent: true }, &mut rng);
        assert!(
            matches!(action, Action::FailThenStartAfter(_)),
            "{action:?}"
        );
        assert!((500..=1000).contains(&millis(action)));
        // Transient start failures (EMFILE, a slow start) count like crashes.
        let mut policy = RestartPolicy::new(&config());
        let action = policy.next(Event::StartFailed { permanent: false }, &mut rng);
        assert!(matches!(action, Action::StartAfter(_)), "{action:?}");
    }

    #[test]
    fn an_operator_restart_is_at_once_and_forgives_nothing() {
        let mut policy = RestartPolicy::new(&config());
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..5 {
            policy.next(QUICK, &mut rng);
        }
        assert_eq!(
            policy.next(Event::OperatorRestart, &mut rng),
            Action::StartNow
        );
        assert_eq!(policy.failures(), 5);
        assert!(
            matches!(policy.next(QUICK, &mut rng), Action::FailThenStartAfter(_)),
            "a restart into the same fault is FAILED again"
        );
        let mut fresh = RestartPolicy::new(&config());
        assert_eq!(
            fresh.next(Event::OperatorRestart, &mut rng),
            Action::StartNow
        );
        assert!(matches!(fresh.next(QUICK, &mut rng), Action::StartAfter(_)));
    }

    /// The waits the policy asks for, played on a paused clock: a crash
    /// loop of quick exits reaches FAILED after the backoff steps and is
    /// then retried once per capped period.
    #[tokio::test(start_paused = true)]
    async fn a_crash_loop_on_a_paused_clock() {
        let mut policy = RestartPolicy::new(&config());
        let mut rng = StdRng::seed_from_u64(9);
        let began = tokio::time::Instant::now();
        let mut failed_at = None;
        let mut attempts = 0;
        while began.elapsed() < Duration::from_secs(10) {
            attempts += 1;
            match policy.next(QUICK, &mut rng) {
                Action::StartAfter(d) => tokio::time::sleep(d).await,
                Action::FailThenStartAfter(d) => {
                    failed_at.get_or_insert(began.elapsed());
                    tokio::time::sleep(d).await;
                }
                other => panic!("{other:?}"),
            }
        }
        let failed_at = failed_at.expect("FAILED reached");
        assert!(failed_at <= Duration::from_millis(300), "{failed_at:?}");
        // 10 s at one retry per 0.5–1 s after FAILED.
        assert!((11..=24).contains(&attempts), "{attempts} attempts");
    }

    #[test]
    fn a_healthy_start_is_no_health_change() {
        let healthy = Health {
            status: HealthStatus::Healthy,
            ..Health::unhealthy("ok")
        };
        assert_eq!(health_event(None, &healthy), None);
        assert_eq!(health_event(Some(HealthStatus::Healthy), &healthy), None);
    }

    #[test]
    fn an_unhealthy_start_is_said_without_a_bogus_before() {
        let down = Health::unhealthy("redis unreachable");
        assert_eq!(
            health_event(None, &down).as_deref(),
            Some("UNHEALTHY at start: redis unreachable")
        );
    }

    #[test]
    fn a_change_names_both_states() {
        let down = Health::unhealthy("redis unreachable");
        assert_eq!(
            health_event(Some(HealthStatus::Healthy), &down).as_deref(),
            Some("HEALTHY → UNHEALTHY: redis unreachable")
        );
        assert_eq!(health_event(Some(HealthStatus::Unhealthy), &down), None);
    }
}
