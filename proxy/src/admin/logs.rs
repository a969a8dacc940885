//! Pattern logs on the admin API: `ListPatternLogs` (the kept lines) and
//! `WatchPatternLogs` (the kept lines after a `seq`, then each new line as
//! it is read). A watcher that reconnects asks for the lines after the last
//! `seq` it saw and misses none the ring still holds.

use std::sync::Arc;

use prism_proto::admin::v1::{
    self as pb, ListPatternLogsRequest, ListPatternLogsResponse, WatchPatternLogsRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::epoch_ms;
use crate::{
    pattern_logs::{LogLine, Stream},
    state::ProxyState,
};

/// Lines queued to one watcher before the task waits for it to read.
const WATCH_QUEUE: usize = 256;

pub(super) type LineStream = ReceiverStream<Result<pb::PatternLogLine, Status>>;

/// A known namespace, or `None` for every namespace.
fn namespace_filter(state: &ProxyState, namespace: &str) -> Result<Option<String>, Status> {
    if namespace.is_empty() {
        return Ok(None);
    }
    state.namespaces.get(namespace)?;
    Ok(Some(namespace.to_string()))
}

pub(super) fn list(
    state: &ProxyState,
    request: ListPatternLogsRequest,
) -> Result<ListPatternLogsResponse, Status> {
    let namespace = namespace_filter(state, &request.namespace)?;
    let last_seq = state.logs.last_seq();
    let lines = state
        .logs
        .recent(
            namespace.as_deref(),
            request.since_seq,
            request.limit as usize,
        )
        .iter()
        .map(|l| line(l))
        .collect();
    Ok(ListPatternLogsResponse { lines, last_seq })
}

pub(super) fn watch(
    state: &Arc<ProxyState>,
    request: WatchPatternLogsRequest,
) -> Result<LineStream, Status> {
    let namespace = namespace_filter(state, &request.namespace)?;
    let (tx, rx) = mpsc::channel(WATCH_QUEUE);
    let state = state.clone();
    // Subscribed before the first read, so no line falls between the two.
    let mut follow = state.logs.follow();
    tokio::spawn(async move {
        let mut cursor = request.since_seq;
        let mut tail = if cursor == 0 {
            request.tail as usize
        } else {
            0
        };
        loop {
            follow.mark_unchanged();
            let lines = state.logs.recent(namespace.as_deref(), cursor, tail);
            tail = 0;
            for l in &lines {
                if tx.send(Ok(line(l))).await.is_err() {
                    return;
                }
                cursor = l.seq;
            }
            tokio::select! {
                changed = follow.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
                _ = state.stopped() => return,
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

fn line(l: &LogLine) -> pb::PatternLogLine {
    pb::PatternLogLine {
        seq: l.seq,
        namespace: l.namespace.to_string(),
        pid: l.pid,
        stream: match l.stream {
            Stream::Stdout => pb::LogStream::Stdout,
            Stream::Stderr => pb::LogStream::Stderr,
        } as i32,
        timestamp_ms: epoch_ms(l.at),
        text: l.text.clone(),
        truncated: l.truncated,
    }
}
