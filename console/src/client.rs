//! The admin API task: connects to the proxy's admin port, asks `WhoAmI`
//! (every call carries the console's token, see [`crate::auth`]), follows
//! `WatchPatterns` and `WatchEvents`, executes [`Command`]s, and reconnects
//! with exponential backoff when the proxy goes away. Everything it learns
//! becomes an [`Event`]; wire types are converted to [`crate::model`] here.
//!
//! A proxy that answers UNIMPLEMENTED degrades the console instead of
//! breaking it: `WatchPatterns` falls back to `ListPatterns` once a second,
//! `WatchEvents` to `ListEvents` once a second. A server that serves neither
//! is not the admin port; [`reason`] words why the console is disconnected.
//! After a reconnection the event log resumes after the last event seq seen,
//! so no event is shown twice or missed.

mod reason;

#[cfg(test)]
pub(crate) use reason::WRONG_PORT;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prism_proto::admin::v1::{
    GetExemplarsRequest, ListEventsRequest, ListPatternsRequest, ListPatternsResponse,
    ReloadPatternRequest, RestartPatternRequest, WatchEventsRequest, WatchPatternLogsRequest,
    WatchPatternsRequest, WhoAmIRequest, admin_client::AdminClient,
};
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Interval, MissedTickBehavior},
};
use tonic::{
    Code, Request, Streaming, service::interceptor::InterceptedService, transport::Channel,
};

use crate::{
    auth::Bearer,
    event::{Action, ActionOutcome, Command, Connection, Event, Feed, Pids, now_ms},
    model::{Exemplars, Identity, Latency, LogEvent, RpcError, Snapshot},
};

/// The admin client, every call carrying the console's token.
type Admin = AdminClient<InterceptedService<Channel, Bearer>>;

/// Timings of the admin client; tests shorten them.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    /// e.g. `http://127.0.0.1:8981`
    pub uri: String,
    /// For an `https://` URI.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    pub connect_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Between `ListPatterns` (or `ListEvents`) calls when the proxy does
    /// not stream.
    pub poll_interval: Duration,
    /// Restart and reload wait for the new process; this bounds the wait.
    pub action_timeout: Duration,
    /// The token every call carries (none with auth off).
    pub bearer: Bearer,
}

impl ClientConfig {
    pub(crate) fn new(uri: String) -> Self {
        Self {
            uri,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            action_timeout: Duration::from_secs(60),
            bearer: Bearer::default(),
        }
    }
}

/// Starts the admin task. It runs until `commands` closes or `events`
/// has no receiver.
pub(crate) fn spawn(
    config: ClientConfig,
    events: mpsc::Sender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
) -> JoinHandle<()> {
    tokio::spawn(run(config, events, commands))
}

/// Exponential backoff: `initial`, doubling up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

enum SessionEnd {
    /// The connection or a stream broke; try again.
    Lost(String),
    /// The console is quitting.
    Closed,
}

async fn run(
    config: ClientConfig,
    events: mpsc::Sender<Event>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    // The last event seq the console has, across reconnections.
    let last_seq = Arc::new(AtomicU64::new(0));
    loop {
        if events
            .send(Event::Connection(Connection::Connecting))
            .await
            .is_err()
        {
            return;
        }
        let error = match connect(&config).await {
            Ok(channel) => {
                let session = Session {
                    config: &config,
                    events: &events,
                    last_seq: &last_seq,
                };
                match session.run(channel, &mut commands, &mut backoff).await {
                    SessionEnd::Lost(error) => error,
                    SessionEnd::Closed => return,
                }
            }
            Err(error) => error,
        };
        let delay = backoff.next_delay();
        let retry_at_ms = now_ms() + delay.as_millis() as i64;
        let disconnected = Event::Connection(Connection::Disconnected { error, retry_at_ms });
        if events.send(disconnected).await.is_err() {
            return;
        }
        // Wait out the backoff, answering commands that cannot be run now.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    let Some(refused) = refuse(command, RpcError::Failed("not connected".to_string())) else {
                        continue;
                    };
                    if events.send(refused).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

pub(crate) async fn connect(config: &ClientConfig) -> Result<Channel, String> {
    let mut endpoint = Channel::from_shared(config.uri.clone()).map_err(|e| e.to_string())?;
    if let Some(tls) = &config.tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| e.to_string())?;
    }
    let endpoint = endpoint
        .connect_timeout(config.connect_timeout)
        // A proxy that hangs without closing the connection is noticed too.
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    endpoint.connect().await.map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        reason::of_connect_error(&config.uri, &message)
    })
}

