//! Shared progress of a run: which path and phase it is in, and the measured
//! requests so far. Load tasks write into [`Live`]; the live view reads
//! [`Board::snapshot`]s. Nothing here draws.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{paths::PathKind, stats::Recorder};

/// The measured requests of one path, as they complete.
#[derive(Debug, Default)]
pub struct Live {
    measured: Mutex<Measured>,
    /// Every completed request, warm-up included (for the current rate).
    completed: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub recorder: Recorder,
    /// When the last measured request completed.
    pub last_completion: Option<Instant>,
}

impl Live {
    /// Counts a completed request; `measured` ones go into the recorder.
    pub fn complete(
        &self,
        measured: bool,
        outcome: Result<(), &str>,
        latency: Duration,
        at: Instant,
    ) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if measured {
            let mut m = self.measured.lock().expect("live stats lock");
            m.recorder.record(outcome, latency);
            m.last_completion = Some(m.last_completion.map_or(at, |last| last.max(at)));
        }
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub fn measured(&self) -> Measured {
        self.measured.lock().expect("live stats lock").clone()
    }
}

/// Where a path is in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    /// Pre-populating keys, or opening subscribers.
    Populating,
    WarmingUp,
    Measuring,
    /// Waiting for the last requests to return.
    Draining,
    Stopping,
    Done,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Populating => "getting ready",
            Self::WarmingUp => "warming up",
            Self::Measuring => "measuring",
            Self::Draining => "draining",
            Self::Stopping => "stopping",
            Self::Done => "done",
        }
    }
}

#[derive(Debug, Clone)]
struct BoardState {
    path: Option<PathKind>,
    path_index: usize,
    path_count: usize,
    phase: Phase,
    /// When load started on the current path.
    load_start: Option<Instant>,
    warmup: Duration,
    duration: Duration,
    live: Option<Arc<Live>>,
}

/// The run's progress, for the live view.
#[derive(Debug)]
pub struct Board {
    state: Mutex<BoardState>,
}

/// Everything the live view shows, taken at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub path: Option<PathKind>,
    pub path_index: usize,
    pub path_count: usize,
    pub phase: Phase,
    /// Of warm-up plus measuring on the current path, 0..=1.
    pub progress: f64,
    pub completed: u64,
    pub measured: Measured,
}

impl Default for Board {
    fn default() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }
}

impl Board {
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        Self {
            state: Mutex::new(BoardState {
                path: None,
                path_index: 0,
                path_count: 0,
                phase: Phase::Starting,
                load_start: None,
                warmup,
                duration,
                live: None,
            }),
        }
    }

    fn update(&self, f: impl FnOnce(&mut BoardState)) {
        f(&mut self.state.lock().expect("board lock"));
    }

    pub fn begin_path(&self, path: PathKind, index: usize, count: usize) {
        self.update(|s| {
            s.path = Some(path);
            s.path_index = index;
            s.path_count = count;
            s.phase = Phase::Starting;
            s.load_start = None;
            s.live = None;
        });
    }

    pub fn set_phase(&self, phase: Phase) {
        self.update(|s| s.phase = phase);
    }

    /// Load starts at `start` (warm-up first) and reports into `live`.
    pub fn begin_load(&self, start: Instant, live: Arc<Live>) {
        self.update(|s| {
            s.phase = Phase::WarmingUp;
            s.load_start = Some(start);
            s.live = Some(live);
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = self.state.lock().expect("board lock").clone();
        let at = Instant::now();
        let total = s.warmup + s.duration;
        let elapsed = s
            .load_start
            .map_or(Duration::ZERO, |start| at.saturating_duration_since(start));
        let progress = match s.phase {
            Phase::Stopping | Phase::Done => 1.0,
            _ if total.is_zero() => 0.0,
            _ => (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0),
        };
        // Load runs by itself once begun; the phase follows from the clock.
        let phase = match s.phase {
            Phase::WarmingUp if elapsed >= total => Phase::Draining,
            Phase::WarmingUp if elapsed >= s.warmup => Phase::Measuring,
            phase => phase,
        };
        let (completed, measured) = s.live.as_ref().map_or((0, Measured::default()), |live| {
            (live.completed(), live.measured())
        });
        Snapshot {
            at,
            path: s.path,
            path_index: s.path_index,
            path_count: s.path_count,
            phase,
            progress,
            completed,
            measured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_measured_requests_are_recorded() {
        let live = Live::default();
        let t0 = Instant::now();
        live.complete(false, Ok(()), Duration::from_micros(5), t0);
        live.complete(true, Ok(()), Duration::from_micros(7), t0);
        live.complete(
            true,
            Err("UNAVAILABLE"),
            Duration::ZERO,
            t0 + Duration::from_millis(1),
        );
        assert_eq!(live.completed(), 3);
        let m = live.measured();
        assert_eq!(m.recorder.ok(), 1);
        assert_eq!(m.recorder.error_count(), 1);
        assert_eq!(m.last_completion, Some(t0 + Duration::from_millis(1)));
    }

    #[test]
    fn the_board_tracks_path_phase_and_progress() {
        let board = Board::new(Duration::from_secs(1), Duration::from_secs(1));
        board.begin_path(PathKind::Pattern, 1, 3);
        let snap = board.snapshot();
        assert_eq!(snap.phase, Phase::Starting);
        assert_eq!(snap.progress, 0.0);
        let live = Arc::new(Live::default());
        // Load began 1.5 s ago: past warm-up, three quarters through.
        board.begin_load(Instant::now() - Duration::from_millis(1500), live.clone());
        live.complete(true, Ok(()), Duration::from_micros(9), Instant::now());
        let snap = board.snapshot();
        assert_eq!(snap.path, Some(PathKind::Pattern));
        assert_eq!(snap.phase, Phase::Measuring);
        assert!((0.74..=0.8).contains(&snap.progress), "{}", snap.progress);
        assert_eq!(snap.completed, 1);
        board.set_phase(Phase::Stopping);
        assert_eq!(board.snapshot().progress, 1.0);
    }
}
