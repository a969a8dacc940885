//! Echoes captured pattern lines to the proxy's stderr, tagged with their
//! namespace and pid, so whoever reads the proxy's output (a terminal,
//! `scripts/prism`, a log shipper) still sees its patterns. With
//! `PRISM_LOG_FORMAT=json` every echoed line is JSON: a pattern's own JSON
//! line passes as it is (it names its namespace and pid itself), anything
//! else (a panic message, a line printed by hand) is wrapped in an object.
//!
//! Writing goes through a bounded queue to a thread of its own: a slow or
//! blocked stderr costs echoed lines (counted, and said so once it drains),
//! never the capture, and so never the pattern.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use prism_observability::LogFormat;
use time::OffsetDateTime;

use super::LogLine;

/// Lines waiting to be written before new ones are dropped.
const QUEUE: usize = 4096;

pub(crate) enum Echo {
    Off,
    Stderr {
        format: LogFormat,
        queue: SyncSender<String>,
        dropped: Arc<AtomicU64>,
    },
}

impl Echo {
    /// Echo to stderr in `format`, from a writer thread; `Off` if the
    /// thread cannot be started.
    pub(crate) fn stderr(format: LogFormat) -> Self {
        let (queue, lines) = mpsc::sync_channel::<String>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let missed = dropped.clone();
        let started = std::thread::Builder::new()
            .name("prism-pattern-echo".into())
            .spawn(move || {
                for line in lines {
                    let mut stderr = std::io::stderr().lock();
                    let lost = missed.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        let note = format!("{lost} pattern log lines were not echoed (stderr too slow); the admin API keeps them");
                        let _ = writeln!(stderr, "{}", render(format, None, &note));
                    }
                    let _ = writeln!(stderr, "{line}");
                }
            });
        match started {
            Ok(_) => Self::Stderr {
                format,
                queue,
                dropped,
            },
            Err(_) => Self::Off,
        }
    }

    pub(super) fn send(&self, line: &LogLine) {
        let Self::Stderr {
            format,
            queue,
            dropped,
        } = self
        else {
            return;
        };
        match queue.try_send(render(*format, Some(line), &line.text)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One echoed line: `line`'s text tagged with where it came from, or a note
/// of the proxy's own (`line` is `None`).
pub(crate) fn render(format: LogFormat, line: Option<&LogLine>, text: &str) -> String {
    match (format, line) {
        (LogFormat::Text, Some(line)) => {
            format!("[{} pid {}] {}", line.namespace, line.pid, text)
        }
        (LogFormat::Text, None) => format!("prism-proxy: {text}"),
        (LogFormat::Json, Some(_)) if is_json_object(text) => text.to_string(),
        (LogFormat::Json, _) => {
            let at = line.map_or_else(SystemTime::now, |l| l.at);
            let mut fields = serde_json::Map::new();
            fields.insert("message".into(), text.into());
            if let Some(line) = line {
                fields.insert("namespace".into(), (*line.namespace).into());
                fields.insert("pid".into(), line.pid.into());
                fields.insert("stream".into(), line.stream.as_str().into());
            }
            serde_json::json!({
                "timestamp": rfc3339(at),
                "level": "INFO",
                "fields": fields,
                "target": "prism_proxy::pattern_logs",
            })
            .to_string()
        }
    }
}

fn is_json_object(text: &str) -> bool {
    text.starts_with('{')
        && serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object())
}

/// `2026-11-30T02:15:04.123456Z`, as the JSON log lines write time.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = OffsetDateTime::UNIX_EPOCH
        .checked_add(time::Duration::seconds(
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        ))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pattern_logs::Stream;

    fn line(text: &str) -> LogLine {
        LogLine {
            seq: 1,
            namespace: Arc::from("orders"),
            pid: 4242,
            stream: Stream::Stderr,
            at: UNIX_EPOCH + Duration::from_millis(1_796_004_904_123),
            text: text.to_string(),
            truncated: false,
        }
    }

    #[test]
    fn text_lines_are_tagged_with_namespace_and_pid() {
        let l = line("INFO prism_memstore: listening");
        assert_eq!(
            render(LogFormat::Text, Some(&l), &l.text),
            "[orders pid 4242] INFO prism_memstore: listening"
        );
    }

    #[test]
    fn json_lines_pass_and_other_lines_are_wrapped() {
        let own =
            line(r#"{"level":"INFO","fields":{"message":"x"},"namespace":"orders","pid":4242}"#);
        assert_eq!(render(LogFormat::Json, Some(&own), &own.text), own.text);
        let panic = line("thread 'main' panicked at src/main.rs:1:1");
        let wrapped: serde_json::Value =
            serde_json::from_str(&render(LogFormat::Json, Some(&panic), &panic.text)).unwrap();
        assert_eq!(wrapped["fields"]["message"], panic.text);
        assert_eq!(wrapped["fields"]["namespace"], "orders");
        assert_eq!(wrapped["fields"]["pid"], 4242);
        assert_eq!(wrapped["fields"]["stream"], "stderr");
        assert_eq!(wrapped["timestamp"], "2026-11-30T02:15:04.123000Z");
        let note: serde_json::Value =
            serde_json::from_str(&render(LogFormat::Json, None, "3 lines")).unwrap();
        assert_eq!(note["fields"]["message"], "3 lines");
    }

    #[test]
    fn dates_across_leap_years_and_centuries() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000000Z");
    }
}
