//! A pattern binary run on its own, without a proxy, on a free port: it
//! announces `listening on ADDR` on stdout.

use std::{ffi::OsString, net::SocketAddr, path::Path, time::Duration};

use crate::{
    HarnessError,
    child::{ChildProcess, Spawn},
};

/// How long a pattern may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct PatternProcess {
    /// Declared before `dir`: the process stops before its folder goes.
    pub process: ChildProcess,
    pub addr: SocketAddr,
    /// Private folder holding `pattern.log`.
    pub dir: tempfile::TempDir,
}

impl PatternProcess {
    /// Runs `binary --listen 127.0.0.1:0 EXTRA…` with `env` (trace export
    /// off unless `env` sets it) and waits for its address.
    pub async fn start(
        binary: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let mut args: Vec<OsString> = vec!["--listen".into(), "127.0.0.1:0".into()];
        args.extend(extra_args.iter().map(OsString::from));
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "RUST_LOG") {
            env.insert(0, ("RUST_LOG".into(), "info".into()));
        }
        let spawn = Spawn {
            binary: binary.to_path_buf(),
            args,
            env,
            env_remove: crate::proxy::EXPORT_VARS.map(String::from).to_vec(),
        };
        let dir = tempfile::Builder::new()
            .prefix("prism-pattern-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary folder", e))?;
        let mut process = ChildProcess::spawn(&spawn, dir.path().join("pattern.log"))?;
        let addr = process
            .wait_for_line(START_TIMEOUT, parse_listening)
            .await?;
        Ok(Self { process, addr, dir })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// `listening on ADDR`, as a pattern run by hand prints it.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("listening on ")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening("listening on 127.0.0.1:5000"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert!(parse_listening("listening on unix:/tmp/x.sock").is_none());
    }
}
