//! `prism-bench registry` flags and their checks.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};

use super::RegistryConfig;
use crate::{BenchError, cli::own_dir};

/// Which backends fill the registry namespace's two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Slots {
    /// Both in the pattern process.
    Memstore,
    /// Identities in Redis, messages over core NATS.
    RedisNats,
    /// Identities in Redis, durable inboxes on NATS JetStream.
    RedisJetstream,
    /// Identities in Redis, messages over Redis Pub/Sub.
    RedisRedis,
}

/// The NATS messaging slot's `consumer_storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerStorage {
    File,
    Memory,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RegistryArgs {
    /// Identities registered before measuring, with varied metadata.
    #[arg(long, default_value_t = 10_000)]
    pub identities: usize,
    /// Identities a measured Multicast selects, each with a live receiver.
    #[arg(long, default_value_t = 1000)]
    pub targets: usize,
    /// Enumerate calls measured (and as many baseline Gets).
    #[arg(long, default_value_t = 300)]
    pub enumerates: usize,
    /// Multicasts measured to the targets (and as many to one identity).
    #[arg(long, default_value_t = 50)]
    pub multicasts: usize,
    /// The namespace's slots.
    #[arg(long, value_enum, default_value_t = Slots::Memstore)]
    pub slots: Slots,
    /// JetStream slots only: where NATS keeps each inbox consumer's state
    /// (`file` survives a NATS restart; `memory` is faster).
    #[arg(long, value_enum, default_value_t = ConsumerStorage::File)]
    pub consumer_storage: ConsumerStorage,
    /// Folder with prism-proxy and the pattern binaries; default: beside prism-bench.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

impl RegistryArgs {
    /// Checks the flags; fails with [`BenchError::Usage`] naming the flag.
    pub fn into_config(self) -> Result<RegistryConfig, BenchError> {
        let usage = |m: &str| Err(BenchError::Usage(m.to_string()));
        if self.identities == 0 || self.identities > 1_000_000 {
            return usage("--identities must be 1..=1000000");
        }
        if self.targets == 0 || self.targets > self.identities || self.targets > 20_000 {
            return usage("--targets must be 1..=20000 and at most --identities");
        }
        if self.enumerates == 0 || self.multicasts == 0 {
            return usage("--enumerates and --multicasts must be more than 0");
        }
        Ok(RegistryConfig {
            identities: self.identities,
            targets: self.targets,
            enumerates: self.enumerates,
            multicasts: self.multicasts,
            slots: self.slots,
            consumer_storage: self.consumer_storage,
            bin_dir: match self.bin_dir {
                Some(dir) => dir,
                None => own_dir()?,
            },
        })
    }
}
