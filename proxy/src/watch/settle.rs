//! When a changed config file is whole. `generate > prism.yaml` truncates the
//! file first and writes it in pieces; applying what is there too early
//! removes namespaces (and a MemStore namespace's data with them). The rule:
//!
//! - a file is read only once its size and modification time stay the same
//!   across [`STABLE`], and the text read is as long as the size seen;
//! - an empty file must stay empty for [`EMPTY_STABLE`]: truncation is how
//!   most rewrites start, so empty counts only once it has lasted;
//! - a writer that pauses longer than [`STABLE`] in the middle of a file can
//!   still be read half-way; that half is then applied only if it parses and
//!   passes validation. Write elsewhere and rename for a change that is
//!   atomic whatever its pace.
//!
//! The same rule answers an explicit `ReloadConfig`, which does not wait: an
//! empty file modified less than [`EMPTY_STABLE`] ago is refused.

use std::{
    io,
    path::Path,
    time::{Duration, SystemTime},
};

/// How long a non-empty file must stay unchanged before it is read as whole.
pub(crate) const STABLE: Duration = Duration::from_millis(500);
/// How long an empty file must stay empty before it counts as meant.
pub(crate) const EMPTY_STABLE: Duration = Duration::from_secs(5);

/// What a `stat` says about the file: enough to notice a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// Where the watcher looks; the file system, or a fake in tests.
pub(crate) trait Source {
    fn stamp(&self) -> io::Result<Stamp>;
    fn read(&self) -> io::Result<String>;
}

