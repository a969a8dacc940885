//! Command-line flags and their translation into a validated [`Config`].
//! `prism-bench <target> [flags]`: `kv` or `pubsub`; `chaos` and
//! `registry` have flags of their own (`chaos::args`, `registry::args`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::{
    BenchError, Config,
    auth::{AuthSettings, Secret, TokenAlg},
    chaos::args::ChaosArgs,
    config::{
        Backend, Endpoints, KvSettings, LoadSettings, Mode, Output, PubsubSettings, TargetSettings,
    },
    paths,
    registry::args::RegistryArgs,
    server_process::{Kind, parse_cluster_urls},
    target::pubsub::{MAX_BATCH, STAMP_BYTES},
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "prism-bench",
    version,
    about = "Open-loop gRPC load generator: Prism through the proxy, direct to the pattern, and a bare gRPC floor"
)]
pub struct Args {
    #[command(subcommand)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TargetArgs {
    /// KeyValue: a Get/Set mix over a key space written before measuring.
    Kv {
        #[command(flatten)]
        kv: KvArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// PubSub: publishers and subscribers on one topic; publish call latency,
    /// publish→deliver latency, messages per second, losses.
    Pubsub {
        #[command(flatten)]
        pubsub: PubsubArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The soak: mixed KeyValue (MemStore, Redis with AOF) and JetStream load
    /// while patterns are killed, Redis and NATS restarted, namespaces
    /// reloaded and the config rewritten; checks nothing acknowledged was
    /// lost (see RELIABILITY.md).
    Chaos(ChaosArgs),
    /// The multicast registry: register many identities, Enumerate with a
    /// filter, Multicast to many live receivers; against a point Get and a
    /// one-target Multicast in the same run.
    Registry(RegistryArgs),
    /// The `proxy-traced` path's OTLP sink, run by the bench in a process
    /// of its own (see `sink`).
    #[command(hide = true)]
    OtlpSink,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct KvArgs {
    /// Fraction of requests that are Gets, 0..=1; the rest are Sets.
    #[arg(long, default_value_t = 0.9)]
    pub get_ratio: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Size of the key space; every key is written before measuring so Gets hit.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// The store behind the pattern: `memstore`, `redis` or `redis-cluster`
    /// (which add the `redis` path, straight to Redis, to compare with).
    #[arg(long, value_enum, default_value_t = Backend::Memstore)]
    pub backend: Backend,
    /// A running Redis (`redis://HOST:PORT`) for `--backend redis`; default:
    /// start `redis-server` ($REDIS_SERVER or PATH) on a free port.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// A running Redis Cluster's nodes (`redis://HOST:PORT,…`) for
    /// `--backend redis-cluster`; default: start three masters and three
    /// replicas ($REDIS_SERVER, $REDIS_CLI or PATH) on free ports.
    #[arg(long, value_name = "URL,URL,…")]
    pub redis_cluster: Option<String>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct PubsubArgs {
    /// Subscribers to the topic, each on its own connection and stream.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Bytes per message (the first 16 carry its sequence number and send time).
    #[arg(long, default_value_t = 1024)]
    pub payload_size: usize,
    /// Messages per publish call: 1 sends unary `Publish` calls, more sends
    /// `PublishBatch` calls of that many (on the `nats` path: that many
    /// publishes, then one flush). `--rate` stays in messages per second.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// The topic published and subscribed to; default `bench.<PID>`.
    #[arg(long)]
    pub topic: Option<String>,
    /// The broker behind the pattern: `memstore`, `nats` or `nats-cluster`
    /// (core NATS, which add the `nats` path, straight to NATS, to compare
    /// with; on a cluster it publishes to the first node and subscribes on
    /// the second).
    #[arg(long, value_enum, default_value_t = Backend::Memstore)]
    pub backend: Backend,
    /// A running NATS (`nats://HOST:PORT`) for `--backend nats`; default:
    /// start `nats-server` ($NATS_SERVER or PATH) on a free port.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// A running NATS cluster's nodes (`nats://HOST:PORT,…`) for `--backend
    /// nats-cluster`; default: start three routed nodes on free ports.
    #[arg(long, value_name = "URL,URL,…")]
    pub nats_cluster: Option<String>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct CommonArgs {
    /// Open loop: requests per second on a fixed schedule (the default, at
    /// 1000); for `pubsub`, messages per second.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<u64>,
    /// Closed loop: this many requests in flight, each sent when the last returns.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Measured time per path, e.g. `10s`, `1500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load before measuring starts, per path.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// HTTP/2 connections to spread requests over.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Per-request deadline.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Open loop: most requests outstanding before the generator waits
    /// (waiting still counts in latency).
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Namespace sent in `x-prism-namespace`.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Paths to measure, in order: proxy, proxy-traced, proxy-auth,
    /// proxy-auth-fresh, pattern, redis, nats, floor. Default: every one of
    /// proxy, pattern, floor (kv only), and redis or nats with that
    /// `--backend`, that can run.
    #[arg(long)]
    pub paths: Option<String>,
    /// A running proxy's data address; default: start one.
    #[arg(long)]
    pub proxy: Option<SocketAddr>,
    /// A running pattern's address; default: start one.
    #[arg(long)]
    pub pattern: Option<SocketAddr>,
    /// Folder with prism-proxy and the pattern binaries; default: beside prism-bench.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show a live view while running.
    #[arg(long)]
    pub tui: bool,
    /// What the issuer of the `proxy-auth` paths signs with.
    #[arg(long, value_enum, default_value_t = TokenAlg::Rs256)]
    pub token_alg: TokenAlg,
    /// Send `authorization: Bearer TOKEN` on every gRPC path (for a proxy
    /// with auth on given by `--proxy`); never printed.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<Secret>,
    /// The same, the token read from a file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

impl Args {
    /// Checks the flags and builds the run's [`Config`]. Fails with
    /// [`BenchError::Usage`] naming the flag.
    pub fn into_config(self) -> Result<Config, BenchError> {
        match self.target {
            TargetArgs::Kv { kv, common } => {
                let redis = kv.redis.clone();
                let cluster = kv
                    .redis_cluster
                    .as_deref()
                    .map(|list| parse_cluster_urls(Kind::Redis, "--redis-cluster", list))
                    .transpose()?;
                let target = TargetSettings::Kv(kv.into_settings()?);
                let mut config = common.into_config(target, 1)?;
                config.endpoints.redis = redis;
                config.endpoints.cluster = cluster;
                Ok(config)
            }
            TargetArgs::Pubsub { pubsub, common } => {
                let nats = pubsub.nats.clone();
                let cluster = pubsub
                    .nats_cluster
                    .as_deref()
                    .map(|list| parse_cluster_urls(Kind::Nats, "--nats-cluster", list))
                    .transpose()?;
                let settings = pubsub.into_settings()?;
                let batch = settings.batch;
                let mut config = common.into_config(TargetSettings::Pubsub(settings), batch)?;
                config.endpoints.nats = nats;
                config.endpoints.cluster = cluster;
                Ok(config)
            }
            TargetArgs::Chaos(_) => usage("`chaos` runs with chaos::run, not as a measured target"),
            TargetArgs::Registry(_) => {
                usage("`registry` runs with registry::run, not as a measured target")
            }
            TargetArgs::OtlpSink => usage("`otlp-sink` serves a trace sink, it measures nothing"),
        }
    }
}

impl PubsubArgs {
    fn into_settings(self) -> Result<PubsubSettings, BenchError> {
        if self.subscribers == 0 {
            return usage("--subscribers must be at least 1");
        }
        if self.payload_size < STAMP_BYTES {
            return usage(format!(
                "--payload-size must be at least {STAMP_BYTES} bytes (the sequence number and send time)"
            ));
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return usage(format!("--batch must be between 1 and {MAX_BATCH}"));
        }
        if self.backend.is_redis() {
            return usage(format!(
                "--backend {} serves KeyValue only (pubsub: memstore, nats or nats-cluster)",
                self.backend.flag_value()
            ));
        }
        if self.nats.is_some() && self.backend != Backend::Nats {
            return usage("--nats needs --backend nats");
        }
        if self.nats_cluster.is_some() && self.backend != Backend::NatsCluster {
            return usage("--nats-cluster needs --backend nats-cluster");
        }
        if let Some(url) = &self.nats {
            Kind::Nats.check_url(url)?;
        }
        let topic = self
            .topic
            .unwrap_or_else(|| format!("bench.{}", std::process::id()));
        if let Err(err) = prism_proto::topic::check("--topic", &topic, false) {
            return usage(err.to_string());
        }
        Ok(PubsubSettings {
            subscribers: self.subscribers,
            payload_size: self.payload_size,
            batch: self.batch,
            topic,
            backend: self.backend,
        })
    }
}

impl KvArgs {
    fn into_settings(self) -> Result<KvSettings, BenchError> {
        if !(0.0..=1.0).contains(&self.get_ratio) {
            return usage(format!(
                "--get-ratio {} is not within 0..=1",
                self.get_ratio
            ));
        }
        if self.keys == 0 {
            return usage("--keys must be at least 1");
        }
        if self.backend.is_nats() {
            return usage(format!(
                "--backend {} serves PubSub only (kv: memstore, redis or redis-cluster)",
                self.backend.flag_value()
            ));
        }
        if self.redis.is_some() && self.backend != Backend::Redis {
            return usage("--redis needs --backend redis");
        }
        if self.redis_cluster.is_some() && self.backend != Backend::RedisCluster {
            return usage("--redis-cluster needs --backend redis-cluster");
        }
        if let Some(url) = &self.redis {
            Kind::Redis.check_url(url)?;
        }
        Ok(KvSettings {
            get_ratio: self.get_ratio,
            value_size: self.value_size,
            keys: self.keys,
            backend: self.backend,
        })
    }
}

impl CommonArgs {
    /// `batch`: items per call (PubSub messages); `--rate` counts items, the
    /// open loop's grid counts calls.
    fn into_config(self, target: TargetSettings, batch: usize) -> Result<Config, BenchError> {
        let batch = batch as u64;
        let mode = match (self.rate, self.concurrency) {
            (Some(0), _) => return usage("--rate must be at least 1"),
            (_, Some(0)) => return usage("--concurrency must be at least 1"),
            (Some(rate), _) if !rate.is_multiple_of(batch) => {
                return usage(format!(
                    "--rate {rate} is not a multiple of --batch {batch} (rate counts messages, sent {batch} per call)"
                ));
            }
            (Some(rate), _) => Mode::OpenLoop { rate: rate / batch },
            (None, Some(concurrency)) => Mode::ClosedLoop { concurrency },
            (None, None) => Mode::OpenLoop {
                rate: 1000u64.div_ceil(batch),
            },
        };
        if self.duration.is_zero() {
            return usage("--duration must be more than 0");
        }
        if self.connections == 0 {
            return usage("--connections must be at least 1");
        }
        if self.max_in_flight == 0 {
            return usage("--max-in-flight must be at least 1");
        }
        if self.timeout.is_zero() {
            return usage("--timeout must be more than 0");
        }
        if self.namespace.is_empty() || !self.namespace.is_ascii() {
            return usage("--namespace must be non-empty ASCII");
        }
        let paths = self.paths.as_deref().map(paths::parse_list).transpose()?;
        let token = match (self.token, &self.token_file) {
            (Some(token), _) => Some(token.checked("--token")?),
            (None, Some(file)) => {
                let what = format!("--token-file {}", file.display());
                let raw = std::fs::read_to_string(file)
                    .map_err(|e| BenchError::Usage(format!("{what}: {e}")))?;
                Some(Secret::new(&raw, &what)?)
            }
            (None, None) => None,
        };
        let bin_dir = match self.bin_dir {
            Some(dir) => dir,
            None => own_dir()?,
        };
        Ok(Config {
            target,
            load: LoadSettings {
                mode,
                duration: self.duration,
                warmup: self.warmup,
                connections: self.connections,
                timeout: self.timeout,
                max_in_flight: self.max_in_flight,
            },
            namespace: self.namespace,
            paths,
            endpoints: Endpoints {
                proxy: self.proxy,
                pattern: self.pattern,
                redis: None,
                nats: None,
                cluster: None,
                bin_dir,
            },
            output: if self.json {
                Output::Json
            } else {
                Output::Table
            },
            tui: self.tui,
            auth: AuthSettings {
                token_alg: self.token_alg,
                token,
            },
        })
    }
}

fn usage<T>(message: impl Into<String>) -> Result<T, BenchError> {
    Err(BenchError::Usage(message.into()))
}

/// The folder of the running executable: where the workspace's other
/// binaries are built.
pub(crate) fn own_dir() -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("locating prism-bench", e))?;
    Ok(exe.parent().map(PathBuf::from).unwrap_or_default())
}

/// Parses `250ms`, `10s`, `1.5s`, `2m`, `500us`: a number and a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` needs a unit: ms, s, m (or us, ns)"))?;
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: `{number}` is not a number"))?;
    let seconds = match unit {
        "ns" => value / 1e9,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ns, us, ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::PathKind;

    /// `prism-bench TARGET --bin-dir /nowhere ARGS`
    fn parse(target: &str, args: &[&str]) -> Result<Config, BenchError> {
        let mut argv = vec!["prism-bench", target, "--bin-dir", "/nowhere"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv).unwrap().into_config()
    }

    fn config(args: &[&str]) -> Result<Config, BenchError> {
        parse("kv", args)
    }

    fn pubsub(args: &[&str]) -> Result<Config, BenchError> {
        parse("pubsub", args)
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn defaults_are_an_open_loop_at_1000_rps_on_every_path() {
        let config = config(&[]).unwrap();
        assert_eq!(config.load.mode, Mode::OpenLoop { rate: 1000 });
        assert_eq!(config.load.duration, Duration::from_secs(10));
        assert_eq!(config.load.connections, 1);
        assert_eq!(config.namespace, "default");
        assert_eq!(config.paths, None);
        assert_eq!(
            config.target,
            TargetSettings::Kv(KvSettings {
                get_ratio: 0.9,
                value_size: 1024,
                keys: 10_000,
                backend: Backend::Memstore,
            })
        );
    }

    #[test]
    fn concurrency_is_a_closed_loop_and_conflicts_with_rate() {
        let config = config(&["--concurrency", "8", "--paths", "floor"]).unwrap();
        assert_eq!(config.load.mode, Mode::ClosedLoop { concurrency: 8 });
        assert_eq!(config.paths, Some(vec![PathKind::Floor]));
        assert!(
            Args::try_parse_from(["prism-bench", "kv", "--rate", "1", "--concurrency", "1"])
                .is_err()
        );
    }

    #[test]
    fn backend_redis_takes_a_running_redis() {
        let config = config(&["--backend", "redis", "--redis", "redis://127.0.0.1:7"]).unwrap();
        let TargetSettings::Kv(kv) = &config.target else {
            panic!("{:?}", config.target)
        };
        assert_eq!(kv.backend, Backend::Redis);
        assert_eq!(
            config.endpoints.redis.as_deref(),
            Some("redis://127.0.0.1:7")
        );
        assert!(Args::try_parse_from(["prism-bench", "kv", "--backend", "mongo"]).is_err());
    }

    #[test]
    fn cluster_backends_take_a_running_cluster() {
        let kv = config(&[
            "--backend",
            "redis-cluster",
            "--redis-cluster",
            "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
        ])
        .unwrap();
        assert!(matches!(&kv.target, TargetSettings::Kv(s) if s.backend == Backend::RedisCluster));
        assert_eq!(
            kv.endpoints.cluster.as_deref(),
            Some(
                &[
                    "redis://127.0.0.1:7000".to_string(),
                    "redis://127.0.0.1:7001".to_string()
                ][..]
            )
        );
        let started = pubsub(&["--backend", "nats-cluster"]).unwrap();
        assert!(
            matches!(&started.target, TargetSettings::Pubsub(s) if s.backend == Backend::NatsCluster)
        );
        assert_eq!(started.endpoints.cluster, None);
        for args in [
            &["--redis-cluster", "redis://127.0.0.1:1,redis://127.0.0.1:2"][..],
            &[
                "--backend",
                "redis",
                "--redis-cluster",
                "redis://127.0.0.1:1,redis://127.0.0.1:2",
            ],
            &[
                "--backend",
                "redis-cluster",
                "--redis-cluster",
                "redis://127.0.0.1:1",
            ],
            &[
                "--backend",
                "redis-cluster",
                "--redis",
                "redis://127.0.0.1:1",
            ],
            &["--backend", "nats-cluster"],
        ] {
            let err = config(args).unwrap_err();
            assert!(err.is_usage(), "{args:?}: {err}");
        }
        for args in [
            &["--backend", "redis-cluster"][..],
            &[
                "--backend",
                "nats",
                "--nats-cluster",
                "nats://127.0.0.1:1,nats://127.0.0.1:2",
            ],
            &[
                "--backend",
                "nats-cluster",
                "--nats-cluster",
                "redis://127.0.0.1:1,redis://127.0.0.1:2",
            ],
        ] {
            let err = pubsub(args).unwrap_err();
            assert!(err.is_usage(), "{args:?}: {err}");
        }
    }

    #[test]
    fn tokens_come_from_a_flag_or_a_file_and_are_never_echoed() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.auth.token_alg, TokenAlg::Rs256);
        assert!(defaults.auth.token.is_none());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "aaa.bbb.ccc\n").unwrap();
        let from_file = config(&["--token-file", file.to_str().unwrap()]).unwrap();
        let from_flag = config(&["--token", "aaa.bbb.ccc", "--token-alg", "es256"]).unwrap();
        assert_eq!(from_file.auth.token, from_flag.auth.token);
        assert_eq!(from_flag.auth.token_alg, TokenAlg::Es256);
        assert!(!format!("{from_flag:?}").contains("aaa.bbb"));

        let bad = config(&["--token", "secret with spaces"])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("--token") && !bad.contains("secret"), "{bad}");
        let missing = dir.path().join("none");
        let err = config(&["--token-file", missing.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--token-file"), "{err}");
    }

    #[test]
    fn out_of_range_flags_are_usage_errors() {
        for args in [
            &["--get-ratio", "1.5"][..],
            &["--keys", "0"],
            &["--rate", "0"],
            &["--connections", "0"],
            &["--duration", "0s"],
            &["--paths", "proxy,nope"],
            &["--redis", "redis://127.0.0.1:1"],
            &["--backend", "redis", "--redis", "127.0.0.1:1"],
            &["--backend", "nats"],
        ] {
            let err = config(args).unwrap_err();
            assert!(err.is_usage(), "{args:?}: {err}");
        }
    }

    #[test]
    fn pubsub_defaults_to_one_subscriber_and_unary_publishes_of_1_kb() {
        let config = pubsub(&[]).unwrap();
        let TargetSettings::Pubsub(settings) = &config.target else {
            panic!("{:?}", config.target)
        };
        assert_eq!(settings.subscribers, 1);
        assert_eq!(settings.payload_size, 1024);
        assert_eq!(settings.batch, 1);
        assert_eq!(settings.backend, Backend::Memstore);
        assert_eq!(settings.topic, format!("bench.{}", std::process::id()));
        assert_eq!(config.load.mode, Mode::OpenLoop { rate: 1000 });
    }

    #[test]
    fn pubsub_rate_counts_messages_and_the_grid_counts_calls() {
        let config = pubsub(&["--rate", "5000", "--batch", "100", "--topic", "a.b"]).unwrap();
        assert_eq!(config.load.mode, Mode::OpenLoop { rate: 50 });
        let config = pubsub(&["--backend", "nats", "--nats", "nats://127.0.0.1:9"]).unwrap();
        assert_eq!(config.endpoints.nats.as_deref(), Some("nats://127.0.0.1:9"));
        for args in [
            &["--rate", "150", "--batch", "100"][..],
            &["--batch", "0"],
            &["--batch", "1001"],
            &["--subscribers", "0"],
            &["--payload-size", "15"],
            &["--topic", "a.*"],
            &["--backend", "redis"],
            &["--nats", "nats://127.0.0.1:1"],
            &["--backend", "nats", "--nats", "redis://127.0.0.1:1"],
        ] {
            let err = pubsub(args).unwrap_err();
            assert!(err.is_usage(), "{args:?}: {err}");
        }
    }
}
