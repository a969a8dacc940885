//! What each path's requests are sent to: a server the user named, or one the
//! bench starts — a `prism-proxy` on free ports serving the namespace from a
//! generated config, a pattern process run by hand (`--autostart`), the
//! in-process [`Floor`], or the run's backend server ([`ServerProcess`]:
//! Redis or NATS) itself. Started processes are owned (`kill_on_drop`),
//! stopped by PID with SIGTERM, and their PIDs handed to the resource watch.
//! They inherit the bench's environment, so e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`
//! measures them with trace export on.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use prism_proto::{
    admin::v1::{ListPatternsRequest, PatternInfo, PatternState, admin_client::AdminClient},
    lifecycle::v1::HealthStatus,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
    time::Instant,
};
use tonic::transport::Channel;

use crate::{
    BenchError, Config, config::Backend, floor::Floor, paths::PathKind, procstat,
    procstat::Watched, server_process::ServerProcess, sink::OtlpSink, target::Target,
};

/// How long a started server may take to become usable.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped process may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Endpoint {
    pub path: PathKind,
    pub addr: SocketAddr,
    /// Processes the bench started for this path (none for given addresses).
    pub processes: Vec<Watched>,
    server: Server,
    /// The trace sink of the `proxy-traced` path.
    pub sink: Option<OtlpSink>,
}

enum Server {
    External,
    Process(OwnedChild),
    Floor(Floor),
}

