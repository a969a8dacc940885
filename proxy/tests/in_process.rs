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

/// A registry namespace whose pattern never starts, and a KeyValue one: what
/// the proxy refuses on its own, before any pattern is involved.
const REGISTRY: &str = "  - {name: fleet, pattern: multicast-registry, binary: /nonexistent/prism-multicast-registry, limits: {max_value_bytes: 10}}\n  - {name: default, pattern: keyvalue, binary: /nonexistent/prism-memstore}\n";

/// `result` is INVALID_ARGUMENT naming `field`.
fn refused<T>(result: Result<tonic::Response<T>, tonic::Status>, field: &str) {
    let err = result.map(drop).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
    assert!(
        err.message().starts_with(&format!("{field}:")),
        "{field}: {}",
        err.message()
    );
}

fn to<T>(namespace: &str, body: T) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("x-prism-namespace", namespace.parse().unwrap());
    request
}

#[tokio::test]
async fn bad_registry_requests_are_refused_at_the_proxy_naming_the_field() {
    use prism_proto::{
        json,
        registry::v1::{
            EnumerateRequest, GetRequest, MulticastRequest, ReceiveRequest, RegisterRequest,
            UnregisterRequest, multicast_registry_client::MulticastRegistryClient,
        },
    };
    use serde_json::json;

    let proxy = InProcess::start(&config(REGISTRY)).await;
    let mut registry = MulticastRegistryClient::new(InProcess::channel(proxy.data).await);
    let register = |identity: &str, metadata, ttl_seconds| RegisterRequest {
        identity: identity.into(),
        metadata: Some(json::to_struct(&metadata)),
        ttl_seconds,
    };
    refused(
        registry
            .register(to("fleet", register("", json!({}), 0)))
            .await,
        "identity",
    );
    refused(
        registry
            .register(to("fleet", register("a", json!({}), -1)))
            .await,
        "ttl_seconds",
    );
    let deep = (0..9).fold(json!(1), |inner, _| json!({ "a": inner }));
    refused(
        registry.register(to("fleet", register("a", deep, 0))).await,
        "metadata",
    );
    refused(
        registry
            .unregister(to(
                "fleet",
                UnregisterRequest {
                    identity: "a\nb".into(),
                },
            ))
            .await,
        "identity",
    );
    refused(
        registry
            .get(to(
                "fleet",
                GetRequest {
                    identity: String::new(),
                },
            ))
            .await,
        "identity",
    );
    let filter = |f| Some(json::to_struct(&f));
    refused(
        registry
            .enumerate(to(
                "fleet",
                EnumerateRequest {
                    filter: filter(json!({"floor": {"$near": 1}})),
                    ..Default::default()
                },
            ))
            .await,
        "filter.floor",
    );
    refused(
        registry
            .enumerate(to(
                "fleet",
                EnumerateRequest {
                    limit: 10_001,
                    ..Default::default()
                },
            ))
            .await,
        "limit",
    );
    refused(
        registry
            .enumerate(to(
                "fleet",
                EnumerateRequest {
                    cursor: "zz".into(),
                    ..Default::default()
                },
            ))
            .await,
        "cursor",
    );
    let multicast = |payload: usize, timeout_ms| MulticastRequest {
        payload: vec![0; payload],
        timeout_ms,
        ..Default::default()
    };
    let big = registry
        .multicast(to("fleet", multicast(11, 0)))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(big.code(), Code::InvalidArgument);
    assert_eq!(
        big.message(),
        "payload: 11 bytes exceeds the limit of 10 bytes (max_value_bytes)"
    );
    refused(
        registry.multicast(to("fleet", multicast(1, 60_001))).await,
        "timeout_ms",
    );
    refused(
        registry
            .receive(to(
                "fleet",
                ReceiveRequest {
                    identity: String::new(),
                },
            ))
            .await,
        "identity",
    );

    // A good request reaches routing: the pattern is not there.
    let unavailable = registry
        .get(to(
            "fleet",
            GetRequest {
                identity: "a".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");
    // An identity far over any rule is refused from the message's length.
    let huge = registry
        .get(to(
            "fleet",
            GetRequest {
                identity: "x".repeat(2 << 20),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::InvalidArgument, "{huge:?}");
    assert!(huge.message().contains("1 MiB"), "{}", huge.message());
}

#[tokio::test]
async fn registry_and_other_patterns_refuse_each_others_calls() {
    use prism_proto::registry::v1::{
        GetRequest as RegistryGet, ReceiveRequest,
        multicast_registry_client::MulticastRegistryClient,
    };

    let proxy = InProcess::start(&config(REGISTRY)).await;
    let channel = InProcess::channel(proxy.data).await;
    let err = MulticastRegistryClient::new(channel.clone())
        .get(to(
            "default",
            RegistryGet {
                identity: "a".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert_eq!(
        err.message(),
        "namespace `default` serves keyvalue, not multicast-registry"
    );
    let err = MulticastRegistryClient::new(channel.clone())
        .receive(to(
            "default",
            ReceiveRequest {
                identity: "a".into(),
            },
        ))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    let err = KeyValueClient::new(channel.clone())
        .get(to("fleet", GetRequest { key: "k".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert!(
        err.message().contains("multicast-registry"),
        "{}",
        err.message()
    );
    let served = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "prism.registry.v1.MulticastRegistry".into(),
        })
        .await
        .expect("the registry service has a health entry")
        .into_inner();
    assert_eq!(served.status(), ServingStatus::Serving);
    let fleet = proxy.pattern("fleet").await;
    assert_eq!(
        (fleet.pattern.as_str(), fleet.backend.as_str()),
        ("multicast-registry", "memstore/memstore")
    );
}
