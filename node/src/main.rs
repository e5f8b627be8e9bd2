//! The `replicad` command line; see the library docs (`node/src/lib.rs`) for what each part
//! does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs a replication node: Raft consensus on the WAL, an embedded document store, a client /
/// admin HTTP API and Prometheus metrics.
#[derive(Parser)]
#[command(name = "replicad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one node from a TOML config until SIGTERM or Ctrl-C.
    ///
    /// Exit code 2 means the config is unusable (every problem is listed), 1 any other failure.
    Run {
        /// The node's ReplicationConfig file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Address of the client / admin HTTP API (put / get / delete, /v1/status, /metrics).
        /// Port 0 picks a free port; the address is printed on stdout.
        #[arg(long, value_name = "HOST:PORT", default_value = replicad::DEFAULT_ADMIN_ADDR)]
        admin_addr: SocketAddr,
        /// Log level of the messages written to stderr: error, warn, info, debug or trace.
        #[arg(long, value_name = "LEVEL", default_value = "info")]
        log_level: tracing::Level,
    },
}

/// Log lines go to stderr (stdout carries the one "running" line). openraft reports every
/// vote and state change at info level, which drowns the node's own messages, so at `info` it
/// is held to warnings; `debug` and `trace` show everything.
fn init_logging(level: tracing::Level) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let openraft = if level == tracing::Level::INFO {
        tracing::Level::WARN
    } else {
        level
    };
    // An ASYNC write returns once durable on the leader and drops its "committed" responder;
    // openraft then warns on every such write that nobody listened. Expected, so only shown
    // from `debug` on.
    let responder = if level <= tracing::Level::INFO {
        tracing::Level::ERROR
    } else {
        level
    };
    let filter = Targets::new()
        .with_default(level)
        .with_target("openraft", openraft)
        .with_target("openraft::raft::responder", responder);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry().with(fmt).with(filter).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            admin_addr,
            log_level,
        } => {
            init_logging(log_level);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("replicad: cannot start the async runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let opts = replicad::RunOptions {
                config_path: config,
                admin_addr,
            };
            match runtime.block_on(replicad::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("replicad: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
    }
}
