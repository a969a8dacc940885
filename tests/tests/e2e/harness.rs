//! The shared harness's own promises, on the real servers: an append-only
//! Redis keeps what it acknowledged across a SIGKILL and a restart on the
//! same port (one without persistence does not), a NATS restart keeps the
//! JetStream store, a paused server answers nothing until it is resumed, and
//! a dropped server is gone.

use std::time::Duration;

use prism_harness::{Nats, Redis, procs};

/// Far above what one probe takes on a loaded machine.
const PROBE: Duration = Duration::from_secs(5);

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn get(url: &str, key: &str) -> Option<String> {
    let mut conn = connect(url).await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("GET")
}

async fn set(url: &str, key: &str, value: &str) {
    let mut conn = connect(url).await;
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async::<()>(&mut conn)
        .await
        .expect("SET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_only_redis_keeps_acknowledged_writes_across_a_kill() {
    for append_only in [true, false] {
        let mut redis = Redis {
            append_only,
            ..Redis::default()
        }
        .start()
        .await
        .expect("redis-server");
        let (port, url) = (redis.port(), redis.url());
        set(&url, "k", "v").await;
        redis.kill();
        redis.restart().await.expect("restart");
        assert_eq!(redis.port(), port, "same port");
        let kept = get(&url, "k").await;
        if append_only {
            assert_eq!(kept.as_deref(), Some("v"), "fsync-always AOF keeps it");
        } else {
            assert_eq!(kept, None, "no persistence: a restart starts empty");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_required_and_carried_in_the_url() {
    let redis = Redis {
        password: Some("s3cret".into()),
        ..Redis::default()
    }
    .start()
    .await
    .expect("redis-server");
    assert!(redis.url().contains(":s3cret@"), "{}", redis.url());
    set(&redis.url(), "k", "v").await;
    let mut conn = connect(&format!("redis://127.0.0.1:{}", redis.port())).await;
    let err = redis::cmd("GET")
        .arg("k")
        .query_async::<Option<String>>(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_answers_nothing_until_resumed_and_drop_stops_it() {
    let redis = Redis::default().start().await.expect("redis-server");
    let pid = redis.pid().expect("running");
    procs::pause(pid).expect("SIGSTOP");
    let url = redis.url();
    let paused = tokio::time::timeout(Duration::from_millis(500), get(&url, "k")).await;
    assert!(paused.is_err(), "a stopped server must not answer");
    procs::resume(pid).expect("SIGCONT");
    let resumed = tokio::time::timeout(PROBE, get(&url, "k")).await;
    assert_eq!(resumed.expect("answers after SIGCONT"), None);
    drop(redis);
    assert!(!procs::alive(pid), "dropped server {pid} still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_with_a_login_restarts_on_the_same_port_with_its_store() {
    let mut nats = Nats {
        jetstream: true,
        auth: Some(("alice".into(), "pw".into())),
    }
    .start()
    .await
    .expect("nats-server with a login");
    let port = nats.port();
    let store = nats.dir().join("store");
    let old = nats.pid().expect("running");
    nats.restart().await.expect("restart");
    assert_eq!(nats.port(), port);
    assert_ne!(nats.pid(), Some(old));
    assert!(!procs::alive(old));
    assert!(store.join("jetstream").is_dir(), "store kept in {store:?}");
}
