//! Retries of idempotent calls on `UNAVAILABLE` (a pattern restarting, the
//! proxy draining): exponential backoff with full jitter, never past the
//! call's deadline. The policy is a pure function of the attempt number and
//! a jitter draw; [`run`] only executes it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::Error;

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first wait.
    pub initial: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after attempt `attempt` (from 1)
    /// failed: `jitter` (in `[0, 1]`) of `initial · 2^(attempt-1)`, capped at
    /// `max`. Full jitter keeps many clients from retrying in step.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let ceiling = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// What to do after attempt `attempt` failed with `error` at `now`:
    /// `Some(wait)` to try again, `None` to give up (not retryable, out of
    /// attempts, or the wait would end past `deadline`).
    pub fn next(
        &self,
        attempt: u32,
        error: &Error,
        now: Instant,
        deadline: Instant,
        jitter: f64,
    ) -> Option<Duration> {
        if !matches!(error, Error::Unavailable(_)) || attempt >= self.max_attempts {
            return None;
        }
        let wait = self.backoff(attempt, jitter);
        (now + wait < deadline).then_some(wait)
    }
}

/// Runs `call` (given the time left until `deadline`) until it succeeds,
/// fails in a way not worth retrying, or the policy gives up; with
/// `idempotent` false it runs once.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    idempotent: bool,
    deadline: Instant,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match call(left).await {
            Ok(value) => return Ok(value),
            Err(error) if !idempotent => return Err(error),
            Err(error) => error,
        };
        let jitter = rand::random::<f64>();
        match policy.next(attempt, &error, Instant::now(), deadline, jitter) {
            Some(wait) => {
                tracing::debug!(attempt, ?wait, %error, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            None => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::Detail;

    fn unavailable() -> Error {
        Error::Unavailable(Detail {
            message: "restarting".into(),
            trace_id: None,
        })
    }

    const POLICY: RetryPolicy = RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        max_attempts: 6,
    };

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_scales_it() {
        let full: Vec<_> = (1..=6).map(|a| POLICY.backoff(a, 1.0)).collect();
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(
            full,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(POLICY.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(POLICY.backoff(3, 0.5), ms(200));
        // Out-of-range draws and huge attempt numbers stay bounded.
        assert_eq!(POLICY.backoff(2, 7.0), ms(200));
        assert_eq!(POLICY.backoff(u32::MAX, 1.0), ms(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn next_gives_up_on_other_codes_on_the_last_attempt_and_at_the_deadline() {
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        assert_eq!(
            POLICY.next(1, &unavailable(), now, far, 1.0),
            Some(Duration::from_millis(100))
        );
        let not_found = Error::NotFound(Detail {
            message: "k".into(),
            trace_id: None,
        });
        assert_eq!(POLICY.next(1, &not_found, now, far, 1.0), None);
        assert_eq!(POLICY.next(6, &unavailable(), now, far, 1.0), None);
        let near = now + Duration::from_millis(150);
        assert_eq!(POLICY.next(2, &unavailable(), now, near, 1.0), None);
        assert!(POLICY.next(2, &unavailable(), now, near, 0.5).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_unavailable_until_success() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result = run(&POLICY, true, start + Duration::from_secs(60), |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 3 { Err(unavailable()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Three waits of at most 100 + 200 + 400 ms of paused time.
        assert!(start.elapsed() <= Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_at_the_deadline_and_passes_the_time_left() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(500);
        let mut lefts = Vec::new();
        let result: Result<(), Error> = run(&POLICY, true, deadline, |left| {
            lefts.push(left);
            async { Err(unavailable()) }
        })
        .await;
        assert!(matches!(result, Err(Error::Unavailable(_))));
        assert!(Instant::now() <= deadline, "waited past the deadline");
        assert!(lefts.windows(2).all(|w| w[1] <= w[0]), "{lefts:?}");
        assert_eq!(lefts[0], Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_is_not_idempotent_runs_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = run(
            &POLICY,
            false,
            Instant::now() + Duration::from_secs(60),
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(unavailable()) }
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
