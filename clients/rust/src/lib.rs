//! `prism-client`: the Rust client for Prism's data plane.
//!
//! ```no_run
//! use futures_util::{StreamExt, TryStreamExt};
//! use prism_client::{DeliveryStatus, Filter, PrismClient};
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), prism_client::Error> {
//! let client = PrismClient::connect("http://127.0.0.1:8980").await?;
//!
//! let kv = client.kv("default");
//! kv.set("greeting", "hello", None).await?;
//! assert_eq!(kv.get("greeting").await?, b"hello");
//! let keys: Vec<String> = kv.scan("greet").try_collect().await?;
//!
//! let events = client.pubsub("events");
//! let mut orders = events.subscribe("orders.*").await?;
//! events.publish("orders.created", "order 42").await?;
//! let first = orders.next().await;
//!
//! let devices = client.registry("devices");
//! devices.register("sensor-1", json!({"type": "sensor", "floor": 1}), None).await?;
//! let report = devices
//!     .multicast(Filter::all().eq("type", "sensor").gte("floor", 1), "read")
//!     .await?;
//! assert_eq!(report.status_of("sensor-1").map(|d| &d.status), Some(&DeliveryStatus::Pending));
//! let mut inbox = devices.receive("sensor-1").await?;
//! let message = inbox.next().await;
//! # Ok(()) }
//! ```
//!
//! Over TLS: an `https://` address, with [`Builder::ca_file`] to trust a
//! private CA and [`Builder::client_certificate`] for mTLS.
//!
//! - [`PrismClient`] and its [`Builder`] (here): the connection (plaintext
//!   or TLS), the default namespace and deadline, the bearer token, the
//!   retry policy.
//! - `kv`: [`Kv`], KeyValue in one namespace; `pubsub`: [`PubSub`] and
//!   [`Subscription`], PubSub in one namespace; `registry`: [`Registry`],
//!   the multicast registry in one namespace, its [`MulticastReport`] and
//!   the [`Inbox`] stream; `filter`: [`Filter`], which identities a
//!   registry call selects.
//! - `call`: what every request carries, the client span, the deadline,
//!   opening a server stream.
//! - `tls`: the scheme an address means, the CA and client certificate
//!   files, connection errors told in full.
//! - `error`: [`Error`], one variant per gRPC code, each with the proxy's
//!   message and the call's `x-prism-trace-id`.
//! - `retry`: [`RetryPolicy`], backoff with jitter on `UNAVAILABLE` for the
//!   idempotent calls (`set`, `get`, `delete`, `exists`, `scan`, opening a
//!   subscription or an inbox, `unsubscribe`, `register`, `unregister`,
//!   registry `get` and `enumerate`; never `publish`, `publish_batch`,
//!   `ack` or `multicast`), within the call's deadline.
//!
//! Every call carries `x-prism-namespace`, `authorization: Bearer …` when a
//! token is configured, a `grpc-timeout` of the time left, and the W3C
//! `traceparent` of a client span under the caller's current `tracing` span
//! (when the app installs `tracing-opentelemetry`), so the app's trace
//! continues through the proxy.

mod call;
mod error;
mod filter;
mod kv;
mod pubsub;
mod registry;
mod retry;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prism_auth::{Secret, TokenProvider};
use tonic::transport::{Channel, Endpoint};

pub use error::{Detail, Error};
pub use filter::Filter;
pub use kv::Kv;
pub use prism_proto::pubsub::v1::Message;
pub use prism_proto::registry::v1::InboxMessage;
pub use pubsub::{PubSub, Subscription};
pub use registry::{
    Delivery, DeliveryStatus, Identity, Inbox, MulticastReport, Registration, Registry,
};
pub use retry::RetryPolicy;

/// The namespace calls go to unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "default";
/// How long a call may take, retries included, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a Prism proxy's data plane; cheap to clone (clones share
/// the HTTP/2 connection).
#[derive(Clone)]
pub struct PrismClient {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Channel,
    namespace: String,
    timeout: Duration,
    token: Option<Token>,
    retry: RetryPolicy,
}

enum Token {
    Static(Secret),
    Provider(TokenProvider),
}

/// Shows the settings, never the token.
impl std::fmt::Debug for PrismClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = match &self.inner.token {
            None => "none",
            Some(Token::Static(_)) => "static",
            Some(Token::Provider(provider)) => provider.source_name(),
        };
        f.debug_struct("PrismClient")
            .field("namespace", &self.inner.namespace)
            .field("timeout", &self.inner.timeout)
            .field("token", &token)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl PrismClient {
    /// Connects to `address` (`host:port` or `http://host:port`; for TLS
    /// `https://host:port`, trusting the system's roots) with the defaults:
    /// namespace `default`, 10 s per call, no token.
    pub async fn connect(address: impl Into<String>) -> Result<Self, Error> {
        Self::builder(address).connect().await
    }

    /// A client to `address` set up step by step.
    pub fn builder(address: impl Into<String>) -> Builder {
        Builder {
            address: address.into(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            timeout: DEFAULT_TIMEOUT,
            token: None,
            retry: RetryPolicy::default(),
            tls: tls::TlsFiles::default(),
        }
    }

    /// The namespace [`Self::default_kv`] and [`Self::default_pubsub`] use.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// KeyValue in `namespace`.
    pub fn kv(&self, namespace: impl Into<String>) -> Kv {
        Kv::new(self.clone(), namespace.into())
    }

    /// PubSub in `namespace`.
    pub fn pubsub(&self, namespace: impl Into<String>) -> PubSub {
        PubSub::new(self.clone(), namespace.into())
    }

    /// The multicast registry in `namespace`.
    pub fn registry(&self, namespace: impl Into<String>) -> Registry {
        Registry::new(self.clone(), namespace.into())
    }

    /// KeyValue in the client's namespace.
    pub fn default_kv(&self) -> Kv {
        self.kv(self.inner.namespace.clone())
    }

    /// PubSub in the client's namespace.
    pub fn default_pubsub(&self) -> PubSub {
        self.pubsub(self.inner.namespace.clone())
    }
}

/// Settings for [`PrismClient`]; [`Builder::connect`] opens the connection.
pub struct Builder {
    address: String,
    namespace: String,
    timeout: Duration,
    token: Option<Token>,
    retry: RetryPolicy,
    tls: tls::TlsFiles,
}

impl Builder {
    /// The namespace of [`PrismClient::default_kv`] and
    /// [`PrismClient::default_pubsub`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The deadline of each call, retries included (opening a subscription,
    /// not the life of its stream).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same bearer token on every call.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token::Static(Secret::new(token.into())));
        self
    }

    /// A token asked of `provider` before each call (a token file read
    /// again when it changes, `PRISM_TOKEN`, or the login's cache refreshed
    /// before it expires).
    pub fn token_provider(mut self, provider: TokenProvider) -> Self {
        self.token = Some(Token::Provider(provider));
        self
    }

    /// How idempotent calls retry on `UNAVAILABLE`.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Trusts only the CA certificates in `path` (PEM) for an `https://`
    /// address, instead of the system's roots; a bare `host:port` then
    /// means `https://`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Shows the certificate in `cert` with its key in `key` (PEM) to a
    /// proxy that asks for one (mTLS); a bare `host:port` then means
    /// `https://`.
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.identity = Some((cert.into(), key.into()));
        self
    }

    /// Opens the connection: HTTP/2 in plaintext for `http://` (or a bare
    /// `host:port`), under TLS for `https://` (or a bare `host:port` when a
    /// CA file or client certificate is set).
    ///
    /// Errors: [`Error::Connect`] when the address is malformed, nothing
    /// answers there within the timeout, or the TLS handshake fails (the
    /// reason says why, e.g. the proxy's certificate is not from a trusted
    /// CA); [`Error::Local`] naming the file when a TLS file cannot be read.
    pub async fn connect(self) -> Result<PrismClient, Error> {
        let connect_error = |reason: String| Error::Connect {
            address: self.address.clone(),
            reason,
        };
        let uri = tls::uri(&self.address, self.tls.any()).map_err(connect_error)?;
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| connect_error(e.to_string()))?
            .connect_timeout(self.timeout);
        if uri.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls.client_config()?)
                .map_err(|e| connect_error(tls::chain(&e)))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| connect_error(tls::chain(&e)))?;
        Ok(PrismClient {
            inner: Arc::new(Inner {
                channel,
                namespace: self.namespace,
                timeout: self.timeout,
                token: self.token,
                retry: self.retry,
            }),
        })
    }
}
