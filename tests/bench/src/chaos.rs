//! `prism-bench chaos`: the soak. One proxy serves three namespaces —
//! KeyValue on MemStore, KeyValue on Redis (append-only file, fsync on every
//! write), PubSub on NATS JetStream — under a steady mixed load ([`load`]),
//! while faults are injected at seeded random times ([`plan`], [`inject`]).
//! Every call is logged ([`calls`]); every acknowledged write and publish is
//! owed ([`ledger`]). At the end ([`check`]) it checks that every acknowledged Redis
//! write reads back (straight from Redis, and through the proxy), that every
//! acknowledged JetStream publish reached the durable subscriber, that the
//! proxy kept its PID and its RSS stayed under the bound, and reports
//! ([`report`]).

pub mod args;
pub mod calls;
pub mod check;
pub mod inject;
pub mod ledger;
pub mod load;
pub mod plan;
pub mod report;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use prism_harness::{Nats, ProxyConfig, ProxyProcess, Redis, procs};
use prism_proto::admin::v1::admin_client::AdminClient;
use tonic::transport::Channel;

use self::{
    calls::{CallLog, Surface},
    inject::{Injector, Namespace},
    load::Shared,
    plan::FaultKind,
    report::{ChaosReport, FaultRecord, ProxyCheck},
};
use crate::{BenchError, endpoint::wait_running};

/// How often the proxy's RSS and PID are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// No fault in the last stretch of the run, so the last one heals under load.
const QUIET_TAIL: Duration = Duration::from_secs(10);

const MEMSTORE_NS: &str = "chaos-memstore";
const REDIS_NS: &str = "chaos-redis";
const JETSTREAM_NS: &str = "chaos-jetstream";

#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub duration: Duration,
    /// Calls a second over all namespaces.
    pub rate: u32,
    pub seed: u64,
    /// The mean gap between faults.
    pub fault_interval: Duration,
    pub faults: Vec<FaultKind>,
    /// How long Redis and NATS stay down in a restart.
    pub outage: Duration,
    pub max_rss_kb: u64,
    /// How long the end check waits for outstanding deliveries.
    pub drain_timeout: Duration,
    pub bin_dir: PathBuf,
}

/// The proxy's config; `form` picks one of two equivalent spellings so a
/// rewrite changes the file but not what it means.
pub fn config_yaml(redis_url: &str, nats_url: &str, form: usize) -> String {
    let redis = format!("{{address: \"{redis_url}\"}}");
    let nats = format!("{{url: \"{nats_url}\", jetstream: true, ack_wait_ms: 2000}}");
    if form.is_multiple_of(2) {
        format!(
            "# prism-bench chaos\nnamespaces:\n  - {{name: {MEMSTORE_NS}, pattern: keyvalue, backend: memstore}}\n  - {{name: {REDIS_NS}, pattern: keyvalue, backend: redis, config: {redis}}}\n  - {{name: {JETSTREAM_NS}, pattern: pubsub, backend: nats, config: {nats}}}\n"
        )
    } else {
        format!(
            "# prism-bench chaos, rewrite {form}\nnamespaces:\n  - name: {MEMSTORE_NS}\n    pattern: keyvalue\n    backend: memstore\n  - name: {REDIS_NS}\n    pattern: keyvalue\n    backend: redis\n    config: {redis}\n  - name: {JETSTREAM_NS}\n    pattern: pubsub\n    backend: nats\n    config: {nats}\n"
        )
    }
}

