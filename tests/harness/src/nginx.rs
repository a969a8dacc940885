//! A real `nginx` on a free port in front of one gRPC server (`grpc_pass`
//! over h2c), the gateway a user would compare Prism's proxy with: it
//! forwards each call without routing, tracing or histograms.
//!
//! It runs as one process (`master_process off`): the same event loop a
//! single worker runs, with no master to outlive a SIGKILL, so it is stopped
//! by PID like every other server here and its CPU is one PID's. Upstream
//! connections are kept alive and no connection is closed after a number of
//! requests (nginx closes after 1000 by default), so a long run measures
//! forwarding, not reconnecting.
//!
//! `NGINX` names the binary (`scripts/tools.sh` installs Debian's and exports
//! it); otherwise `nginx` on `PATH`, then `/usr/sbin/nginx`.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tokio::net::TcpStream;

use crate::{
    HarnessError,
    server::{Launch, ServerProcess},
};

/// A running `nginx`; see [`ServerProcess`] for kill and logs.
pub type NginxServer = ServerProcess<Nginx>;

/// How an `nginx` is run: in front of which gRPC server.
#[derive(Debug, Clone)]
pub struct Nginx {
    pub upstream: SocketAddr,
}

impl Nginx {
    /// Starts it on a free port in front of `upstream` and waits until it
    /// accepts connections.
    pub async fn start(upstream: SocketAddr) -> Result<NginxServer, HarnessError> {
        ServerProcess::launch(Self { upstream }).await
    }

    /// The binary that would run, if there is one.
    pub fn find() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("NGINX").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nginx"))
                .find(|candidate| candidate.is_file())
        });
        on_path.or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/nginx");
            sbin.is_file().then_some(sbin)
        })
    }

    /// The whole configuration: listen on `port`, forward to the upstream,
    /// keep every file nginx writes inside `dir`.
    fn config(&self, port: u16, dir: &Path, log: &Path) -> String {
        let dir = dir.display();
        format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {log} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream grpc_upstream {{
    server {upstream};
    keepalive 64;
    keepalive_requests 4294967295;
    keepalive_timeout 1h;
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    keepalive_requests 4294967295;
    keepalive_timeout 1h;
    client_max_body_size 0;
    location / {{
      grpc_pass grpc://grpc_upstream;
      grpc_read_timeout 1h;
      grpc_send_timeout 1h;
    }}
  }}
}}
",
            log = log.display(),
            upstream = self.upstream,
        )
    }
}

impl NginxServer {
    /// The address clients call.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }
}

impl Launch for Nginx {
    const NAME: &'static str = "nginx";
    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    fn binary(&self) -> String {
        Self::find()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "nginx".to_string())
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        let file = dir.join("nginx.conf");
        // A failed write shows up as nginx refusing to start, with its log.
        let _ = fs::write(&file, self.config(port, dir, log));
        command.arg("-p").arg(dir).arg("-c").arg(&file);
    }

    async fn ready(&self, port: u16) -> bool {
        TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_forwards_to_the_upstream_and_never_recycles_connections() {
        let nginx = Nginx {
            upstream: "127.0.0.1:7001".parse().unwrap(),
        };
        let text = nginx.config(7002, Path::new("/d"), Path::new("/d/nginx.log"));
        for expected in [
            "master_process off;",
            "listen 127.0.0.1:7002 http2;",
            "server 127.0.0.1:7001;",
            "grpc_pass grpc://grpc_upstream;",
            "keepalive_requests 4294967295;",
            "error_log /d/nginx.log warn;",
            "client_body_temp_path /d/body;",
        ] {
            assert!(text.contains(expected), "{expected} missing in:\n{text}");
        }
    }
}
