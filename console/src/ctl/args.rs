//! `prismctl`'s flags and subcommands. The connection flags are the
//! console's ([`ConnectionArgs`]).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cli::ConnectionArgs;

/// Shown under `prismctl --help`: what a script may rely on.
const EXIT_CODES: &str = "\
Output: human tables by default; with --json, the admin API's reply in the
protobuf JSON mapping (`status --json` is the ListPatterns reply; `events
--follow --json` prints one Event per line).

Exit codes:
  0   done
  1   the proxy refused or failed the action (e.g. NOT_FOUND, INVALID_ARGUMENT,
      FAILED_PRECONDITION, a restart that did not come up)
  64  usage: a bad flag, subcommand or --admin address
  66  a file given (namespace YAML, --ca-file, --cert-file, --key-file) cannot be read
  69  the admin port is unreachable, unavailable, or does not serve the admin API
  70  internal error
  74  cannot write the output
  77  authentication or authorization refused (UNAUTHENTICATED, PERMISSION_DENIED,
      or no usable token)";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "prismctl",
    version,
    about = "Scriptable admin commands for a running prism-proxy",
    after_help = EXIT_CODES
)]
pub struct CtlArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Print the admin API's reply as protobuf JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    /// How long a call may take (restarts and reloads wait for the new
    /// process), in seconds.
    #[arg(long, global = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Every namespace: pattern, backend, state, health, pid, traffic.
    Status,
    /// Recent events, oldest first; --follow keeps printing new ones.
    Events {
        /// Keep printing events as they happen (until interrupted).
        #[arg(long, short)]
        follow: bool,
        /// Only this namespace's events.
        #[arg(long)]
        namespace: Option<String>,
        /// At most this many recent events (0: all the proxy keeps).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Latency quantiles and histogram of a namespace (and operation).
    Latency {
        namespace: String,
        /// e.g. Get; default: every operation together.
        operation: Option<String>,
    },
    /// What a namespace's pattern process wrote (stdout and stderr, as the
    /// proxy keeps it), oldest first; --follow keeps printing new lines.
    Logs {
        namespace: String,
        /// Keep printing lines as they are written (until interrupted).
        #[arg(long, short)]
        follow: bool,
        /// The most recent lines to start with (0: all the proxy keeps).
        #[arg(long, default_value_t = 100)]
        tail: u32,
    },
    /// Trace ids of a namespace's slowest recent calls and latest
    /// server-side failures, to look up in the trace viewer.
    Traces {
        namespace: String,
        /// e.g. Get; default: every operation.
        operation: Option<String>,
    },
    /// Kill and restart a namespace's pattern process.
    Restart { namespace: String },
    /// Replace a namespace's pattern process make-before-break.
    Reload { namespace: String },
    /// The proxy's config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Namespaces in the proxy's config file.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Who the proxy takes the caller for, and its role.
    Whoami,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Re-read the config file and apply it.
    Reload,
}

#[derive(Debug, Clone, Subcommand)]
pub enum NamespaceCommand {
    /// Create or replace a namespace from YAML (one entry as under
    /// `namespaces:`), written to the config file and applied.
    Apply {
        /// The YAML file, or `-` for standard input.
        file: PathBuf,
    },
    /// Remove a namespace from the config file and apply it.
    Delete { name: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CtlArgs, clap::Error> {
        CtlArgs::try_parse_from(std::iter::once("prismctl").chain(args.iter().copied()))
    }

    #[test]
    fn takes_every_subcommand_and_the_shared_flags_anywhere() {
        let args = parse(&["status", "--json", "--admin", "10.0.0.1:1"]).unwrap();
        assert!(args.json && matches!(args.command, CtlCommand::Status));
        assert_eq!(args.connection.admin_uri().unwrap(), "http://10.0.0.1:1");
        let args = parse(&["--token-file", "/t", "events", "-f"]).unwrap();
        assert!(matches!(
            args.command,
            CtlCommand::Events { follow: true, .. }
        ));
        assert_eq!(args.connection.token_file, Some(PathBuf::from("/t")));
        let args = parse(&["latency", "default", "Get"]).unwrap();
        assert!(
            matches!(args.command, CtlCommand::Latency { operation: Some(op), .. } if op == "Get")
        );
        for ok in [
            &["restart", "a"][..],
            &["reload", "a"],
            &["config", "reload"],
            &["namespace", "apply", "-"],
            &["namespace", "delete", "a"],
            &["whoami"],
        ] {
            parse(ok).unwrap();
        }
    }

    #[test]
    fn bad_usage_is_an_error() {
        for bad in [
            &[][..],
            &["status", "--bogus"],
            &["latency"],
            &["config"],
            &["namespace", "apply"],
            &["status", "--timeout", "0"],
            &["status", "--cert-file", "/c.pem"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
