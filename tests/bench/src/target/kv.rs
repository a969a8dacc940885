//! The KeyValue target: request `seq` is a Get or a Set (by `--get-ratio`)
//! of one key of the key space, both chosen by hashing `seq`, so every path
//! of a run sends the same sequence. Every key is written before measuring,
//! so Gets hit. With `--backend redis` the `redis` path sends the same
//! sequence as GET/SET straight to Redis, same keys, same values; with
//! `--backend redis-cluster` through the redis crate's cluster client,
//! which sends each key to the master serving its slot, as the pattern's
//! own cluster client does.

use prism_proto::{
    keyvalue::v1::{
        DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
        ScanRequest, ScanResponse, SetRequest, SetResponse,
        key_value_client::KeyValueClient,
        key_value_server::{KeyValue, KeyValueServer},
    },
    limits::MAX_MESSAGE_BYTES,
};
use tokio::task::JoinSet;
use tonic::{Request, Response, Status, service::Routes, transport::Channel};

use crate::{
    BenchError,
    config::{Backend, KvSettings},
    load::Req,
    stats::code_name,
    transport::{GrpcPool, RedisPool, redis_code_name},
};

/// Sets in flight at once while pre-populating.
const POPULATE_CONCURRENCY: u64 = 32;
/// MemStore's default capacity; the bench's own proxy raises it to fit `--keys`.
const MEMSTORE_DEFAULT_MAX_KEYS: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get(u64),
    Set(u64),
}

pub(crate) struct KvTarget {
    settings: KvSettings,
    value: Vec<u8>,
    /// The Redis of `--backend redis` (or every node of the Redis Cluster
    /// of `redis-cluster`), once it is up.
    redis_urls: Vec<String>,
}

