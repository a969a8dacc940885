//! The clients a path is driven through: gRPC for Prism and the floor, the
//! `redis` crate for the `redis` path, async-nats for the `nats` path. Each
//! is a pool of separate connections; targets match on the variant in their
//! `call`.

use std::{net::SocketAddr, time::Duration};

use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::{BenchError, auth::Authorization};

/// The namespace header the proxy routes by.
pub(crate) const NAMESPACE_HEADER: &str = "x-prism-namespace";
/// Where the bearer token goes.
const AUTHORIZATION_HEADER: &str = "authorization";

pub(crate) enum Transport {
    Grpc(GrpcPool),
    Redis(RedisPool),
    Nats(NatsPool),
}

/// `connections` NATS clients, each its own TCP connection; request `i` of a
/// run takes client `i % connections`.
pub(crate) struct NatsPool {
    clients: Vec<async_nats::Client>,
    timeout: Duration,
}

impl NatsPool {
    /// Opens `connections` separate connections to `url`; a publish that
    /// takes longer than `timeout` counts as DEADLINE_EXCEEDED.
    pub(crate) async fn connect(
        url: &str,
        connections: usize,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| BenchError::Load(format!("connecting to {url}: {e}")))?;
            clients.push(client);
        }
        Ok(Self { clients, timeout })
    }

    /// Client `index % connections`.
    pub(crate) fn client(&self, index: usize) -> &async_nats::Client {
        &self.clients[index % self.clients.len()]
    }

    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The gRPC code name the NATS pattern would answer a failed publish with:
/// an oversized message is INVALID_ARGUMENT, the rest (the connection could
/// not take it) UNAVAILABLE.
pub(crate) fn nats_code_name(err: &async_nats::PublishError) -> &'static str {
    use async_nats::client::PublishErrorKind as K;
    match err.kind() {
        K::MaxPayloadExceeded | K::InvalidSubject => "INVALID_ARGUMENT",
        K::Send => "UNAVAILABLE",
    }
}

/// `connections` multiplexed Redis connections (or cluster connections,
/// each with its own connection to every node); request `i` of a run takes
/// connection `i % connections`. Every command fails with
/// DEADLINE_EXCEEDED after `timeout`, as a gRPC call would.
pub(crate) struct RedisPool {
    connections: Vec<RedisConn>,
    timeout: Duration,
}

/// One server's connection, or a cluster connection that sends each
/// command to the master serving its key's slot and follows MOVED and ASK.
#[derive(Clone)]
pub(crate) enum RedisConn {
    Server(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for RedisConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisPool {
    /// Opens `connections` separate connections to the Redis at `urls[0]`,
    /// or, when `cluster`, to the Redis Cluster whose nodes `urls` names
    /// (the client learns the slot map from them).
    pub(crate) async fn connect(
        urls: &[String],
        cluster: bool,
        connections: usize,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let named = urls.join(",");
        let failed = |e: redis::RedisError| BenchError::Load(format!("connecting to {named}: {e}"));
        let mut pool = Vec::with_capacity(connections);
        if cluster {
            let client = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
                .connection_timeout(Duration::from_secs(5))
                .response_timeout(timeout)
                .build()
                .map_err(failed)?;
            for _ in 0..connections {
                // Each call opens its own connections; clones would share them.
                pool.push(RedisConn::Cluster(
                    client.get_async_connection().await.map_err(failed)?,
                ));
            }
        } else {
            let url = urls.first().map_or("", String::as_str);
            let client = redis::Client::open(url).map_err(failed)?;
            for _ in 0..connections {
                // Each call opens its own connection; clones would share one.
                pool.push(RedisConn::Server(
                    client
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(failed)?,
                ));
            }
        }
        Ok(Self {
            connections: pool,
            timeout,
        })
    }

    /// Connection `index % connections` (a cheap handle to it).
    pub(crate) fn connection(&self, index: usize) -> RedisConn {
        self.connections[index % self.connections.len()].clone()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The gRPC code name the Redis pattern would answer a failure with: I/O
/// and dropped connections are UNAVAILABLE, timeouts DEADLINE_EXCEEDED, the
/// rest INTERNAL.
pub(crate) fn redis_code_name(err: &redis::RedisError) -> &'static str {
    if err.is_timeout() {
        "DEADLINE_EXCEEDED"
    } else if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() {
        "UNAVAILABLE"
    } else {
        "INTERNAL"
    }
}

/// `connections` HTTP/2 connections to one server; request `i` of a run
/// takes connection `i % connections`.
pub(crate) struct GrpcPool {
    channels: Vec<Channel>,
    namespace: MetadataValue<Ascii>,
    authorization: Authorization,
}

impl GrpcPool {
    /// Opens `connections` separate HTTP/2 connections to `addr`. Every call
    /// carries `x-prism-namespace: namespace` (ignored off the proxy, sent
    /// anyway so every path carries the same bytes) and fails with
    /// DEADLINE_EXCEEDED or CANCELLED after `timeout`.
    pub(crate) async fn connect(
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
            authorization: Authorization::None,
        })
    }

    /// Every call carries `authorization` from now on.
    pub(crate) fn with_authorization(mut self, authorization: Authorization) -> Self {
        self.authorization = authorization;
        self
    }

    pub(crate) fn channel(&self, index: usize) -> Channel {
        self.channels[index % self.channels.len()].clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }

    /// Wraps a message in a request that carries the namespace header and
    /// the token of calls made while getting ready.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.with_headers(message, self.authorization.setup())
    }

    /// The same for load call `seq`, which may carry a token of its own.
    pub(crate) fn call_request<T>(&self, seq: u64, message: T) -> tonic::Request<T> {
        self.with_headers(message, self.authorization.call(seq))
    }

    fn with_headers<T>(
        &self,
        message: T,
        authorization: Option<&MetadataValue<Ascii>>,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert(NAMESPACE_HEADER, self.namespace.clone());
        if let Some(value) = authorization {
            metadata.insert(AUTHORIZATION_HEADER, value.clone());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn redis_failures_map_to_the_codes_the_pattern_answers_with() {
        let io = |kind| redis::RedisError::from(io::Error::new(kind, "x"));
        assert_eq!(
            redis_code_name(&io(io::ErrorKind::TimedOut)),
            "DEADLINE_EXCEEDED"
        );
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
        ] {
            assert_eq!(redis_code_name(&io(kind)), "UNAVAILABLE", "{kind:?}");
        }
        let parse = redis::RedisError::from((redis::ErrorKind::Parse, "bad reply"));
        assert_eq!(redis_code_name(&parse), "INTERNAL");
    }
}
