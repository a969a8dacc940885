//! Bounded resources on every listener, attacked the way issue 11 found
//! them open: stalled giant messages, many streams on one connection, more
//! connections than allowed, idle and half-open connections, and running
//! out of file descriptors. Each case asserts what the attacker sees and
//! that the proxy's memory (VmRSS) or CPU stays within a stated bound.
//!
//! - `memory`: stalled giant messages, the in-flight budget, streams past
//!   the per-connection and listener-wide caps (RSS bounds).
//! - `connections`: connections past the limit, idle and half-open
//!   connections, file-descriptor exhaustion (CPU bound, recovery).

mod connections;
mod memory;

use std::{net::SocketAddr, time::Duration};

use prism_proto::keyvalue::v1::SetRequest;
use prism_tests::{Proxy, attack, proxy::NamespaceHeader};
use tonic::transport::Channel;

const KV: &str = "{name: kv, pattern: keyvalue, backend: memstore}";
const EVENTS: &str = "{name: events, pattern: pubsub, backend: memstore}";
const WAIT: Duration = Duration::from_secs(20);

fn config(listeners: &str, namespaces: &[&str]) -> String {
    let mut yaml = String::new();
    if !listeners.is_empty() {
        yaml.push_str(&format!("listeners: {listeners}\n"));
    }
    yaml.push_str("namespaces:\n");
    for ns in namespaces {
        yaml.push_str(&format!("  - {ns}\n"));
    }
    yaml
}

async fn start(listeners: &str, namespaces: &[&str]) -> Proxy {
    let proxy = Proxy::start_with_config(&config(listeners, namespaces)).await;
    for ns in namespaces {
        let name = ns
            .split("name: ")
            .nth(1)
            .and_then(|rest| rest.split([',', '}']).next())
            .expect("namespace name");
        proxy.wait_healthy(name).await;
    }
    proxy
}

fn rss_mib(proxy: &Proxy) -> u64 {
    attack::rss_kib(proxy.pid()) / 1024
}

async fn channel(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
}

async fn set_on(channel: &Channel, key: &str) -> Result<(), tonic::Status> {
    let mut kv = prism_proto::keyvalue::v1::key_value_client::KeyValueClient::with_interceptor(
        channel.clone(),
        NamespaceHeader::new("kv"),
    );
    kv.set(SetRequest {
        key: key.into(),
        value: b"v".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .map(|_| ())
}