struct Session<'a> {
    config: &'a ClientConfig,
    events: &'a mpsc::Sender<Event>,
    last_seq: &'a Arc<AtomicU64>,
}

/// One connection's life: the pattern feed in the foreground, the event log
/// in a task of its own, commands run concurrently so a slow restart never
/// stalls the feed.
impl Session<'_> {
    async fn run(
        self,
        channel: Channel,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let Session {
            config,
            events,
            last_seq,
        } = self;
        let client = AdminClient::with_interceptor(channel, config.bearer.clone());
        match client.clone().who_am_i(WhoAmIRequest {}).await {
            Ok(response) => {
                let identity = Identity::from(response.into_inner());
                if events.send(Event::Identity(identity)).await.is_err() {
                    return SessionEnd::Closed;
                }
            }
            // An older proxy: no identity to show, everything else works.
            Err(status) if status.code() == Code::Unimplemented => {}
            Err(status) => return SessionEnd::Lost(reason::of_status(&status)),
        }
        let mut feed = match client.clone().watch_patterns(WatchPatternsRequest {}).await {
            Ok(response) => PatternFeed::Stream(response.into_inner()),
            Err(status) if status.code() == Code::Unimplemented => {
                // Without ListPatterns either, this is no admin port at all.
                if let Err(status) = client.clone().list_patterns(ListPatternsRequest {}).await {
                    return SessionEnd::Lost(reason::of_status(&status));
                }
                PatternFeed::Poll(client.clone(), poll_timer(config.poll_interval))
            }
            Err(status) => return SessionEnd::Lost(reason::of_status(&status)),
        };
        let connected = Connection::Connected(match feed {
            PatternFeed::Stream(_) => Feed::Stream,
            PatternFeed::Poll(..) => Feed::Polling,
        });
        if events.send(Event::Connection(connected)).await.is_err() {
            return SessionEnd::Closed;
        }
        let event_log = AbortOnDrop(tokio::spawn(follow_event_log(
            client.clone(),
            events.clone(),
            config.poll_interval,
            last_seq.clone(),
        )));
        // The log view's watch, while it is open.
        let mut pattern_logs: Option<AbortOnDrop> = None;
        let end = loop {
            tokio::select! {
                snapshot = feed.next() => match snapshot {
                    Ok(snapshot) => {
                        // Only a session that delivered something earns a fresh backoff,
                        // so a proxy that accepts and then fails is not hammered.
                        backoff.reset();
                        if events.send(Event::Snapshot(snapshot)).await.is_err() {
                            break SessionEnd::Closed;
                        }
                    }
                    Err(error) => break SessionEnd::Lost(error),
                },
                command = commands.recv() => match command {
                    Some(Command::FollowLogs { namespace, since_seq }) => {
                        pattern_logs = Some(AbortOnDrop(tokio::spawn(follow_pattern_logs(
                            client.clone(),
                            namespace,
                            since_seq,
                            events.clone(),
                        ))));
                    }
                    Some(Command::StopLogs) => pattern_logs = None,
                    Some(command) => {
                        tokio::spawn(execute(client.clone(), command, events.clone(), config.action_timeout));
                    }
                    None => break SessionEnd::Closed,
                },
            }
        };
        drop(event_log);
        drop(pattern_logs);
        end
    }
}

