//! Health as a pattern reports it.

use std::collections::BTreeMap;

use prism_proto::lifecycle::v1::HealthCheckResponse;
pub use prism_proto::lifecycle::v1::HealthStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    pub message: String,
    pub details: BTreeMap<String, String>,
    /// The backend this pattern is alive but cannot reach (see
    /// [`Health::backend_unreachable`]).
    pub unreachable_backend: Option<String>,
}

impl Health {
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: BTreeMap::new(),
            unreachable_backend: None,
        }
    }

    /// Alive but not ready: `backend` (e.g. "redis") cannot be reached. The
    /// proxy fails calls fast naming it and keeps the process, which goes on
    /// reconnecting; it is not restarted for this.
    pub fn backend_unreachable(backend: &str, message: impl Into<String>) -> Self {
        Self {
            unreachable_backend: Some(backend.to_string()),
            ..Self::new(HealthStatus::Unhealthy, message)
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
            unreachable_backend: h.unreachable_backend.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_backend_is_named_on_the_wire() {
        let wire = HealthCheckResponse::from(Health::backend_unreachable("redis", "refused"));
        assert_eq!(wire.status, HealthStatus::Unhealthy as i32);
        assert_eq!(wire.unreachable_backend, "redis");
        assert_eq!(wire.message, "refused");
        let wire = HealthCheckResponse::from(Health::new(HealthStatus::Unhealthy, "broken"));
        assert_eq!(wire.unreachable_backend, "", "broken is not unreachable");
    }
}
