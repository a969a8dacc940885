//! `--tui`: a live view of the run (path and phase, progress, current rate,
//! latency histogram of the path being measured), off by default.
//!
//! State and update live here ([`View`]); drawing is the pure
//! [`render::render`]; the loop samples the [`Board`] ten times a second,
//! updates, draws, and quits on `q`/Esc/Ctrl-C (which aborts the run and
//! stops what it started). `ratatui::try_init` installs a panic hook that
//! restores the terminal.

pub mod render;

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::{
    BenchError, Config, Report,
    live::{Board, Snapshot},
};

/// How often the view samples and redraws.
const TICK: Duration = Duration::from_millis(100);
/// The window the current rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// What the live view shows: the latest snapshot and the current rate.
#[derive(Debug, Default)]
pub struct View {
    pub snapshot: Option<Snapshot>,
    /// Completed requests per second over the last `RATE_WINDOW`.
    pub rps: f64,
    samples: VecDeque<(Instant, u64)>,
}

impl View {
    pub fn update(&mut self, snapshot: Snapshot) {
        let same_path = self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.path_index == snapshot.path_index && s.path == snapshot.path);
        if !same_path
            || self
                .samples
                .back()
                .is_some_and(|&(_, n)| n > snapshot.completed)
        {
            self.samples.clear();
        }
        self.samples.push_back((snapshot.at, snapshot.completed));
        while self
            .samples
            .front()
            .is_some_and(|&(at, _)| snapshot.at.saturating_duration_since(at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        self.rps = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        };
        self.snapshot = Some(snapshot);
    }
}

/// Runs `config` with the live view on this terminal. Returns `None` when the
/// user quit before the end.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    config: Config,
) -> Result<Option<Report>, BenchError> {
    let board = Arc::new(Board::new(config.load.warmup, config.load.duration));
    let task = runtime.spawn(crate::run(config, board.clone()));
    let mut terminal = ratatui::try_init().map_err(|e| BenchError::io("terminal", e))?;
    let shown = show(&mut terminal, &board, || task.is_finished());
    ratatui::restore();
    if !shown.map_err(|e| BenchError::io("terminal", e))? {
        task.abort();
        let _ = runtime.block_on(task);
        return Ok(None);
    }
    runtime
        .block_on(task)
        .map_err(|e| BenchError::Load(format!("run task: {e}")))?
        .map(Some)
}

/// Draws until `finished` (true) or the user quits (false).
fn show(
    terminal: &mut ratatui::DefaultTerminal,
    board: &Board,
    finished: impl Fn() -> bool,
) -> std::io::Result<bool> {
    let mut view = View::default();
    loop {
        view.update(board.snapshot());
        terminal.draw(|frame| render::render(&view, frame.area(), frame.buffer_mut()))?;
        if finished() {
            return Ok(true);
        }
        if event::poll(TICK)?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
            && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                || (key.code == KeyCode::Char('c')
                    && key.modifiers.contains(KeyModifiers::CONTROL)))
        {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        live::{Measured, Phase},
        paths::PathKind,
    };

    pub(crate) fn snapshot(at: Instant, path: PathKind, completed: u64) -> Snapshot {
        Snapshot {
            at,
            path: Some(path),
            path_index: 0,
            path_count: 3,
            phase: Phase::Measuring,
            progress: 0.5,
            completed,
            measured: Measured::default(),
        }
    }

    #[test]
    fn rate_is_averaged_over_the_last_second() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.update(snapshot(t0, PathKind::Proxy, 0));
        assert_eq!(view.rps, 0.0);
        view.update(snapshot(
            t0 + Duration::from_millis(500),
            PathKind::Proxy,
            500,
        ));
        assert_eq!(view.rps, 1000.0);
        // Older than a second drops out: 1500 → 3500 over the last 1 s.
        view.update(snapshot(
            t0 + Duration::from_millis(1000),
            PathKind::Proxy,
            1500,
        ));
        view.update(snapshot(
            t0 + Duration::from_millis(2000),
            PathKind::Proxy,
            3500,
        ));
        assert_eq!(view.rps, 2000.0);
    }

    #[test]
    fn a_new_path_starts_the_rate_afresh() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.update(snapshot(t0, PathKind::Proxy, 10_000));
        view.update(snapshot(
            t0 + Duration::from_millis(100),
            PathKind::Pattern,
            50,
        ));
        assert_eq!(view.rps, 0.0);
    }
}
