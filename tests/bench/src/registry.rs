//! `prism-bench registry`: the multicast registry through the proxy. It
//! registers `--identities` identities with varied metadata
//! ([`fleet`]), measures Enumerate with a selective filter against a point
//! `Get` (the floor of one call through the proxy) and the same filter
//! evaluated in process, then attaches a live receiver to each of
//! `--targets` identities and measures Multicast to all of them — the call,
//! and send → the last receiver holding the message — against a Multicast
//! to one identity, with delivered % and duplicates ([`report`]).

pub mod args;
pub mod fleet;
pub mod report;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use prism_harness::{Nats, ProxyConfig, ProxyProcess, Redis};
use prism_proto::{
    filter::Filter,
    json,
    registry::v1::{EnumerateRequest, GetRequest, MulticastRequest, MulticastResponse},
};
use serde_json::json;

use self::{
    args::{ConsumerStorage, Slots},
    fleet::{Client, SOLO, TARGET_GROUP, Tally},
    report::{Latency, RegistryReport},
};
use crate::{BenchError, endpoint::wait_running};

/// How long one round waits for every receiver before counting the rest lost.
const ROUND_WAIT: Duration = Duration::from_secs(5);
/// Register calls in flight while filling the registry.
const REGISTER_CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub identities: usize,
    pub targets: usize,
    pub enumerates: usize,
    pub multicasts: usize,
    pub slots: Slots,
    pub consumer_storage: ConsumerStorage,
    pub bin_dir: PathBuf,
}

/// The proxy's config: one registry namespace on `slots`.
fn config_yaml(
    slots: Slots,
    storage: ConsumerStorage,
    redis: Option<&str>,
    nats: Option<&str>,
) -> String {
    let redis_slot = || format!("{{backend: redis, address: \"{}\"}}", redis.unwrap_or(""));
    let (registry, messaging) = match slots {
        Slots::Memstore => ("{backend: memstore}".into(), "{backend: memstore}".into()),
        Slots::RedisNats | Slots::RedisJetstream => (
            redis_slot(),
            format!(
                "{{backend: nats, url: \"{}\", jetstream: {}, consumer_storage: {}}}",
                nats.unwrap_or(""),
                slots == Slots::RedisJetstream,
                match storage {
                    ConsumerStorage::File => "file",
                    ConsumerStorage::Memory => "memory",
                }
            ),
        ),
        Slots::RedisRedis => (redis_slot(), redis_slot()),
    };
    format!(
        "# prism-bench registry\nnamespaces:\n  - {{name: {}, pattern: multicast-registry, config: {{registry: {registry}, messaging: {messaging}, max_identities: 2000000}}}}\n",
        fleet::NAMESPACE
    )
}

/// Runs the bench; progress lines go to stderr.
pub async fn run(config: RegistryConfig) -> Result<RegistryReport, BenchError> {
    let needs_redis = config.slots != Slots::Memstore;
    let needs_nats = matches!(config.slots, Slots::RedisNats | Slots::RedisJetstream);
    let redis = match needs_redis {
        true => Some(Redis::default().start().await?),
        false => None,
    };
    let nats = match needs_nats {
        true => Some(
            Nats {
                jetstream: true,
                ..Nats::default()
            }
            .start()
            .await?,
        ),
        false => None,
    };
    let yaml = config_yaml(
        config.slots,
        config.consumer_storage,
        redis.as_ref().map(|r| r.url()).as_deref(),
        nats.as_ref().map(|n| n.url()).as_deref(),
    );
    let mut proxy = ProxyProcess::start(
        &config.bin_dir.join("prism-proxy"),
        ProxyConfig::Text(yaml),
        &[],
    )
    .await?;
    wait_running(&mut proxy, fleet::NAMESPACE).await?;
    let client = fleet::client(proxy.data_addr).await?;

    eprintln!("registering {} identities", config.identities);
    let register_per_sec = fleet::register_all(
        &client,
        config.identities,
        config.targets,
        REGISTER_CONCURRENCY,
    )
    .await?;

    eprintln!("enumerating");
    let (enumerate, matches) = measure_enumerate(&client, config.enumerates).await?;
    let baseline_get = measure_get(&client, config.enumerates).await?;
    let filter_in_process = filter_in_process(config.identities, config.targets);

    eprintln!("attaching {} receivers", config.targets);
    let targets: Vec<String> = (0..config.targets).map(fleet::identity).collect();
    let tally = fleet::attach(proxy.data_addr, &targets).await?;
    let solo = fleet::attach(proxy.data_addr, &[SOLO.to_string()]).await?;
    warm_up(&client, TARGET_GROUP, config.targets).await?;
    warm_up(&client, SOLO, 1).await?;

    eprintln!("multicasting");
    let many = measure_multicast(&client, TARGET_GROUP, &tally, config.multicasts).await?;
    let one = measure_multicast(&client, SOLO, &solo, config.multicasts).await?;
    Ok(RegistryReport {
        slots: config.slots,
        consumer_storage: config.consumer_storage,
        identities: config.identities,
        targets: config.targets,
        register_per_sec,
        enumerate,
        enumerate_matches: matches,
        baseline_get,
        filter_in_process_ms: filter_in_process.as_secs_f64() * 1e3,
        multicast_call: many.call,
        multicast_last: many.last,
        solo_call: one.call,
        solo_last: one.last,
        delivered_pct: many.delivered_pct,
        reported_delivered_pct: many.reported_delivered_pct,
        duplicates: many.duplicates,
    })
}

