//! A real `redis-server` on a free port, stopped by PID on drop: optionally
//! with a password, and optionally with an append-only file fsynced on every
//! write, so a server killed and started again keeps every acknowledged
//! write.
//!
//! `REDIS_SERVER` names the binary (`scripts/tools.sh` installs and exports
//! it); otherwise `redis-server` is looked up on `PATH`.

use std::{path::Path, process::Command, time::Duration};

use crate::{
    HarnessError,
    server::{Launch, ServerProcess},
};

/// A running `redis-server`; see [`ServerProcess`] for kill, restart and logs.
pub type RedisServer = ServerProcess<Redis>;

/// How a `redis-server` is run.
#[derive(Debug, Clone, Default)]
pub struct Redis {
    /// `--requirepass`.
    pub password: Option<String>,
    /// AOF with `appendfsync always` in the server's folder; off: no
    /// persistence at all, a restarted server starts empty.
    pub append_only: bool,
    /// Further `redis-server` arguments.
    pub args: Vec<String>,
}

impl Redis {
    pub fn with_args(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Starts it on a free port and waits until it answers PING.
    pub async fn start(self) -> Result<RedisServer, HarnessError> {
        ServerProcess::launch(self).await
    }
}

impl RedisServer {
    /// `redis://[:PASSWORD@]127.0.0.1:PORT`
    pub fn url(&self) -> String {
        url(self.port(), self.launcher().password.as_deref())
    }
}

fn url(port: u16, password: Option<&str>) -> String {
    match password {
        Some(password) => format!("redis://:{password}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

impl Launch for Redis {
    const NAME: &'static str = "redis-server";
    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    fn binary(&self) -> String {
        std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        if self.append_only {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        command
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(log)
            .args(&self.args);
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        ping(url(port, None))
    }
}

/// True when the server at `url` answers PING (NOAUTH counts: it is up).
/// A server still loading its append-only file answers LOADING: not yet.
async fn ping(url: String) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(_) => true,
        Err(e) => e.code() == Some("NOAUTH"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_the_password() {
        assert_eq!(url(7000, None), "redis://127.0.0.1:7000");
        assert_eq!(url(7000, Some("pw")), "redis://:pw@127.0.0.1:7000");
    }

    #[test]
    fn append_only_fsyncs_every_write_in_the_server_folder() {
        let redis = Redis {
            append_only: true,
            password: Some("pw".into()),
            ..Redis::default()
        };
        let mut command = Command::new("redis-server");
        redis.args(&mut command, 7000, Path::new("/d"), Path::new("/d/log"));
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("--appendonly yes --appendfsync always"),
            "{joined}"
        );
        assert!(joined.contains("--requirepass pw"), "{joined}");
        assert!(joined.contains("--dir /d"), "{joined}");
    }
}
