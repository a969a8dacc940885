//! What each path's requests are sent to: a server the user named, or one the
//! bench starts — a `prism-proxy` on free ports serving the namespace from a
//! generated config, a pattern process run by hand (`--autostart`), the
//! in-process [`Floor`], nginx in front of a pattern process of its own, or
//! the run's backend server ([`ServerProcess`]: Redis or NATS) itself. Started processes are `prism-harness`'s, stopped by
//! PID with SIGTERM, and their PIDs handed to the resource watch.
//! They inherit the bench's environment, so e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`
//! measures them with trace export on. The `proxy-auth` paths' proxies trust
//! an issuer the bench serves ([`BenchIssuer`]), kept up until they stop.

use std::{net::SocketAddr, path::Path, time::Duration};

use prism_harness::{Nginx, NginxServer, PatternProcess, ProxyConfig, ProxyProcess};
use prism_proto::{
    admin::v1::{ListPatternsRequest, PatternInfo, PatternState, admin_client::AdminClient},
    lifecycle::v1::HealthStatus,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::{
    BenchError, Config,
    auth::{self, Authorization, BenchIssuer},
    config::Mode,
    floor::Floor,
    paths::PathKind,
    procstat,
    procstat::Watched,
    server_process::ServerProcess,
    sink::SinkProcess,
    target::Target,
};

/// How long a started server may take to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct Endpoint {
    pub path: PathKind,
    pub addr: SocketAddr,
    /// Processes the bench started for this path (none for given addresses).
    pub processes: Vec<Watched>,
    server: Server,
    /// The trace sink of the `proxy-traced` path.
    sink: Option<SinkProcess>,
    /// What the path's gRPC calls carry in `authorization`.
    pub authorization: Authorization,
    /// The issuer a `proxy-auth` path's proxy trusts.
    issuer: Option<BenchIssuer>,
}

enum Server {
    External,
    Proxy(Box<ProxyProcess>),
    Pattern(PatternProcess),
    /// nginx, and the pattern it forwards to unless that was given.
    Nginx(NginxServer, Option<PatternProcess>),
    Floor(Floor),
}

impl Endpoint {
    /// Why `path` cannot run with this config, if it cannot.
    pub(crate) fn unavailable(path: PathKind, config: &Config, target: &Target) -> Option<String> {
        let bin_dir = &config.endpoints.bin_dir;
        let missing = |name: &str| {
            let binary = bin_dir.join(name);
            (!binary.is_file()).then(|| {
                format!(
                    "{} is not built (build the workspace's binaries, or pass --bin-dir)",
                    binary.display()
                )
            })
        };
        match path {
            PathKind::Proxy if config.endpoints.proxy.is_none() => {
                missing("prism-proxy").or_else(|| missing(target.pattern_binary()))
            }
            PathKind::ProxyTraced | PathKind::ProxyAuth => {
                missing("prism-proxy").or_else(|| missing(target.pattern_binary()))
            }
            PathKind::ProxyAuthFresh => {
                if !matches!(config.load.mode, Mode::OpenLoop { .. }) {
                    Some("proxy-auth-fresh mints its tokens before it starts: it needs --rate, not --concurrency".into())
                } else if !target.has_floor() {
                    Some("proxy-auth-fresh measures KeyValue calls only".into())
                } else {
                    missing("prism-proxy").or_else(|| missing(target.pattern_binary()))
                }
            }
            PathKind::Pattern if config.endpoints.pattern.is_none() => {
                missing(target.pattern_binary())
            }
            PathKind::Nginx if Nginx::find().is_none() => Some(
                "nginx is not installed (scripts/tools.sh installs Debian's nginx-light; or set NGINX)"
                    .into(),
            ),
            PathKind::Nginx if config.endpoints.pattern.is_none() => {
                missing(target.pattern_binary())
            }
            PathKind::Redis if !target.backend().is_redis() => {
                Some("the redis path needs --backend redis or redis-cluster".to_string())
            }
            PathKind::Nats if !target.backend().is_nats() => {
                Some("the nats path needs pubsub --backend nats or nats-cluster".to_string())
            }
            PathKind::Floor if !target.has_floor() => Some(format!(
                "the floor serves KeyValue only, not {}",
                target.name()
            )),
            _ => None,
        }
    }

