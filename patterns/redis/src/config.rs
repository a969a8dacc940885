//! The Redis pattern's config block; every field has a default, so a
//! pattern run on its own with no `config` talks to `redis://127.0.0.1:6379`;
//! the proxy requires a namespace to name its `address`.

use std::{fmt, time::Duration};

use prism_pattern_sdk::ConfigError;
use prism_proto::limits::Limits;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user][:password@]host[:port][/db]`, or `redis+unix:///path`
    /// (also `unix:///path`) for a Unix socket.
    pub address: String,
    /// Redis Cluster seed nodes (`redis://host:port` each); when set, the
    /// pattern speaks to the cluster they belong to and `address` is not
    /// used. A cluster has no `db`.
    pub cluster: Vec<String>,
    /// Overrides a password given in `address` (or the cluster's URLs).
    pub password: Option<String>,
    /// Logical database; overrides a db given in `address`.
    pub db: Option<u32>,
    /// Connections kept open at most. Health is DEGRADED when 90% are busy.
    pub pool_size: usize,
    /// Bound on opening one connection (TCP, AUTH, SELECT).
    pub connect_timeout_ms: u64,
    /// Bound on one command's reply, and on waiting for a free connection.
    pub command_timeout_ms: u64,
    /// Extra attempts for reads (GET, EXISTS, SCAN) that failed on a reused
    /// connection that turned out broken (Redis restarted since it was
    /// opened); each retry runs on a fresh connection. Writes never retry.
    pub read_retries: u32,
    /// A health PING slower than this makes health DEGRADED.
    pub slow_ping_ms: u64,
    /// Bound on the health PING (reconnecting included); keep it under the
    /// proxy's `health_timeout_ms`.
    pub health_timeout_ms: u64,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            address: "redis://127.0.0.1:6379".into(),
            cluster: Vec::new(),
            password: None,
            db: None,
            pool_size: 16,
            connect_timeout_ms: 1000,
            command_timeout_ms: 1000,
            read_retries: 1,
            slow_ping_ms: 100,
            health_timeout_ms: 750,
            max_key_bytes: Limits::DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Never prints the password, neither the field nor one inside `address`.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("address", &redact_url(&self.address))
            .field(
                "cluster",
                &self
                    .cluster
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("read_retries", &self.read_retries)
            .field("slow_ping_ms", &self.slow_ping_ms)
            .field("health_timeout_ms", &self.health_timeout_ms)
            .field("max_key_bytes", &self.max_key_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

impl RedisConfig {
    /// Every field's name, so a caller that embeds these options in a larger
    /// object can refuse an unknown one under its own path.
    pub const FIELDS: &'static [&'static str] = &[
        "address",
        "cluster",
        "password",
        "db",
        "pool_size",
        "connect_timeout_ms",
        "command_timeout_ms",
        "read_retries",
        "slow_ping_ms",
        "health_timeout_ms",
        "max_key_bytes",
        "max_value_bytes",
    ];
}

/// Most cluster seed nodes accepted; the client learns the rest itself.
const MAX_CLUSTER_SEEDS: usize = 64;

/// Most read retries allowed; more only delays the answer to a client.
const MAX_READ_RETRIES: u32 = 10;

impl RedisConfig {
    /// Checks every field; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.is_cluster() {
            self.cluster_nodes()?;
        } else {
            self.connection_info()?;
        }
        let at_least_one = [
            ("pool_size", self.pool_size as u64),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("command_timeout_ms", self.command_timeout_ms),
            ("slow_ping_ms", self.slow_ping_ms),
            ("health_timeout_ms", self.health_timeout_ms),
            ("max_key_bytes", self.max_key_bytes as u64),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1"));
            }
        }
        if self.read_retries > MAX_READ_RETRIES {
            return Err(ConfigError::new(
                "read_retries",
                format!(
                    "{} is over the limit of {MAX_READ_RETRIES}",
                    self.read_retries
                ),
            ));
        }
        Ok(())
    }

    /// True when `cluster` names seed nodes.
    pub fn is_cluster(&self) -> bool {
        !self.cluster.is_empty()
    }

    /// Where and how to connect: `address` with `password` and `db` applied.
    /// A malformed or unsupported address is an error naming `address`.
    pub fn connection_info(&self) -> Result<ConnectionInfo, ConfigError> {
        let info = parse_url("address", &self.address)?;
        let mut redis = info.redis_settings().clone();
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        if let Some(db) = self.db {
            redis = redis.set_db(db.into());
        }
        Ok(info.set_redis_settings(redis))
    }

    /// The cluster's seed nodes with `password` applied. Errors name
    /// `cluster[i]` (a malformed, unsupported or Unix-socket URL), `cluster`
    /// (too many seeds) or `db` (a cluster has only database 0).
    pub fn cluster_nodes(&self) -> Result<Vec<ConnectionInfo>, ConfigError> {
        if self.cluster.len() > MAX_CLUSTER_SEEDS {
            return Err(ConfigError::new(
                "cluster",
                format!(
                    "{} seed nodes is over the limit of {MAX_CLUSTER_SEEDS}",
                    self.cluster.len()
                ),
            ));
        }
        if self.db.is_some_and(|db| db != 0) {
            return Err(ConfigError::new(
                "db",
                "a Redis Cluster has only database 0",
            ));
        }
        self.cluster
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let field = format!("cluster[{i}]");
                let info = parse_url(&field, url)?;
                if !matches!(info.addr(), ConnectionAddr::Tcp(..)) {
                    return Err(ConfigError::new(field, "a cluster node needs host:port"));
                }
                if info.redis_settings().db() != 0 {
                    return Err(ConfigError::new(
                        field,
                        "a Redis Cluster has only database 0",
                    ));
                }
                let mut redis = info.redis_settings().clone();
                if let Some(password) = &self.password {
                    redis = redis.set_password(password);
                }
                Ok(info.set_redis_settings(redis))
            })
            .collect()
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    pub fn slow_ping(&self) -> Duration {
        Duration::from_millis(self.slow_ping_ms)
    }

    pub fn health_timeout(&self) -> Duration {
        Duration::from_millis(self.health_timeout_ms)
    }
}

