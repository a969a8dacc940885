//! The identities the registry bench registers, and the receivers it
//! attaches: metadata varied enough that filters select a fraction, and a
//! tally of what each receiver got (arrival time per round, duplicates).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Instant,
};

use prism_proto::{
    json,
    registry::v1::{
        ReceiveRequest, RegisterRequest, multicast_registry_client::MulticastRegistryClient,
    },
};
use serde_json::{Value, json};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use crate::BenchError;

/// The namespace the bench's proxy serves the registry on.
pub const NAMESPACE: &str = "bench-registry";
/// The group every measured target is in (and nothing else).
pub const TARGET_GROUP: &str = "targets";
/// The identity the one-target baseline multicasts to.
pub const SOLO: &str = "solo";
/// The round number of warm-up messages, which are not counted.
pub const WARM_UP: usize = usize::MAX;
/// Streams per connection: under the proxy's `max_concurrent_streams`.
const STREAMS_PER_CONNECTION: usize = 100;

pub type Client = MulticastRegistryClient<InterceptedService<Channel, Namespace>>;

#[derive(Clone)]
pub struct Namespace(MetadataValue<Ascii>);

impl Interceptor for Namespace {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("x-prism-namespace", self.0.clone());
        Ok(request)
    }
}

/// A client of the bench namespace on a connection of its own.
pub async fn client(addr: std::net::SocketAddr) -> Result<Client, BenchError> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid authority")
        .connect()
        .await
        .map_err(|source| BenchError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let namespace = Namespace(MetadataValue::from_static(NAMESPACE));
    Ok(
        MulticastRegistryClient::with_interceptor(channel, namespace)
            .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES),
    )
}

pub fn identity(i: usize) -> String {
    format!("dev-{i:06}")
}

/// Identity `i`'s metadata; the first `targets` are the measured group.
pub fn metadata(i: usize, targets: usize) -> Value {
    const KINDS: [&str; 4] = ["sensor", "actuator", "camera", "hub"];
    json!({
        "type": KINDS[i % 4],
        "floor": (i / 4) % 20,
        "zone": format!("z{}", i % 7),
        "firmware": format!("1.{}.0", i % 5),
        "battery": (i * 37) % 100,
        "group": if i < targets { TARGET_GROUP } else { "other" },
        "site": {"building": format!("b{}", i % 3), "row": i % 11},
    })
}

/// The filter Enumerate is measured with: selective (about 2% of the
/// identities), on three fields, one nested.
pub fn enumerate_filter() -> Value {
    json!({"type": "sensor", "floor": {"$gte": 10}, "battery": {"$lt": 50}, "site.building": {"$ne": "b2"}})
}

/// Registers every identity (and the baseline's `solo`) with `concurrency`
/// calls in flight; returns registrations a second.
pub async fn register_all(
    client: &Client,
    identities: usize,
    targets: usize,
    concurrency: usize,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client = client.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (identity, metadata) = if i < identities {
                    (identity(i), metadata(i, targets))
                } else if i == identities {
                    (SOLO.to_string(), json!({"group": SOLO}))
                } else {
                    return Ok::<(), BenchError>(());
                };
                client
                    .register(RegisterRequest {
                        identity: identity.clone(),
                        metadata: Some(json::to_struct(&metadata)),
                        ttl_seconds: 3600,
                    })
                    .await
                    .map_err(|s| registry_error(&format!("registering {identity}"), &s))?;
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| BenchError::Load(format!("register task: {e}")))??;
    }
    Ok((identities + 1) as f64 / started.elapsed().as_secs_f64())
}

pub fn registry_error(what: &str, status: &tonic::Status) -> BenchError {
    BenchError::Load(format!("{what}: {:?}: {}", status.code(), status.message()))
}

/// What one receiver saw.
#[derive(Default)]
pub struct Seen {
    /// Arrival time of each round's message (index = round), first copy.
    pub arrivals: Vec<Option<Instant>>,
    pub ids: HashSet<String>,
    pub duplicates: u64,
}

/// The receivers' shared tally, one entry per receiver.
pub type Tally = Arc<Vec<Mutex<Seen>>>;

/// Attaches a receiver to each identity in `identities` (spread over
/// connections), recording arrivals by the round number in the payload's
/// first 8 bytes.
pub async fn attach(
    addr: std::net::SocketAddr,
    identities: &[String],
) -> Result<Tally, BenchError> {
    let tally: Tally = Arc::new(identities.iter().map(|_| Mutex::default()).collect());
    for (chunk_index, chunk) in identities.chunks(STREAMS_PER_CONNECTION).enumerate() {
        let mut client = client(addr).await?;
        for (offset, identity) in chunk.iter().enumerate() {
            let slot = chunk_index * STREAMS_PER_CONNECTION + offset;
            let mut stream = client
                .receive(ReceiveRequest {
                    identity: identity.clone(),
                })
                .await
                .map_err(|s| registry_error(&format!("receiving as {identity}"), &s))?
                .into_inner();
            let tally = tally.clone();
            tokio::spawn(async move {
                while let Ok(Some(message)) = stream.message().await {
                    let now = Instant::now();
                    let Some(round) = round_of(&message.payload).filter(|&r| r != WARM_UP) else {
                        continue;
                    };
                    let mut seen = tally[slot].lock().expect("tally lock");
                    if !seen.ids.insert(message.message_id) {
                        seen.duplicates += 1;
                        continue;
                    }
                    if seen.arrivals.len() <= round {
                        seen.arrivals.resize(round + 1, None);
                    }
                    seen.arrivals[round].get_or_insert(now);
                }
            });
        }
    }
    Ok(tally)
}

/// The payload of round `round`: its number, then padding.
pub fn payload(round: usize) -> Vec<u8> {
    let mut payload = (round as u64).to_be_bytes().to_vec();
    payload.resize(64, 0);
    payload
}

fn round_of(payload: &[u8]) -> Option<usize> {
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_be_bytes(bytes)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_proto::filter::Filter;

    #[test]
    fn payloads_carry_their_round() {
        assert_eq!(round_of(&payload(0)), Some(0));
        assert_eq!(round_of(&payload(4242)), Some(4242));
        assert_eq!(round_of(b"short"), None);
    }

    #[test]
    fn the_enumerate_filter_is_selective_and_targets_are_a_group() {
        let filter = Filter::parse(&enumerate_filter()).unwrap();
        let matched = (0..10_000)
            .filter(|&i| filter.matches(&metadata(i, 1000)))
            .count();
        assert!((50..=500).contains(&matched), "{matched} of 10000");
        let group = Filter::parse(&json!({"group": TARGET_GROUP})).unwrap();
        let targets = (0..10_000)
            .filter(|&i| group.matches(&metadata(i, 1000)))
            .count();
        assert_eq!(targets, 1000);
    }
}
