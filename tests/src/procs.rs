//! Process checks by PID, for asserting that nothing is left behind (see
//! [`prism_harness::procs`] for stop/continue/kill and memory).

pub use prism_harness::procs::alive;

/// Sends `signal` (e.g. `libc::SIGKILL`) to `pid`; panics when it cannot.
pub fn signal(pid: u32, signal: i32) {
    prism_harness::procs::signal(pid, signal).unwrap_or_else(|e| panic!("{e}"));
}
