//! A real `nats-server` (with JetStream unless asked otherwise) on a free
//! port, its store in a temporary folder, stopped by PID on drop (see
//! [`prism_harness::nats`]).

use crate::server::ServerProcess;

pub use prism_harness::nats::Nats;

/// A running `nats-server`; see [`ServerProcess`] for kill, restart and logs.
pub type NatsServer = ServerProcess<Nats>;

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it
    /// answers PING.
    pub async fn start() -> Self {
        Self::launch(Nats {
            jetstream: true,
            auth: None,
        })
        .await
    }

    /// Same as [`NatsServer::start`], accepting only clients that log in as
    /// `user` with `pass`.
    pub async fn start_with_auth(user: &str, pass: &str) -> Self {
        Self::launch(Nats {
            jetstream: true,
            auth: Some((user.to_string(), pass.to_string())),
        })
        .await
    }

    /// Same as [`NatsServer::start`], without JetStream.
    pub async fn start_without_jetstream() -> Self {
        Self::launch(Nats {
            jetstream: false,
            auth: None,
        })
        .await
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.0.url()
    }
}
