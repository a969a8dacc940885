//! Faults, each case asserting what callers see and that the namespace heals
//! by itself: [`backends`] down for longer than the failure budget then back
//! on the same port (Redis, core NATS, JetStream) or SIGSTOPped (Redis);
//! [`processes`] that crash-loop until their binary is fixed, are
//! SIGSTOPped, or cannot be spawned for want of file descriptors; [`streams`] of subscribers whose namespace turns FAILED, is
//! removed, or cannot take them back in time.
//!
//! The failure budget is small in every case (health every 200 ms, two
//! failed checks or two failed starts are enough), so the old behaviour —
//! restarting a pattern whose backend is down until FAILED — would show
//! within the outage. Heal times are printed; the asserted bound (4 s) is
//! twice the 2 s target, for a loaded machine.

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use prism_proto::{
    admin::v1::{
        ListPatternsRequest, PatternInfo, PatternState, ReloadConfigRequest, RestartPatternRequest,
    },
    keyvalue::v1::{GetRequest, SetRequest},
    pubsub::v1::{Message, PublishRequest, pub_sub_client::PubSubClient},
};
use prism_tests::{
    NatsServer, Proxy, ProxyBuilder, RedisServer, bins, eventually, procs,
    proxy::{KvClient, NamespaceHeader},
};
use tonic::{Code, Status, Streaming};

use crate::pubsub::{PsClient, subscribe};

/// The most a backend's return may take to show as served calls.
const HEAL_BOUND: Duration = Duration::from_secs(4);
/// How long each outage is held: longer than the failure budget.
const OUTAGE: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(15);

mod backends;
mod processes;
mod streams;

/// A proxy with a small failure budget: two failed health checks 200 ms
/// apart restart a broken pattern; two failures in a row make it FAILED.
fn strict_proxy() -> ProxyBuilder {
    budget_proxy(2, 300)
}

/// [`strict_proxy`] with `max_failures` in a row before FAILED, and
/// FAILED retried every `backoff_max_ms` (with jitter).
fn budget_proxy(max_failures: u32, backoff_max_ms: u64) -> ProxyBuilder {
    ProxyBuilder::new()
        .supervisor("health_interval_ms", "200")
        .supervisor("health_timeout_ms", "1000")
        .supervisor("unhealthy_threshold", "2")
        .supervisor("max_consecutive_failures", &max_failures.to_string())
        .supervisor("restart_backoff_initial_ms", "20")
        .supervisor("restart_backoff_max_ms", &backoff_max_ms.to_string())
}

fn set(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        ttl_seconds: 0,
    }
}

fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

/// Polls `call` until it succeeds; how long that took.
async fn time_to_heal<F, Fut>(what: &str, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let began = Instant::now();
    eventually(WAIT, what, || {
        let attempt = call();
        async move { attempt.await.ok() }
    })
    .await;
    began.elapsed()
}

async fn ps_client(proxy: &Proxy) -> PsClient {
    PubSubClient::with_interceptor(
        proxy.channel().await,
        NamespaceHeader::new(crate::pubsub::NS),
    )
}

async fn publish(client: &mut PsClient, payload: &[u8]) -> Result<(), Status> {
    let request = with_deadline(
        PublishRequest {
            topic: "t".into(),
            payload: payload.to_vec(),
            metadata: Default::default(),
        },
        Duration::from_secs(10),
    );
    client.publish(request).await.map(drop)
}

/// Replaces `path` by `source` in one step (copy beside it, then rename),
/// as a deploy would.
fn replace_binary(source: &Path, path: &Path) {
    let staged = path.with_extension("new");
    std::fs::copy(source, &staged).expect("copy");
    std::fs::rename(&staged, path).expect("rename");
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
