//! The multicast registry in one namespace: identities with JSON metadata
//! and a TTL, enumerated by filter, multicast to with a per-identity
//! report, and each identity's inbox as a [`Stream`].

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, TryStreamExt, stream};
use prism_proto::registry::v1::{
    EnumerateRequest, EnumerateResponse, GetRequest, InboxMessage, MulticastRequest,
    ReceiveRequest, RegisterRequest, UnregisterRequest,
};
use serde_json::Value;

use crate::call::Incoming;
use crate::{Error, Filter, PrismClient};

mod report;

pub use report::{Delivery, DeliveryStatus, MulticastReport};

const SERVICE: &str = "prism.registry.v1.MulticastRegistry";

/// The multicast registry in one namespace; from [`PrismClient::registry`].
/// `register` (registering again is the heartbeat), `unregister`, `get`,
/// each page of `enumerate` and opening an inbox are retried on
/// `UNAVAILABLE`; `multicast` is not (a retry could deliver twice).
///
/// Errors: each call fails with the [`Error`] variant of the proxy's status
/// (its message and trace id inside): [`Error::NotFound`] for an identity
/// that is not registered, [`Error::InvalidArgument`] naming the field for
/// a bad identity, metadata, filter or TTL.
#[derive(Clone, Debug)]
pub struct Registry {
    client: PrismClient,
    namespace: String,
}

/// What `register` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// True when the identity was not registered before the call.
    pub created: bool,
    pub registered_at: SystemTime,
    /// `None`: it stays until unregistered.
    pub expires_at: Option<SystemTime>,
}

/// A registered identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub identity: String,
    /// The metadata as registered (a JSON object).
    pub metadata: Value,
    /// When it was last registered.
    pub registered_at: SystemTime,
    /// `None`: it stays until unregistered.
    pub expires_at: Option<SystemTime>,
}

impl Registry {
    pub(crate) fn new(client: PrismClient, namespace: String) -> Self {
        Self { client, namespace }
    }

    /// The namespace these calls go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Registers `identity` with `metadata` (a JSON object), expiring after
    /// `ttl` (whole seconds; `None` keeps it until unregistered); for one
    /// already registered it replaces the metadata and restarts the TTL.
    pub async fn register(
        &self,
        identity: &str,
        metadata: Value,
        ttl: Option<Duration>,
    ) -> Result<Registration, Error> {
        let metadata = match metadata {
            Value::Null => None,
            object @ Value::Object(_) => Some(prism_proto::json::to_struct(&object)),
            other => {
                return Err(Error::Local {
                    what: "metadata",
                    reason: format!("must be a JSON object, got {other}"),
                });
            }
        };
        let ttl_seconds = match ttl {
            None => 0,
            Some(ttl) => i64::try_from(ttl.as_secs()).map_err(|_| Error::Local {
                what: "ttl",
                reason: format!("{ttl:?} is more seconds than an i64 holds"),
            })?,
        };
        let message = RegisterRequest {
            identity: identity.to_string(),
            metadata,
            ttl_seconds,
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Register"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.registry_stub().register(r).await },
            )
            .await?;
        Ok(Registration {
            created: response.created,
            registered_at: time(response.registered_at_ms),
            expires_at: expiry(response.expires_at_ms),
        })
    }

    /// Forgets `identity` and its pending messages; `true` when it was
    /// registered.
    pub async fn unregister(&self, identity: &str) -> Result<bool, Error> {
        let message = UnregisterRequest {
            identity: identity.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Unregister"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.registry_stub().unregister(r).await },
            )
            .await?;
        Ok(response.existed)
    }

    /// `identity` with its metadata; [`Error::NotFound`] when it is not
    /// registered (or has expired).
    pub async fn get(&self, identity: &str) -> Result<Identity, Error> {
        let message = GetRequest {
            identity: identity.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Get"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.registry_stub().get(r).await },
            )
            .await?;
        response
            .identity
            .map(identity_from)
            .ok_or_else(|| Error::Local {
                what: "response",
                reason: format!("the proxy answered Get for {identity} without the identity"),
            })
    }

