//! One run: for each path in turn, start its server, connect, get ready
//! (pre-populate; open the subscribers), drive the load while watching the
//! processes, collect what the target adds (deliveries), stop the server;
//! then put the figures together.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    BenchError, Config, Report,
    endpoint::Endpoint,
    live::{Board, Live, Phase},
    load,
    paths::PathKind,
    procstat::{self, ProcessWatch, Watched},
    report::{self, PathReport},
    server_process::{Kind, ServerProcess},
    target::Target,
    transport::{GrpcPool, NatsPool, RedisPool, Transport},
};

/// Load begins this long after it is set up, so the first slots are not late.
const START_DELAY: Duration = Duration::from_millis(5);

/// Measures every chosen path, one after another, with the same settings.
/// Progress goes to `board`. Fails on the first path that cannot be started
/// or pre-populated; failed requests during measuring are counted, not fatal.
pub async fn run(config: Config, board: Arc<Board>) -> Result<Report, BenchError> {
    let mut target = Target::new(&config.target);
    let (paths, skipped) = choose_paths(&config, &target)?;
    // One backend server for the whole run, so every path finds the same
    // key space (Redis) or broker (NATS).
    let backend = match target.backend_server() {
        Some(kind) if paths.iter().any(|&p| p != PathKind::Floor) => {
            let cluster = target.backend().is_cluster();
            let given = match (kind, &config.endpoints.cluster) {
                (_, Some(nodes)) => Some(nodes.clone()),
                (Kind::Redis, None) => config.endpoints.redis.clone().map(|u| vec![u]),
                (Kind::Nats, None) => config.endpoints.nats.clone().map(|u| vec![u]),
            };
            let server = ServerProcess::start(kind, cluster, given.as_deref()).await?;
            target.set_backend_urls(server.urls());
            Some(server)
        }
        _ => None,
    };
    let target = Arc::new(target);
    let measured = measure_paths(&paths, &config, &target, backend.as_ref(), &board).await;
    if let Some(server) = backend {
        server.stop().await;
    }
    let reports = measured?;
    board.set_phase(Phase::Done);
    Ok(Report {
        target: target.name(),
        workload: target.describe(),
        namespace: config.namespace.clone(),
        settings: config.target.clone(),
        load: config.load.clone(),
        comparisons: report::compare(&reports),
        paths: reports,
        skipped,
    })
}

async fn measure_paths(
    paths: &[PathKind],
    config: &Config,
    target: &Arc<Target>,
    backend: Option<&ServerProcess>,
    board: &Board,
) -> Result<Vec<PathReport>, BenchError> {
    let ticks = procstat::ticks_per_second();
    let mut reports = Vec::with_capacity(paths.len());
    for (index, &path) in paths.iter().enumerate() {
        board.begin_path(path, index, paths.len());
        let endpoint = Endpoint::start(path, config, target, backend).await?;
        let measured = measure(&endpoint, config, target.clone(), board, ticks).await;
        board.set_phase(Phase::Stopping);
        endpoint.stop().await;
        reports.push(measured?);
    }
    Ok(reports)
}

/// The paths asked for (each must be able to run), or every default path
/// that can run, with the reasons the others cannot.
fn choose_paths(
    config: &Config,
    target: &Target,
) -> Result<(Vec<PathKind>, BTreeMap<String, String>), BenchError> {
    if let Some(paths) = &config.paths {
        for &path in paths {
            if let Some(reason) = Endpoint::unavailable(path, config, target) {
                return Err(BenchError::PathUnavailable {
                    path: path.name(),
                    reason,
                });
            }
        }
        return Ok((paths.clone(), BTreeMap::new()));
    }
    let mut paths = Vec::new();
    let mut skipped = BTreeMap::new();
    for &path in target.default_paths() {
        match Endpoint::unavailable(path, config, target) {
            None => paths.push(path),
            Some(reason) => {
                skipped.insert(path.name().to_string(), reason);
            }
        }
    }
    Ok((paths, skipped))
}

async fn measure(
    endpoint: &Endpoint,
    config: &Config,
    target: Arc<Target>,
    board: &Board,
    ticks_per_second: u64,
) -> Result<PathReport, BenchError> {
    let load = &config.load;
    let transport = Arc::new(connect(endpoint, config, &target, load.connections, false).await?);
    let listeners = match target.listeners() {
        0 => None,
        n => Some(connect(endpoint, config, &target, n, true).await?),
    };
    board.set_phase(Phase::Populating);
    let state = Arc::new(target.prepare(&transport, listeners.as_ref()).await?);

    let live = Arc::new(Live::default());
    let start = Instant::now() + START_DELAY;
    state.begin(start + load.warmup);
    board.begin_load(start, live.clone());
    let mut watched = endpoint.processes.clone();
    watched.push(Watched {
        role: "bench",
        pid: std::process::id(),
        idle_rss_kb: None,
    });
    let measure_start = start + load.warmup;
    let watch = tokio::spawn(async move {
        tokio::time::sleep_until(measure_start.into()).await;
        ProcessWatch::start(watched)
    });
    let call_state = state.clone();
    let outcome = load::drive(load, start, live, move |req| {
        let (target, transport, state) = (target.clone(), transport.clone(), call_state.clone());
        async move { target.call(&transport, &state, req).await }
    })
    .await?;
    let processes = watch
        .await
        .map_err(|e| BenchError::Load(format!("process watch: {e}")))?
        .finish(ticks_per_second);
    let pubsub = state.finish(outcome.elapsed, load.timeout).await?;

    let recorder = &outcome.measured.recorder;
    let elapsed_s = outcome.elapsed.as_secs_f64();
    Ok(PathReport {
        path: endpoint.path,
        address: endpoint.addr.to_string(),
        requests: recorder.total(),
        ok: recorder.ok(),
        error_count: recorder.error_count(),
        errors: recorder.errors().clone(),
        elapsed_s,
        throughput_rps: report::ratio(recorder.ok() as f64, elapsed_s).unwrap_or(0.0),
        latency_us: recorder.summary(),
        max_send_lag_us: outcome.max_send_lag.map(|lag| lag.as_secs_f64() * 1e6),
        processes,
        pubsub,
    })
}

/// `connections` separate connections to the server of `endpoint`, with the
/// client of its path: the `redis` crate (its cluster client on a Redis
/// Cluster), async-nats, or gRPC. On a NATS cluster the `nats` path's
/// publishers connect to the first node and its subscribers (`listeners`)
/// to the second: what crossing the cluster costs.
async fn connect(
    endpoint: &Endpoint,
    config: &Config,
    target: &Target,
    connections: usize,
    listeners: bool,
) -> Result<Transport, BenchError> {
    let timeout = config.load.timeout;
    let urls = target.backend_urls();
    Ok(match endpoint.path {
        PathKind::Redis if !urls.is_empty() => {
            let cluster = target.backend().is_cluster();
            Transport::Redis(RedisPool::connect(urls, cluster, connections, timeout).await?)
        }
        PathKind::Nats if !urls.is_empty() => {
            let node = if listeners { 1 % urls.len() } else { 0 };
            Transport::Nats(NatsPool::connect(&urls[node], connections, timeout).await?)
        }
        _ => Transport::Grpc(
            GrpcPool::connect(endpoint.addr, connections, &config.namespace, timeout)
                .await?
                .with_authorization(endpoint.authorization.clone()),
        ),
    })
}
