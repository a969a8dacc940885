//! Clients of a proxy's `prism.registry.v1.MulticastRegistry`, like
//! [`Proxy::kv`] for KeyValue: each call carries the namespace header.

use prism_proto::registry::v1::multicast_registry_client::MulticastRegistryClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{Proxy, proxy::NamespaceHeader};

pub type RegistryClient = MulticastRegistryClient<InterceptedService<Channel, NamespaceHeader>>;

impl Proxy {
    /// A registry client on a connection of its own whose calls carry
    /// `x-prism-namespace: namespace`.
    pub async fn registry(&self, namespace: &str) -> RegistryClient {
        MulticastRegistryClient::with_interceptor(
            self.channel().await,
            NamespaceHeader::new(namespace),
        )
        .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
    }
}
