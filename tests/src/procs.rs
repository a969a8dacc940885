//! Process checks by PID, for asserting that nothing is left behind (see
//! [`prism_harness::procs`] for stop/continue/kill and memory).

pub use prism_harness::procs::alive;

/// Sends `signal` (e.g. `libc::SIGKILL`) to `pid`; panics when it cannot.
pub fn signal(pid: u32, signal: i32) {
    prism_harness::procs::signal(pid, signal).unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `command` to its end with stdout and stderr captured; kills it and
/// panics naming `what` when it runs longer than `timeout`.
pub fn output_within(
    command: &mut std::process::Command,
    timeout: std::time::Duration,
    what: &str,
) -> std::process::Output {
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("{what} did not finish within {timeout:?}");
        }
    }
}
