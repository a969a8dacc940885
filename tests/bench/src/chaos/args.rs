//! `prism-bench chaos` flags and their checks.

use std::{path::PathBuf, time::Duration};

use clap::Args as ClapArgs;

use super::{ChaosConfig, plan::FaultKind};
use crate::{
    BenchError,
    cli::{own_dir, parse_duration},
};

#[derive(Debug, Clone, ClapArgs)]
pub struct ChaosArgs {
    /// How long load runs, e.g. `60s`, `10m`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Calls a second over the three namespaces.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seed of the fault schedule; default: from the clock (printed, so a run
    /// can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mean time between faults (each gap is drawn from half to one and a
    /// half times this).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub fault_interval: Duration,
    /// Faults to inject, comma-separated: pattern-kill, redis-restart,
    /// nats-restart, hot-reload, config-rewrite. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub faults: Option<Vec<FaultKind>>,
    /// How long Redis and NATS stay down in a restart.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub outage: Duration,
    /// The proxy's RSS must stay under this many MiB.
    #[arg(long, default_value_t = 512)]
    pub max_rss_mb: u64,
    /// How long the end check waits for outstanding JetStream deliveries.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Folder with prism-proxy and the pattern binaries; default: beside prism-bench.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

impl ChaosArgs {
    /// Checks the flags; fails with [`BenchError::Usage`] naming the flag.
    pub fn into_config(self) -> Result<ChaosConfig, BenchError> {
        let usage = |m: &str| Err(BenchError::Usage(m.to_string()));
        if self.duration < Duration::from_secs(5) {
            return usage("--duration must be at least 5s");
        }
        if self.rate == 0 || self.rate > 10_000 {
            return usage("--rate must be 1..=10000");
        }
        if self.fault_interval < Duration::from_millis(100) {
            return usage("--fault-interval must be at least 100ms");
        }
        if self.outage > Duration::from_secs(600) {
            return usage("--outage must be at most 10m");
        }
        if self.max_rss_mb == 0 {
            return usage("--max-rss-mb must be more than 0");
        }
        let mut faults = self.faults.unwrap_or_else(|| FaultKind::ALL.to_vec());
        faults.sort();
        faults.dedup();
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Ok(ChaosConfig {
            duration: self.duration,
            rate: self.rate,
            seed,
            fault_interval: self.fault_interval,
            faults,
            outage: self.outage,
            max_rss_kb: self.max_rss_mb * 1024,
            drain_timeout: self.drain_timeout,
            bin_dir: match self.bin_dir {
                Some(dir) => dir,
                None => own_dir()?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        chaos: ChaosArgs,
    }

    fn parse(args: &[&str]) -> Result<ChaosConfig, String> {
        let cli = Cli::try_parse_from([&["chaos"], args].concat()).map_err(|e| e.to_string())?;
        cli.chaos.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn flags_become_a_config() {
        let c = parse(&[
            "--duration",
            "60s",
            "--seed",
            "9",
            "--faults",
            "hot-reload,pattern-kill,hot-reload",
            "--bin-dir",
            "/b",
        ])
        .unwrap();
        assert_eq!(c.duration, Duration::from_secs(60));
        assert_eq!(c.seed, 9);
        assert_eq!(c.faults, [FaultKind::PatternKill, FaultKind::HotReload]);
        assert_eq!(c.max_rss_kb, 512 * 1024);
        assert_eq!(parse(&["--bin-dir", "/b"]).unwrap().faults.len(), 5);
    }

    #[test]
    fn bad_flags_name_themselves() {
        for (args, flag) in [
            (&["--duration", "1s"][..], "--duration"),
            (&["--rate", "0"], "--rate"),
            (&["--fault-interval", "1ms"], "--fault-interval"),
            (&["--faults", "reboot"], "reboot"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