    /// Finds or starts the server of `path` and waits until it serves.
    /// `backend` is the run's Redis or NATS with `--backend redis` or
    /// `nats`; a server the bench started is watched on every path that
    /// uses it.
    pub(crate) async fn start(
        path: PathKind,
        config: &Config,
        target: &Target,
        backend: Option<&ServerProcess>,
    ) -> Result<Self, BenchError> {
        let mut endpoint = Self::start_server(path, config, target, backend).await?;
        if endpoint.issuer.is_none() && path.is_grpc() {
            endpoint.authorization = config.auth.given();
        }
        if let Some(server) = backend
            && path != PathKind::Floor
        {
            for pid in server.pids() {
                endpoint.processes.push(Watched {
                    role: server.kind().role(),
                    pid,
                    idle_rss_kb: procstat::read_rss_kb(pid),
                });
            }
        }
        Ok(endpoint)
    }

    async fn start_server(
        path: PathKind,
        config: &Config,
        target: &Target,
        backend: Option<&ServerProcess>,
    ) -> Result<Self, BenchError> {
        if let Some(reason) = Self::unavailable(path, config, target) {
            return Err(BenchError::PathUnavailable {
                path: path.name(),
                reason,
            });
        }
        let external = |addr| Self {
            path,
            addr,
            processes: Vec::new(),
            server: Server::External,
            sink: None,
            authorization: Authorization::None,
            issuer: None,
        };
        match path {
            PathKind::Proxy => match config.endpoints.proxy {
                Some(addr) => Ok(external(addr)),
                None => start_proxy(config, target, None).await,
            },
            PathKind::ProxyAuth | PathKind::ProxyAuthFresh => {
                start_auth_proxy(path, config, target).await
            }
            PathKind::ProxyTraced => {
                let sink = SinkProcess::start(&config.endpoints.bin_dir).await?;
                let mut endpoint = start_proxy(config, target, Some(&sink)).await?;
                endpoint.path = PathKind::ProxyTraced;
                if let Some(pid) = sink.pid() {
                    endpoint.processes.push(Watched {
                        role: "sink",
                        pid,
                        idle_rss_kb: procstat::read_rss_kb(pid),
                    });
                }
                endpoint.sink = Some(sink);
                Ok(endpoint)
            }
            PathKind::Pattern => match config.endpoints.pattern {
                Some(addr) => Ok(external(addr)),
                None => start_pattern(&config.endpoints.bin_dir, target).await,
            },
            PathKind::Nginx => start_nginx(config, target).await,
            PathKind::Floor => {
                let routes = target
                    .floor_routes()
                    .ok_or_else(|| BenchError::PathUnavailable {
                        path: path.name(),
                        reason: format!("no floor for {}", target.name()),
                    })?;
                let floor = Floor::start(routes).await?;
                Ok(Self {
                    path,
                    addr: floor.addr(),
                    processes: Vec::new(),
                    server: Server::Floor(floor),
                    sink: None,
                    authorization: Authorization::None,
                    issuer: None,
                })
            }
            PathKind::Redis | PathKind::Nats => match backend {
                Some(server) => Ok(external(server.addr())),
                None => Err(BenchError::PathUnavailable {
                    path: path.name(),
                    reason: "no backend server was started".into(),
                }),
            },
        }
    }