async fn measure_enumerate(client: &Client, calls: usize) -> Result<(Latency, u64), BenchError> {
    let mut histogram = histogram();
    let mut matches = 0;
    let filter = json::to_struct(&fleet::enumerate_filter());
    for _ in 0..calls {
        let mut client = client.clone();
        let started = Instant::now();
        let page = client
            .enumerate(EnumerateRequest {
                filter: Some(filter.clone()),
                limit: 100,
                cursor: String::new(),
                include_metadata: true,
            })
            .await
            .map_err(|s| fleet::registry_error("enumerating", &s))?
            .into_inner();
        record(&mut histogram, started.elapsed());
        matches = page.total_count;
    }
    Ok((Latency::of(&histogram), matches))
}

async fn measure_get(client: &Client, calls: usize) -> Result<Latency, BenchError> {
    let mut histogram = histogram();
    for i in 0..calls {
        let mut client = client.clone();
        let started = Instant::now();
        client
            .get(GetRequest {
                identity: fleet::identity(i % 100),
            })
            .await
            .map_err(|s| fleet::registry_error("getting", &s))?;
        record(&mut histogram, started.elapsed());
    }
    Ok(Latency::of(&histogram))
}

/// One evaluation of the enumerate filter over every identity's metadata in
/// this process: the CPU floor of any filtered Enumerate.
fn filter_in_process(identities: usize, targets: usize) -> Duration {
    let metadata: Vec<_> = (0..identities)
        .map(|i| fleet::metadata(i, targets))
        .collect();
    let filter = Filter::parse(&fleet::enumerate_filter()).expect("the bench's filter parses");
    let started = Instant::now();
    let matched = metadata.iter().filter(|m| filter.matches(m)).count();
    let elapsed = started.elapsed();
    std::hint::black_box(matched);
    elapsed
}

/// Multicasts to `group` until every one of its `expected` receivers is
/// attached (the reply says DELIVERED for all of them).
async fn warm_up(client: &Client, group: &str, expected: usize) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = multicast(client, group, fleet::WARM_UP).await?;
        if response.delivered_count as usize == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady {
                what: format!("{expected} receivers of `{group}`"),
                timeout: Duration::from_secs(60),
                detail: format!("{} delivered", response.delivered_count),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn multicast(
    client: &Client,
    group: &str,
    round: usize,
) -> Result<MulticastResponse, BenchError> {
    let mut client = client.clone();
    Ok(client
        .multicast(MulticastRequest {
            filter: Some(json::to_struct(&json!({ "group": group }))),
            payload: fleet::payload(round),
            metadata: Default::default(),
            timeout_ms: 5000,
        })
        .await
        .map_err(|s| fleet::registry_error("multicasting", &s))?
        .into_inner())
}

struct MulticastFigures {
    call: Latency,
    last: Latency,
    delivered_pct: f64,
    reported_delivered_pct: f64,
    duplicates: u64,
}

async fn measure_multicast(
    client: &Client,
    group: &str,
    tally: &Tally,
    rounds: usize,
) -> Result<MulticastFigures, BenchError> {
    let (mut call, mut last) = (histogram(), histogram());
    let receivers = tally.len();
    let (mut arrived, mut reported) = (0usize, 0usize);
    for round in 0..rounds {
        let sent = Instant::now();
        let response = multicast(client, group, round).await?;
        record(&mut call, sent.elapsed());
        reported += response.delivered_count as usize;
        let deadline = sent + ROUND_WAIT;
        let (count, latest) = loop {
            let (count, latest) = arrivals(tally, round);
            if count == receivers || Instant::now() > deadline {
                break (count, latest);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        arrived += count;
        if let Some(latest) = latest {
            record(&mut last, latest.saturating_duration_since(sent));
        }
    }
    let duplicates = tally
        .iter()
        .map(|seen| seen.lock().expect("tally lock").duplicates)
        .sum();
    let expected = (receivers * rounds) as f64;
    Ok(MulticastFigures {
        call: Latency::of(&call),
        last: Latency::of(&last),
        delivered_pct: 100.0 * arrived as f64 / expected,
        reported_delivered_pct: 100.0 * reported as f64 / expected,
        duplicates,
    })
}

/// How many receivers have round `round`, and when the last of them got it.
fn arrivals(tally: &Tally, round: usize) -> (usize, Option<Instant>) {
    let mut count = 0;
    let mut latest = None;
    for seen in tally.iter() {
        let seen = seen.lock().expect("tally lock");
        if let Some(Some(at)) = seen.arrivals.get(round) {
            count += 1;
            latest = latest.max(Some(*at));
        }
    }
    (count, latest)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}
