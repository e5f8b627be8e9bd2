//! `replicad run`: one node from a TOML config, its store, and the admin API, until a signal.
//!
//! Start-up order matters:
//! 1. load and validate the config (every problem listed at once);
//! 2. choose the network (refuses what this build cannot run before touching the disk);
//! 3. open the store, then start the node: the state machine may restore a snapshot into the
//!    store while the node starts;
//! 4. form the cluster if this is its first start;
//! 5. bind the admin address and print it (port 0 picks a free port; the line tells which).
//!
//! SIGTERM or Ctrl-C stops the API, shuts the node down (final WAL sync) and flushes the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use replication_core::config::ConfigError;
use replication_core::consensus::ConsensusError;
use replication_core::store::StoreError;
use replication_core::ReplicationConfig;

use crate::api::{self, AppState};
use crate::metrics::NodeMetrics;
use crate::network;
use crate::store_handler::StoreHandler;

/// Default admin/client API address: loopback, next to the default replication port 7400.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:7401";

/// What `replicad run` needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_path: PathBuf,
    pub admin_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("config file {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error("cannot open the document store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start the replication node: {0}")]
    Start(#[source] ConsensusError),
    #[error("cannot form the cluster: {0}")]
    Bootstrap(#[source] ConsensusError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("admin API on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("shutdown: {0}")]
    Shutdown(String),
}

impl RunError {
    /// Process exit code: 2 for a config the operator must fix, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config { .. } => 2,
            _ => 1,
        }
    }
}

/// Runs the node until SIGTERM / SIGINT. Must be called inside a tokio multi-thread runtime.
pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    let config = ReplicationConfig::from_toml_file(&opts.config_path).map_err(|source| {
        RunError::Config {
            path: opts.config_path.clone(),
            source,
        }
    })?;
    // Keys to sign and verify votes are needed only to talk to peers, so this is checked
    // here, not when any config is loaded.
    config
        .validate_for_network()
        .map_err(|source| RunError::Config {
            path: opts.config_path.clone(),
            source,
        })?;
    let net = network::network_for(&config)?;

    let handler = {
        let dir = config.wal_directory.clone();
        tokio::task::spawn_blocking(move || StoreHandler::open_in(&dir))
            .await
            .map_err(|e| RunError::Shutdown(e.to_string()))??
    };
    let store = Arc::clone(handler.store());
    let running = network::start_node(&config, Arc::new(handler), net)
        .await
        .map_err(RunError::Start)?;
    let node = Arc::clone(running.node());
    if network::bootstrap_if_new(&node, &config)
        .await
        .map_err(RunError::Bootstrap)?
    {
        tracing::info!(node = config.node_id, "new cluster formed");
    }

    let metrics = Arc::new(NodeMetrics::new(config.node_id)?);
    if let Some(source) = running.rejected_votes_source() {
        metrics.set_rejected_votes_source(source);
    }
    let watcher = metrics.spawn_change_watcher(&node);
    let app = api::router(AppState {
        node: Arc::clone(&node),
        store: Arc::clone(&store),
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(opts.admin_addr)
        .await
        .map_err(|source| RunError::Admin {
            addr: opts.admin_addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RunError::Admin {
        addr: opts.admin_addr,
        source,
    })?;
    // One line on stdout that scripts and tests wait for; logs go to stderr.
    println!(
        "replicad: node {} running; admin API on http://{bound}",
        config.node_id
    );
    tracing::info!(node = config.node_id, admin = %bound, "admin API listening");

    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| RunError::Admin {
            addr: bound,
            source,
        });

    tracing::info!(node = config.node_id, "stopping");
    watcher.abort();
    drop(node);
    let stopped = running
        .shutdown()
        .await
        .map_err(|e| RunError::Shutdown(e.to_string()));
    let flushed = tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| RunError::Shutdown(e.to_string()))
        .and_then(|r| r.map_err(|e| RunError::Shutdown(e.to_string())));
    served.and(stopped).and(flushed)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler the default action (exit) still applies.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
