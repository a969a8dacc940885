//! One line a pattern process wrote, as `WatchPatternLogs` delivers it.

use prism_proto::admin::v1 as pb;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// Proxy-wide and increasing: a reconnecting watch resumes after it.
    pub seq: u64,
    pub namespace: String,
    pub pid: u32,
    pub stderr: bool,
    pub timestamp_ms: i64,
    pub text: String,
    /// The proxy cut the line at its length limit.
    pub truncated: bool,
}

impl From<pb::PatternLogLine> for LogLine {
    fn from(l: pb::PatternLogLine) -> Self {
        Self {
            seq: l.seq,
            stderr: l.stream() == pb::LogStream::Stderr,
            namespace: l.namespace,
            pid: l.pid,
            timestamp_ms: l.timestamp_ms,
            text: l.text,
            truncated: l.truncated,
        }
    }
}