impl KvTarget {
    pub(crate) fn new(settings: KvSettings) -> Self {
        let value = (0..settings.value_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        Self {
            settings,
            value,
            redis_urls: Vec::new(),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        self.settings.backend
    }

    pub(crate) fn set_redis_urls(&mut self, urls: &[String]) {
        self.redis_urls = urls.to_vec();
    }

    pub(crate) fn redis_urls(&self) -> &[String] {
        &self.redis_urls
    }

    /// `prism-redis` on Redis or a Redis Cluster, else `prism-memstore`
    /// (the flags refuse NATS for KeyValue).
    pub(crate) fn pattern_binary(&self) -> &'static str {
        if self.settings.backend.is_redis() {
            "prism-redis"
        } else {
            "prism-memstore"
        }
    }

    /// The Redis pattern's config: where Redis is, or the cluster's nodes
    /// in `cluster`.
    fn redis_config(&self) -> serde_json::Value {
        if self.settings.backend == Backend::RedisCluster {
            serde_json::json!({ "cluster": self.redis_urls })
        } else {
            let address = self.redis_urls.first().map_or("", String::as_str);
            serde_json::json!({ "address": address })
        }
    }

    /// The config of the pattern run by hand on the `pattern` path; `None`:
    /// its defaults.
    pub(crate) fn pattern_config(&self) -> Option<serde_json::Value> {
        self.settings
            .backend
            .is_redis()
            .then(|| self.redis_config())
    }

    pub(crate) fn describe(&self) -> String {
        let get = (self.settings.get_ratio * 100.0).round();
        let backend = self.settings.backend.title();
        format!(
            "Get {get}% / Set {}%, {}-byte values, {} keys, on {backend}",
            100.0 - get,
            self.settings.value_size,
            self.settings.keys
        )
    }

    /// The operation of request `seq`.
    pub(crate) fn op(&self, seq: u64) -> Op {
        let key = splitmix64(seq) % self.settings.keys;
        // 53 random bits as a fraction in [0, 1).
        let draw = (splitmix64(seq ^ 0x5bd1_e995_5bd1_e995) >> 11) as f64 / (1u64 << 53) as f64;
        if draw < self.settings.get_ratio {
            Op::Get(key)
        } else {
            Op::Set(key)
        }
    }

    pub(crate) fn key(index: u64) -> String {
        format!("bench-{index:010}")
    }

    pub(crate) fn proxy_config_yaml(&self, namespace: &str) -> String {
        // A JSON string is a valid YAML double-quoted scalar, and a JSON
        // object a valid YAML flow mapping.
        let name = serde_json::to_string(namespace).expect("a string serializes");
        let (backend, config) = if self.settings.backend.is_redis() {
            ("redis", self.redis_config())
        } else {
            let max_keys = MEMSTORE_DEFAULT_MAX_KEYS.max(self.settings.keys.saturating_mul(2));
            ("memstore", serde_json::json!({ "max_keys": max_keys }))
        };
        format!(
            "namespaces:\n  - name: {name}\n    pattern: keyvalue\n    backend: {backend}\n    config: {config}\n"
        )
    }

    pub(crate) fn floor_routes(&self) -> Routes {
        Routes::new(
            KeyValueServer::new(FloorKv {
                value: self.value.clone(),
            })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    pub(crate) async fn call(&self, pool: &GrpcPool, req: Req) -> Result<(), &'static str> {
        let mut client = client(pool.channel(req.conn));
        let result = match self.op(req.seq) {
            Op::Get(key) => client
                .get(pool.call_request(
                    req.seq,
                    GetRequest {
                        key: Self::key(key),
                    },
                ))
                .await
                .map(drop),
            Op::Set(key) => client
                .set(pool.call_request(
                    req.seq,
                    SetRequest {
                        key: Self::key(key),
                        value: self.value.clone(),
                        ttl_seconds: 0,
                    },
                ))
                .await
                .map(drop),
        };
        result.map_err(|status| code_name(status.code()))
    }

    /// The same operation as [`KvTarget::call`] as a Redis GET or SET.
    pub(crate) async fn call_redis(&self, pool: &RedisPool, req: Req) -> Result<(), &'static str> {
        let mut conn = pool.connection(req.conn);
        let command = match self.op(req.seq) {
            Op::Get(key) => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(Self::key(key));
                cmd
            }
            Op::Set(key) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(Self::key(key)).arg(&self.value);
                cmd
            }
        };
        match tokio::time::timeout(
            pool.timeout(),
            command.query_async::<redis::Value>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(redis_code_name(&e)),
            Err(_) => Err("DEADLINE_EXCEEDED"),
        }
    }

    /// SETs every key of the key space straight into Redis, a few dozen at
    /// a time.
    pub(crate) async fn populate_redis(&self, pool: &RedisPool) -> Result<(), BenchError> {
        let keys = self.settings.keys;
        let mut tasks = JoinSet::new();
        for lane in 0..POPULATE_CONCURRENCY.min(keys) {
            let mut conn = pool.connection(lane as usize);
            let value = self.value.clone();
            tasks.spawn(async move {
                for i in (lane..keys).step_by(POPULATE_CONCURRENCY as usize) {
                    let key = Self::key(i);
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(|e| BenchError::Populate {
                            key,
                            code: redis_code_name(&e),
                            message: e.to_string(),
                        })?;
                }
                Ok::<(), BenchError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| BenchError::Load(format!("populate task: {e}")))??;
        }
        Ok(())
    }

    /// Sets every key of the key space, a few dozen at a time.
    pub(crate) async fn populate(&self, pool: &GrpcPool) -> Result<(), BenchError> {
        let keys = self.settings.keys;
        let mut tasks = JoinSet::new();
        for lane in 0..POPULATE_CONCURRENCY.min(keys) {
            let mut client = client(pool.channel(lane as usize));
            let requests: Vec<_> = (lane..keys)
                .step_by(POPULATE_CONCURRENCY as usize)
                .map(|i| {
                    pool.request(SetRequest {
                        key: Self::key(i),
                        value: self.value.clone(),
                        ttl_seconds: 0,
                    })
                })
                .collect();
            tasks.spawn(async move {
                for request in requests {
                    let key = request.get_ref().key.clone();
                    client
                        .set(request)
                        .await
                        .map_err(|status| BenchError::Populate {
                            key,
                            code: code_name(status.code()),
                            message: status.message().to_string(),
                        })?;
                }
                Ok::<(), BenchError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| BenchError::Load(format!("populate task: {e}")))??;
        }
        Ok(())
    }
}

fn client(channel: Channel) -> KeyValueClient<Channel> {
    KeyValueClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// SplitMix64: a fast, well-mixed hash of a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The floor's KeyValue: Get returns a fixed value, Set accepts and drops.
/// The same messages as the real service, none of the work.
struct FloorKv {
    value: Vec<u8>,
}

#[tonic::async_trait]
impl KeyValue for FloorKv {
    async fn set(&self, _: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        Ok(Response::new(SetResponse {}))
    }

    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Ok(Response::new(GetResponse {
            value: self.value.clone(),
        }))
    }

    async fn delete(&self, _: Request<DeleteRequest>) -> Result<Response<DeleteResponse>, Status> {
        Err(Status::unimplemented("the floor serves Get and Set only"))
    }

    async fn exists(&self, _: Request<ExistsRequest>) -> Result<Response<ExistsResponse>, Status> {
        Err(Status::unimplemented("the floor serves Get and Set only"))
    }

    async fn scan(&self, _: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        Err(Status::unimplemented("the floor serves Get and Set only"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(get_ratio: f64, keys: u64) -> KvTarget {
        KvTarget::new(KvSettings {
            get_ratio,
            value_size: 16,
            keys,
            backend: Backend::Memstore,
        })
    }

    #[test]
    fn the_mix_follows_the_ratio_and_stays_in_the_key_space() {
        let t = target(0.9, 50);
        let ops: Vec<Op> = (0..100_000).map(|s| t.op(s)).collect();
        let gets = ops.iter().filter(|op| matches!(op, Op::Get(_))).count();
        assert!((89_000..=91_000).contains(&gets), "{gets} gets");
        assert!(ops.iter().all(|op| match op {
            Op::Get(k) | Op::Set(k) => *k < 50,
        }));
        // Every key is touched.
        let mut seen = [false; 50];
        for op in &ops {
            let (Op::Get(k) | Op::Set(k)) = op;
            seen[*k as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn all_gets_and_all_sets_and_the_same_sequence_every_time() {
        assert!((0..10_000).all(|s| matches!(target(1.0, 10).op(s), Op::Get(_))));
        assert!((0..10_000).all(|s| matches!(target(0.0, 10).op(s), Op::Set(_))));
        let (a, b) = (target(0.5, 1000), target(0.5, 1000));
        assert!((0..1000).all(|s| a.op(s) == b.op(s)));
    }

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(target(1.0, 1).value.len(), 16);
        assert_eq!(KvTarget::key(7), "bench-0000000007");
    }

    #[test]
    fn the_proxy_config_fits_the_key_space() {
        let yaml = target(1.0, 500_000).proxy_config_yaml("bench");
        assert!(yaml.contains("name: \"bench\""), "{yaml}");
        assert!(yaml.contains(r#"config: {"max_keys":1000000}"#), "{yaml}");
        assert!(
            target(1.0, 10)
                .proxy_config_yaml("d")
                .contains("\"max_keys\":100000")
        );
    }

    #[test]
    fn the_redis_backend_names_its_address() {
        let mut t = KvTarget::new(KvSettings {
            get_ratio: 1.0,
            value_size: 16,
            keys: 10,
            backend: Backend::Redis,
        });
        t.set_redis_urls(&["redis://127.0.0.1:7000".to_string()]);
        let yaml = t.proxy_config_yaml("bench");
        assert!(yaml.contains("backend: redis"), "{yaml}");
        assert!(
            yaml.contains(r#"config: {"address":"redis://127.0.0.1:7000"}"#),
            "{yaml}"
        );
        assert_eq!(t.pattern_binary(), "prism-redis");
        assert_eq!(
            t.pattern_config(),
            Some(serde_json::json!({"address": "redis://127.0.0.1:7000"}))
        );
    }

    #[test]
    fn the_redis_cluster_backend_names_every_node_in_cluster() {
        let mut t = KvTarget::new(KvSettings {
            get_ratio: 0.9,
            value_size: 16,
            keys: 10,
            backend: Backend::RedisCluster,
        });
        let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"].map(String::from);
        t.set_redis_urls(&nodes);
        let yaml = t.proxy_config_yaml("bench");
        assert!(yaml.contains("backend: redis"), "{yaml}");
        assert!(
            yaml.contains(
                r#"config: {"cluster":["redis://127.0.0.1:7000","redis://127.0.0.1:7001"]}"#
            ),
            "{yaml}"
        );
        assert!(!yaml.contains("address"), "{yaml}");
        assert_eq!(t.pattern_binary(), "prism-redis");
        assert_eq!(
            t.pattern_config(),
            Some(serde_json::json!({"cluster": nodes}))
        );
        assert!(
            t.describe().ends_with("on Redis Cluster"),
            "{}",
            t.describe()
        );
    }
}
