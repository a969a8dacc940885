//! Processes by PID: is it alive, send it a signal (stop, continue, kill),
//! how much memory it holds, a free loopback port for a new one, and a
//! loopback port that refuses connections.

use std::net::{SocketAddr, TcpListener};

use crate::HarnessError;

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends `signal` (e.g. `libc::SIGKILL`) to `pid`.
pub fn signal(pid: u32, signal: i32) -> Result<(), HarnessError> {
    let failed = |detail: String| HarnessError::Signal {
        pid,
        signal,
        detail,
    };
    let output = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .output()
        .map_err(|e| failed(format!("cannot run kill: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}

/// SIGKILL: no clean shutdown.
pub fn kill(pid: u32) -> Result<(), HarnessError> {
    signal(pid, libc::SIGKILL)
}

/// SIGSTOP: the process is frozen, its sockets stay open.
pub fn pause(pid: u32) -> Result<(), HarnessError> {
    signal(pid, libc::SIGSTOP)
}

/// SIGCONT: a paused process runs again.
pub fn resume(pid: u32) -> Result<(), HarnessError> {
    signal(pid, libc::SIGCONT)
}

/// Resident memory of `pid` in KiB (`VmRSS`), if it runs.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A loopback port nobody listens on right now (another process may still
/// take it before it is used: callers try again on a fresh one).
pub fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| HarnessError::io("finding a free port", e))
}

/// A loopback address that refuses connections for as long as this value
/// lives: its port is bound but never listened on. A port bound and closed
/// again would be refused too, but only until another process takes it;
/// this one no other socket can bind meanwhile.
#[derive(Debug)]
pub struct ClosedPort {
    /// Bound, never listening, without `SO_REUSEADDR`.
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Result<Self, HarnessError> {
        let failed = |e| HarnessError::io("reserving a closed port", e);
        let socket = tokio::net::TcpSocket::new_v4().map_err(failed)?;
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(failed)?;
        let addr = socket.local_addr().map_err(failed)?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_refuses_connections_and_cannot_be_taken() {
        let closed = ClosedPort::new().unwrap();
        let refused = std::net::TcpStream::connect(closed.addr()).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let taken = TcpListener::bind(closed.addr()).unwrap_err();
        assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(rss_kb(me).is_some_and(|kb| kb > 0));
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t  1234 kB\n"), Some(1234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn a_missing_process_is_dead_and_cannot_be_signalled() {
        // PIDs above the kernel's pid_max never exist.
        let missing = 4_194_304 + 1;
        assert!(!alive(missing));
        let err = signal(missing, 0).unwrap_err();
        assert!(err.to_string().contains(&missing.to_string()), "{err}");
    }
}
