//! Connections under attack: floods past the limit, idle and half-open
//! connections, and running out of file descriptors.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use prism_proto::{
    admin::v1::{ListPatternsRequest, admin_client::AdminClient},
    keyvalue::v1::SetRequest,
    pubsub::v1::{PublishRequest, SubscribeRequest, pub_sub_client::PubSubClient},
};
use prism_tests::{
    attack::{self, RawH2},
    eventually,
    proxy::NamespaceHeader,
};
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::Code;

use super::{EVENTS, KV, WAIT, channel, set_on, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_while_existing_ones_keep_working() {
    let proxy = start("{max_connections: 8}", &[KV]).await;
    let mut held = Vec::new();
    for i in 0..8 {
        let channel = channel(proxy.data_addr)
            .await
            .expect("connect within the limit");
        set_on(&channel, &format!("k{i}"))
            .await
            .expect("Set within the limit");
        held.push(channel);
    }
    // A gRPC client over the limit sees UNAVAILABLE (retryable) naming it.
    let refused = match channel(proxy.data_addr).await {
        Ok(channel) => set_on(&channel, "refused")
            .await
            .expect_err("over the limit"),
        Err(e) => panic!("the refused connection completes its handshake: {e}"),
    };
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("max_connections = 8"),
        "{refused:?}"
    );
    let again = channel(proxy.data_addr).await.expect("handshake");
    assert_eq!(
        set_on(&again, "refused").await.unwrap_err().code(),
        Code::Unavailable
    );
    // The metrics listener has its own limit; past it, an HTTP 503 says why.
    let mut scrapers = Vec::new();
    for _ in 0..8 {
        scrapers.push(
            TcpStream::connect(proxy.metrics_addr)
                .await
                .expect("connect"),
        );
    }
    let mut scrape = TcpStream::connect(proxy.metrics_addr)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut scrape, b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")
        .await
        .expect("send request");
    let mut answer = String::new();
    tokio::time::timeout(WAIT, scrape.read_to_string(&mut answer))
        .await
        .expect("answered within the wait")
        .expect("read answer");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("max_connections = 8"), "{answer}");
    drop(scrapers);
    for (i, channel) in held.iter().enumerate() {
        set_on(channel, &format!("again{i}"))
            .await
            .expect("existing connections keep working");
    }
    drop(held.pop());
    eventually(WAIT, "a new connection once one closed", || async {
        let channel = channel(proxy.data_addr).await.ok()?;
        set_on(&channel, "later").await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_but_a_quiet_subscription_is_not() {
    let idle = Duration::from_millis(1500);
    let proxy = start("{idle_timeout_ms: 1500}", &[KV, EVENTS]).await;
    let mut subscriber_side =
        PubSubClient::with_interceptor(proxy.channel().await, NamespaceHeader::new("events"));
    let mut messages = subscriber_side
        .subscribe(SubscribeRequest {
            topic: "quiet".into(),
            subscriber_id: "s1".into(),
            manual_ack: false,
        })
        .await
        .expect("subscribe")
        .into_inner();

    let opened = Instant::now();
    let mut raw = RawH2::connect(proxy.data_addr).await.expect("raw h2");
    let frames = tokio::time::timeout(WAIT, async {
        let mut frames = Vec::new();
        while let Ok(frame) = raw.read_frame().await {
            frames.push(frame);
        }
        frames
    })
    .await
    .expect("an idle connection is closed within the wait");
    let lasted = opened.elapsed();
    assert!(
        lasted >= idle - Duration::from_millis(100),
        "closed after {lasted:?}"
    );
    assert!(
        frames.iter().any(|f| f.kind == attack::GOAWAY),
        "told with GOAWAY: {frames:?}"
    );

    // The subscription has now been quiet for longer than the idle timeout.
    tokio::time::sleep(idle * 2).await;
    let mut publisher =
        PubSubClient::with_interceptor(proxy.channel().await, NamespaceHeader::new("events"));
    publisher
        .publish(PublishRequest {
            topic: "quiet".into(),
            payload: b"still here".to_vec(),
            metadata: Default::default(),
        })
        .await
        .expect("publish");
    let message = tokio::time::timeout(WAIT, messages.message())
        .await
        .expect("delivered within the wait")
        .expect("the subscription is still open")
        .expect("a message");
    assert_eq!(message.payload, b"still here");
}

/// Reads until the peer closes; how long that took.
async fn closed_after(mut tcp: TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut sink))
        .await
        .expect("the proxy closes the connection within the wait");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_after_the_handshake_timeout() {
    let proxy = start("{handshake_timeout_ms: 1000}", &[KV]).await;
    let silent = TcpStream::connect(proxy.data_addr).await.expect("connect");
    let mut half = TcpStream::connect(proxy.admin_addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut half, &attack::PREFACE[..10])
        .await
        .expect("half a preface");
    let metrics = TcpStream::connect(proxy.metrics_addr)
        .await
        .expect("connect");
    let (silent, half, metrics) = tokio::join!(
        closed_after(silent),
        closed_after(half),
        closed_after(metrics)
    );
    for (what, lasted) in [("data", silent), ("admin", half), ("metrics", metrics)] {
        assert!(
            lasted >= Duration::from_millis(900),
            "{what}: closed after {lasted:?}, before the timeout"
        );
    }
    // A client that does its handshake is served as usual.
    let mut kv = proxy.kv("kv").await;
    kv.set(SetRequest {
        key: "k".into(),
        value: b"v".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .expect("Set");
}

async fn admin_answers(addr: SocketAddr) -> bool {
    let Ok(channel) = channel(addr).await else {
        return false;
    };
    AdminClient::new(channel)
        .list_patterns(ListPatternsRequest {})
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_accept_loop_backs_off_and_recovers() {
    let proxy = start("{handshake_timeout_ms: 120000}", &[KV]).await;
    let pid = proxy.pid();
    let limit = attack::open_fds(pid) + 16;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");
    let mut sockets = Vec::new();
    for _ in 0..64 {
        sockets.push(TcpStream::connect(proxy.data_addr).await.expect("connect"));
    }
    eventually(WAIT, "accept to fail for lack of descriptors", || async {
        proxy.log().contains("accept failed").then_some(())
    })
    .await;
    let ticks = attack::cpu_ticks(pid);
    let sampled = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = (attack::cpu_ticks(pid) - ticks) as f64
        / attack::ticks_per_second() as f64
        / sampled.elapsed().as_secs_f64();
    eprintln!(
        "fd exhaustion: the proxy used {:.0}% of a core",
        used * 100.0
    );
    assert!(
        used < 0.5,
        "the proxy spins: {:.0}% of a core",
        used * 100.0
    );
    drop(sockets);
    eventually(WAIT, "the admin API to answer again", || async {
        admin_answers(proxy.admin_addr).await.then_some(())
    })
    .await;
}