impl Endpoint {
    /// Why `path` cannot run with this config, if it cannot.
    pub fn unavailable(path: PathKind, config: &Config, target: &Target) -> Option<String> {
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
            PathKind::ProxyTraced => {
                missing("prism-proxy").or_else(|| missing(target.pattern_binary()))
            }
            PathKind::Pattern if config.endpoints.pattern.is_none() => {
                missing(target.pattern_binary())
            }
            PathKind::Redis if target.backend() != Backend::Redis => {
                Some("the redis path needs --backend redis".to_string())
            }
            PathKind::Nats if target.backend() != Backend::Nats => {
                Some("the nats path needs pubsub --backend nats".to_string())
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
    pub async fn start(
        path: PathKind,
        config: &Config,
        target: &Target,
        backend: Option<&ServerProcess>,
    ) -> Result<Self, BenchError> {
        let mut endpoint = Self::start_server(path, config, target, backend).await?;
        if let Some(server) = backend
            && let Some(pid) = server.pid()
            && path != PathKind::Floor
        {
            endpoint.processes.push(Watched {
                role: server.kind().role(),
                pid,
                idle_rss_kb: procstat::read_rss_kb(pid),
            });
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
        };
        match path {
            PathKind::Proxy => match config.endpoints.proxy {
                Some(addr) => Ok(external(addr)),
                None => start_proxy(config, target, None).await,
            },
            PathKind::ProxyTraced => {
                let sink = OtlpSink::start().await?;
                let mut endpoint = start_proxy(config, target, Some(&sink)).await?;
                endpoint.path = PathKind::ProxyTraced;
                endpoint.sink = Some(sink);
                Ok(endpoint)
            }
            PathKind::Pattern => match config.endpoints.pattern {
                Some(addr) => Ok(external(addr)),
                None => start_pattern(&config.endpoints.bin_dir, target).await,
            },
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
    pub async fn stop(self) {
        if let Some(sink) = &self.sink {
            eprintln!(
                "{}: the OTLP sink received {} spans",
                self.path,
                sink.spans()
            );
        }
        match self.server {
            Server::External => {}
            Server::Process(child) => child.stop().await,
            Server::Floor(floor) => floor.stop().await,
        }
    }
}

/// A child process with its private folder (config, log).
struct OwnedChild {
    child: Child,
    dir: tempfile::TempDir,
}

impl OwnedChild {
    fn spawn(
        binary: &Path,
        args: &[&str],
        env: &[(&str, String)],
        dir: tempfile::TempDir,
    ) -> Result<Self, BenchError> {
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| BenchError::io("creating a log file", e))?;
        let child = Command::new(binary)
            .args(args)
            // Export only where a path asks for it.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        Ok(Self { child, dir })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn not_ready(&self, what: &str, detail: impl Into<String>) -> BenchError {
        BenchError::NotReady {
            what: what.to_string(),
            timeout: READY_TIMEOUT,
            detail: format!("{}; log:\n{}", detail.into(), self.log_tail()),
        }
    }

    /// Reads stdout until `parse` accepts a line; later lines are drained in
    /// the background so the child never blocks on a full pipe.
    async fn wait_for_line<T>(
        &mut self,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, BenchError> {
        let Some(stdout) = self.child.stdout.take() else {
            return Err(self.not_ready(what, "no stdout"));
        };
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(READY_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(found) = parse(&line) {
                    return Some(found);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(found)) => {
                tokio::spawn(drain(lines));
                Ok(found)
            }
            Ok(None) => Err(self.not_ready(what, "it exited before saying where it listens")),
            Err(_) => Err(self.not_ready(what, "it never said where it listens")),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `STOP_TIMEOUT`.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn drain(mut lines: tokio::io::Lines<BufReader<ChildStdout>>) {
    while let Ok(Some(_)) = lines.next_line().await {}
}

async fn start_pattern(bin_dir: &Path, target: &Target) -> Result<Endpoint, BenchError> {
    let binary = bin_dir.join(target.pattern_binary());
    let dir = private_dir()?;
    let extra = target.pattern_args();
    let mut args = vec![
        "--autostart",
        "--exit-with-parent",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend(extra.iter().map(String::as_str));
    let mut child = OwnedChild::spawn(&binary, &args, &[], dir)?;
    let what = target.pattern_binary();
    let addr = child.wait_for_line(what, parse_pattern_listening).await?;
    let pid = child.pid();
    Ok(Endpoint {
        path: PathKind::Pattern,
        addr,
        processes: vec![Watched {
            role: "pattern",
            pid,
            idle_rss_kb: procstat::read_rss_kb(pid),
        }],
        server: Server::Process(child),
        sink: None,
    })
}

async fn start_proxy(
    config: &Config,
    target: &Target,
    sink: Option<&OtlpSink>,
) -> Result<Endpoint, BenchError> {
    let env: Vec<(&str, String)> = match sink {
        Some(sink) => vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint()),
            ("OTEL_TRACES_SAMPLER", "always_on".to_string()),
        ],
        None => Vec::new(),
    };
    let binary = config.endpoints.bin_dir.join("prism-proxy");
    let dir = private_dir()?;
    let config_path: PathBuf = dir.path().join("prism.yaml");
    std::fs::write(&config_path, target.proxy_config_yaml(&config.namespace))
        .map_err(|e| BenchError::io("writing the proxy's config", e))?;
    let config_arg = config_path.to_string_lossy().into_owned();
    let mut child = OwnedChild::spawn(
        &binary,
        &[
            "--config",
            &config_arg,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &env,
        dir,
    )?;
    let (addr, admin) = child
        .wait_for_line("prism-proxy", parse_proxy_listening)
        .await?;
    let pattern = wait_running(&mut child, admin, &config.namespace).await?;
    let proxy_pid = child.pid();
    Ok(Endpoint {
        path: PathKind::Proxy,
        addr,
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
        server: Server::Process(child),
        sink: None,
    })
}

/// Polls the admin API until `namespace` is RUNNING and serving (HEALTHY or
/// DEGRADED); returns its info, which names the pattern's PID.
async fn wait_running(
    child: &mut OwnedChild,
    admin: SocketAddr,
    namespace: &str,
) -> Result<PatternInfo, BenchError> {
    let what = format!("namespace `{namespace}` on prism-proxy");
    let channel = Channel::from_shared(format!("http://{admin}"))
        .expect("a socket address is a valid authority")
        .connect_lazy();
    let mut client = AdminClient::new(channel);
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut delay = Duration::from_millis(5);
    loop {
        let last = match client.list_patterns(ListPatternsRequest {}).await {
            Ok(reply) => {
                match reply
                    .into_inner()
                    .patterns
                    .into_iter()
                    .find(|p| p.namespace == namespace)
                {
                    Some(info) if serving(&info) && info.pid != 0 => return Ok(info),
                    Some(info) => format!("state {:?}", info.state()),
                    None => "not listed".into(),
                }
            }
            Err(status) => format!("admin API: {status}"),
        };
        if let Ok(Some(status)) = child.child.try_wait() {
            return Err(child.not_ready(&what, format!("prism-proxy exited ({status})")));
        }
        if Instant::now() >= deadline {
            return Err(child.not_ready(&what, last));
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

fn private_dir() -> Result<tempfile::TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix("prism-bench-")
        .tempdir()
        .map_err(|e| BenchError::io("creating a temporary folder", e))
}

/// `prism-proxy listening on DATA (admin ADMIN)` → (data, admin).
pub fn parse_proxy_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("prism-proxy listening on ")?;
    let (data, admin) = rest.split_once(" (admin ")?;
    Some((
        data.trim().parse().ok()?,
        admin.trim().trim_end_matches(')').parse().ok()?,
    ))
}

/// `listening on ADDR`, as a pattern run by hand prints it.
pub fn parse_pattern_listening(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("listening on ")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_lines() {
        let (data, admin) =
            parse_proxy_listening("prism-proxy listening on 127.0.0.1:4000 (admin 127.0.0.1:4001)")
                .unwrap();
        assert_eq!((data.port(), admin.port()), (4000, 4001));
        assert!(parse_proxy_listening("prism-proxy starting").is_none());
        assert_eq!(
            parse_pattern_listening("listening on 127.0.0.1:5000"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert!(parse_pattern_listening("listening on unix:/tmp/x.sock").is_none());
    }
}
