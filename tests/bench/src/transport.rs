//! The clients a path is driven through. Today every path speaks gRPC; a
//! direct-to-Redis or direct-to-NATS path adds its own variant here (its
//! connection pool), and targets match on it in their `call`.

use std::{net::SocketAddr, time::Duration};

use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::BenchError;

/// The namespace header the proxy routes by.
pub const NAMESPACE_HEADER: &str = "x-prism-namespace";

pub enum Transport {
    Grpc(GrpcPool),
}

/// `connections` HTTP/2 connections to one server; request `i` of a run
/// takes connection `i % connections`.
pub struct GrpcPool {
    channels: Vec<Channel>,
    namespace: MetadataValue<Ascii>,
}

impl GrpcPool {
    /// Opens `connections` separate HTTP/2 connections to `addr`. Every call
    /// carries `x-prism-namespace: namespace` (ignored off the proxy, sent
    /// anyway so every path carries the same bytes) and fails with
    /// DEADLINE_EXCEEDED or CANCELLED after `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        connections: usize,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let namespace = namespace
            .parse()
            .map_err(|_| BenchError::Usage(format!("namespace `{namespace}` is not ASCII")))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| BenchError::Connect {
                addr: addr.to_string(),
                source,
            })?
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            // Each `connect` opens its own connection; clones would share one.
            let channel = endpoint
                .connect()
                .await
                .map_err(|source| BenchError::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            channels.push(channel);
        }
        Ok(Self {
            channels,
            namespace,
        })
    }

    pub fn channel(&self, index: usize) -> Channel {
        self.channels[index % self.channels.len()].clone()
    }

    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Wraps a message in a request that carries the namespace header.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, self.namespace.clone());
        request
    }
}
