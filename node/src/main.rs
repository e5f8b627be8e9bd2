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
        /// Address of the client / admin HTTP API (put / get / delete, /v1/status, /v1/hash,
        /// /metrics). Port 0 picks a free port; the address is printed on stdout.
        #[arg(long, value_name = "HOST:PORT", default_value = replicad::DEFAULT_ADMIN_ADDR)]
        admin_addr: SocketAddr,
        /// Log level of the messages written to stderr: error, warn, info, debug or trace.
        #[arg(long, value_name = "LEVEL", default_value = "info")]
        log_level: tracing::Level,
    },
    /// Writes a new ed25519 node key (signs this node's votes; `node_key_path` in the config)
    /// and prints its public key as hex, for the other nodes' `peers[].public_key`.
    Keygen {
        /// Where to write the key (PKCS#8 PEM, mode 0600). An existing file is not replaced.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// DEVELOPMENT ONLY: writes a throwaway CA and node certificates (`ca.pem`,
    /// `node-<id>.pem`, `node-<id>.key`) for a test cluster. The CA key is discarded, so no
    /// certificate can be added later; use your own PKI in production.
    Certs {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Node ids to issue certificates for, comma-separated.
        #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
        nodes: Vec<u64>,
    },
    /// Starts a 3-node cluster on loopback with throwaway certificates and keys, writes at a
    /// steady rate, SIGKILLs the leader, measures the failover, restarts the killed node and
    /// verifies that every replica holds identical content. Exit code 0 if it does.
    Demo {
        /// Fast consensus timings (heartbeat 100 ms, election timeout 300-600 ms) instead of
        /// the defaults (1 s, 3-3.5 s).
        #[arg(long)]
        fast: bool,
        /// Target rate of SEMI_SYNC writes through the leader, per second.
        #[arg(long, value_name = "N", default_value_t = 200)]
        rate: u32,
        /// Keep the working directory (configs, keys, node logs) after a successful run.
        #[arg(long)]
        keep: bool,
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

fn run(config: PathBuf, admin_addr: SocketAddr, log_level: tracing::Level) -> ExitCode {
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

fn keygen(out: PathBuf) -> ExitCode {
    if out.exists() {
        eprintln!(
            "replicad keygen: {} exists; not replacing a node key (its peers know its public \
             key). Remove it first to rotate the key.",
            out.display()
        );
        return ExitCode::from(1);
    }
    let key = replication_core::security::NodeKey::generate();
    if let Err(e) = key.save(&out) {
        eprintln!("replicad keygen: {e}");
        return ExitCode::from(1);
    }
    eprintln!(
        "replicad keygen: wrote {}; set node_key_path to it, and give the public key below to \
         the other nodes as this node's peers[].public_key",
        out.display()
    );
    println!("{}", key.public_key().to_hex());
    ExitCode::SUCCESS
}

fn certs(dir: PathBuf, nodes: Vec<u64>) -> ExitCode {
    use replication_core::transport::dev_certs::DevCertificateAuthority;
    eprintln!(
        "replicad certs: DEVELOPMENT ONLY: throwaway certificates for a test cluster; the CA \
         key is not kept"
    );
    let result = (|| -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ca = DevCertificateAuthority::generate("replicad development CA (throwaway)")
            .map_err(|e| e.to_string())?;
        for id in nodes {
            if id == 0 {
                return Err("node id 0 is not allowed".into());
            }
            let cert = ca
                .issue_node_certificate(id, &["localhost", "127.0.0.1"])
                .map_err(|e| e.to_string())?;
            let s = cert.write_to(&dir, &ca).map_err(|e| e.to_string())?;
            println!(
                "node {id}: cert_path = {:?}, key_path = {:?}, ca_path = {:?}",
                s.cert_path, s.key_path, s.ca_path
            );
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replicad certs: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo(fast: bool, rate: u32, keep: bool) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("replicad demo: cannot find this executable to start the nodes: {e}");
            return ExitCode::from(1);
        }
    };
    let registry = std::sync::Arc::new(parking_lot::Mutex::new(None));
    spawn_interrupt_handler(std::sync::Arc::clone(&registry));
    let opts = replicad::demo::DemoOptions {
        exe,
        fast,
        rate,
        keep,
    };
    match replicad::demo::run(&opts, &registry) {
        Ok(summary) => {
            println!("{summary}");
            if summary.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!("replicad demo: verification FAILED");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("replicad demo: {e}");
            ExitCode::from(1)
        }
    }
}

/// On Ctrl-C or SIGTERM: SIGKILL the demo's nodes, then exit 130.
fn spawn_interrupt_handler(
    registry: std::sync::Arc<parking_lot::Mutex<Option<replicad::cluster::ChildRegistry>>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("replicad demo: no Ctrl-C handler ({e}); nodes still die with this process");
            return;
        }
    };
    std::thread::spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let term = async {
                match signal(SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
        });
        eprintln!("\nreplicad demo: interrupted; stopping the nodes");
        if let Some(children) = registry.lock().as_ref() {
            children.kill_all();
        }
        std::process::exit(130);
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            admin_addr,
            log_level,
        } => run(config, admin_addr, log_level),
        Command::Keygen { out } => keygen(out),
        Command::Certs { dir, nodes } => certs(dir, nodes),
        Command::Demo { fast, rate, keep } => demo(fast, rate, keep),
    }
}
