//! What the harness's backend servers share, from [`prism_harness::server`]:
//! a process on a free port with a private folder and log, polled until it
//! answers, killed by PID, restarted on the same port, stopped on drop. Here
//! every failure panics with the server's log, as a test wants.

pub use prism_harness::server::Launch;

use prism_harness::server::ServerProcess as Inner;

pub struct ServerProcess<L: Launch>(pub(crate) Inner<L>);

impl<L: Launch> ServerProcess<L> {
    /// Starts on a free port and waits until it answers.
    pub async fn launch(launch: L) -> Self {
        match Inner::launch(launch).await {
            Ok(server) => Self(server),
            Err(e) => panic!("{e} (scripts/tools.sh installs {})", L::NAME),
        }
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// The running server's PID, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Kills the server with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts the server again on the same port and folder (killing it first
    /// if it still runs) and waits until it answers.
    pub async fn restart(&mut self) {
        self.0.restart().await.unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// The shared harness's server, for what this wrapper does not offer.
    pub fn inner(&mut self) -> &mut Inner<L> {
        &mut self.0
    }
}
