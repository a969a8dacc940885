//! Health as a pattern reports it.

use std::collections::BTreeMap;

use prism_proto::lifecycle::v1::HealthCheckResponse;
pub use prism_proto::lifecycle::v1::HealthStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    pub message: String,
    pub details: BTreeMap<String, String>,
}

impl Health {
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    pub fn healthy() -> Self {
        Self::new(HealthStatus::Healthy, "ok")
    }

    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_string(), value.to_string());
        self
    }
}

impl From<Health> for HealthCheckResponse {
    fn from(h: Health) -> Self {
        Self {
            status: h.status as i32,
            message: h.message,
            details: h.details.into_iter().collect(),
        }
    }
}
