//! Clients that carry a bearer token, and proxy configs with `auth:` on,
//! for the auth suites.

use std::time::Duration;

use prism_harness::jwt::AUDIENCE;
use prism_proto::{
    admin::v1::admin_client::AdminClient, keyvalue::v1::key_value_client::KeyValueClient,
    pubsub::v1::pub_sub_client::PubSubClient,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{Proxy, wait::eventually};

/// Adds `x-prism-namespace` and, when set, `authorization: Bearer …`.
#[derive(Clone)]
pub struct Credentials {
    namespace: Option<MetadataValue<Ascii>>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Credentials {
    /// `token: None` sends no authorization header; `Some(raw)` sends the
    /// header as given when it does not start with "Bearer "… use
    /// [`Credentials::raw`] for a malformed header.
    pub fn new(namespace: &str, token: Option<&str>) -> Self {
        Self {
            namespace: (!namespace.is_empty()).then(|| namespace.parse().expect("ASCII namespace")),
            authorization: token.map(|t| format!("Bearer {t}").parse().expect("ASCII token")),
        }
    }

    /// An `authorization` header exactly as given.
    pub fn raw(namespace: &str, authorization: &str) -> Self {
        Self {
            authorization: Some(authorization.parse().expect("ASCII header")),
            ..Self::new(namespace, None)
        }
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(ns) = &self.namespace {
            request
                .metadata_mut()
                .insert("x-prism-namespace", ns.clone());
        }
        if let Some(auth) = &self.authorization {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        Ok(request)
    }
}

pub type AuthKv = KeyValueClient<InterceptedService<Channel, Credentials>>;
pub type AuthPubSub = PubSubClient<InterceptedService<Channel, Credentials>>;
pub type AuthAdmin = AdminClient<InterceptedService<Channel, Credentials>>;

impl Proxy {
    pub async fn kv_as(&self, namespace: &str, token: Option<&str>) -> AuthKv {
        KeyValueClient::with_interceptor(self.channel().await, Credentials::new(namespace, token))
    }

    pub async fn kv_with(&self, credentials: Credentials) -> AuthKv {
        KeyValueClient::with_interceptor(self.channel().await, credentials)
    }

    pub async fn pubsub_as(&self, namespace: &str, token: Option<&str>) -> AuthPubSub {
        PubSubClient::with_interceptor(self.channel().await, Credentials::new(namespace, token))
    }

    pub async fn admin_as(&self, token: Option<&str>) -> AuthAdmin {
        AdminClient::with_interceptor(
            self.connect(self.admin_addr).await,
            Credentials::new("", token),
        )
    }

    /// Waits until `namespace` serves, asking the health service (open
    /// without a token) rather than the admin API.
    pub async fn wait_serving(&self, namespace: &str) {
        eventually(
            Duration::from_secs(20),
            &format!("namespace {namespace} to serve"),
            || async {
                matches!(
                    self.serving_status(namespace).await,
                    Ok(ServingStatus::Serving)
                )
                .then_some(())
            },
        )
        .await;
    }
}

/// The `auth:` block trusting `issuer` for audience [`AUDIENCE`], with
/// `extra` YAML lines (already indented by two spaces) appended.
pub fn auth_block(issuer: &str, extra: &str) -> String {
    format!(
        "auth:\n  issuers:\n    - issuer: {issuer}\n      audiences: [{AUDIENCE}]\n  leeway_seconds: 0\n{extra}"
    )
}
