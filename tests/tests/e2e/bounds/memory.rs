//! Memory under attack: what stalled or piled-up requests can make the
//! proxy hold, checked against its RSS.

use std::{future::poll_fn, net::SocketAddr, time::Duration};

use bytes::Bytes;
use prism_proto::keyvalue::v1::{GetRequest, SetRequest};
use prism_tests::{
    attack::{self, RawH2},
    eventually,
};
use tokio::net::TcpStream;
use tonic::Code;

use super::{EVENTS, KV, WAIT, rss_mib, start};

const MIB: usize = 1024 * 1024;
/// How much the proxy's RSS may grow under 16 stalled 60 MiB `Set`s: far
/// below the 16 × 58 MiB the attackers try to make it hold.
const GIANT_RSS_GROWTH_BOUND_MIB: u64 = 64;
/// How much the proxy's RSS may grow under 16 stalled messages that fit the
/// value limit, with an 8 MiB in-flight budget.
const BUDGET_RSS_GROWTH_BOUND_MIB: u64 = 48;
/// How much the proxy's RSS may grow while one connection opens 300 streams.
const STREAMS_RSS_GROWTH_BOUND_MIB: u64 = 32;

async fn h2_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// What a stalled sender ended with.
struct Stalled {
    /// `grpc-status` and `grpc-message`, if the proxy answered.
    status: Option<(i32, String)>,
    /// Bytes of the message the proxy let through before it stalled.
    sent: usize,
    /// Kept open: the attacker never finishes its message.
    _stream: h2::SendStream<Bytes>,
}

/// Starts a `Set` whose 5-byte gRPC prefix declares `declared` bytes, sends
/// up to `send` of them as fast as flow control allows, then stalls.
async fn stalled_set(addr: SocketAddr, namespace: &str, declared: usize, send: usize) -> Stalled {
    stalled_call(
        addr,
        "/prism.keyvalue.v1.KeyValue/Set",
        namespace,
        declared,
        send,
    )
    .await
}

/// [`stalled_set`] for any method `path`.
async fn stalled_call(
    addr: SocketAddr,
    path: &str,
    namespace: &str,
    declared: usize,
    send: usize,
) -> Stalled {
    let client = h2_client(addr).await;
    let mut client = client.ready().await.expect("h2 ready");
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-prism-namespace", namespace)
        .body(())
        .expect("request");
    let (response, mut stream) = client.send_request(request, false).expect("send headers");
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(declared as u32).to_be_bytes());
    stream
        .send_data(Bytes::from(prefix), false)
        .expect("send prefix");
    let chunk = Bytes::from(vec![0u8; 256 * 1024]);
    let mut sent = 0;
    while sent < send {
        stream.reserve_capacity(chunk.len().min(send - sent));
        // A window that stays shut for a second means the proxy stopped reading.
        let granted = tokio::time::timeout(
            Duration::from_secs(1),
            poll_fn(|cx| stream.poll_capacity(cx)),
        )
        .await;
        let Ok(Some(Ok(n))) = granted else { break };
        if n == 0 {
            continue;
        }
        if stream.send_data(chunk.slice(..n), false).is_err() {
            break;
        }
        sent += n;
    }
    let status = match tokio::time::timeout(Duration::from_secs(3), response).await {
        Ok(Ok(response)) => grpc_status(response).await,
        _ => None,
    };
    Stalled {
        status,
        sent,
        _stream: stream,
    }
}