    /// Stops what the bench started.
    pub(crate) async fn stop(self) {
        match self.server {
            Server::External => {}
            // Stopping waits for the exit by polling; off the runtime's threads.
            Server::Proxy(proxy) => {
                let _ = tokio::task::spawn_blocking(move || drop(proxy)).await;
            }
            Server::Pattern(pattern) => {
                let _ = tokio::task::spawn_blocking(move || drop(pattern)).await;
            }
            Server::Nginx(nginx, pattern) => {
                let _ = tokio::task::spawn_blocking(move || drop((nginx, pattern))).await;
            }
            Server::Floor(floor) => floor.stop().await,
        }
        // After the proxy, whose last spans leave as it stops.
        if let Some(sink) = self.sink {
            match sink.finish().await {
                Some(spans) => eprintln!("{}: the OTLP sink received {spans} spans", self.path),
                None => eprintln!("{}: the OTLP sink did not report its count", self.path),
            }
        }
        drop(self.issuer);
    }
}

/// The target's pattern process, started by hand on a free TCP port.
async fn spawn_pattern(bin_dir: &Path, target: &Target) -> Result<PatternProcess, BenchError> {
    let binary = bin_dir.join(target.pattern_binary());
    let extra = target.pattern_args();
    let mut args = vec!["--autostart", "--exit-with-parent"];
    args.extend(extra.iter().map(String::as_str));
    Ok(PatternProcess::start(&binary, &args, &[]).await?)
}

fn watched(role: &'static str, pid: u32) -> Watched {
    Watched {
        role,
        pid,
        idle_rss_kb: procstat::read_rss_kb(pid),
    }
}

async fn start_pattern(bin_dir: &Path, target: &Target) -> Result<Endpoint, BenchError> {
    let pattern = spawn_pattern(bin_dir, target).await?;
    Ok(Endpoint {
        path: PathKind::Pattern,
        addr: pattern.addr,
        processes: vec![watched("pattern", pattern.pid())],
        server: Server::Pattern(pattern),
        sink: None,
        authorization: Authorization::None,
        issuer: None,
    })
}

/// nginx in front of the given pattern address, or of a pattern process
/// started for it alone (so the proxy's and the pattern path's processes
/// carry none of its load).
async fn start_nginx(config: &Config, target: &Target) -> Result<Endpoint, BenchError> {
    let (upstream, pattern) = match config.endpoints.pattern {
        Some(addr) => (addr, None),
        None => {
            let pattern = spawn_pattern(&config.endpoints.bin_dir, target).await?;
            (pattern.addr, Some(pattern))
        }
    };
    let nginx = Nginx::start(upstream).await?;
    let mut processes = Vec::new();
    if let Some(pid) = nginx.pid() {
        processes.push(watched("nginx", pid));
    }
    if let Some(pattern) = &pattern {
        processes.push(watched("pattern", pattern.pid()));
    }
    Ok(Endpoint {
        path: PathKind::Nginx,
        addr: nginx.addr(),
        processes,
        server: Server::Nginx(nginx, pattern),
        sink: None,
        authorization: Authorization::None,
        issuer: None,
    })
}

/// A proxy with `auth:` on trusting an issuer started here; `proxy-auth`
/// sends one token, `proxy-auth-fresh` one per call, all minted now.
async fn start_auth_proxy(
    path: PathKind,
    config: &Config,
    target: &Target,
) -> Result<Endpoint, BenchError> {
    let issuer = BenchIssuer::start(config.auth.token_alg).await?;
    let token = issuer.token();
    let authorization = match (path, config.load.mode) {
        (PathKind::ProxyAuthFresh, Mode::OpenLoop { rate }) => {
            let (count, need) =
                auth::fresh_token_count(rate, config.load.warmup, config.load.duration);
            if count < need {
                eprintln!(
                    "{path}: the run needs {need} tokens; minting {count}, so calls after that reuse them (and find them cached)"
                );
            }
            let calls = issuer.fresh_tokens(count).await?;
            Authorization::Fresh {
                setup: token.clone(),
                calls: calls.into(),
            }
        }
        _ => Authorization::Same(token.clone()),
    };
    let yaml = issuer.proxy_config_yaml(&target.proxy_config_yaml(&config.namespace));
    let mut endpoint = launch_proxy(config, yaml, &[], Some(&token)).await?;
    endpoint.path = path;
    endpoint.authorization = authorization;
    endpoint.issuer = Some(issuer);
    Ok(endpoint)
}

