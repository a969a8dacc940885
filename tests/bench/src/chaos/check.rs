//! The soak's end checks: every owed key read back (Redis straight from
//! the server and through the proxy; MemStore through the proxy), and the
//! JetStream deliveries still owed waited for.

use std::time::{Duration, Instant};

use prism_proto::keyvalue::v1::{GetRequest, key_value_client::KeyValueClient};
use tonic::{Code, transport::Channel};

use super::{
    MEMSTORE_NS, REDIS_NS,
    inject::Injector,
    ledger::{KvLedger, LostWrite},
    load::{self, Shared},
    report::{KvCheck, LIST_AT_MOST, StreamCheck},
};

/// How long the end check waits for a namespace to serve again.
const HEAL_WAIT: Duration = Duration::from_secs(30);

/// Reads `key` through the proxy: `Ok(None)` when it is not there.
async fn get_through_proxy(
    client: &mut KeyValueClient<Channel>,
    namespace: &str,
    key: &str,
) -> Result<Option<String>, tonic::Status> {
    let request = load::request(
        namespace,
        GetRequest {
            key: key.to_string(),
        },
    );
    match client.get(request).await {
        Ok(reply) => Ok(Some(
            String::from_utf8_lossy(&reply.into_inner().value).into_owned(),
        )),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// Waits until the namespace answers a Get again (it may still be healing
/// from the last fault).
async fn wait_serving(client: &mut KeyValueClient<Channel>, namespace: &str) -> bool {
    prism_harness::wait::poll(HEAL_WAIT, || {
        let mut client = client.clone();
        async move {
            get_through_proxy(&mut client, namespace, "chaos-probe")
                .await
                .ok()
                .map(drop)
        }
    })
    .await
    .is_some()
}

/// Every key owed, read through the proxy: how many reads failed (all,
/// when the namespace does not serve again), and the values that were not
/// the ones owed.
async fn check_through_proxy(
    ledger: &KvLedger,
    keys: &[String],
    data: &Channel,
    namespace: &str,
) -> (u64, Vec<LostWrite>) {
    let mut client = KeyValueClient::new(data.clone());
    if !wait_serving(&mut client, namespace).await {
        return (keys.len() as u64, Vec::new());
    }
    let mut failed = 0;
    let mut lost = Vec::new();
    for key in keys {
        match get_through_proxy(&mut client, namespace, key).await {
            Ok(found) => lost.extend(ledger.check(key, found.as_deref())),
            Err(_) => failed += 1,
        }
    }
    (failed, lost)
}

pub async fn check_redis(shared: &Shared, data: &Channel, injector: &Injector) -> KvCheck {
    let ledger = std::mem::take(&mut *shared.redis.lock().expect("ledger"));
    let keys = ledger.owed_keys();
    let mut check = KvCheck {
        acknowledged_writes: ledger.acked_writes(),
        keys_checked: keys.len() as u64,
        ..KvCheck::default()
    };
    // Straight from Redis: what is durable, whatever the proxy's state.
    let direct = read_redis(&injector.redis.url(), &keys).await;
    let mut lost = Vec::new();
    match direct {
        Ok(values) => {
            for (key, found) in keys.iter().zip(values) {
                if let Some(loss) = ledger.check(key, found.as_deref()) {
                    lost.push(loss);
                }
            }
        }
        Err(e) => {
            eprintln!("prism-bench chaos: cannot read Redis directly: {e}");
            check.lost = keys.len() as u64;
        }
    }
    check.lost += lost.len() as u64;
    lost.truncate(LIST_AT_MOST);
    check.lost_examples = lost;
    // A wrong value is already a loss above; here only whether the proxy
    // serves the namespace again.
    check.unreadable_through_proxy = check_through_proxy(&ledger, &keys, data, REDIS_NS).await.0;
    check
}

async fn read_redis(url: &str, keys: &[String]) -> Result<Vec<Option<String>>, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut values = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let got: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query_async(&mut conn).await?;
        values.extend(got);
    }
    Ok(values)
}

pub async fn check_memstore(shared: &Shared, data: &Channel) -> KvCheck {
    let ledger = std::mem::take(&mut *shared.memstore.lock().expect("ledger"));
    let keys = ledger.owed_keys();
    let (unreadable, mut lost) = check_through_proxy(&ledger, &keys, data, MEMSTORE_NS).await;
    let count = lost.len() as u64;
    lost.truncate(LIST_AT_MOST);
    KvCheck {
        acknowledged_writes: ledger.acked_writes(),
        keys_checked: keys.len() as u64,
        lost: count,
        lost_examples: lost,
        unreadable_through_proxy: unreadable,
    }
}

/// Waits until every acknowledged publish was delivered, or the timeout.
pub async fn drain_jetstream(shared: &Shared, timeout: Duration) -> StreamCheck {
    let start = Instant::now();
    let missing = |shared: &Shared| {
        shared
            .jetstream
            .lock()
            .map(|l| l.missing().len())
            .unwrap_or(0)
    };
    prism_harness::wait::poll(timeout, || {
        let done = missing(shared) == 0;
        async move { done.then_some(()) }
    })
    .await;
    let drain_ms = start.elapsed().as_millis() as u64;
    let ledger = shared.jetstream.lock().expect("ledger");
    let missing = ledger.missing();
    StreamCheck {
        acknowledged_publishes: ledger.acked_count(),
        failed_publishes: ledger.failed_count(),
        lost: missing.len() as u64,
        lost_examples: missing
            .iter()
            .take(LIST_AT_MOST)
            .map(|(seq, id)| format!("chaos-{seq} ({id})"))
            .collect(),
        duplicates: ledger.duplicates(),
        delivered_unacknowledged: ledger.delivered_unacknowledged(),
        drain_ms,
    }
}