impl Source for Path {
    fn stamp(&self) -> io::Result<Stamp> {
        let meta = std::fs::metadata(self)?;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    fn read(&self) -> io::Result<String> {
        std::fs::read_to_string(self)
    }
}

/// How long `text` must go unchanged before it is taken as whole.
pub(crate) fn window(text: &str) -> Duration {
    if text.is_empty() {
        EMPTY_STABLE
    } else {
        STABLE
    }
}

/// Whether `text`, read between the stamps `before` and `after` taken one
/// [`window`] apart, is the whole file: nothing was written meanwhile.
pub(crate) fn is_settled(before: Stamp, after: Stamp, text: &str) -> bool {
    before == after && after.len == text.len() as u64
}

/// Why an explicit reload refuses the file as it is now, if it does: only an
/// empty file that has not stayed empty for [`EMPTY_STABLE`] yet.
pub(crate) fn refuse_now(stamp: Stamp, text: &str, now: SystemTime) -> Option<String> {
    if !text.is_empty() {
        return None;
    }
    let age = stamp
        .modified
        .and_then(|m| now.duration_since(m).ok())
        .unwrap_or_default();
    (age < EMPTY_STABLE).then(|| {
        format!(
            "the config file is empty and was written {} ms ago; an empty file is applied \
             only once it has stayed empty for {} s (it may be a rewrite in progress)",
            age.as_millis(),
            EMPTY_STABLE.as_secs()
        )
    })
}

/// Reads `source` once it has settled (see the module's rule). Waits as long
/// as the file keeps changing; an I/O error (the file is gone) ends the wait.
pub(crate) async fn read_settled<S: Source + ?Sized>(source: &S) -> io::Result<String> {
    loop {
        let before = source.stamp()?;
        let text = source.read()?;
        tokio::time::sleep(window(&text)).await;
        let after = source.stamp()?;
        if is_settled(before, after, &text) {
            return Ok(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;

    /// A file whose content follows a script of `(when, content)` steps in
    /// (paused) tokio time; each step is a write with its own mtime.
    struct Scripted {
        start: Instant,
        steps: Vec<(Duration, String)>,
        reads: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(steps: &[(u64, &str)]) -> Self {
            Self {
                start: Instant::now(),
                steps: steps
                    .iter()
                    .map(|(ms, s)| (Duration::from_millis(*ms), s.to_string()))
                    .collect(),
                reads: Mutex::default(),
            }
        }

        fn current(&self) -> (usize, &str) {
            let elapsed = self.start.elapsed();
            let i = self.steps.iter().rposition(|(at, _)| *at <= elapsed);
            let i = i.expect("the script starts at 0");
            (i, &self.steps[i].1)
        }
    }

    impl Source for Scripted {
        fn stamp(&self) -> io::Result<Stamp> {
            let (i, text) = self.current();
            Ok(Stamp {
                len: text.len() as u64,
                modified: Some(SystemTime::UNIX_EPOCH + self.steps[i].0),
            })
        }

        fn read(&self) -> io::Result<String> {
            let text = self.current().1.to_string();
            self.reads.lock().unwrap().push(text.clone());
            Ok(text)
        }
    }

    const FULL: &str = "namespaces:\n  - {name: a, pattern: keyvalue, backend: memstore}\n";

    #[tokio::test(start_paused = true)]
    async fn a_quiet_file_is_read_after_the_stable_window() {
        let file = Scripted::new(&[(0, FULL)]);
        let t0 = Instant::now();
        assert_eq!(read_settled(&file).await.unwrap(), FULL);
        assert_eq!(t0.elapsed(), STABLE);
    }

    /// `FULL` written a half line at a time, every 150 ms from `from_ms`.
    fn pieces(from_ms: u64) -> Vec<(u64, String)> {
        let mut steps = Vec::new();
        let mut written = String::new();
        for line in FULL.split_inclusive('\n') {
            for piece in [&line[..line.len() / 2], &line[line.len() / 2..]] {
                written.push_str(piece);
                steps.push((from_ms + 150 * steps.len() as u64, written.clone()));
            }
        }
        steps
    }

    fn script(steps: &[(u64, String)]) -> Scripted {
        let steps: Vec<(u64, &str)> = steps.iter().map(|(t, s)| (*t, s.as_str())).collect();
        Scripted::new(&steps)
    }

    #[tokio::test(start_paused = true)]
    async fn slow_pieces_yield_only_the_whole_file() {
        let steps = pieces(0);
        let last_write = Duration::from_millis(steps.last().unwrap().0);
        let file = script(&steps);
        let t0 = Instant::now();
        assert_eq!(read_settled(&file).await.unwrap(), FULL);
        assert!(t0.elapsed() >= last_write + STABLE, "{:?}", t0.elapsed());
        // It saw partial content on the way, and let none of it through.
        let reads = file.reads.lock().unwrap();
        assert!(reads.iter().any(|r| r.len() < FULL.len()), "{reads:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn truncate_then_slow_pieces_yield_only_the_whole_file() {
        let mut steps = vec![(0, String::new())];
        steps.extend(pieces(600));
        let file = script(&steps);
        assert_eq!(read_settled(&file).await.unwrap(), FULL);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_file_counts_only_once_it_stayed_empty() {
        let file = Scripted::new(&[(0, FULL), (100, "")]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        assert_eq!(read_settled(&file).await.unwrap(), "");
        assert_eq!(t0.elapsed(), EMPTY_STABLE);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_file_filled_within_the_empty_window_is_never_read_empty() {
        let file = Scripted::new(&[(0, ""), (4_000, FULL)]);
        assert_eq!(read_settled(&file).await.unwrap(), FULL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_pausing_longer_than_the_window_can_be_read_half_way() {
        // The documented limit of the rule: a pause over STABLE looks finished.
        let half = &FULL[..20];
        let file = Scripted::new(&[(0, half), (2_000, FULL)]);
        assert_eq!(read_settled(&file).await.unwrap(), half);
    }

    #[test]
    fn a_stamp_change_or_a_short_read_is_not_settled() {
        let t = SystemTime::UNIX_EPOCH;
        let s = |len, ms| Stamp {
            len,
            modified: Some(t + Duration::from_millis(ms)),
        };
        assert!(is_settled(s(3, 1), s(3, 1), "abc"));
        assert!(!is_settled(s(3, 1), s(3, 2), "abc"), "rewritten, same size");
        assert!(!is_settled(s(3, 1), s(4, 1), "abc"), "grew, same mtime");
        assert!(!is_settled(s(3, 1), s(3, 1), "ab"), "read mid-write");
    }

    #[test]
    fn an_explicit_reload_refuses_only_a_fresh_empty_file() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let written = |secs_ago| Stamp {
            len: 0,
            modified: Some(now - Duration::from_secs(secs_ago)),
        };
        let why = refuse_now(written(1), "", now).unwrap();
        assert!(why.contains("empty") && why.contains("5 s"), "{why}");
        assert_eq!(refuse_now(written(6), "", now), None);
        assert_eq!(refuse_now(written(0), FULL, now), None);
        // An mtime in the future is no age at all.
        assert!(refuse_now(written(0), "", now - Duration::from_secs(1)).is_some());
    }
}