async fn start_proxy(
    config: &Config,
    target: &Target,
    sink: Option<&SinkProcess>,
) -> Result<Endpoint, BenchError> {
    let env: Vec<(String, String)> = match sink {
        Some(sink) => vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                sink.endpoint().to_string(),
            ),
            ("OTEL_TRACES_SAMPLER".into(), "always_on".into()),
        ],
        None => Vec::new(),
    };
    let yaml = target.proxy_config_yaml(&config.namespace);
    launch_proxy(config, yaml, &env, None).await
}

/// Starts `prism-proxy` with `yaml` and waits for the run's namespace, its
/// admin API asked with `token` when auth is on.
async fn launch_proxy(
    config: &Config,
    yaml: String,
    env: &[(String, String)],
    token: Option<&MetadataValue<Ascii>>,
) -> Result<Endpoint, BenchError> {
    let binary = config.endpoints.bin_dir.join("prism-proxy");
    let mut proxy = ProxyProcess::start(&binary, ProxyConfig::Text(yaml), env).await?;
    let pattern = wait_running_as(&mut proxy, &config.namespace, token).await?;
    let proxy_pid = proxy.pid();
    Ok(Endpoint {
        path: PathKind::Proxy,
        addr: proxy.data_addr,
        processes: vec![
            Watched {
                role: "proxy",
                pid: proxy_pid,
                idle_rss_kb: procstat::read_rss_kb(proxy_pid),
            },
            Watched {
                role: "pattern",
                pid: pattern.pid,
                idle_rss_kb: procstat::read_rss_kb(pattern.pid),
            },
        ],
        server: Server::Proxy(Box::new(proxy)),
        sink: None,
        authorization: Authorization::None,
        issuer: None,
    })
}

/// Polls the admin API until `namespace` is RUNNING and serving (HEALTHY or
/// DEGRADED); returns its info, which names the pattern's PID.
pub(crate) async fn wait_running(
    proxy: &mut ProxyProcess,
    namespace: &str,
) -> Result<PatternInfo, BenchError> {
    wait_running_as(proxy, namespace, None).await
}

/// The same, each admin call carrying `authorization` when given.
async fn wait_running_as(
    proxy: &mut ProxyProcess,
    namespace: &str,
    authorization: Option<&MetadataValue<Ascii>>,
) -> Result<PatternInfo, BenchError> {
    let channel = Channel::from_shared(format!("http://{}", proxy.admin_addr))
        .expect("a socket address is a valid authority")
        .connect_lazy();
    let mut client = AdminClient::new(channel);
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut delay = Duration::from_millis(5);
    loop {
        let mut request = tonic::Request::new(ListPatternsRequest {});
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        let last = match client.list_patterns(request).await {
            Ok(reply) => match reply
                .into_inner()
                .patterns
                .into_iter()
                .find(|p| p.namespace == namespace)
            {
                Some(info) if serving(&info) && info.pid != 0 => return Ok(info),
                Some(info) => format!("state {:?}", info.state()),
                None => "not listed".into(),
            },
            Err(status) => format!("admin API: {status}"),
        };
        let detail = match proxy.try_wait() {
            Ok(Some(status)) => Some(format!("prism-proxy exited ({status})")),
            _ if tokio::time::Instant::now() >= deadline => Some(last),
            _ => None,
        };
        if let Some(detail) = detail {
            let detail = format!("namespace `{namespace}`: {detail}");
            return Err(proxy.process.not_ready(READY_TIMEOUT, &detail).into());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

fn serving(info: &PatternInfo) -> bool {
    info.state() == PatternState::Running
        && info
            .health
            .as_ref()
            .is_some_and(|h| matches!(h.status(), HealthStatus::Healthy | HealthStatus::Degraded))
}
