//! The real `prism-console` in a real terminal (a detached tmux session)
//! against a real proxy: what the operator sees, and what a key press does.
//! `scripts/test.sh` installs tmux; `TMUX_BIN` names it when it is not on
//! PATH.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::Duration,
};

use prism_proto::{admin::v1::PatternState, keyvalue::v1::SetRequest};
use prism_tests::{Proxy, bins, eventually};

mod disconnect;
mod traces;

/// How long the screen may take to show what a test waits for.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// One console in its own tmux server (a private socket in a private
/// folder, so nothing is left behind), killed on drop.
struct Console {
    tmux: String,
    dir: tempfile::TempDir,
}

impl Console {
    /// Starts `prism-console --admin <admin> <args>` in a `width`×`height`
    /// terminal.
    fn start(admin: std::net::SocketAddr, args: &[&str], width: u16, height: u16) -> Self {
        Self::start_with_env(admin, args, &[], (width, height))
    }

    /// The same with environment variables set for the console (e.g. a
    /// `HOME` holding a login cache).
    fn start_with_env(
        admin: std::net::SocketAddr,
        args: &[&str],
        env: &[(&str, &std::path::Path)],
        (width, height): (u16, u16),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = Self {
            tmux: std::env::var("TMUX_BIN").unwrap_or_else(|_| "tmux".to_string()),
            dir,
        };
        let mut command: Vec<String> = env
            .iter()
            .map(|(key, value)| format!("{key}={}", quote(value)))
            .collect();
        if !command.is_empty() {
            command.insert(0, "env".to_string());
        }
        command.extend([
            quote(&bins::bin("prism-console")),
            "--admin".to_string(),
            admin.to_string(),
        ]);
        command.extend(args.iter().map(|a| a.to_string()));
        // Whatever the console prints on its way out (a panic, an error)
        // lands beside the screen capture in failure messages.
        let shell = format!(
            "exec {} 2>>{}",
            command.join(" "),
            quote(&console.stderr_path())
        );
        let out = console.tmux(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-s",
            "console",
            &shell,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        console
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("console.stderr")
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new(&self.tmux)
            // A private server with no user config; not nested in the
            // caller's own tmux.
            .arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): scripts/test.sh installs it",
                    self.tmux
                )
            })
    }

    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "console"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
    }

    fn running(&self) -> bool {
        self.tmux(&["has-session", "-t", "console"])
            .status
            .success()
    }

    /// Waits until `check` holds for the screen; returns that screen. On
    /// timeout, fails with the last screen and the console's stderr.
    async fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let probe = eventually(SCREEN_TIMEOUT * 2, what, || {
            let screen = self.screen();
            let found = check(&screen).then_some(screen);
            async move { found }
        });
        match tokio::time::timeout(SCREEN_TIMEOUT, probe).await {
            Ok(screen) => screen,
            Err(_) => panic!(
                "timed out after {SCREEN_TIMEOUT:?} waiting for {what}\nlast screen:\n{}\nconsole stderr:\n{}",
                self.screen(),
                std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
            ),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // Only this test's server: the socket is private to it.
        let _ = self.tmux(&["kill-server"]);
    }
}