/// `url` as a connection, or an error naming `field`: malformed, TLS, or
/// without a host.
fn parse_url(field: &str, url: &str) -> Result<ConnectionInfo, ConfigError> {
    let info = url.into_connection_info().map_err(|e| {
        ConfigError::new(
            field,
            format!("`{}` is not a Redis URL: {e}", redact_url(url)),
        )
    })?;
    if !info.addr().is_supported() {
        return Err(ConfigError::new(
            field,
            format!(
                "`{}`: TLS (rediss://) is not supported by this build",
                redact_url(url)
            ),
        ));
    }
    if let ConnectionAddr::Tcp(host, _) = info.addr()
        && host.is_empty()
    {
        return Err(ConfigError::new(field, "has no host"));
    }
    Ok(info)
}

/// Where the server is, for spans, health details and logs: host and port
/// (or socket path), never credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn of(info: &ConnectionInfo) -> Self {
        match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => Self {
                host: host.clone(),
                port: Some(*port),
            },
            ConnectionAddr::Unix(path) => Self {
                host: path.display().to_string(),
                port: None,
            },
            other => Self {
                host: other.to_string(),
                port: None,
            },
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// `address` with any password replaced by `***`; unparsable text is shown
/// only up to an `@`, which is where credentials would end.
fn redact_url(address: &str) -> String {
    match redis::parse_redis_url(address) {
        Some(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        None => match address.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => address.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_pattern_sdk::parse_config;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<RedisConfig, ConfigError> {
        let config: RedisConfig = parse_config(value)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn empty_config_is_default_and_valid() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c, RedisConfig::default());
        let info = c.connection_info().unwrap();
        assert_eq!(Endpoint::of(&info).to_string(), "127.0.0.1:6379");
        assert_eq!(info.redis_settings().db(), 0);
    }

    #[test]
    fn every_field_is_read() {
        let c = parse(json!({
            "address": "redis://10.0.0.5:7000/2",
            "password": "pw",
            "db": 3,
            "pool_size": 4,
            "connect_timeout_ms": 200,
            "command_timeout_ms": 300,
            "read_retries": 2,
            "slow_ping_ms": 50,
            "health_timeout_ms": 400,
            "max_key_bytes": 10,
            "max_value_bytes": 20,
        }))
        .unwrap();
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.command_timeout(), Duration::from_millis(300));
        assert_eq!(
            c.limits(),
            Limits {
                max_key_bytes: 10,
                max_value_bytes: 20
            }
        );
        let info = c.connection_info().unwrap();
        assert_eq!(
            Endpoint::of(&info),
            Endpoint {
                host: "10.0.0.5".into(),
                port: Some(7000)
            }
        );
        assert_eq!(info.redis_settings().db(), 3, "db overrides the URL's");
        assert_eq!(info.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn url_credentials_and_db_are_used_when_no_field_overrides_them() {
        let c = parse(json!({"address": "redis://:secret@localhost/5"})).unwrap();
        let info = c.connection_info().unwrap();
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert_eq!(info.redis_settings().db(), 5);
        assert_eq!(Endpoint::of(&info).to_string(), "localhost:6379");
    }

    #[test]
    fn unix_socket_addresses_have_no_port() {
        let c = parse(json!({"address": "redis+unix:///run/redis.sock"})).unwrap();
        let endpoint = Endpoint::of(&c.connection_info().unwrap());
        assert_eq!(endpoint.to_string(), "/run/redis.sock");
        assert_eq!(endpoint.port, None);
    }

    #[test]
    fn malformed_addresses_are_rejected_by_name() {
        for address in [
            "http://127.0.0.1:6379",
            "not a url",
            "redis://",
            "redis://127.0.0.1:6379/x",
            "rediss://127.0.0.1:6380",
        ] {
            let err = parse(json!({ "address": address })).unwrap_err();
            assert_eq!(err.field, "address", "{address}: {err}");
        }
    }

    #[test]
    fn zero_values_and_too_many_retries_name_the_field() {
        for field in [
            "pool_size",
            "connect_timeout_ms",
            "command_timeout_ms",
            "slow_ping_ms",
            "health_timeout_ms",
            "max_key_bytes",
        ] {
            let err = parse(json!({ field: 0 })).unwrap_err();
            assert_eq!(err.field, field);
        }
        let err = parse(json!({"read_retries": 11})).unwrap_err();
        assert_eq!(err.field, "read_retries");
        assert!(err.to_string().contains("10"), "{err}");
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_rejected() {
        assert_eq!(
            parse(json!({"db": -1})).unwrap_err().field,
            "db",
            "negative db"
        );
        assert_eq!(
            parse(json!({"pool_size": "x"})).unwrap_err().field,
            "pool_size"
        );
        let err = parse(json!({"adress": "redis://x"})).unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn cluster_seeds_are_read_with_the_password() {
        let c = parse(json!({
            "cluster": ["redis://127.0.0.1:30001", "redis://:old@10.0.0.2:30002"],
            "password": "pw",
        }))
        .unwrap();
        assert!(c.is_cluster());
        let nodes = c.cluster_nodes().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(Endpoint::of(&nodes[1]).to_string(), "10.0.0.2:30002");
        assert!(
            nodes
                .iter()
                .all(|n| n.redis_settings().password() == Some("pw"))
        );
        assert!(!parse(json!({})).unwrap().is_cluster());
    }

    #[test]
    fn bad_cluster_seeds_name_the_entry() {
        for (cluster, field) in [
            (json!(["redis://127.0.0.1:1", "not a url"]), "cluster[1]"),
            (json!(["redis+unix:///run/r.sock"]), "cluster[0]"),
            (json!(["redis://127.0.0.1:1/3"]), "cluster[0]"),
            (json!(["rediss://127.0.0.1:1"]), "cluster[0]"),
            (json!("redis://127.0.0.1:1"), "cluster"),
        ] {
            let err = parse(json!({ "cluster": cluster })).unwrap_err();
            assert_eq!(err.field, field, "{cluster}: {err}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("redis://h:{}", 1000 + i)).collect();
        let err = parse(json!({ "cluster": many })).unwrap_err();
        assert_eq!(err.field, "cluster");
        assert!(err.to_string().contains("64"), "{err}");
        let err = parse(json!({"cluster": ["redis://h:1"], "db": 2})).unwrap_err();
        assert_eq!(err.field, "db");
    }

    #[test]
    fn fields_lists_every_field() {
        for field in RedisConfig::FIELDS {
            let err = parse(json!({ *field: {} })).unwrap_err();
            assert_eq!(err.field, *field, "a known field is read: {err}");
        }
        // serde lists the fields it expects when it meets an unknown one.
        let err = parse(json!({"nope": 1})).unwrap_err();
        let expected: Vec<&str> = err.reason.split('`').skip(3).step_by(2).collect();
        assert_eq!(expected, RedisConfig::FIELDS, "{}", err.reason);
    }

    #[test]
    fn passwords_never_show_in_debug_or_errors() {
        let c = RedisConfig {
            address: "redis://user:hunter2@host:1".into(),
            password: Some("swordfish".into()),
            ..RedisConfig::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("swordfish"),
            "{text}"
        );
        let err = parse(json!({"address": "http://u:hunter2@host"})).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