    /// Every identity `filter` selects, with its metadata, in identity
    /// order, page after page (each page one call with its own deadline and
    /// retries).
    pub fn enumerate(
        &self,
        filter: impl Into<Filter>,
    ) -> impl Stream<Item = Result<Identity, Error>> + Send + 'static {
        let filter = filter.into();
        let start = (self.clone(), filter, Some(String::new()));
        stream::try_unfold(start, |(registry, filter, cursor)| async move {
            let Some(cursor) = cursor else {
                return Ok::<_, Error>(None);
            };
            let page = registry.enumerate_page(&filter, cursor, true).await?;
            let next = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
            let identities = page.identities.into_iter().map(|i| Ok(identity_from(i)));
            Ok(Some((stream::iter(identities), (registry, filter, next))))
        })
        .try_flatten()
    }

    /// How many identities `filter` selects, without fetching them.
    pub async fn count(&self, filter: impl Into<Filter>) -> Result<u64, Error> {
        let page = self
            .enumerate_page(&filter.into(), String::new(), false)
            .await?;
        Ok(page.total_count)
    }

    async fn enumerate_page(
        &self,
        filter: &Filter,
        cursor: String,
        include_metadata: bool,
    ) -> Result<EnumerateResponse, Error> {
        let message = EnumerateRequest {
            filter: filter.to_struct()?,
            // One identity is enough to learn the total.
            limit: if include_metadata { 0 } else { 1 },
            cursor,
            include_metadata,
        };
        self.client
            .unary(
                (SERVICE, "Enumerate"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.registry_stub().enumerate(r).await },
            )
            .await
    }

    /// Sends `payload` to every identity `filter` selects; what became of
    /// it, per identity.
    pub async fn multicast(
        &self,
        filter: impl Into<Filter>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<MulticastReport, Error> {
        self.multicast_with(filter, payload, HashMap::new(), None)
            .await
    }

    /// [`Self::multicast`] with application headers and a fan-out timeout
    /// (`None`: the proxy's 5 s; at most 60 s, in whole milliseconds).
    pub async fn multicast_with(
        &self,
        filter: impl Into<Filter>,
        payload: impl Into<Vec<u8>>,
        metadata: HashMap<String, String>,
        timeout: Option<Duration>,
    ) -> Result<MulticastReport, Error> {
        let timeout_ms = match timeout {
            None => 0,
            Some(t) => u32::try_from(t.as_millis()).map_err(|_| Error::Local {
                what: "timeout",
                reason: format!("{t:?} is more milliseconds than a u32 holds"),
            })?,
        };
        let message = MulticastRequest {
            filter: filter.into().to_struct()?,
            payload: payload.into(),
            metadata,
            timeout_ms,
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Multicast"),
                &self.namespace,
                false,
                message,
                |r| async { self.client.registry_stub().multicast(r).await },
            )
            .await?;
        Ok(report::from_response(response))
    }

    /// `identity`'s inbox: what is pending for it, then what is multicast
    /// to it while the stream is open. [`Error::NotFound`] when it is not
    /// registered; dropping the [`Inbox`] detaches the receiver.
    pub async fn receive(&self, identity: &str) -> Result<Inbox, Error> {
        let message = ReceiveRequest {
            identity: identity.to_string(),
        };
        let inbox = self
            .client
            .server_stream((SERVICE, "Receive"), &self.namespace, message, |r| async {
                self.client.registry_stub().receive(r).await
            })
            .await?;
        Ok(Inbox(inbox))
    }
}

/// An identity's open inbox: a [`Stream`] of what is multicast to it, which
/// ends when the proxy ends it (an error item says why, with the trace id).
#[derive(Debug)]
pub struct Inbox(Incoming<InboxMessage>);

impl Inbox {
    /// The `x-prism-trace-id` of the Receive call.
    pub fn trace_id(&self) -> Option<&str> {
        self.0.trace_id()
    }
}

impl Stream for Inbox {
    type Item = Result<InboxMessage, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next(cx)
    }
}

fn time(epoch_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0))
}

fn expiry(epoch_ms: i64) -> Option<SystemTime> {
    (epoch_ms != 0).then(|| time(epoch_ms))
}

fn identity_from(identity: prism_proto::registry::v1::Identity) -> Identity {
    Identity {
        metadata: identity.metadata.as_ref().map_or_else(
            || Value::Object(Default::default()),
            prism_proto::json::from_struct,
        ),
        registered_at: time(identity.registered_at_ms),
        expires_at: expiry(identity.expires_at_ms),
        identity: identity.identity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_expiry_means_never_and_times_are_epoch_milliseconds() {
        assert_eq!(expiry(0), None);
        assert_eq!(
            expiry(1_500),
            Some(UNIX_EPOCH + Duration::from_millis(1_500))
        );
        let identity = identity_from(prism_proto::registry::v1::Identity {
            identity: "s1".into(),
            metadata: None,
            registered_at_ms: 2_000,
            expires_at_ms: 0,
        });
        assert_eq!(identity.metadata, serde_json::json!({}));
        assert_eq!(identity.registered_at, UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(identity.expires_at, None);
    }
}
