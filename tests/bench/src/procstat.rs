//! CPU time and memory of processes by PID, from `/proc`: parsing is pure
//! (tested on sample text), reading is a thin layer on top, and
//! [`ProcessWatch`] turns samples at the start and end of the measured
//! window (plus periodic RSS samples for the peak) into figures.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;

/// CPU time a process has used, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub(crate) fn total(self) -> u64 {
        self.user + self.system
    }
}

/// `utime` and `stime` from the text of `/proc/PID/stat` (fields 14 and 15).
/// The command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<CpuTicks> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After `)`: state is field 3, so utime (14) is the 12th and stime the 13th.
    let user = fields.nth(11)?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// `VmRSS` in kB from the text of `/proc/PID/status`.
pub(crate) fn parse_vm_rss_kb(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU used between two samples as a percentage of one core (two busy cores
/// is 200%).
pub(crate) fn cpu_percent(
    before: CpuTicks,
    after: CpuTicks,
    ticks_per_second: u64,
    window: Duration,
) -> f64 {
    if window.is_zero() || ticks_per_second == 0 {
        return 0.0;
    }
    let ticks = after.total().saturating_sub(before.total()) as f64;
    ticks / ticks_per_second as f64 / window.as_secs_f64() * 100.0
}

/// Clock ticks per second (`USER_HZ`) as `getconf CLK_TCK` reports it; 100,
/// the value on every mainstream Linux, when it cannot be asked.
pub(crate) fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

pub(crate) fn read_cpu(pid: u32) -> Option<CpuTicks> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub(crate) fn read_rss_kb(pid: u32) -> Option<u64> {
    parse_vm_rss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// A process whose resources a run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watched {
    /// `proxy`, `pattern`, or `bench` (this process, which hosts the floor).
    pub role: &'static str,
    pub pid: u32,
    /// RSS right after the process became ready, before any load.
    pub idle_rss_kb: Option<u64>,
}

/// What a process used over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessReport {
    pub role: String,
    pub pid: u32,
    /// User + system CPU time over the window, as % of one core.
    pub cpu_percent: Option<f64>,
    pub idle_rss_kb: Option<u64>,
    pub peak_rss_kb: Option<u64>,
    pub end_rss_kb: Option<u64>,
}

/// Samples a set of processes over the measured window: CPU at start and
/// end, RSS every `RSS_INTERVAL` for the peak.
pub(crate) struct ProcessWatch {
    processes: Vec<Watched>,
    start: Instant,
    cpu_start: Vec<Option<CpuTicks>>,
    peak_rss: Arc<Mutex<Vec<Option<u64>>>>,
    sampler: tokio::task::JoinHandle<()>,
}

const RSS_INTERVAL: Duration = Duration::from_millis(100);

impl ProcessWatch {
    /// Takes the start sample now and begins sampling RSS.
    pub(crate) fn start(processes: Vec<Watched>) -> Self {
        let cpu_start = processes.iter().map(|p| read_cpu(p.pid)).collect();
        let peak_rss = Arc::new(Mutex::new(
            processes
                .iter()
                .map(|p| read_rss_kb(p.pid))
                .collect::<Vec<_>>(),
        ));
        let pids: Vec<u32> = processes.iter().map(|p| p.pid).collect();
        let peaks = peak_rss.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_INTERVAL);
            loop {
                tick.tick().await;
                let now: Vec<Option<u64>> = pids.iter().map(|&pid| read_rss_kb(pid)).collect();
                let mut peaks = peaks.lock().expect("peak RSS lock");
                for (peak, rss) in peaks.iter_mut().zip(now) {
                    *peak = (*peak).max(rss);
                }
            }
        });
        Self {
            processes,
            start: Instant::now(),
            cpu_start,
            peak_rss,
            sampler,
        }
    }

    /// Takes the end sample and reports each process.
    pub(crate) fn finish(self, ticks_per_second: u64) -> Vec<ProcessReport> {
        self.sampler.abort();
        let window = self.start.elapsed();
        let peaks = self.peak_rss.lock().expect("peak RSS lock").clone();
        self.processes
            .into_iter()
            .zip(self.cpu_start)
            .zip(peaks)
            .map(|((p, cpu_start), peak)| {
                let end_rss = read_rss_kb(p.pid);
                let cpu = cpu_start
                    .zip(read_cpu(p.pid))
                    .map(|(a, b)| cpu_percent(a, b, ticks_per_second, window));
                ProcessReport {
                    role: p.role.to_string(),
                    pid: p.pid,
                    cpu_percent: cpu,
                    idle_rss_kb: p.idle_rss_kb,
                    peak_rss_kb: peak.max(end_rss),
                    end_rss_kb: end_rss,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line, with a command name that holds a space and a parenthesis.
    const STAT: &str = "4242 (prism proxy) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
        250 75 0 0 20 0 4 0 123456 98765432 2048 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17920 0 0 0 17 1 0 0 0 0 0";

    const STATUS: &str = "Name:\tprism-proxy\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  812345 kB\nVmSize:\t  812300 kB\nVmHWM:\t   12000 kB\nVmRSS:\t   11264 kB\n\
        RssAnon:\t    6000 kB\nThreads:\t4\n";

    #[test]
    fn parses_utime_and_stime() {
        assert_eq!(
            parse_stat(STAT),
            Some(CpuTicks {
                user: 250,
                system: 75
            })
        );
        assert_eq!(
            parse_stat("1 (a) b) S 0 0 0 0 0 0 0 0 0 0 7 8 0"),
            Some(CpuTicks { user: 7, system: 8 })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (short) S 0 0"), None);
    }

    #[test]
    fn parses_vm_rss() {
        assert_eq!(parse_vm_rss_kb(STATUS), Some(11264));
        // Kernel threads have no VmRSS line.
        assert_eq!(parse_vm_rss_kb("Name:\tkthreadd\nState:\tS\n"), None);
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        let before = CpuTicks {
            user: 100,
            system: 50,
        };
        let after = CpuTicks {
            user: 250,
            system: 100,
        };
        // 200 ticks at 100 Hz = 2 s of CPU over 4 s = 50% of one core.
        assert_eq!(
            cpu_percent(before, after, 100, Duration::from_secs(4)),
            50.0
        );
        // Two busy cores read as 200%.
        assert_eq!(
            cpu_percent(before, after, 100, Duration::from_secs(1)),
            200.0
        );
        assert_eq!(cpu_percent(before, after, 100, Duration::ZERO), 0.0);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(read_cpu(me).is_some());
        assert!(read_rss_kb(me).unwrap() > 0);
        assert!(ticks_per_second() > 0);
    }
}
