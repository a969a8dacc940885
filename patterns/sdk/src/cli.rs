//! Flags every pattern binary accepts.

use clap::Parser;

use crate::listen::ListenAddr;

#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "A Prism pattern process, normally spawned by prism-proxy"
)]
pub struct Args {
    /// Where to serve gRPC: `unix:/path/to.sock` or `HOST:PORT`.
    #[arg(long, value_parser = ListenAddr::parse, conflicts_with = "grpc_port")]
    pub listen: Option<ListenAddr>,

    /// Shorthand for `--listen 127.0.0.1:PORT`.
    #[arg(long)]
    pub grpc_port: Option<u16>,

    /// Initialize with defaults and start at once, without waiting for a
    /// proxy (for running a pattern by hand or benchmarking it directly).
    #[arg(long)]
    pub autostart: bool,

    /// The config object handed to Initialize on `--autostart`, as JSON
    /// (the fields are listed below); defaults when absent.
    #[arg(long, value_name = "JSON", value_parser = parse_config)]
    pub config: Option<serde_json::Value>,

    /// Read a namespace's config block (JSON) from stdin and check it as
    /// Initialize would, without reaching any backend: exit 0 when it is
    /// valid, 64 with the reason on stderr when not. `prism-proxy --check`
    /// runs this for every namespace.
    #[arg(long, conflicts_with_all = ["autostart", "config"])]
    pub check_config: bool,

    /// Exit when the parent process goes away, so a killed proxy leaves no
    /// orphans. The proxy passes this to every pattern it spawns.
    #[arg(long)]
    pub exit_with_parent: bool,

    /// Threads serving calls. Default: `TOKIO_WORKER_THREADS` if set, else
    /// half the machine's cores (at least one): the proxy and the other
    /// patterns share the machine, and fewer threads mean fewer cross-thread
    /// wake-ups per call.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
}

/// Accepts only a JSON object: Initialize takes a struct, not a bare value.
fn parse_config(raw: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(raw) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("expected a JSON object".to_string()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// What a pattern binary says about itself in `--help`: its name, one line
/// on what it serves, and its config fields with an example.
#[derive(Debug, Clone, Copy)]
pub struct PatternHelp {
    pub name: &'static str,
    pub about: &'static str,
    /// Shown after the flags: the config fields and an example `--config`.
    pub config: &'static str,
}

impl Args {
    /// The clap command for the pattern `help` describes: `--help` and
    /// `--version` name the binary rather than this library.
    pub fn command_for(help: &PatternHelp) -> clap::Command {
        <Self as clap::CommandFactory>::command()
            .name(help.name)
            .bin_name(help.name)
            .about(help.about)
            .after_help(help.config)
    }

    /// The process's flags; `Err` carries clap's message (or the help and
    /// version text, for which [`clap::Error::use_stderr`] is false).
    pub fn try_parse_for(
        help: &PatternHelp,
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Self, clap::Error> {
        let matches = Self::command_for(help).try_get_matches_from(args)?;
        <Self as clap::FromArgMatches>::from_arg_matches(&matches)
    }

    /// The multi-threaded runtime the pattern runs on, sized by
    /// `--worker-threads` (see there for the default).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all();
        match self.worker_threads {
            Some(threads) => {
                builder.worker_threads(threads.into());
            }
            // Tokio reads the variable itself when the builder is not told.
            None if std::env::var_os("TOKIO_WORKER_THREADS").is_some() => {}
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                builder.worker_threads((cores / 2).max(1));
            }
        }
        builder.build()
    }

    /// The address to serve on; `127.0.0.1:0` (any free port) when none is given.
    pub fn listen_addr(&self) -> ListenAddr {
        match (&self.listen, self.grpc_port) {
            (Some(addr), _) => addr.clone(),
            (None, Some(port)) => ListenAddr::Tcp(([127, 0, 0, 1], port).into()),
            (None, None) => ListenAddr::Tcp(([127, 0, 0, 1], 0).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_must_be_positive() {
        let args = Args::parse_from(["p", "--worker-threads", "3"]);
        assert_eq!(args.worker_threads, Some(3));
        assert!(args.runtime().is_ok());
        assert!(Args::try_parse_from(["p", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn grpc_port_means_loopback() {
        let args = Args::parse_from(["p", "--grpc-port", "5001"]);
        assert_eq!(args.listen_addr().to_string(), "127.0.0.1:5001");
    }

    #[test]
    fn listen_takes_unix_paths() {
        let args = Args::parse_from(["p", "--listen", "unix:/tmp/x.sock"]);
        assert_eq!(args.listen_addr().to_string(), "unix:/tmp/x.sock");
    }

    #[test]
    fn config_is_parsed_as_a_json_object() {
        let args = Args::parse_from([
            "p",
            "--autostart",
            "--config",
            r#"{"address": "redis://h:1"}"#,
        ]);
        assert_eq!(
            args.config,
            Some(serde_json::json!({"address": "redis://h:1"}))
        );
        assert_eq!(Args::parse_from(["p"]).config, None);
    }

    #[test]
    fn bad_config_is_an_error_naming_the_flag() {
        for bad in ["{not json", "[1, 2]", "3"] {
            let err = Args::try_parse_from(["p", "--config", bad]).unwrap_err();
            assert!(err.to_string().contains("--config"), "{err}");
        }
    }

    const HELP: PatternHelp = PatternHelp {
        name: "prism-sample",
        about: "Serves samples",
        config: "CONFIG:\n  sample_field  what it does",
    };

    #[test]
    fn help_describes_the_pattern_and_its_config() {
        let err =
            Args::try_parse_for(&HELP, ["prism-sample", "--help"].map(Into::into)).unwrap_err();
        assert!(!err.use_stderr());
        let text = err.to_string();
        assert!(text.contains("Serves samples"), "{text}");
        assert!(text.contains("sample_field"), "{text}");
        assert!(text.contains("prism-sample"), "{text}");
    }

    #[test]
    fn check_config_excludes_autostart() {
        let ok = Args::try_parse_for(&HELP, ["p", "--check-config"].map(Into::into)).unwrap();
        assert!(ok.check_config);
        let err = Args::try_parse_for(
            &HELP,
            ["p", "--check-config", "--autostart"].map(Into::into),
        )
        .unwrap_err();
        assert!(err.use_stderr());
    }

    #[test]
    fn listen_and_grpc_port_conflict() {
        assert!(
            Args::try_parse_from(["p", "--listen", "127.0.0.1:1", "--grpc-port", "2"]).is_err()
        );
    }
}
