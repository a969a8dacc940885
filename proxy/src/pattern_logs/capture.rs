//! Drains a child's stdout and stderr into [`PatternLogs`]. Each stream has
//! a task that reads whatever is in the pipe at once and never waits on
//! anything else (recording is a short lock, the echo never blocks), so a
//! pattern that floods its output is never held up by the proxy.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{PatternLogs, Stream, lines::Splitter};

/// Bytes read from a pipe at a time.
const READ_BUFFER: usize = 16 * 1024;

impl PatternLogs {
    /// Reads `source` (one of `pid`'s output streams) until it closes, line by line.
    pub(crate) fn capture(
        self: &Arc<Self>,
        namespace: &str,
        pid: u32,
        stream: Stream,
        source: impl AsyncRead + Unpin + Send + 'static,
    ) {
        let logs = self.clone();
        let namespace: Arc<str> = Arc::from(namespace);
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(READ_BUFFER, source);
            let mut splitter = Splitter::new(logs.limits.line_bytes);
            let mut record =
                |line: &[u8], truncated| logs.record(&namespace, pid, stream, line, truncated);
            loop {
                let chunk = match reader.fill_buf().await {
                    Ok([]) | Err(_) => break,
                    Ok(chunk) => chunk,
                };
                let read = chunk.len();
                splitter.feed(chunk, &mut record);
                reader.consume(read);
            }
            splitter.finish(&mut record);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::pattern_logs::{Echo, Limits};

    #[tokio::test]
    async fn a_stream_is_read_to_its_end() {
        let logs = Arc::new(PatternLogs::new(Limits::default(), Echo::Off));
        let (mut writer, reader) = tokio::io::duplex(64);
        logs.capture("ns", 7, Stream::Stderr, reader);
        writer
            .write_all(b"first\nsecond\nno newline")
            .await
            .unwrap();
        drop(writer);
        let mut follow = logs.follow();
        tokio::time::timeout(Duration::from_secs(10), follow.wait_for(|&seq| seq >= 3))
            .await
            .expect("three lines within the deadline")
            .unwrap();
        let texts: Vec<_> = logs
            .recent(Some("ns"), 0, 0)
            .iter()
            .map(|l| (l.text.clone(), l.pid, l.stream))
            .collect();
        assert_eq!(
            texts,
            [
                ("first".to_string(), 7, Stream::Stderr),
                ("second".to_string(), 7, Stream::Stderr),
                ("no newline".to_string(), 7, Stream::Stderr),
            ]
        );
    }
}