fn quote(path: &std::path::Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The screen line that shows `namespace`'s row.
fn row<'s>(screen: &'s str, namespace: &str) -> Option<&'s str> {
    screen.lines().find(|line| {
        line.split_whitespace()
            .any(|w| w.trim_matches('│') == namespace)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_the_default_row_and_restarts_it_with_r() {
    let proxy = Proxy::start_default().await;
    let old_pid = proxy.pattern("default").await.pid;
    let console = Console::start(proxy.admin_addr, &["--no-confirm"], 120, 30);

    let old = old_pid.to_string();
    console
        .wait_screen(
            "the default row, HEALTHY, with its pid; auth off",
            |screen| {
                row(screen, "default").is_some_and(|r| {
                    r.contains("HEALTHY") && r.contains(&old) && r.contains("RUNNING")
                }) && screen.contains("● connected")
                    && screen.contains("auth off")
            },
        )
        .await;

    console.keys(&["r"]);
    let restarted = proxy
        .wait_pattern(
            "default",
            Duration::from_secs(20),
            "running a new process",
            |p| p.pid != old_pid && p.pid != 0 && p.state() == PatternState::Running,
        )
        .await;
    let new = restarted.pid.to_string();
    let outcome = format!("restarted default: pid {old_pid} → {new}");
    console
        .wait_screen("the new pid and the outcome", |screen| {
            row(screen, "default").is_some_and(|r| r.contains(&new)) && screen.contains(&outcome)
        })
        .await;

    console.keys(&["q"]);
    eventually(Duration::from_secs(10), "the console to exit on q", || {
        let running = console.running();
        async move { (!running).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_view_shows_latency_and_events() {
    let proxy = Proxy::start_default().await;
    let mut kv = proxy.kv("default").await;
    for i in 0..20 {
        kv.set(SetRequest {
            key: format!("k{i}"),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .expect("Set");
    }
    let console = Console::start(proxy.admin_addr, &[], 100, 30);
    console
        .wait_screen("the default row", |screen| {
            row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;
    console.keys(&["Enter"]);
    console
        .wait_screen("the histogram legend and the start event", |screen| {
            screen.contains("p99 ") && screen.contains("▲p") && screen.contains("PATTERN_STARTED")
        })
        .await;

    // With confirmation on, `r` asks and `n` leaves the process alone.
    let pid = proxy.pattern("default").await.pid;
    console.keys(&["r"]);
    console
        .wait_screen("the confirm dialog", |screen| {
            screen.contains("Restart default?")
        })
        .await;
    console.keys(&["n"]);
    console
        .wait_screen("the cancellation", |screen| {
            screen.contains("restart of default cancelled")
        })
        .await;
    assert_eq!(proxy.pattern("default").await.pid, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_proxy_going_away() {
    let mut proxy = Proxy::start_default().await;
    let console = Console::start(proxy.admin_addr, &["--readonly"], 80, 24);
    console
        .wait_screen("the default row at 80x24", |screen| {
            row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;
    console.keys(&["r"]);
    console
        .wait_screen("the read-only refusal", |screen| {
            screen.contains("read-only: restart is disabled")
        })
        .await;

    // A crash: the patterns follow their parent, the console must not.
    proxy.signal(libc::SIGKILL);
    proxy.wait_exit(Duration::from_secs(15)).await;
    console
        .wait_screen("the disconnected state", |screen| {
            screen.contains("disconnected, reconnecting in") && row(screen, "default").is_some()
        })
        .await;
    assert!(console.running(), "the console outlives the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_to_an_admin_port_under_mtls() {
    let pki = prism_harness::TestPki::generate().unwrap();
    let identity = &pki.client;
    let proxy = prism_tests::ProxyBuilder::new()
        .namespace("{name: kv, pattern: keyvalue, backend: memstore}")
        .tls(
            &pki.tls_yaml(Some("required")),
            prism_tests::tls::ClientTls::with_identity(&pki, identity),
        )
        .start()
        .await;
    let pid = proxy.wait_healthy("kv").await.pid.to_string();
    let cert = pki.path("console.crt");
    let key = pki.path("console.key");
    std::fs::write(&cert, &identity.cert_pem).unwrap();
    std::fs::write(&key, &identity.key_pem).unwrap();
    let ca = pki.ca_file();
    // A bare host:port with TLS flags means https.
    let console = Console::start(
        proxy.admin_addr,
        &[
            "--ca-file",
            &quote(&ca),
            "--cert-file",
            &quote(&cert),
            "--key-file",
            &quote(&key),
        ],
        120,
        30,
    );
    console
        .wait_screen("the kv row over mTLS", |screen| {
            row(screen, "kv").is_some_and(|r| r.contains(&pid) && r.contains("HEALTHY"))
                && screen.contains("● connected")
        })
        .await;
}

/// Logged in (device code, real OpenID provider) as a viewer, against a
/// proxy with auth on: the header says who and which role, the namespaces
/// show, and a restart is refused with the role it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_viewer_sees_who_they_are_and_cannot_restart() {
    use prism_auth::{
        device::DeviceClient,
        http::HttpClient,
        token_cache::{self, CachedToken},
    };
    use prism_harness::oidc::{CLI_CLIENT, Oidc, VIEWER_ACCOUNT};

    let provider = Oidc::default().start().await.unwrap();
    let proxy = Proxy::start_with_config(&format!(
        r#"auth:
  issuers:
    - issuer: {}
      audiences: [prism]
  admin:
    viewer: ["group:prism-viewers"]
    operator: ["group:prism-operators"]
    admin: ["group:prism-admins"]
namespaces:
  - {{name: default, pattern: keyvalue}}
"#,
        provider.issuer()
    ))
    .await;
    proxy.wait_serving("default").await;

    let client = DeviceClient::discover(HttpClient::new(), &provider.issuer(), CLI_CLIENT)
        .await
        .unwrap();
    let login = client.start("openid email offline_access").await.unwrap();
    provider
        .approve(&login.user_code, VIEWER_ACCOUNT)
        .await
        .unwrap();
    let tokens = client.wait(&login).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let cached = CachedToken::from_tokens(
        client.issuer(),
        CLI_CLIENT,
        tokens,
        token_cache::unix_now(),
        None,
    );
    token_cache::write(&token_cache::default_path(home.path()), &cached).unwrap();

    let console =
        Console::start_with_env(proxy.admin_addr, &[], &[("HOME", home.path())], (120, 40));
    console
        .wait_screen("the viewer's identity and the default row", |screen| {
            screen.contains("viewer@local.prism (viewer)")
                && row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;
    console.keys(&["r"]);
    console
        .wait_screen("the refusal naming the role", |screen| {
            screen.contains("restart needs the operator role (you have viewer)")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_view_shows_the_patterns_lines_and_searches_them() {
    let proxy = Proxy::start_default().await;
    let pid = proxy.wait_healthy("default").await.pid.to_string();
    let console = Console::start(proxy.admin_addr, &[], 120, 30);
    console
        .wait_screen("the default row", |screen| {
            row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;
    console.keys(&["l"]);
    // The pattern's start-up line, written by the pattern process itself,
    // with its pid beside it.
    console
        .wait_screen("the pattern's own log line", |screen| {
            screen.contains("logs · default · following")
                && screen
                    .lines()
                    .any(|l| l.contains("pattern listening") && l.contains(&pid))
        })
        .await;
    console.keys(&["f"]);
    console
        .wait_screen("paused", |screen| screen.contains("paused (f follows)"))
        .await;
    console.keys(&["/", "listening", "Enter"]);
    console
        .wait_screen("the search result", |screen| {
            screen.contains("\"listening\"") && screen.contains("lines")
        })
        .await;
    console.keys(&["Escape"]);
    console
        .wait_screen("back to the table", |screen| {
            screen.contains("NAMESPACE") && !screen.contains("logs · default")
        })
        .await;
}
