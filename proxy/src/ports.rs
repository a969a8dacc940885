//! Which port serves which service. Each port's reflection lists only its
//! own services, and a call to a service of the other port is UNIMPLEMENTED
//! with a message naming the port that serves it, instead of an empty
//! UNIMPLEMENTED from the router.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tonic::Status;
use tower::Service;

use crate::error::ProxyError;

pub(crate) const KEY_VALUE: &str = "prism.keyvalue.v1.KeyValue";
pub(crate) const PUB_SUB: &str = "prism.pubsub.v1.PubSub";
pub(crate) const MULTICAST_REGISTRY: &str = "prism.registry.v1.MulticastRegistry";
pub(crate) const ADMIN: &str = "prism.admin.v1.Admin";
const LIFECYCLE: &str = "prism.lifecycle.v1.PatternLifecycle";

/// Data-plane services, each with a `grpc.health.v1` entry.
pub(crate) const DATA_SERVICES: [&str; 3] = [KEY_VALUE, PUB_SUB, MULTICAST_REGISTRY];

/// Served on both ports.
const COMMON_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The services reflection lists on the data port.
pub(crate) fn data_port_services() -> impl Iterator<Item = &'static str> {
    DATA_SERVICES.into_iter().chain(COMMON_SERVICES)
}

/// The services reflection lists on the admin port.
pub(crate) fn admin_port_services() -> impl Iterator<Item = &'static str> {
    std::iter::once(ADMIN).chain(COMMON_SERVICES)
}

/// Services the data port refuses, with where they are served.
pub(crate) fn not_on_data_port(admin: SocketAddr) -> WrongPorts {
    WrongPorts(Arc::new(vec![
        (ADMIN, format!("served on the admin port {admin}")),
        (
            LIFECYCLE,
            "served by pattern processes to the proxy, not by the proxy".to_string(),
        ),
    ]))
}

/// Services the admin port refuses, with where they are served.
pub(crate) fn not_on_admin_port(data: SocketAddr) -> WrongPorts {
    let mut elsewhere: Vec<_> = DATA_SERVICES
        .into_iter()
        .map(|service| (service, format!("served on the data port {data}")))
        .collect();
    elsewhere.push((
        LIFECYCLE,
        "served by pattern processes to the proxy, not by the proxy".to_string(),
    ));
    WrongPorts(Arc::new(elsewhere))
}

/// Known services a port does not serve, each with where it is served.
#[derive(Debug, Clone)]
pub(crate) struct WrongPorts(Arc<Vec<(&'static str, String)>>);

impl WrongPorts {
    /// The error for a call to `path`, when its service is served elsewhere.
    pub(crate) fn refusal(&self, path: &str) -> Option<ProxyError> {
        let service = path.trim_start_matches('/').split('/').next()?;
        self.0
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(service, elsewhere)| ProxyError::WrongPort {
                service,
                elsewhere: elsewhere.clone(),
            })
    }

    /// Wraps a port's router so calls to services served elsewhere are
    /// refused with [`Self::refusal`].
    pub(crate) fn guard<S>(self, inner: S) -> PortGuard<S> {
        PortGuard { inner, wrong: self }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PortGuard<S> {
    inner: S,
    wrong: WrongPorts,
}

impl<S, B> Service<Request<B>> for PortGuard<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Self::Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.wrong.refusal(request.uri().path()) {
            Some(error) => Either::Left(ready(Ok(Status::from(error).into_http()))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_port_points_admin_calls_to_the_admin_port() {
        let wrong = not_on_data_port("127.0.0.1:8981".parse().unwrap());
        let err = wrong.refusal("/prism.admin.v1.Admin/ListPatterns").unwrap();
        assert_eq!(
            err.to_string(),
            "prism.admin.v1.Admin is served on the admin port 127.0.0.1:8981"
        );
        assert_eq!(Status::from(err).code(), tonic::Code::Unimplemented);
        assert!(wrong.refusal("/prism.keyvalue.v1.KeyValue/Get").is_none());
        assert!(wrong.refusal("/grpc.health.v1.Health/Check").is_none());
        assert!(
            wrong
                .refusal("/prism.lifecycle.v1.PatternLifecycle/Stop")
                .is_some()
        );
    }

    #[test]
    fn the_admin_port_points_data_calls_to_the_data_port() {
        let wrong = not_on_admin_port("127.0.0.1:8980".parse().unwrap());
        for service in DATA_SERVICES {
            let err = wrong.refusal(&format!("/{service}/Anything")).unwrap();
            assert_eq!(
                err.to_string(),
                format!("{service} is served on the data port 127.0.0.1:8980")
            );
        }
        assert!(
            wrong
                .refusal("/prism.admin.v1.Admin/ListPatterns")
                .is_none()
        );
        assert!(wrong.refusal("").is_none());
        assert!(wrong.refusal("/").is_none());
    }

    #[test]
    fn each_port_lists_only_its_own_services() {
        let data: Vec<_> = data_port_services().collect();
        let admin: Vec<_> = admin_port_services().collect();
        assert!(!data.contains(&ADMIN) && !data.contains(&LIFECYCLE));
        assert!(admin.contains(&ADMIN));
        for service in DATA_SERVICES {
            assert!(data.contains(&service) && !admin.contains(&service));
        }
    }
}