/// Runs the soak; progress lines go to stderr.
pub async fn run(config: ChaosConfig) -> Result<ChaosReport, BenchError> {
    eprintln!("prism-bench chaos: seed {}", config.seed);
    let redis = Redis {
        append_only: true,
        ..Redis::default()
    }
    .start()
    .await?;
    let nats = Nats {
        jetstream: true,
        ..Nats::default()
    }
    .start()
    .await?;
    let yaml_for = {
        let (redis_url, nats_url) = (redis.url(), nats.url());
        move |form: usize| config_yaml(&redis_url, &nats_url, form)
    };
    let mut proxy = ProxyProcess::start(
        &config.bin_dir.join("prism-proxy"),
        ProxyConfig::Text(yaml_for(0)),
        &[],
    )
    .await?;
    for namespace in [MEMSTORE_NS, REDIS_NS, JETSTREAM_NS] {
        wait_running(&mut proxy, namespace).await?;
    }
    let pid = proxy.pid();
    let data = lazy_channel(proxy.data_addr);
    let namespaces = vec![
        Namespace {
            name: MEMSTORE_NS.into(),
            surface: Surface::Memstore,
        },
        Namespace {
            name: REDIS_NS.into(),
            surface: Surface::Redis,
        },
        Namespace {
            name: JETSTREAM_NS.into(),
            surface: Surface::Jetstream,
        },
    ];
    let mut injector = Injector {
        admin: AdminClient::new(lazy_channel(proxy.admin_addr)),
        config_path: proxy
            .config_path
            .clone()
            .expect("a config given as text has a path"),
        config: Box::new(yaml_for),
        redis,
        nats,
        namespaces,
        outage: config.outage,
        rewrites: 0,
    };

    let epoch = Instant::now();
    let shared = Arc::new(Shared::new(CallLog::new(epoch)));
    let subscriber = tokio::spawn(load::subscriber(
        shared.clone(),
        data.clone(),
        JETSTREAM_NS.into(),
    ));
    let lanes = start_load(&shared, &data, config.rate);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let sampler = tokio::spawn(sample_proxy(samples.clone(), pid));

    let faults = plan::plan(
        config.seed,
        &config.faults,
        config.fault_interval,
        config.duration,
        QUIET_TAIL.min(config.duration / 4),
        3,
    );
    let mut injected = Vec::new();
    for fault in &faults {
        let wait = fault.at.saturating_sub(epoch.elapsed());
        tokio::time::sleep(wait).await;
        let at_ms = shared.log.now_ms();
        let done = injector.inject(fault).await;
        eprintln!(
            "  {:>7.1}s {} {}: {}",
            at_ms as f64 / 1000.0,
            done.kind,
            done.target,
            done.error.as_deref().unwrap_or(&done.detail)
        );
        injected.push((at_ms, done));
    }
    tokio::time::sleep(config.duration.saturating_sub(epoch.elapsed())).await;
    shared.stop.store(true, Ordering::Relaxed);
    for lane in lanes {
        let _ = lane.await;
    }
    let load_end_ms = shared.log.now_ms();

    let redis = check::check_redis(&shared, &data, &injector).await;
    let memstore = check::check_memstore(&shared, &data).await;
    let jetstream = check::drain_jetstream(&shared, config.drain_timeout).await;
    shared.stop_subscriber.store(true, Ordering::Relaxed);
    let _ = subscriber.await;
    sampler.abort();
    let samples = samples.lock().map(|s| *s).unwrap_or_default();
    let same_pid =
        !samples.saw_it_gone && procs::alive(pid) && matches!(proxy.try_wait(), Ok(None));

    let log = shared.log.snapshot();
    let faults_out = injected
        .iter()
        .enumerate()
        .map(|(i, (at_ms, done))| {
            // Each fault's window ends where the next begins.
            let until = injected.get(i + 1).map_or(load_end_ms, |(next, _)| *next);
            FaultRecord {
                at_ms: *at_ms,
                observed: calls::observe(&log, &done.surfaces, *at_ms, until),
                injected: done.clone(),
            }
        })
        .collect();
    let mut report = ChaosReport {
        seed: config.seed,
        duration_s: config.duration.as_secs_f64(),
        rate: config.rate,
        fault_interval_s: config.fault_interval.as_secs_f64(),
        outage_s: config.outage.as_secs_f64(),
        faults_enabled: config.faults.clone(),
        faults: faults_out,
        calls: calls::totals(&log),
        redis,
        memstore,
        jetstream,
        proxy: ProxyCheck {
            pid,
            same_pid_throughout: same_pid,
            rss_samples: samples.count,
            max_rss_kb: samples.max_rss_kb,
            rss_bound_kb: config.max_rss_kb,
        },
        problems: Vec::new(),
    };
    report.judge();
    // Stopping waits for the exit by polling; off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop((proxy, injector))).await;
    Ok(report)
}

fn lazy_channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid authority")
        .connect_lazy()
}

/// The rate split: 35% to each KeyValue namespace (two lanes each), 30% to
/// the publisher.
fn start_load(shared: &Arc<Shared>, data: &Channel, rate: u32) -> Vec<tokio::task::JoinHandle<()>> {
    let every = |share: f64| Duration::from_secs_f64(1.0 / (f64::from(rate.max(1)) * share));
    let mut lanes = Vec::new();
    for (lane, (namespace, surface)) in [
        (MEMSTORE_NS, Surface::Memstore),
        (MEMSTORE_NS, Surface::Memstore),
        (REDIS_NS, Surface::Redis),
        (REDIS_NS, Surface::Redis),
    ]
    .into_iter()
    .enumerate()
    {
        lanes.push(tokio::spawn(load::kv_lane(
            shared.clone(),
            data.clone(),
            namespace.into(),
            surface,
            lane,
            every(0.175),
        )));
    }
    lanes.push(tokio::spawn(load::publisher(
        shared.clone(),
        data.clone(),
        JETSTREAM_NS.into(),
        every(0.3),
    )));
    lanes
}

#[derive(Debug, Clone, Copy, Default)]
struct Samples {
    count: u64,
    max_rss_kb: u64,
    /// The proxy's PID was missing at a sample.
    saw_it_gone: bool,
}

/// Samples the proxy's RSS and liveness until aborted.
async fn sample_proxy(samples: Arc<Mutex<Samples>>, pid: u32) {
    loop {
        let rss = procs::rss_kb(pid);
        if let Ok(mut s) = samples.lock() {
            s.count += 1;
            match rss {
                Some(kb) => s.max_rss_kb = s.max_rss_kb.max(kb),
                None => s.saw_it_gone = true,
            }
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}
