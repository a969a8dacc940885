//! What pattern processes write to stdout and stderr. Each child's two
//! streams are drained continuously ([`capture`]) — a pattern never blocks
//! on a full pipe, however much it writes — split into lines with a length
//! cap ([`lines`]), redacted like every log line, tagged with namespace, pid,
//! stream and time, and kept in a ring per namespace bounded in lines and in
//! bytes (the oldest lines go first). The admin API lists and follows them;
//! the proxy's stderr echoes them, tagged ([`echo`]), so someone reading
//! the proxy's output still sees its patterns.

mod capture;
pub(crate) mod echo;
mod lines;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use tokio::sync::watch;

pub(crate) use echo::Echo;

/// Which of the child's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// Proxy-wide, increasing by one per line: what a watcher resumes from.
    pub seq: u64,
    pub namespace: Arc<str>,
    pub pid: u32,
    pub stream: Stream,
    pub at: SystemTime,
    pub text: String,
    /// The line was longer than [`Limits::line_bytes`] and was cut.
    pub truncated: bool,
}

/// Bookkeeping a kept line costs beyond its text, counted against
/// [`Limits::bytes`] so a flood of empty lines is bounded too.
const LINE_OVERHEAD: usize = 96;

/// How much is kept per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub lines: usize,
    pub bytes: usize,
    /// Longer lines are cut to this many bytes.
    pub line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            lines: 5_000,
            bytes: 2 * 1024 * 1024,
            line_bytes: 8 * 1024,
        }
    }
}

/// One namespace's kept lines, oldest first.
#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    bytes: usize,
}

impl Ring {
    fn cost(line: &LogLine) -> usize {
        line.text.len() + LINE_OVERHEAD
    }