/// The log view's feed: `WatchPatternLogs` of one namespace after
/// `since_seq` (0: the most recent lines the view keeps, first), each line
/// an event. A lost connection ends it; the view asks again after the
/// reconnect, resuming after the last line it has.
async fn follow_pattern_logs(
    mut client: Admin,
    namespace: String,
    since_seq: u64,
    events: mpsc::Sender<Event>,
) {
    let request = WatchPatternLogsRequest {
        namespace: namespace.clone(),
        since_seq,
        tail: crate::app::LOG_VIEW_CAPACITY as u32,
    };
    match client.watch_pattern_logs(request).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            while let Ok(Some(line)) = stream.message().await {
                let event = Event::PatternLogs {
                    namespace: namespace.clone(),
                    lines: vec![line.into()],
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
        Err(status) if status.code() == Code::Unimplemented => {
            let _ = events
                .send(Event::PatternLogsUnavailable { namespace })
                .await;
        }
        Err(_) => {}
    }
}

enum PatternFeed {
    Stream(Streaming<ListPatternsResponse>),
    Poll(Admin, Interval),
}

impl PatternFeed {
    /// The next snapshot; an error means the session is over. Cancel-safe
    /// enough for `select!`: a cancelled poll is simply retried at the next
    /// tick.
    async fn next(&mut self) -> Result<Snapshot, String> {
        match self {
            PatternFeed::Stream(stream) => match stream.message().await {
                Ok(Some(response)) => Ok(response.into()),
                Ok(None) => Err("the proxy closed the pattern stream".to_string()),
                Err(status) => Err(reason::of_status(&status)),
            },
            PatternFeed::Poll(client, timer) => {
                timer.tick().await;
                client
                    .list_patterns(ListPatternsRequest {})
                    .await
                    .map(|r| r.into_inner().into())
                    .map_err(|status| reason::of_status(&status))
            }
        }
    }
}

fn poll_timer(period: Duration) -> Interval {
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

/// Follows the proxy's event log. The first time: `WatchEvents`, then
/// `ListEvents` for what happened before (the watch starts first so nothing
/// falls in between; the state drops duplicates). After a reconnection:
/// `WatchEvents` after the last seq seen, which the proxy answers with what
/// was missed and then live events, each once. Without `WatchEvents`, polls
/// `ListEvents`.
async fn follow_event_log(
    mut client: Admin,
    events: mpsc::Sender<Event>,
    poll_interval: Duration,
    last_seq: Arc<AtomicU64>,
) {
    let after_seq = last_seq.load(Ordering::Relaxed);
    let watch = WatchEventsRequest {
        namespace: String::new(),
        after_seq,
    };
    match client.watch_events(watch).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            if after_seq == 0
                && let Ok(list) = list_events(&mut client).await
            {
                if let Some(seq) = list.iter().map(|e| e.seq).max() {
                    last_seq.fetch_max(seq, Ordering::Relaxed);
                }
                if events.send(Event::Log(list)).await.is_err() {
                    return;
                }
            }
            while let Ok(Some(event)) = stream.message().await {
                last_seq.store(event.seq, Ordering::Relaxed);
                if events
                    .send(Event::LogEvent(LogEvent::from(event)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        Err(status) if status.code() == Code::Unimplemented => {
            let mut timer = poll_timer(poll_interval);
            loop {
                timer.tick().await;
                let event = match list_events(&mut client).await {
                    Ok(list) => Event::Log(list),
                    Err(RpcError::Unimplemented) => Event::LogUnavailable,
                    // The pattern feed notices a lost connection and reconnects.
                    Err(RpcError::Failed(_)) => return,
                };
                let unavailable = event == Event::LogUnavailable;
                if events.send(event).await.is_err() || unavailable {
                    return;
                }
            }
        }
        Err(_) => {}
    }
}

async fn list_events(client: &mut Admin) -> Result<Vec<LogEvent>, RpcError> {
    let response = client
        .list_events(ListEventsRequest {
            namespace: String::new(),
            limit: 0,
            after_seq: 0,
        })
        .await
        .map_err(|status| RpcError::from_status(&status))?;
    Ok(response
        .into_inner()
        .events
        .into_iter()
        .map(LogEvent::from)
        .collect())
}

fn with_timeout<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Runs one command and reports how it went.
async fn execute(
    mut client: Admin,
    command: Command,
    events: mpsc::Sender<Event>,
    action_timeout: Duration,
) {
    let event = match command {
        Command::Restart { namespace, old_pid } => {
            let request = with_timeout(
                RestartPatternRequest {
                    namespace: namespace.clone(),
                },
                action_timeout,
            );
            let result = client
                .restart_pattern(request)
                .await
                .map(|response| {
                    let response = response.into_inner();
                    // A proxy that reports the pids knows them better than
                    // the last snapshot; an older one reports neither.
                    if response.new_pid != 0 {
                        Pids {
                            old: response.old_pid,
                            new: response.new_pid,
                        }
                    } else {
                        Pids {
                            old: old_pid,
                            new: response.pattern.map_or(0, |p| p.pid),
                        }
                    }
                })
                .map_err(|status| RpcError::from_status(&status));
            Event::Action(ActionOutcome {
                action: Action::Restart,
                namespace,
                result,
            })
        }
        Command::Reload { namespace, old_pid } => {
            let request = with_timeout(
                ReloadPatternRequest {
                    namespace: namespace.clone(),
                },
                action_timeout,
            );
            let result = client
                .reload_pattern(request)
                .await
                .map(|response| {
                    let response = response.into_inner();
                    Pids {
                        old: if response.old_pid == 0 {
                            old_pid
                        } else {
                            response.old_pid
                        },
                        new: response.new_pid,
                    }
                })
                .map_err(|status| RpcError::from_status(&status));
            Event::Action(ActionOutcome {
                action: Action::Reload,
                namespace,
                result,
            })
        }
        Command::FetchLatency {
            namespace,
            operation,
        } => {
            let request = prism_proto::admin::v1::GetLatencyRequest {
                namespace: namespace.clone(),
                operation: operation.clone(),
            };
            let result = client
                .get_latency(request)
                .await
                .map(|response| Latency::from(response.into_inner()))
                .map_err(|status| RpcError::from_status(&status));
            Event::Latency {
                namespace,
                operation,
                result,
            }
        }
        Command::FetchExemplars { namespace } => {
            let request = GetExemplarsRequest {
                namespace: namespace.clone(),
                operation: String::new(),
            };
            let result = client
                .get_exemplars(request)
                .await
                .map(|response| Exemplars::from_response(namespace.clone(), response.into_inner()))
                .map_err(|status| RpcError::from_status(&status));
            Event::Exemplars { namespace, result }
        }
        // The session runs these itself.
        Command::FollowLogs { .. } | Command::StopLogs => return,
    };
    let _ = events.send(event).await;
}

/// The reply to a command that cannot run (none for the log view's
/// commands: it asks again once connected).
fn refuse(command: Command, error: RpcError) -> Option<Event> {
    let outcome = |action, namespace| {
        Event::Action(ActionOutcome {
            action,
            namespace,
            result: Err(error.clone()),
        })
    };
    Some(match command {
        Command::Restart { namespace, .. } => outcome(Action::Restart, namespace),
        Command::Reload { namespace, .. } => outcome(Action::Reload, namespace),
        Command::FetchLatency {
            namespace,
            operation,
        } => Event::Latency {
            namespace,
            operation,
            result: Err(error),
        },
        Command::FetchExemplars { namespace } => Event::Exemplars {
            namespace,
            result: Err(error),
        },
        Command::FollowLogs { .. } | Command::StopLogs => return None,
    })
}

/// Aborts the task when the session that owns it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
