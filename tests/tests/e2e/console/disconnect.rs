//! Why the console is disconnected, in a real terminal: nothing listens
//! (refused), or the address is the proxy's data port, which answers gRPC
//! but not the admin API (wrong port).

use prism_tests::Proxy;

use super::Console;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointed_at_the_data_port_it_says_wrong_port() {
    let proxy = Proxy::start_default().await;
    let console = Console::start(proxy.data_addr, &[], 120, 30);
    console
        .wait_screen("the wrong-port reason", |screen| {
            screen.contains("wrong port") && screen.contains("the data port?")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_listening_it_says_refused() {
    // A port nothing listens on, for as long as the test runs.
    let closed = prism_harness::procs::ClosedPort::new().unwrap();
    let addr = closed.addr();
    let console = Console::start(addr, &[], 120, 30);
    console
        .wait_screen("the refused reason", |screen| {
            screen.contains(&format!("refused: nothing listens at http://{addr}"))
        })
        .await;
}
