//! The NATS messaging slot (core and JetStream). (Not built yet: every call fails.)

use prism_pattern_sdk::ConfigError;
use serde_json::Value;

use super::{Envelope, Inbox, Outcome, SlotHealth, SlotState};
use crate::error::Error;

pub(crate) struct NatsMessaging;

impl NatsMessaging {
    pub(crate) fn open(_namespace: &str, _options: &Value) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    pub(crate) fn backend(&self) -> &'static str {
        "nats"
    }

    pub(crate) async fn start(&self) -> Result<(), Error> {
        Ok(())
    }

    pub(crate) async fn stop(&self) {}

    pub(crate) async fn deliver(
        &self,
        _identity: &str,
        _envelope: &Envelope,
    ) -> Result<Outcome, Error> {
        Err(missing())
    }

    pub(crate) async fn attach(&self, _identity: &str) -> Result<Inbox, Error> {
        Err(missing())
    }

    pub(crate) async fn forget(&self, _identity: &str) -> Result<(), Error> {
        Ok(())
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        SlotHealth {
            state: SlotState::Degraded(missing().to_string()),
            details: Vec::new(),
        }
    }
}

fn missing() -> Error {
    Error::Internal("the NATS messaging slot (core and JetStream) slot is not built yet".into())
}