async fn grpc_status(response: http::Response<h2::RecvStream>) -> Option<(i32, String)> {
    let read = |headers: &http::HeaderMap| {
        let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        let message = headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        Some((code, message))
    };
    if let Some(status) = read(response.headers()) {
        return Some(status);
    }
    let mut body = response.into_body();
    while let Some(Ok(_)) = body.data().await {}
    let trailers = body.trailers().await.ok()??;
    read(&trailers)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_giant_sets_are_refused_from_their_prefix_and_memory_stays_bounded() {
    let proxy = start("", &[KV]).await;
    let before = rss_mib(&proxy);
    let attackers: Vec<_> = (0..16)
        .map(|_| tokio::spawn(stalled_set(proxy.data_addr, "kv", 60 * MIB, 58 * MIB)))
        .collect();
    let mut stalled = Vec::new();
    for attacker in attackers {
        stalled.push(attacker.await.expect("attacker task"));
    }
    let during = rss_mib(&proxy);
    eprintln!(
        "giant: RSS {before} MiB before, {during} MiB with 16 stalled; bytes let through per stream: {:?}",
        stalled.iter().map(|s| s.sent).collect::<Vec<_>>()
    );
    for s in &stalled {
        let (code, message) = s
            .status
            .clone()
            .expect("the proxy answers a 60 MiB Set at once");
        assert_eq!(code, Code::InvalidArgument as i32, "{message}");
        assert!(
            message.contains("62914560 bytes declared") && message.contains("limit of"),
            "{message}"
        );
        assert!(
            s.sent < 4 * MIB,
            "refused before 4 MiB was read: {}",
            s.sent
        );
    }
    assert!(
        during < before + GIANT_RSS_GROWTH_BOUND_MIB,
        "RSS grew from {before} MiB to {during} MiB"
    );
    // The refusals held nothing: a normal Set still works.
    let mut kv = proxy.kv("kv").await;
    kv.set(SetRequest {
        key: "after".into(),
        value: vec![1; MIB],
        ttl_seconds: 0,
    })
    .await
    .expect("a 1 MiB Set after the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giant_messages_are_refused_from_their_prefix_on_pubsub_and_admin_too() {
    let proxy = start("", &[KV, EVENTS]).await;
    let publish = stalled_call(
        proxy.data_addr,
        "/prism.pubsub.v1.PubSub/Publish",
        "events",
        60 * MIB,
        58 * MIB,
    )
    .await;
    let (code, message) = publish.status.expect("answered at once");
    assert_eq!(code, Code::InvalidArgument as i32, "{message}");
    assert!(message.contains("max_value_bytes"), "{message}");
    assert!(publish.sent < 4 * MIB, "{} bytes read", publish.sent);
    // The admin API takes no namespace; its own message limit answers.
    let admin = stalled_call(
        proxy.admin_addr,
        "/prism.admin.v1.Admin/RestartPattern",
        "",
        60 * MIB,
        58 * MIB,
    )
    .await;
    let (code, message) = admin.status.expect("answered at once");
    assert_ne!(code, Code::Ok as i32, "{message}");
    assert!(admin.sent < 8 * MIB, "{} bytes read", admin.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_messages_within_the_value_limit_hold_at_most_the_in_flight_budget() {
    let ns =
        "{name: kv, pattern: keyvalue, backend: memstore, limits: {max_in_flight_bytes: 8388608}}";
    let proxy = start("", &[ns]).await;
    let before = rss_mib(&proxy);
    let declared = 4 * MIB;
    let attackers: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(stalled_set(
                proxy.data_addr,
                "kv",
                declared,
                declared - 100 * 1024,
            ))
        })
        .collect();
    let mut stalled = Vec::new();
    for attacker in attackers {
        stalled.push(attacker.await.expect("attacker task"));
    }
    let during = rss_mib(&proxy);
    let held: usize = stalled
        .iter()
        .filter(|s| s.status.is_none())
        .map(|s| s.sent)
        .sum();
    eprintln!(
        "budget: RSS {before} MiB before, {during} MiB with 16 stalled; held by unanswered streams: {held} bytes"
    );
    let mut refused = 0;
    for s in &stalled {
        if let Some((code, message)) = &s.status {
            assert_eq!(*code, Code::ResourceExhausted as i32, "{message}");
            assert!(message.contains("max_in_flight_bytes"), "{message}");
            refused += 1;
        }
    }
    assert!(refused >= 12, "only {refused} of 16 were refused");
    assert!(
        held <= 8 * MIB + 512 * 1024,
        "stalled streams hold {held} bytes"
    );
    assert!(
        during < before + BUDGET_RSS_GROWTH_BOUND_MIB,
        "RSS grew from {before} MiB to {during} MiB"
    );
    let mut kv = proxy.kv("kv").await;
    kv.set(SetRequest {
        key: "small".into(),
        value: vec![1; 100],
        ttl_seconds: 0,
    })
    .await
    .expect("a small Set fits beside the stalled ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_cap_on_one_connection_are_refused() {
    let proxy = start("{max_concurrent_streams: 10}", &[KV]).await;
    let before = rss_mib(&proxy);
    let mut raw = RawH2::connect(proxy.data_addr).await.expect("raw h2");
    let headers = attack::grpc_request_headers("/prism.keyvalue.v1.KeyValue/Get", "kv");
    let streams: Vec<u32> = (0..300).map(|i| 1 + 2 * i).collect();
    for id in &streams {
        // Headers only: each request waits for a body that never comes.
        raw.send(attack::HEADERS, attack::END_HEADERS, *id, &headers)
            .await
            .expect("send headers");
    }
    let frames = raw.frames_until_quiet(Duration::from_secs(2)).await;
    let refused: Vec<u32> = frames
        .iter()
        .filter(|f| f.kind == attack::RST_STREAM && f.error_code() == Some(attack::REFUSED_STREAM))
        .map(|f| f.stream)
        .collect();
    let during = rss_mib(&proxy);
    eprintln!(
        "streams: RSS {before} MiB before, {during} MiB with 300 streams opened on one connection"
    );
    assert_eq!(refused.len(), 290, "all but the first 10 are refused");
    assert!(refused.iter().all(|id| *id > 19), "the first 10 are served");
    assert!(
        during < before + STREAMS_RSS_GROWTH_BOUND_MIB,
        "RSS grew from {before} MiB to {during} MiB"
    );
    let mut kv = proxy.kv("kv").await;
    let err = kv
        .get(GetRequest {
            key: "missing".into(),
        })
        .await
        .expect_err("no such key");
    assert_eq!(err.code(), Code::NotFound, "other connections are served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_listener_wide_cap_are_resource_exhausted() {
    let proxy = start("{max_concurrent_streams: 10, max_open_streams: 20}", &[KV]).await;
    let headers = attack::grpc_request_headers("/prism.keyvalue.v1.KeyValue/Get", "kv");
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut raw = RawH2::connect(proxy.data_addr).await.expect("raw h2");
        for id in (0..10).map(|i| 1 + 2 * i) {
            raw.send(attack::HEADERS, attack::END_HEADERS, id, &headers)
                .await
                .expect("send headers");
        }
        let frames = raw.frames_until_quiet(Duration::from_millis(500)).await;
        assert!(
            !frames.iter().any(|f| f.kind == attack::RST_STREAM),
            "10 streams fit one connection: {frames:?}"
        );
        attackers.push(raw);
    }
    let mut kv = proxy.kv("kv").await;
    let err = kv
        .get(GetRequest {
            key: "missing".into(),
        })
        .await
        .expect_err("the listener is full");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_open_streams = 20"), "{err:?}");
    drop(attackers.pop());
    eventually(WAIT, "a slot once a connection's streams ended", || {
        let mut kv = kv.clone();
        async move {
            let err = kv
                .get(GetRequest {
                    key: "missing".into(),
                })
                .await
                .expect_err("missing key");
            (err.code() == Code::NotFound).then_some(())
        }
    })
    .await;
}
