//! The `proxy-traced` path's OTLP sink, in a process of its own: the bench
//! runs itself as `prism-bench otlp-sink` ([`serve`]), so decoding the
//! exported spans costs neither the load generator's CPU nor its runtime,
//! and the resource watch shows the sink's CPU on its own row (`sink`).
//! The comparisons' server CPU per call leaves it out, which is how trace
//! export is measured with the collector's CPU excluded.
//!
//! The child prints `listening on http://ADDR` once it serves, and when its
//! stdin closes prints `spans N` (how many spans it received) and exits.

use std::{path::Path, process::Stdio, time::Duration};

use prism_harness::OtlpReceiver;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::BenchError;

/// How long the sink may take to start, and to report its count.
const WAIT: Duration = Duration::from_secs(10);

/// The running sink: stopped (SIGKILL on drop) when the path ends.
pub(crate) struct SinkProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    endpoint: String,
}

impl SinkProcess {
    /// Starts `prism-bench otlp-sink` from `bin_dir` and waits until it serves.
    pub(crate) async fn start(bin_dir: &Path) -> Result<Self, BenchError> {
        let binary = bin_dir.join("prism-bench");
        let mut child = Command::new(&binary)
            .arg("otlp-sink")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", binary.display()), e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| {
            BenchError::io("reading the sink", std::io::ErrorKind::BrokenPipe.into())
        })?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .map_err(|_| {
                BenchError::io("waiting for the sink", std::io::ErrorKind::TimedOut.into())
            })?
            .map_err(|e| BenchError::io("reading the sink", e))?
            .unwrap_or_default();
        let endpoint = first
            .strip_prefix("listening on ")
            .ok_or_else(|| {
                BenchError::io(
                    format!("the sink said {first:?}"),
                    std::io::ErrorKind::InvalidData.into(),
                )
            })?
            .to_string();
        Ok(Self {
            child,
            stdin,
            lines,
            endpoint,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Asks the sink for its count and waits for it to exit; `None` when it
    /// did not answer in time.
    pub(crate) async fn finish(mut self) -> Option<u64> {
        drop(self.stdin.take());
        let count = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if let Some(n) = line.strip_prefix("spans ") {
                    return n.parse().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
        count
    }
}

/// `prism-bench otlp-sink`: serves a counting OTLP receiver on a free port
/// until stdin closes, then prints how many spans arrived.
pub async fn serve() -> Result<(), BenchError> {
    let receiver = OtlpReceiver::counting().await?;
    println!("listening on {}", receiver.endpoint());
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    while stdin.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    println!("spans {}", receiver.span_count());
    Ok(())
}
