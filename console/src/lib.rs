//! `prism-console`: the operator's terminal UI over a running proxy's admin
//! API (`prism.admin.v1.Admin`). It depends on the wire contract
//! (`prism-proto`) only, never on proxy internals.
//!
//! The loop: every producer sends an [`event::Event`] into one channel;
//! [`update::update`] applies it to the [`app::App`] state and returns
//! [`event::Command`]s for the admin [`client`]; [`view::View::build`]
//! derives what to show and [`ui::render`] draws it.
//!
//! `prismctl` ([`ctl`]) makes one admin call per run over the same client.
//!
//! `prism-console login` runs the device-code login instead ([`login`]);
//! the console itself sends the token it finds on every call ([`auth`]).
//!
//! Modules: [`cli`] (flags), [`auth`] (the token and its interceptor),
//! [`login`] (the device-code login), [`app`] (state), [`event`] (messages and the
//! input, tick and signal producers), [`update`] (transitions), [`view`]
//! (display model), [`ui`] (render), [`client`] (admin API task),
//! [`model`] (domain types), [`multicast`] (a registry's multicast rate and
//! recent delivery split), [`terminal`] (setup, restore, panic hook),
//! [`tls`] (TLS towards the admin port), [`clipboard`] (OSC 52), [`error`].

mod app;
mod auth;
mod cli;
mod client;
mod clipboard;
pub mod ctl;
mod error;
mod event;
mod login;
mod model;
mod multicast;
mod terminal;
mod tls;
mod ui;
mod update;
mod view;

use std::time::Duration;

use tokio::sync::mpsc;

pub use cli::{Args, Command, ConnectionArgs, LoginArgs};
pub use error::Error;

use prism_auth::TokenProvider;

use crate::{app::App, auth::Bearer, client::ClientConfig, event::Event, view::View};

/// How often the screen refreshes when nothing happens (relative times,
/// the reconnect countdown).
const TICK: Duration = Duration::from_secs(1);

/// Runs the console until the operator quits, or `login` to its end.
///
/// Fails when `--admin` is unusable, `--token-file` cannot be read, or
/// there is no terminal to draw on. A missing or vanishing proxy is not an
/// error: the console shows it and keeps reconnecting.
pub fn run(args: Args) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    if let Some(Command::Login(login)) = &args.command {
        return runtime.block_on(login::run(login, &mut std::io::stdout()));
    }
    // Files are read before the terminal is taken, so a bad one is said plainly.
    let (client, tokens) = args.connection.client()?;
    runtime.block_on(run_loop(args, client, tokens))
}

fn write_clipboard(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    out.write_all(clipboard::osc52(text).as_bytes())?;
    out.flush()
}

async fn run_loop(
    args: Args,
    client: ClientConfig,
    tokens: Option<TokenProvider>,
) -> Result<(), Error> {
    let bearer = Bearer::default();
    if let Some(tokens) = tokens {
        // The first calls go out with the token already in place.
        if let Ok(token) = tokens.token().await {
            bearer.set(&token);
        }
        tokio::spawn(auth::keep_fresh(tokens, bearer.clone()));
    }
    let (events_tx, mut events) = mpsc::channel(256);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    event::spawn_signals(events_tx.clone()).map_err(Error::Signals)?;

    let mut terminal = terminal::init()?;
    event::spawn_input(events_tx.clone());
    event::spawn_ticker(events_tx.clone(), TICK);
    let config = ClientConfig { bearer, ..client };
    let _client = client::spawn(config, events_tx.clone(), commands_rx);
    drop(events_tx);

    let mut app = App::new(args.options(), event::now_ms());
    let size = terminal.size().map_err(Error::Terminal)?;
    update::update(
        &mut app,
        Event::Resize {
            width: size.width,
            height: size.height,
        },
    );
    while !app.should_quit {
        let view = View::build(&app);
        terminal
            .draw(|frame| ui::render(frame, &view))
            .map_err(Error::Terminal)?;
        // Block until something happens, then take whatever else is queued
        // so a burst costs one redraw.
        let Some(first) = events.recv().await else {
            break;
        };
        let mut next = Some(first);
        while let Some(event) = next {
            for command in update::update(&mut app, event) {
                let _ = commands.send(command);
            }
            next = events.try_recv().ok();
        }
        if let Some(text) = app.clipboard.take() {
            // Not fatal: a terminal without OSC 52 just ignores it, and the
            // status line shows the text in full anyway.
            let _ = write_clipboard(&text);
        }
    }
    Ok(())
}
