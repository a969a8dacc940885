//! The `floor` path's server: a bare tonic server on loopback inside the
//! bench process, on its own runtime and threads so it does not share a
//! scheduler with the load generator. What it costs is gRPC and HTTP/2 on
//! loopback, and nothing else.

use std::{net::SocketAddr, thread::JoinHandle};

use tokio::sync::oneshot;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

use crate::BenchError;

pub(crate) struct Floor {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Floor {
    /// Serves `routes` on `127.0.0.1:0` until [`Floor::stop`] or drop.
    pub(crate) async fn start(routes: Routes) -> Result<Self, BenchError> {
        let (ready, bound) = oneshot::channel::<Result<SocketAddr, String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("floor".into())
            .spawn(move || serve(routes, ready, stopped))
            .map_err(|e| BenchError::Floor(format!("thread: {e}")))?;
        let mut floor = Self {
            addr: ([127, 0, 0, 1], 0).into(),
            stop: Some(stop),
            thread: Some(thread),
        };
        floor.addr = bound
            .await
            .map_err(|_| BenchError::Floor("server thread ended before binding".into()))?
            .map_err(BenchError::Floor)?;
        Ok(floor)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server thread.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Floor {
    /// Signals the server to stop without waiting: the thread ends by itself
    /// once its connections close.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The server thread: its own runtime, bound on loopback, until `stopped`.
fn serve(
    routes: Routes,
    ready: oneshot::Sender<Result<SocketAddr, String>>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("floor-server")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let incoming = match TcpIncoming::bind(([127, 0, 0, 1], 0).into()) {
            Ok(incoming) => incoming.with_nodelay(Some(true)),
            Err(e) => {
                let _ = ready.send(Err(format!("bind: {e}")));
                return;
            }
        };
        let addr = incoming
            .local_addr()
            .map_err(|e| format!("local address: {e}"));
        let ok = addr.is_ok();
        let _ = ready.send(addr);
        if !ok {
            return;
        }
        let served = Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            eprintln!("prism-bench: floor server: {e}");
        }
    });
}
