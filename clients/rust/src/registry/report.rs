//! What a multicast reports: the counts, and per target identity what
//! became of the message, with the reason for a failure or a timeout.

use prism_proto::registry::v1::{DeliveryStatus as Wire, MulticastResponse};

/// What became of a multicast, in all and per identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastReport {
    pub multicast_id: String,
    /// Identities the filter selected.
    pub target: u32,
    /// Handed to a live receiver (or stored durably while one was attached).
    pub delivered: u32,
    /// Kept for an identity with no receiver, until it next receives.
    pub pending: u32,
    /// Failed and timed out together.
    pub failed: u32,
    /// One per target, in identity order.
    pub results: Vec<Delivery>,
}

impl MulticastReport {
    /// The status of `identity`, if it was a target.
    pub fn status_of(&self, identity: &str) -> Option<&Delivery> {
        self.results.iter().find(|d| d.identity == identity)
    }
}

/// One target of a multicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub identity: String,
    pub status: DeliveryStatus,
}

/// What became of a multicast for one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    Pending,
    /// Nobody holds the message; why.
    Failed(String),
    /// The delivery did not finish within the multicast's timeout; why.
    Timeout(String),
}

pub(super) fn from_response(response: MulticastResponse) -> MulticastReport {
    let results = response
        .results
        .into_iter()
        .map(|r| {
            let status = match r.status() {
                Wire::Delivered => DeliveryStatus::Delivered,
                Wire::Pending => DeliveryStatus::Pending,
                Wire::Timeout => DeliveryStatus::Timeout(r.error),
                Wire::Failed | Wire::Unspecified => DeliveryStatus::Failed(r.error),
            };
            Delivery {
                identity: r.identity,
                status,
            }
        })
        .collect();
    MulticastReport {
        multicast_id: response.multicast_id,
        target: response.target_count,
        delivered: response.delivered_count,
        pending: response.pending_count,
        failed: response.failed_count,
        results,
    }
}

#[cfg(test)]
mod tests {
    use prism_proto::registry::v1::DeliveryResult;

    use super::*;

    #[test]
    fn a_report_keeps_counts_and_maps_every_status_with_its_reason() {
        let result = |identity: &str, status: Wire, error: &str| DeliveryResult {
            identity: identity.into(),
            status: status as i32,
            error: error.into(),
        };
        let got = from_response(MulticastResponse {
            multicast_id: "m1".into(),
            target_count: 5,
            delivered_count: 1,
            pending_count: 1,
            failed_count: 3,
            results: vec![
                result("a", Wire::Delivered, ""),
                result("b", Wire::Pending, ""),
                result("c", Wire::Failed, "inbox full"),
                result("d", Wire::Timeout, "slow"),
                result("e", Wire::Unspecified, ""),
            ],
        });
        assert_eq!(
            (got.target, got.delivered, got.pending, got.failed),
            (5, 1, 1, 3)
        );
        let statuses: Vec<_> = got.results.iter().map(|d| d.status.clone()).collect();
        assert_eq!(
            statuses,
            [
                DeliveryStatus::Delivered,
                DeliveryStatus::Pending,
                DeliveryStatus::Failed("inbox full".into()),
                DeliveryStatus::Timeout("slow".into()),
                DeliveryStatus::Failed(String::new()),
            ]
        );
        assert_eq!(
            got.status_of("d").unwrap().status,
            DeliveryStatus::Timeout("slow".into())
        );
        assert!(got.status_of("z").is_none());
    }
}
