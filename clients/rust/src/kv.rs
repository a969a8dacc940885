//! KeyValue in one namespace: typed calls over the generated stub, `get`
//! failing with [`Error::NotFound`], `scan` as a stream over every page.

use std::time::Duration;

use futures_util::{Stream, TryStreamExt, stream};
use prism_proto::keyvalue::v1::{
    DeleteRequest, ExistsRequest, GetRequest, ScanRequest, ScanResponse, SetRequest,
};

use crate::{Error, PrismClient};

const SERVICE: &str = "prism.keyvalue.v1.KeyValue";

/// KeyValue in one namespace; from [`PrismClient::kv`]. Every call here is
/// idempotent and retried on `UNAVAILABLE` within the deadline (`set`
/// writes the same value again; `delete` of a deleted key is a no-op that
/// answers `false`).
///
/// Errors: each call fails with the [`Error`] variant of the proxy's status
/// (its message and trace id inside); [`Error::Token`] when the token
/// provider has no token; [`Error::DeadlineExceeded`] when the client's
/// timeout passes first.
#[derive(Clone, Debug)]
pub struct Kv {
    client: PrismClient,
    namespace: String,
}

impl Kv {
    pub(crate) fn new(client: PrismClient, namespace: String) -> Self {
        Self { client, namespace }
    }

    /// The namespace these calls go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Stores `value` at `key`, expiring after `ttl` (whole seconds; `None`
    /// keeps it until deleted).
    pub async fn set(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let ttl_seconds = match ttl {
            None => 0,
            Some(ttl) => i64::try_from(ttl.as_secs()).map_err(|_| Error::Local {
                what: "ttl",
                reason: format!("{ttl:?} is more seconds than an i64 holds"),
            })?,
        };
        let message = SetRequest {
            key: key.to_string(),
            value: value.into(),
            ttl_seconds,
        };
        self.client
            .unary(
                (SERVICE, "Set"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.kv_stub().set(r).await },
            )
            .await
            .map(drop)
    }

    /// The value at `key`; [`Error::NotFound`] when there is none.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let message = GetRequest {
            key: key.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Get"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.kv_stub().get(r).await },
            )
            .await?;
        Ok(response.value)
    }

    /// Deletes `key`; `true` when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let message = DeleteRequest {
            key: key.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Delete"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.kv_stub().delete(r).await },
            )
            .await?;
        Ok(response.deleted)
    }

    /// Whether `key` holds a value.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        let message = ExistsRequest {
            key: key.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Exists"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.kv_stub().exists(r).await },
            )
            .await?;
        Ok(response.exists)
    }

    /// Every key starting with `prefix`, page after page (each page one
    /// call with its own deadline and retries), until the proxy says there
    /// are no more.
    pub fn scan(&self, prefix: &str) -> impl Stream<Item = Result<String, Error>> + Send + 'static {
        let start = (self.clone(), prefix.to_string(), Some(String::new()));
        stream::try_unfold(start, |(kv, prefix, cursor)| async move {
            let Some(cursor) = cursor else {
                return Ok::<_, Error>(None);
            };
            let page = kv.scan_page(&prefix, cursor).await?;
            let next = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
            let keys = stream::iter(page.keys.into_iter().map(Ok::<_, Error>));
            Ok(Some((keys, (kv, prefix, next))))
        })
        .try_flatten()
    }

    async fn scan_page(&self, prefix: &str, cursor: String) -> Result<ScanResponse, Error> {
        let message = ScanRequest {
            prefix: prefix.to_string(),
            limit: 0,
            cursor,
        };
        self.client
            .unary(
                (SERVICE, "Scan"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.kv_stub().scan(r).await },
            )
            .await
    }
}
