//! The tower service in front of the data-plane and admin services: with
//! auth on, it authenticates each call, checks what the method needs
//! against the policy, records the caller on the server span, hands the
//! caller to the handler in the request's extensions, and makes streams
//! end with the caller's token. With auth off it only forwards.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use prism_proto::field::quote;
use tonic::Status;
use tower::Service;

use super::{
    Auth, Caller, Enabled,
    expiry::ExpiringBody,
    policy::{self, Need},
};
use crate::{dataplane, error::ProxyError, listener::tls::PeerIdentity};

/// Which listener a service guards: the methods' needs differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plane {
    Data,
    Admin,
}

#[derive(Clone)]
pub(crate) struct AuthService<S> {
    inner: S,
    auth: Arc<Auth>,
    plane: Plane,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, auth: Arc<Auth>, plane: Plane) -> Self {
        Self { inner, auth, plane }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(enabled) = self.auth.current() else {
            return Box::pin(inner.call(request));
        };
        let path = request.uri().path();
        let need = match self.plane {
            Plane::Data => policy::data_need(path),
            Plane::Admin => policy::admin_need(path),
        };
        if need == Need::Nothing {
            return Box::pin(inner.call(request));
        }
        let stream = policy::is_stream(path);
        let method = path.rsplit('/').next().unwrap_or_default().to_string();
        // Parts, not the request, cross the await: the body need not be Sync.
        let (mut parts, body) = request.into_parts();
        Box::pin(async move {
            let caller = match admit(&enabled, &parts, need, &method).await {
                Ok(caller) => caller,
                Err(e) => return Ok(Status::from(e).into_http()),
            };
            let expires_at = caller.expires_at;
            let caller = Caller::new(caller);
            tracing::Span::current().record("enduser.id", &*caller.name);
            parts.extensions.insert(caller);
            let response = inner.call(Request::from_parts(parts, body)).await?;
            Ok(match expires_at {
                Some(at) if stream => {
                    response.map(|body| tonic::body::Body::new(ExpiringBody::new(body, at)))
                }
                _ => response,
            })
        })
    }
}

/// Authenticates the call and checks `need`.
async fn admit(
    enabled: &Enabled,
    request: &http::request::Parts,
    need: Need,
    method: &str,
) -> Result<Arc<prism_auth::Principal>, ProxyError> {
    // A verified client certificate, put on every request of its connection
    // by the TLS listener; its common name names the caller.
    let certificate = request
        .extensions
        .get::<PeerIdentity>()
        .and_then(|peer| peer.common_name.as_deref());
    let caller = enabled.authenticate(&request.headers, certificate).await?;
    match need {
        Need::Nothing | Need::Caller => {}
        Need::Namespace(permission) => {
            let namespace = dataplane::namespace_of(&request.headers)?;
            if !enabled.policy.allows(&caller, namespace, permission) {
                return Err(ProxyError::PermissionDenied {
                    caller: quote(&caller.name()).to_string(),
                    namespace: namespace.to_string(),
                    permission: permission.as_str(),
                });
            }
        }
        Need::Role(needed) => {
            let role = enabled.policy.role(&caller);
            if role < needed {
                return Err(ProxyError::RoleRequired {
                    caller: quote(&caller.name()).to_string(),
                    method: method.to_string(),
                    needed: needed.as_str(),
                    held: role.as_str(),
                });
            }
        }
    }
    Ok(caller)
}
