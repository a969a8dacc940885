//! A built binary run as a child process: its stderr goes to a log file,
//! its stdout is read line by line so the caller
//! can wait for the line that announces where it listens. Stopped by PID
//! (SIGTERM, then SIGKILL) on drop.

use std::{
    ffi::OsString,
    fs,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use crate::{HarnessError, procs};

/// How long a stopped child may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of the log quoted when a child is not ready.
const LOG_TAIL_LINES: usize = 40;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub binary: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Variables removed before `env` is applied.
    pub env_remove: Vec<String>,
}

pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    pid: u32,
    lines: mpsc::UnboundedReceiver<String>,
    log: PathBuf,
}

impl ChildProcess {
    /// Starts `spawn` with its stderr in the file `log`.
    pub fn spawn(spawn: &Spawn, log: PathBuf) -> Result<Self, HarnessError> {
        let name = spawn
            .binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spawn.binary.display().to_string());
        let log_file = fs::File::create(&log)
            .map_err(|e| HarnessError::io(format!("creating {name}'s log file"), e))?;
        let mut command = Command::new(&spawn.binary);
        command.args(&spawn.args);
        for key in &spawn.env_remove {
            command.env_remove(key);
        }
        let mut child = command
            .envs(spawn.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                binary: spawn.binary.clone(),
                source,
            })?;
        let (tx, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            // Reads to the end so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Self {
            name,
            pid: child.id(),
            child: Some(child),
            lines,
            log,
        })
    }

    /// Waits until a stdout line is accepted by `parse`; fails with the log
    /// when the child exits first or `timeout` passes.
    pub async fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let found = tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                if let Some(found) = parse(&line) {
                    return Some(found);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(self.not_ready(timeout, "it exited before saying where it listens")),
            Err(_) => Err(self.not_ready(timeout, "it never said where it listens")),
        }
    }

    /// A [`HarnessError::NotReady`] for this child, quoting its log's tail.
    pub fn not_ready(&self, timeout: Duration, detail: &str) -> HarnessError {
        HarnessError::NotReady {
            what: self.name.clone(),
            timeout,
            detail: format!("{detail}; log:\n{}", self.log_tail()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// The exit status once the child has exited (it is reaped then).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child
            .try_wait()
            .map_err(|e| HarnessError::io(format!("waiting for {}", self.name), e))?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: i32) -> Result<(), HarnessError> {
        procs::signal(self.pid, signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited within a few seconds.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = procs::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
