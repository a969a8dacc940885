//! The paths a run compares, and which one is a baseline for which.
//!
//! Adding a path means: a variant here, how it is reached in
//! `endpoint::Endpoint::start`, a `transport::Transport` variant for its
//! client, and the matching arms in the targets.

use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::BenchError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// Through `prism-proxy` (routing by `x-prism-namespace`) to the pattern,
    /// trace export off.
    Proxy,
    /// The same with every span exported (100% sampled) over OTLP to a sink
    /// in the bench: what tracing costs.
    #[serde(rename = "proxy-traced")]
    ProxyTraced,
    /// A proxy of its own with `auth:` on, every call carrying the same
    /// bearer token (checked on first use, then remembered): what a cached
    /// token costs.
    #[serde(rename = "proxy-auth")]
    ProxyAuth,
    /// The same proxy config, every call carrying a token never seen
    /// before (all minted before the path starts): what the first use of a
    /// token costs.
    #[serde(rename = "proxy-auth-fresh")]
    ProxyAuthFresh,
    /// nginx (`grpc_pass`, one process) in front of a pattern process of its
    /// own over TCP: the hop a general-purpose gateway adds, with no routing,
    /// tracing or histograms — what a user compares the proxy with.
    Nginx,
    /// Straight to the pattern process over TCP.
    Pattern,
    /// A bare tonic server in the bench process that does no work: the cost
    /// of gRPC and HTTP/2 on loopback alone.
    Floor,
    /// Straight to Redis with the same client the Redis pattern uses
    /// (`--backend redis` only).
    Redis,
    /// Straight to NATS with the async-nats client, core NATS publish and
    /// subscribe (`pubsub --backend nats` only).
    Nats,
}

impl PathKind {
    /// The paths a KeyValue run takes when `--paths` is not given, in run
    /// order; the ones that cannot run are skipped.
    pub const DEFAULT: [PathKind; 4] = [
        PathKind::Proxy,
        PathKind::Nginx,
        PathKind::Pattern,
        PathKind::Floor,
    ];

    /// The same with `--backend redis`: Redis direct is what the proxy and
    /// the pattern are compared with.
    pub const DEFAULT_REDIS: [PathKind; 5] = [
        PathKind::Proxy,
        PathKind::Nginx,
        PathKind::Pattern,
        PathKind::Redis,
        PathKind::Floor,
    ];

    /// A PubSub run's paths (the floor serves KeyValue only).
    pub const DEFAULT_PUBSUB: [PathKind; 3] = [PathKind::Proxy, PathKind::Nginx, PathKind::Pattern];

    /// The same with `--backend nats`: NATS direct is the baseline.
    pub const DEFAULT_NATS: [PathKind; 4] = [
        PathKind::Proxy,
        PathKind::Nginx,
        PathKind::Pattern,
        PathKind::Nats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::ProxyTraced => "proxy-traced",
            Self::ProxyAuth => "proxy-auth",
            Self::ProxyAuthFresh => "proxy-auth-fresh",
            Self::Nginx => "nginx",
            Self::Pattern => "pattern",
            Self::Floor => "floor",
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }

    /// Whether it is driven over gRPC (not a backend's own client).
    pub fn is_grpc(self) -> bool {
        !matches!(self, Self::Redis | Self::Nats)
    }

    /// The paths this one is compared against when both ran: each baseline
    /// does a strict subset of this path's work, except nginx beside the
    /// proxy: the same hop done by the gateway users know.
    pub fn baselines(self) -> &'static [PathKind] {
        match self {
            Self::Proxy => &[
                Self::Pattern,
                Self::Nginx,
                Self::Redis,
                Self::Nats,
                Self::Floor,
            ],
            Self::Nginx => &[Self::Pattern, Self::Redis, Self::Nats, Self::Floor],
            Self::ProxyAuth | Self::ProxyTraced => &[
                Self::Proxy,
                Self::Pattern,
                Self::Redis,
                Self::Nats,
                Self::Floor,
            ],
            Self::ProxyAuthFresh => &[Self::ProxyAuth, Self::Proxy],
            Self::Pattern => &[Self::Redis, Self::Nats, Self::Floor],
            Self::Redis | Self::Nats => &[Self::Floor],
            Self::Floor => &[],
        }
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PathKind {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "proxy" => Ok(Self::Proxy),
            "proxy-traced" => Ok(Self::ProxyTraced),
            "proxy-auth" => Ok(Self::ProxyAuth),
            "proxy-auth-fresh" => Ok(Self::ProxyAuthFresh),
            "nginx" => Ok(Self::Nginx),
            "pattern" => Ok(Self::Pattern),
            "floor" => Ok(Self::Floor),
            "redis" => Ok(Self::Redis),
            "nats" => Ok(Self::Nats),
            other => Err(BenchError::Usage(format!(
                "--paths: unknown path `{other}` (expected proxy, proxy-traced, proxy-auth, proxy-auth-fresh, nginx, pattern, floor, redis or nats)"
            ))),
        }
    }
}

/// Parses `proxy,pattern,floor`: order kept, duplicates refused.
pub(crate) fn parse_list(s: &str) -> Result<Vec<PathKind>, BenchError> {
    let mut paths = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let path: PathKind = part.parse()?;
        if paths.contains(&path) {
            return Err(BenchError::Usage(format!(
                "--paths: `{path}` is listed twice"
            )));
        }
        paths.push(path);
    }
    if paths.is_empty() {
        return Err(BenchError::Usage("--paths: name at least one path".into()));
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_in_order() {
        assert_eq!(
            parse_list("floor, proxy").unwrap(),
            vec![PathKind::Floor, PathKind::Proxy]
        );
    }

    #[test]
    fn auth_paths_parse_by_name() {
        assert_eq!(
            parse_list("proxy,proxy-auth,proxy-auth-fresh").unwrap(),
            vec![
                PathKind::Proxy,
                PathKind::ProxyAuth,
                PathKind::ProxyAuthFresh
            ]
        );
        for path in [PathKind::ProxyAuth, PathKind::ProxyAuthFresh] {
            assert_eq!(path.name().parse::<PathKind>().unwrap(), path);
        }
    }

    #[test]
    fn refuses_unknown_duplicate_and_empty() {
        assert!(parse_list("proxy,bogus").is_err());
        assert!(parse_list("proxy,proxy").is_err());
        assert!(parse_list(" , ").is_err());
    }

    #[test]
    fn baselines_do_less_work() {
        assert_eq!(
            PathKind::Proxy.baselines(),
            &[
                PathKind::Pattern,
                PathKind::Nginx,
                PathKind::Redis,
                PathKind::Nats,
                PathKind::Floor
            ]
        );
        assert_eq!(PathKind::Nginx.baselines()[0], PathKind::Pattern);
        assert_eq!("nginx".parse::<PathKind>().unwrap(), PathKind::Nginx);
        assert_eq!(
            PathKind::Pattern.baselines(),
            &[PathKind::Redis, PathKind::Nats, PathKind::Floor]
        );
        assert_eq!(PathKind::Redis.baselines(), &[PathKind::Floor]);
        assert_eq!(PathKind::ProxyAuth.baselines()[0], PathKind::Proxy);
        assert_eq!(
            PathKind::ProxyAuthFresh.baselines(),
            &[PathKind::ProxyAuth, PathKind::Proxy]
        );
        assert!(PathKind::Floor.baselines().is_empty());
    }
}
