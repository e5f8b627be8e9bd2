//! Accepting connections and running one proxied connection.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn, Instrument};

use crate::faults::{Direction, KillMode};
use crate::proxy::Shared;
use crate::pump::pump;
use crate::stats::add;

/// How long the proxy tries to reach the target for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts until the task is aborted. The connection tasks live in this task's `JoinSet`, so
/// aborting the acceptor (dropping the proxy) aborts every connection too.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    if shared.faults.lock().refusing(Instant::now()) {
                        // A listening socket cannot refuse one SYN, so "refused" is an
                        // immediate reset: the client sees ECONNRESET on its first I/O.
                        let _ = client.set_zero_linger();
                        add(&shared.counters.refused, 1);
                        debug!(%peer, listen = %shared.listen, "refused new connection");
                        continue;
                    }
                    add(&shared.counters.accepted, 1);
                    // Subscribed before the task starts: a kill ordered from now on reaches it.
                    let kills = shared.kills.subscribe();
                    let span = tracing::debug_span!(
                        "chaos_conn",
                        conn = next_id,
                        %peer,
                        listen = %shared.listen,
                        target = %shared.target
                    );
                    conns.spawn(serve(shared.clone(), next_id, client, kills).instrument(span));
                    next_id += 1;
                }
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    warn!(error = %e, listen = %shared.listen, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Keeps `connections_active` true however the connection ends (including abort).
struct ActiveGuard<'a>(&'a AtomicU64);

impl<'a> ActiveGuard<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Relaxed);
        ActiveGuard(counter)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

enum End {
    Done,
    Failed(io::Error),
    Killed(KillMode),
}

async fn serve(
    shared: Arc<Shared>,
    id: u64,
    mut client: TcpStream,
    mut kills: watch::Receiver<KillMode>,
) {
    let _active = ActiveGuard::new(&shared.counters.active);
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.target));
    let mut server = tokio::select! {
        r = connect => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return connect_failed(&shared, &client, &e.to_string()),
            Err(_) => return connect_failed(&shared, &client, "timed out"),
        },
        Ok(()) = kills.changed() => {
            let _ = client.set_zero_linger();
            add(&shared.counters.killed, 1);
            return;
        }
    };
    // The proxy must not add Nagle delays of its own on top of the injected ones.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    debug!("connected to target");

    let end = {
        let (client_r, client_w) = client.split();
        let (server_r, server_w) = server.split();
        let both = async {
            tokio::try_join!(
                pump(&shared, id, Direction::Up, client_r, server_w),
                pump(&shared, id, Direction::Down, server_r, client_w),
            )
        };
        tokio::select! {
            r = both => match r {
                Ok(_) => End::Done,
                Err(e) => End::Failed(e),
            },
            Ok(()) = kills.changed() => End::Killed(*kills.borrow()),
        }
    };
    match end {
        End::Done => debug!("connection ended"),
        End::Failed(e) => {
            // One side broke: pass the abort on to the other, as a reset.
            debug!(error = %e, "connection failed");
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        End::Killed(mode) => {
            debug!(?mode, "connection killed");
            add(&shared.counters.killed, 1);
            match mode {
                KillMode::Reset => {
                    let _ = client.set_zero_linger();
                    let _ = server.set_zero_linger();
                }
                KillMode::Close => {
                    let _ = client.shutdown().await;
                    let _ = server.shutdown().await;
                }
            }
        }
    }
}

fn connect_failed(shared: &Shared, client: &TcpStream, why: &str) {
    warn!(target_addr = %shared.target, error = why, "cannot reach target");
    add(&shared.counters.connect_failures, 1);
    let _ = client.set_zero_linger();
}
