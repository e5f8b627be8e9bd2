//! `FaultProxy`: a loopback TCP proxy whose faults a test changes at run time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::conn::accept_loop;
use crate::faults::{
    Chance, Delay, Direction, Directions, FaultSnapshot, FaultState, KillMode, LinkFaults,
    PartitionMode,
};
use crate::loopback::require_loopback;
use crate::seed::random_seed;
use crate::stats::{Counters, ProxyStats};
use crate::ChaosError;

/// Options for [`FaultProxy::start_with`].
#[derive(Debug, Clone, Copy)]
pub struct ProxyOptions {
    /// Seed of every random decision (drop, duplicate, reorder, jitter). `None` draws one;
    /// either way [`FaultHandle::seed`] tells it, so a failing run can be replayed.
    pub seed: Option<u64>,
    /// How long a chunk held by the `reorder` fault waits for a later chunk to overtake it
    /// before it is sent anyway (50 ms by default), so a stream that goes quiet is not
    /// stalled by the fault.
    pub reorder_max_hold: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            seed: None,
            reorder_max_hold: Duration::from_millis(50),
        }
    }
}

/// The faults of one direction at one instant, with the seed the RNGs must use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkNow {
    pub(crate) faults: LinkFaults,
    pub(crate) seed: u64,
    pub(crate) seed_generation: u64,
}

/// State shared by the handle, the acceptor and every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) listen: SocketAddr,
    pub(crate) target: SocketAddr,
    pub(crate) faults: Mutex<FaultState>,
    /// Bumped at every fault change, to wake pumps waiting on a held partition.
    pub(crate) changes: watch::Sender<u64>,
    /// Every value sent is an order to kill the connections open at that moment.
    pub(crate) kills: watch::Sender<KillMode>,
    pub(crate) counters: Counters,
    pub(crate) reorder_max_hold: Duration,
}

impl Shared {
    pub(crate) fn link(&self, dir: Direction) -> LinkNow {
        let state = self.faults.lock();
        LinkNow {
            faults: state.active(dir, Instant::now()),
            seed: state.seed,
            seed_generation: state.seed_generation,
        }
    }

    fn update(&self, what: &str, f: impl FnOnce(&mut FaultState)) {
        f(&mut self.faults.lock());
        self.changes.send_modify(|generation| *generation += 1);
        debug!(listen = %self.listen, target = %self.target, what, "fault changed");
    }
}

/// A running proxy: listens on a loopback address and forwards every accepted connection to
/// the target, through the faults set on its [`FaultHandle`].
///
/// Dropping it stops the listener and aborts every proxied connection.
#[derive(Debug)]
pub struct FaultProxy {
    handle: FaultHandle,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy from `listen` to `target` with a random seed. Both must be 127.0.0.0/8
    /// addresses; `listen` port 0 lets the OS pick (see [`FaultProxy::local_addr`]).
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Result<FaultProxy, ChaosError> {
        FaultProxy::start_with(listen, target, ProxyOptions::default()).await
    }

