//! The registry suite's setups: a proxy serving the suite's namespaces on
//! one slot combination, and the servers it needs.

use std::any::Any;

use prism_proto::registry::v1::multicast_registry_client::MulticastRegistryClient;
use prism_tests::{NatsServer, Proxy, ProxyBuilder, RedisServer, proxy::NamespaceHeader};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// The namespace the suite's cases use; it sweeps once an hour, so only
/// reads can hide an expired identity there.
pub(crate) const NS: &str = "reg";
/// The same slots with a sweep every 200 ms.
pub(crate) const SWEPT: &str = "reg_swept";
/// The payload limit the suite configures.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024;

pub(crate) type RegClient = MulticastRegistryClient<InterceptedService<Channel, NamespaceHeader>>;

pub(crate) struct RegistryEnv {
    pub proxy: Proxy,
    /// The messaging slot stores messages for identities with no receiver
    /// (PENDING); otherwise they are FAILED.
    pub stores: bool,
    pub _backends: Vec<Box<dyn Any + Send>>,
}

impl RegistryEnv {
    /// A client of the suite's namespace on a connection of its own.
    pub(crate) async fn client(&self) -> RegClient {
        client(&self.proxy, NS).await
    }

    pub(crate) async fn swept_client(&self) -> RegClient {
        client(&self.proxy, SWEPT).await
    }
}

pub(crate) async fn client(proxy: &Proxy, namespace: &str) -> RegClient {
    MulticastRegistryClient::with_interceptor(
        proxy.channel().await,
        NamespaceHeader::new(namespace),
    )
    .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
}

/// The registry namespace `name` with the given slot objects (YAML flow).
pub(crate) fn namespace(name: &str, registry: &str, messaging: &str, sweep_ms: u64) -> String {
    format!(
        "{{name: {name}, pattern: multicast-registry, limits: {{max_value_bytes: {MAX_PAYLOAD}}}, \
         config: {{registry: {registry}, messaging: {messaging}, sweep_interval_ms: {sweep_ms}, \
         max_value_bytes: {MAX_PAYLOAD}}}}}"
    )
}

async fn start(
    builder: ProxyBuilder,
    registry: &str,
    messaging: &str,
    stores: bool,
    backends: Vec<Box<dyn Any + Send>>,
) -> RegistryEnv {
    let proxy = builder
        .namespace(&namespace(NS, registry, messaging, 3_600_000))
        .namespace(&namespace(SWEPT, registry, messaging, 200))
        .start()
        .await;
    proxy.wait_healthy(NS).await;
    proxy.wait_healthy(SWEPT).await;
    RegistryEnv {
        proxy,
        stores,
        _backends: backends,
    }
}

/// Both slots in the pattern process.
pub(crate) async fn memstore_env(builder: ProxyBuilder) -> RegistryEnv {
    start(
        builder,
        "{backend: memstore}",
        "{backend: memstore}",
        true,
        Vec::new(),
    )
    .await
}

/// Identities in Redis, messages over core NATS (nothing kept for absent receivers).
pub(crate) async fn redis_nats_env(builder: ProxyBuilder) -> RegistryEnv {
    nats_env(builder, false).await
}

/// Identities in Redis, durable inboxes on JetStream.
pub(crate) async fn redis_jetstream_env(builder: ProxyBuilder) -> RegistryEnv {
    nats_env(builder, true).await
}

async fn nats_env(builder: ProxyBuilder, jetstream: bool) -> RegistryEnv {
    let redis = RedisServer::start().await;
    let nats = NatsServer::start().await;
    let registry = format!("{{backend: redis, address: \"{}\"}}", redis.url());
    let messaging = format!(
        "{{backend: nats, url: \"{}\", jetstream: {jetstream}}}",
        nats.url()
    );
    start(
        builder,
        &registry,
        &messaging,
        jetstream,
        vec![Box::new(redis), Box::new(nats)],
    )
    .await
}

/// Identities in Redis, messages over Redis Pub/Sub.
pub(crate) async fn redis_redis_env(builder: ProxyBuilder) -> RegistryEnv {
    let redis = RedisServer::start().await;
    let slot = format!("{{backend: redis, address: \"{}\"}}", redis.url());
    start(builder, &slot, &slot, false, vec![Box::new(redis)]).await
}
