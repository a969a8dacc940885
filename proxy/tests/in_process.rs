//! The in-process tier: `prism_proxy::run` on listeners bound to port 0 inside
//! the test, for the cases that need no working pattern (routing errors,
//! FAILED namespaces, health, shutdown). They run in well under a second;
//! everything that needs a real pattern or backend lives in `prism-tests`.

// A panic here is a failed test: helpers may unwrap like test bodies do.
#![allow(clippy::unwrap_used)]

use std::{
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

use prism_proto::{
    admin::v1::{ListPatternsRequest, PatternInfo, PatternState, admin_client::AdminClient},
    keyvalue::v1::{GetRequest, key_value_client::KeyValueClient},
};
use prism_proxy::{Config, Listeners};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A proxy running in this test process; dropping it without `stop` aborts it.
struct InProcess {
    data: SocketAddr,
    admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), prism_proxy::RunError>>,
}

impl InProcess {
    async fn start(yaml: &str) -> Self {
        let config = Config::from_yaml(yaml).expect("test config");
        let data = TcpListener::bind("127.0.0.1:0").await.expect("bind data");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let (data_addr, admin_addr) = (data.local_addr().unwrap(), admin.local_addr().unwrap());
        let listeners = Listeners {
            data,
            admin,
            metrics: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(prism_proxy::run(config, None, listeners, async move {
            let _ = stopped.await;
        }));
        Self {
            data: data_addr,
            admin: admin_addr,
            stop: Some(stop),
            task,
        }
    }

    async fn channel(addr: SocketAddr) -> Channel {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to the in-process proxy")
    }

    async fn patterns(&self) -> Vec<PatternInfo> {
        AdminClient::new(Self::channel(self.admin).await)
            .list_patterns(ListPatternsRequest {})
            .await
            .expect("ListPatterns")
            .into_inner()
            .patterns
    }

    async fn pattern(&self, namespace: &str) -> PatternInfo {
        self.patterns()
            .await
            .into_iter()
            .find(|p| p.namespace == namespace)
            .unwrap_or_else(|| panic!("namespace {namespace} is listed"))
    }

    async fn wait_failed(&self, namespace: &str) -> PatternInfo {
        eventually("the namespace to be FAILED", || async {
            let p = self.pattern(namespace).await;
            (p.state() == PatternState::Failed).then_some(p)
        })
        .await
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` until it gives `Some`, or panics naming `what` after 10 s.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// A supervisor that gives up quickly, so FAILED is reached in milliseconds.
const QUICK: &str = "
supervisor:
  ready_timeout_ms: 2000
  restart_backoff_initial_ms: 10
  restart_backoff_max_ms: 50
  max_consecutive_failures: 2
";

fn config(namespaces: &str) -> String {
    format!("{QUICK}namespaces:\n{namespaces}")
}

#[tokio::test]
async fn an_unknown_namespace_is_not_found_naming_it() {
    let proxy = InProcess::start(&config(
        "  - {name: gone, pattern: keyvalue, backend: memstore, binary: /nonexistent/prism-memstore}\n",
    ))
    .await;
    let mut request = Request::new(GetRequest { key: "k".into() });
    request
        .metadata_mut()
        .insert("x-prism-namespace", "nope".parse().unwrap());
    let err = KeyValueClient::new(InProcess::channel(proxy.data).await)
        .get(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("`nope`"), "{}", err.message());
}

#[tokio::test]
async fn a_missing_binary_is_failed_with_its_path_and_its_calls_are_unavailable() {
    let proxy = InProcess::start(&config(
        "  - {name: default, pattern: keyvalue, backend: memstore, binary: /nonexistent/prism-memstore}\n",
    ))
    .await;
    let failed = proxy.wait_failed("default").await;
    assert!(
        failed.last_error.contains("/nonexistent/prism-memstore"),
        "the reason names the binary: {}",
        failed.last_error
    );
    let err = KeyValueClient::new(InProcess::channel(proxy.data).await)
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn a_crash_looping_namespace_is_failed_and_still_retried() {
    let proxy = InProcess::start(&config(
        "  - {name: loop, pattern: keyvalue, backend: memstore, binary: /bin/false}\n",
    ))
    .await;
    let first = proxy.wait_failed("loop").await.restart_count;
    // FAILED is not the end: the supervisor keeps trying at the capped backoff.
    eventually("another retry after FAILED", || async {
        (proxy.pattern("loop").await.restart_count > first).then_some(())
    })
    .await;
}

#[tokio::test]
async fn health_serves_the_server_and_not_a_failed_namespace() {
    let proxy = InProcess::start(&config(
        "  - {name: broken, pattern: keyvalue, backend: memstore, binary: /nonexistent/x}\n",
    ))
    .await;
    let mut health = HealthClient::new(InProcess::channel(proxy.data).await);
    let whole = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health of the server")
        .into_inner();
    assert_eq!(whole.status(), ServingStatus::Serving);
    let namespace = health
        .check(HealthCheckRequest {
            service: "broken".into(),
        })
        .await
        .expect("health of the namespace")
        .into_inner();
    assert_eq!(namespace.status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn run_returns_once_shutdown_resolves() {
    let mut proxy = InProcess::start(&config(
        "  - {name: default, pattern: keyvalue, backend: memstore, binary: /nonexistent/x}\n",
    ))
    .await;
    assert!(!proxy.patterns().await.is_empty());
    let _ = proxy.stop.take().expect("not stopped yet").send(());
    let task = &mut proxy.task;
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns within the grace period")
        .expect("run did not panic")
        .expect("run ends without error");
}
