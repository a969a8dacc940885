//! The in-memory registry slot. (Not built yet: every call fails.)

use prism_pattern_sdk::ConfigError;
use serde_json::Value;

use super::{Page, Record, Registered, SlotHealth, SlotState};
use crate::error::Error;
use prism_proto::{filter::Filter, registry::Registration};

pub(crate) struct MemRegistry;

impl MemRegistry {
    pub(crate) fn open(_options: &Value, _max_identities: usize) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    pub(crate) async fn register(
        &self,
        _registration: &Registration,
        _now_ms: i64,
    ) -> Result<Registered, Error> {
        Err(missing())
    }

    pub(crate) async fn unregister(&self, _identity: &str, _now_ms: i64) -> Result<bool, Error> {
        Err(missing())
    }

    pub(crate) async fn get(&self, _identity: &str, _now_ms: i64) -> Result<Option<Record>, Error> {
        Err(missing())
    }

    pub(crate) async fn select(
        &self,
        _filter: &Filter,
        _after: Option<&str>,
        _limit: usize,
        _now_ms: i64,
    ) -> Result<Page, Error> {
        Err(missing())
    }

    pub(crate) async fn sweep(&self, _now_ms: i64) -> Result<Vec<String>, Error> {
        Err(missing())
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        SlotHealth {
            state: SlotState::Degraded(missing().to_string()),
            details: Vec::new(),
        }
    }
}

fn missing() -> Error {
    Error::Internal("the in-memory registry slot slot is not built yet".into())
}