    /// Adds `line`, dropping the oldest lines until both bounds hold (the
    /// newest line always stays).
    fn push(&mut self, line: Arc<LogLine>, limits: &Limits) {
        self.bytes += Self::cost(&line);
        self.lines.push_back(line);
        while self.lines.len() > 1 && (self.lines.len() > limits.lines || self.bytes > limits.bytes)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= Self::cost(&old);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    last_seq: u64,
    rings: HashMap<Arc<str>, Ring>,
}

/// Every namespace's captured lines, and the signal followers wait on.
pub(crate) struct PatternLogs {
    limits: Limits,
    inner: Mutex<Inner>,
    /// The last `seq` recorded; changes wake followers.
    latest: watch::Sender<u64>,
    echo: Echo,
}

impl PatternLogs {
    pub(crate) fn new(limits: Limits, echo: Echo) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
            latest: watch::channel(0).0,
            echo,
        }
    }

    /// Records one line read from a child (bytes as written, without the
    /// newline), redacted and tagged.
    pub(crate) fn record(
        &self,
        namespace: &Arc<str>,
        pid: u32,
        stream: Stream,
        raw: &[u8],
        truncated: bool,
    ) {
        let text = String::from_utf8_lossy(raw);
        let text = prism_observability::redact::redact(&text).into_owned();
        let line = {
            let mut inner = self.inner.lock().expect("pattern logs");
            inner.last_seq += 1;
            let line = Arc::new(LogLine {
                seq: inner.last_seq,
                namespace: namespace.clone(),
                pid,
                stream,
                at: SystemTime::now(),
                text,
                truncated,
            });
            inner
                .rings
                .entry(namespace.clone())
                .or_default()
                .push(line.clone(), &self.limits);
            line
        };
        // Two streams may record at once: the newest number wins.
        self.latest.send_if_modified(|latest| {
            let newer = line.seq > *latest;
            if newer {
                *latest = line.seq;
            }
            newer
        });
        self.echo.send(&line);
    }

    /// Kept lines after `since` (of one namespace, or all), oldest first;
    /// only the last `limit` of them when `limit` is not 0.
    pub(crate) fn recent(
        &self,
        namespace: Option<&str>,
        since: u64,
        limit: usize,
    ) -> Vec<Arc<LogLine>> {
        let inner = self.inner.lock().expect("pattern logs");
        let mut lines: Vec<Arc<LogLine>> = inner
            .rings
            .iter()
            .filter(|(name, _)| namespace.is_none_or(|ns| ns == &***name))
            .flat_map(|(_, ring)| ring.lines.iter().filter(|l| l.seq > since).cloned())
            .collect();
        drop(inner);
        lines.sort_unstable_by_key(|l| l.seq);
        if limit != 0 && lines.len() > limit {
            lines.drain(..lines.len() - limit);
        }
        lines
    }

    /// The `seq` of the last line recorded (0 before the first).
    pub(crate) fn last_seq(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Changes whenever a line is recorded.
    pub(crate) fn follow(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Drops a removed namespace's lines.
    pub(crate) fn forget(&self, namespace: &str) {
        self.inner
            .lock()
            .expect("pattern logs")
            .rings
            .remove(namespace);
    }

    /// Lines and bytes kept for `namespace`.
    #[cfg(test)]
    fn kept(&self, namespace: &str) -> (usize, usize) {
        let inner = self.inner.lock().expect("pattern logs");
        inner
            .rings
            .get(namespace)
            .map_or((0, 0), |r| (r.lines.len(), r.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(lines: usize, bytes: usize) -> PatternLogs {
        PatternLogs::new(
            Limits {
                lines,
                bytes,
                line_bytes: 64,
            },
            Echo::Off,
        )
    }

    fn ns(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn lines_are_tagged_and_numbered_across_namespaces() {
        let logs = logs(10, 1 << 20);
        logs.record(&ns("a"), 11, Stream::Stderr, b"one", false);
        logs.record(&ns("b"), 22, Stream::Stdout, b"two", true);
        logs.record(&ns("a"), 11, Stream::Stderr, b"three", false);
        let all = logs.recent(None, 0, 0);
        let seen: Vec<_> = all
            .iter()
            .map(|l| {
                (
                    l.seq,
                    &*l.namespace,
                    l.pid,
                    l.stream,
                    l.text.as_str(),
                    l.truncated,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "a", 11, Stream::Stderr, "one", false),
                (2, "b", 22, Stream::Stdout, "two", true),
                (3, "a", 11, Stream::Stderr, "three", false),
            ]
        );
        let a: Vec<_> = logs.recent(Some("a"), 0, 0).iter().map(|l| l.seq).collect();
        assert_eq!(a, [1, 3]);
        assert_eq!(logs.last_seq(), 3);
    }

    #[test]
    fn since_and_limit_select_the_newest() {
        let logs = logs(100, 1 << 20);
        for i in 0..10 {
            logs.record(
                &ns("a"),
                1,
                Stream::Stdout,
                format!("{i}").as_bytes(),
                false,
            );
        }
        let seqs = |lines: Vec<Arc<LogLine>>| lines.iter().map(|l| l.seq).collect::<Vec<_>>();
        assert_eq!(seqs(logs.recent(Some("a"), 7, 0)), [8, 9, 10]);
        assert_eq!(seqs(logs.recent(Some("a"), 0, 2)), [9, 10]);
        assert_eq!(seqs(logs.recent(Some("a"), 9, 5)), [10]);
        assert!(logs.recent(Some("other"), 0, 0).is_empty());
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_its_line_bound() {
        let logs = logs(3, 1 << 20);
        for i in 1..=5 {
            logs.record(
                &ns("a"),
                1,
                Stream::Stdout,
                format!("l{i}").as_bytes(),
                false,
            );
        }
        let texts: Vec<_> = logs
            .recent(Some("a"), 0, 0)
            .iter()
            .map(|l| l.text.clone())
            .collect();
        assert_eq!(texts, ["l3", "l4", "l5"]);
    }

    #[test]
    fn the_ring_keeps_within_its_byte_bound() {
        let bound = 4 * (LINE_OVERHEAD + 10);
        let logs = logs(1_000, bound);
        for _ in 0..100 {
            logs.record(&ns("a"), 1, Stream::Stdout, &[b'x'; 10], false);
        }
        let (lines, bytes) = logs.kept("a");
        assert_eq!(lines, 4);
        assert!(bytes <= bound, "{bytes} > {bound}");
        // One namespace's flood leaves another's lines alone.
        logs.record(&ns("b"), 2, Stream::Stdout, b"quiet", false);
        assert_eq!(logs.kept("b").0, 1);
    }

    #[test]
    fn empty_lines_count_against_the_byte_bound() {
        let logs = logs(usize::MAX, 10 * LINE_OVERHEAD);
        for _ in 0..1_000 {
            logs.record(&ns("a"), 1, Stream::Stdout, b"", false);
        }
        assert_eq!(logs.kept("a").0, 10);
    }

    #[test]
    fn credentials_are_redacted_before_they_are_kept() {
        let logs = logs(10, 1 << 20);
        logs.record(
            &ns("a"),
            1,
            Stream::Stderr,
            b"connecting to redis://app:hunter2@db:6379 password=hunter2",
            false,
        );
        let text = logs.recent(None, 0, 0)[0].text.clone();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("db:6379"), "{text}");
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let logs = logs(10, 1 << 20);
        logs.record(&ns("a"), 1, Stream::Stdout, b"ok \xff end", false);
        assert_eq!(logs.recent(None, 0, 0)[0].text, "ok \u{fffd} end");
    }

    #[test]
    fn forget_drops_a_namespace() {
        let logs = logs(10, 1 << 20);
        logs.record(&ns("a"), 1, Stream::Stdout, b"x", false);
        logs.forget("a");
        assert!(logs.recent(Some("a"), 0, 0).is_empty());
        assert_eq!(logs.last_seq(), 1, "numbering never goes back");
    }

    #[tokio::test]
    async fn followers_wake_on_a_new_line() {
        let logs = logs(10, 1 << 20);
        let mut follow = logs.follow();
        follow.mark_unchanged();
        logs.record(&ns("a"), 1, Stream::Stdout, b"x", false);
        follow.changed().await.unwrap();
        assert_eq!(*follow.borrow(), 1);
    }
}
