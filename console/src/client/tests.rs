//! The admin client against an in-process fake admin server on a free port:
//! streaming, the UNIMPLEMENTED fallbacks, commands, and reconnecting.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use prism_proto::admin::v1::{
    self as pb, GetLatencyRequest, LatencyHistogram, ListEventsRequest, ListEventsResponse,
    ListPatternsRequest, ListPatternsResponse, ReloadConfigRequest, ReloadConfigResponse,
    ReloadPatternRequest, ReloadPatternResponse, RestartPatternRequest, RestartPatternResponse,
    WatchEventsRequest, WatchPatternsRequest,
    admin_server::{Admin, AdminServer},
};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

use super::*;

/// Serves `default` with a pid that `RestartPattern` bumps. Streams only
/// when `streams` is set; everything else is UNIMPLEMENTED. Setting `broken`
/// fails the pattern streams, as a proxy going away does.
#[derive(Clone)]
struct FakeAdmin {
    streams: bool,
    pid: Arc<AtomicU32>,
    broken: Arc<AtomicBool>,
    /// `Some`: `WhoAmI` answers for this bearer token and refuses any other
    /// as UNAUTHENTICATED; `None`: UNIMPLEMENTED.
    token: Option<&'static str>,
}

impl FakeAdmin {
    fn list(&self) -> ListPatternsResponse {
        ListPatternsResponse {
            patterns: vec![pb::PatternInfo {
                namespace: "default".to_string(),
                state: pb::PatternState::Running as i32,
                pid: self.pid.load(Ordering::SeqCst),
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl Admin for FakeAdmin {
    async fn list_patterns(
        &self,
        _: Request<ListPatternsRequest>,
    ) -> Result<Response<ListPatternsResponse>, Status> {
        Ok(Response::new(self.list()))
    }

    type WatchPatternsStream = ReceiverStream<Result<ListPatternsResponse, Status>>;

    async fn watch_patterns(
        &self,
        _: Request<WatchPatternsRequest>,
    ) -> Result<Response<Self::WatchPatternsStream>, Status> {
        if !self.streams {
            return Err(Status::unimplemented("WatchPatterns"));
        }
        let (tx, rx) = mpsc::channel(4);
        let me = self.clone();
        tokio::spawn(async move {
            while !me.broken.load(Ordering::SeqCst) && tx.send(Ok(me.list())).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = tx.send(Err(Status::unavailable("going away"))).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_latency(
        &self,
        request: Request<GetLatencyRequest>,
    ) -> Result<Response<LatencyHistogram>, Status> {
        if !self.streams {
            return Err(Status::unimplemented("GetLatency"));
        }
        Ok(Response::new(LatencyHistogram {
            namespace: request.into_inner().namespace,
            p99_us: 77,
            ..Default::default()
        }))
    }

    async fn list_events(
        &self,
        _: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        if !self.streams {
            return Err(Status::unimplemented("ListEvents"));
        }
        Ok(Response::new(ListEventsResponse {
            events: vec![pb::Event {
                namespace: "default".to_string(),
                kind: pb::EventKind::PatternStarted as i32,
                ..Default::default()
            }],
        }))
    }

    type WatchEventsStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn watch_events(
        &self,
        _: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        if !self.streams {
            return Err(Status::unimplemented("WatchEvents"));
        }
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move { tx.closed().await });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_pattern_logs(
        &self,
        _: Request<pb::ListPatternLogsRequest>,
    ) -> Result<Response<pb::ListPatternLogsResponse>, Status> {
        Err(Status::unimplemented("ListPatternLogs"))
    }

    type WatchPatternLogsStream = ReceiverStream<Result<pb::PatternLogLine, Status>>;

    /// Two lines after `since_seq`, then the stream stays open.
    async fn watch_pattern_logs(
        &self,
        request: Request<pb::WatchPatternLogsRequest>,
    ) -> Result<Response<Self::WatchPatternLogsStream>, Status> {
        if !self.streams {
            return Err(Status::unimplemented("WatchPatternLogs"));
        }
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for seq in request.since_seq + 1..=request.since_seq + 2 {
                let line = pb::PatternLogLine {
                    seq,
                    namespace: request.namespace.clone(),
                    pid: 100,
                    stream: pb::LogStream::Stderr as i32,
                    text: format!("line {seq}"),
                    ..Default::default()
                };
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            tx.closed().await
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn restart_pattern(
        &self,
        _: Request<RestartPatternRequest>,
    ) -> Result<Response<RestartPatternResponse>, Status> {
        self.pid.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(RestartPatternResponse {
            pattern: self.list().patterns.pop(),
            message: String::new(),
            ..Default::default()
        }))
    }

    async fn reload_pattern(
        &self,
        _: Request<ReloadPatternRequest>,
    ) -> Result<Response<ReloadPatternResponse>, Status> {
        Err(Status::unimplemented("ReloadPattern"))
    }

    async fn reload_config(
        &self,
        _: Request<ReloadConfigRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        Err(Status::unimplemented("ReloadConfig"))
    }

    async fn apply_namespace(
        &self,
        _: Request<pb::ApplyNamespaceRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        Err(Status::unimplemented(
            "the console does not edit namespaces",
        ))
    }

    async fn delete_namespace(
        &self,
        _: Request<pb::DeleteNamespaceRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        Err(Status::unimplemented(
            "the console does not edit namespaces",
        ))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let Some(token) = self.token else {
            return Err(Status::unimplemented("WhoAmI"));
        };
        let sent = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bearer {token}").as_str()) {
            return Err(Status::unauthenticated("bad token"));
        }
        Ok(Response::new(pb::WhoAmIResponse {
            auth_enabled: true,
            principal: "sub:dev".to_string(),
            email: "dev@local.prism".to_string(),
            role: pb::AdminRole::Operator as i32,
            expires_at: 0,
        }))
    }

    async fn get_exemplars(
        &self,
        _: Request<pb::GetExemplarsRequest>,
    ) -> Result<Response<pb::GetExemplarsResponse>, Status> {
        Err(Status::unimplemented("GetExemplars"))
    }
}

/// Serves a fake on `listener` until the test ends; returns its handle.
fn serve(listener: TcpListener, streams: bool) -> FakeAdmin {
    serve_fake(
        listener,
        FakeAdmin {
            streams,
            pid: Arc::new(AtomicU32::new(100)),
            broken: Arc::new(AtomicBool::new(false)),
            token: None,
        },
    )
}

fn serve_fake(listener: TcpListener, admin: FakeAdmin) -> FakeAdmin {
    let service = AdminServer::new(admin.clone());
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    admin
}

struct Console {
    events: mpsc::Receiver<Event>,
    commands: mpsc::UnboundedSender<Command>,
    _task: JoinHandle<()>,
}

fn start_client(addr: SocketAddr) -> Console {
    start_client_with(addr, Bearer::default())
}

fn start_client_with(addr: SocketAddr, bearer: Bearer) -> Console {
    let config = ClientConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(80),
        poll_interval: Duration::from_millis(20),
        bearer,
        ..ClientConfig::new(format!("http://{addr}"))
    };
    let (events_tx, events) = mpsc::channel(64);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    Console {
        events,
        commands,
        _task: spawn(config, events_tx, commands_rx),
    }
}

impl Console {
    /// The first event that `pick` accepts, within a deadline.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("client still running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

#[tokio::test]
async fn calls_carry_the_token_and_the_identity_is_reported() {
    let (listener, addr) = listener().await;
    let _server = serve_fake(
        listener,
        FakeAdmin {
            streams: true,
            pid: Arc::new(AtomicU32::new(100)),
            broken: Arc::new(AtomicBool::new(false)),
            token: Some("good-token"),
        },
    );

    // A token the proxy refuses: the session ends with what to do.
    let bearer = Bearer::default();
    bearer.set(&prism_auth::Secret::new("stale-token"));
    let mut console = start_client_with(addr, bearer.clone());
    let error = console
        .wait_for("the refusal", |e| match e {
            Event::Connection(Connection::Disconnected { error, .. }) => Some(error),
            _ => None,
        })
        .await;
    assert!(
        error.starts_with(crate::model::UNAUTHENTICATED) && error.contains("bad token"),
        "the fix, then the proxy's own word: {error}"
    );

    // A fresh token in the shared slot is used from the next connection on.
    bearer.set(&prism_auth::Secret::new("good-token"));
    let identity = console
        .wait_for("the identity", |e| match e {
            Event::Identity(identity) => Some(identity),
            _ => None,
        })
        .await;
    assert_eq!(identity.email, "dev@local.prism");
    assert_eq!(identity.role, crate::model::Role::Operator);
    console
        .wait_for("connected", |e| {
            matches!(e, Event::Connection(Connection::Connected(_))).then_some(())
        })
        .await;
}

#[tokio::test]
async fn falls_back_to_polling_when_watch_is_unimplemented() {
    let (listener, addr) = listener().await;
    let _server = serve(listener, false);
    let mut console = start_client(addr);
    console
        .wait_for("connected (polling)", |e| {
            (e == Event::Connection(Connection::Connected(Feed::Polling))).then_some(())
        })
        .await;
    let snapshot = console
        .wait_for("a snapshot", |e| match e {
            Event::Snapshot(s) => Some(s),
            _ => None,
        })
        .await;
    assert_eq!(snapshot.patterns[0].namespace, "default");
    console
        .wait_for("the event log to be reported missing", |e| {
            (e == Event::LogUnavailable).then_some(())
        })
        .await;

    // Unimplemented actions come back as outcomes, not crashes.
    console
        .commands
        .send(Command::Reload {
            namespace: "default".to_string(),
            old_pid: 100,
        })
        .unwrap();
    let outcome = console
        .wait_for("the reload outcome", |e| match e {
            Event::Action(outcome) => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(outcome.result, Err(RpcError::Unimplemented));
}

#[tokio::test]
async fn streams_snapshots_events_and_runs_commands() {
    let (listener, addr) = listener().await;
    let _server = serve(listener, true);
    let mut console = start_client(addr);
    console
        .wait_for("connected (stream)", |e| {
            (e == Event::Connection(Connection::Connected(Feed::Stream))).then_some(())
        })
        .await;
    let log = console
        .wait_for("the event log", |e| match e {
            Event::Log(log) => Some(log),
            _ => None,
        })
        .await;
    assert_eq!(log[0].kind, "PATTERN_STARTED");

    console
        .commands
        .send(Command::Restart {
            namespace: "default".to_string(),
            old_pid: 100,
        })
        .unwrap();
    let outcome = console
        .wait_for("the restart outcome", |e| match e {
            Event::Action(outcome) => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(outcome.action, Action::Restart);
    assert_eq!(outcome.result, Ok(Pids { old: 100, new: 101 }));
    console
        .wait_for("a snapshot with the new pid", |e| match e {
            Event::Snapshot(s) if s.patterns[0].pid == 101 => Some(()),
            _ => None,
        })
        .await;

    console
        .commands
        .send(Command::FetchLatency {
            namespace: "default".to_string(),
            operation: String::new(),
        })
        .unwrap();
    let latency = console
        .wait_for("the latency", |e| match e {
            Event::Latency { result, .. } => Some(result),
            _ => None,
        })
        .await;
    assert_eq!(latency.unwrap().p99_us, 77);
}

#[tokio::test]
async fn follows_a_namespaces_logs_after_a_given_line() {
    let (listener, addr) = listener().await;
    let _server = serve(listener, true);
    let mut console = start_client(addr);
    console
        .wait_for("connected (stream)", |e| {
            (e == Event::Connection(Connection::Connected(Feed::Stream))).then_some(())
        })
        .await;
    console
        .commands
        .send(Command::FollowLogs {
            namespace: "default".to_string(),
            since_seq: 7,
        })
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let lines = console
            .wait_for("log lines", |e| match e {
                Event::PatternLogs { namespace, lines } if namespace == "default" => Some(lines),
                _ => None,
            })
            .await;
        seen.extend(lines.into_iter().map(|l| (l.seq, l.text, l.pid, l.stderr)));
    }
    assert_eq!(
        seen,
        [
            (8, "line 8".to_string(), 100, true),
            (9, "line 9".to_string(), 100, true)
        ]
    );
}

#[tokio::test]
async fn an_older_proxy_without_logs_is_reported() {
    let (listener, addr) = listener().await;
    let _server = serve(listener, false);
    let mut console = start_client(addr);
    console
        .commands
        .send(Command::FollowLogs {
            namespace: "default".to_string(),
            since_seq: 0,
        })
        .unwrap();
    console
        .wait_for("logs unavailable", |e| match e {
            Event::PatternLogsUnavailable { namespace } if namespace == "default" => Some(()),
            _ => None,
        })
        .await;
}

#[tokio::test]
async fn reconnects_with_backoff_once_the_proxy_is_back() {
    // Reserve a port, then leave it closed for a while.
    let (listener, addr) = listener().await;
    drop(listener);
    let mut console = start_client(addr);
    let mut retry_gaps = Vec::new();
    for _ in 0..3 {
        let retry_at = console
            .wait_for("a failed attempt", |e| match e {
                Event::Connection(Connection::Disconnected { retry_at_ms, .. }) => {
                    Some(retry_at_ms)
                }
                _ => None,
            })
            .await;
        retry_gaps.push(retry_at - now_ms());
    }
    assert!(
        retry_gaps[2] > retry_gaps[0],
        "backoff grows: {retry_gaps:?}"
    );
    // Commands while disconnected are answered, not lost.
    console
        .commands
        .send(Command::Restart {
            namespace: "default".to_string(),
            old_pid: 1,
        })
        .unwrap();
    let outcome = console
        .wait_for("the refused restart", |e| match e {
            Event::Action(outcome) => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(
        outcome.result,
        Err(RpcError::Failed("not connected".to_string()))
    );

    let listener = TcpListener::bind(addr).await.expect("rebind the port");
    let server = serve(listener, true);
    console
        .wait_for("connected again", |e| {
            matches!(e, Event::Connection(Connection::Connected(_))).then_some(())
        })
        .await;

    // A stream that breaks is a lost connection too, and is recovered.
    server.broken.store(true, Ordering::SeqCst);
    console
        .wait_for("the lost connection", |e| {
            matches!(e, Event::Connection(Connection::Disconnected { .. })).then_some(())
        })
        .await;
    server.broken.store(false, Ordering::SeqCst);
    console
        .wait_for("connected once more", |e| {
            matches!(e, Event::Connection(Connection::Connected(_))).then_some(())
        })
        .await;
}

#[test]
fn backoff_doubles_up_to_the_cap_and_resets() {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
    let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
    assert_eq!(delays, [100, 200, 350, 350]);
    backoff.reset();
    assert_eq!(backoff.next_delay().as_millis(), 100);
}