    /// Starts a proxy with explicit options (a fixed seed).
    pub async fn start_with(
        listen: SocketAddr,
        target: SocketAddr,
        options: ProxyOptions,
    ) -> Result<FaultProxy, ChaosError> {
        require_loopback("listen", listen)?;
        require_loopback("target", target)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ChaosError::Bind {
                addr: listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ChaosError::Bind {
            addr: listen,
            source,
        })?;
        let seed = options.seed.unwrap_or_else(random_seed);
        let shared = Arc::new(Shared {
            listen: local,
            target,
            faults: Mutex::new(FaultState::new(seed)),
            changes: watch::Sender::new(0),
            kills: watch::Sender::new(KillMode::Reset),
            counters: Counters::default(),
            reorder_max_hold: options.reorder_max_hold,
        });
        info!(listen = %local, %target, seed, "chaos proxy started");
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            handle: FaultHandle { shared },
            acceptor,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The address connections are forwarded to.
    pub fn target_addr(&self) -> SocketAddr {
        self.handle.target_addr()
    }

    /// The handle that sets faults and reads counters; clone it to move it into a task.
    pub fn handle(&self) -> &FaultHandle {
        &self.handle
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// Sets faults on a running [`FaultProxy`] and reads its counters. Cheap to clone.
///
/// Every setter takes an optional `duration`: the fault clears itself once it has passed
/// (`None`: until changed or [`clear`](FaultHandle::clear)ed). Setting a fault replaces the
/// previous value of the same kind in the same direction. Faults apply to live connections
/// from their next chunk on, and to new connections.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

fn check_probability(fault: &'static str, p: f64) -> Result<(), ChaosError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(ChaosError::InvalidProbability { fault, p })
    }
}

impl FaultHandle {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// The address connections are forwarded to.
    pub fn target_addr(&self) -> SocketAddr {
        self.shared.target
    }

    /// The seed in force (given at start, drawn at start, or set by [`reseed`](Self::reseed)).
    pub fn seed(&self) -> u64 {
        self.shared.faults.lock().seed
    }

    /// Restarts every random decision from `seed` (each live connection reseeds at its next
    /// chunk): use it to make one fault's draws reproducible independently of earlier ones.
    pub fn reseed(&self, seed: u64) {
        self.shared.update("reseed", |s| {
            s.seed = seed;
            s.seed_generation += 1;
        });
    }

    /// Partitions `dirs`: see [`PartitionMode`] for what happens to the bytes.
    pub fn partition(&self, dirs: Directions, mode: PartitionMode, duration: Option<Duration>) {
        self.shared
            .update("partition", |s| s.set_partition(dirs, Some(mode), duration));
    }

    /// Ends the partition of `dirs`: new bytes flow again (held bytes first).
    pub fn heal(&self, dirs: Directions) {
        self.shared
            .update("heal", |s| s.set_partition(dirs, None, None));
    }

    /// Resets every new connection right after accept (for `duration`), while live ones go on.
    pub fn refuse_new(&self, duration: Option<Duration>) {
        self.shared
            .update("refuse_new", |s| s.set_refuse_new(true, duration));
    }

    /// Accepts new connections again.
    pub fn accept_new(&self) {
        self.shared
            .update("accept_new", |s| s.set_refuse_new(false, None));
    }

    /// Adds latency to `dirs`; a zero delay clears it.
    pub fn set_delay(&self, dirs: Directions, delay: Delay, duration: Option<Duration>) {
        let delay = (delay != Delay::default()).then_some(delay);
        self.shared
            .update("delay", |s| s.set_delay(dirs, delay, duration));
    }

    /// Discards each chunk with probability `p` (0 clears). This corrupts the stream on
    /// purpose: the peers must detect it.
    pub fn set_drop(
        &self,
        dirs: Directions,
        p: f64,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        self.set_chance(dirs, Chance::Drop, p, duration)
    }

    /// Sends each chunk twice with probability `p` (0 clears).
    pub fn set_duplicate(
        &self,
        dirs: Directions,
        p: f64,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        self.set_chance(dirs, Chance::Duplicate, p, duration)
    }

    /// Holds each chunk with probability `p` and sends it right after the next chunk (or
    /// after [`ProxyOptions::reorder_max_hold`] if none comes). A chunk that overtakes a held
    /// one is never held itself. 0 clears.
    pub fn set_reorder(
        &self,
        dirs: Directions,
        p: f64,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        self.set_chance(dirs, Chance::Reorder, p, duration)
    }

    fn set_chance(
        &self,
        dirs: Directions,
        which: Chance,
        p: f64,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        check_probability(which.name(), p)?;
        self.shared
            .update(which.name(), |s| s.set_chance(dirs, which, p, duration));
        Ok(())
    }

    /// Caps `dirs` at `bytes_per_sec` (a token bucket with 50 ms of burst).
    pub fn set_throttle(
        &self,
        dirs: Directions,
        bytes_per_sec: u64,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        if bytes_per_sec == 0 {
            return Err(ChaosError::ZeroRate);
        }
        self.shared.update("throttle", |s| {
            s.set_throttle(dirs, Some(bytes_per_sec), duration)
        });
        Ok(())
    }

    /// Lifts the throttle of `dirs`.
    pub fn clear_throttle(&self, dirs: Directions) {
        self.shared
            .update("throttle", |s| s.set_throttle(dirs, None, None));
    }

    /// Clears every fault (partitions, delays, probabilities, throttles, refusal).
    pub fn clear(&self) {
        self.shared.update("clear", FaultState::clear);
    }

    /// Ends every connection open now; returns how many were open. New connections are
    /// accepted as usual.
    pub fn kill_connections(&self, mode: KillMode) -> u64 {
        let open = self.stats().connections_active;
        self.shared.kills.send_replace(mode);
        info!(listen = %self.shared.listen, ?mode, open, "killing connections");
        open
    }

    /// The faults in force now (expired ones are gone).
    pub fn faults(&self) -> FaultSnapshot {
        self.shared.faults.lock().snapshot(Instant::now())
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }
}
