//! Fault settings: what a direction of a proxied connection suffers right now.
//!
//! Every fault is stored with an optional deadline. Expiry is lazy: a fault whose deadline has
//! passed simply stops being reported by [`FaultState::active`], so no timer task is needed to
//! clear it (a pump that waits on a held partition sleeps until that deadline itself).

use std::time::{Duration, Instant};

use rand::Rng;

/// One direction of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: bytes the connecting side sends.
    Up,
    /// Server to client: bytes the target sends back.
    Down,
}

/// Which direction(s) a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directions {
    /// Client to server only.
    Up,
    /// Server to client only.
    Down,
    /// Both directions (a symmetric fault).
    Both,
}

impl Directions {
    pub(crate) fn includes(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (Directions::Both, _)
                | (Directions::Up, Direction::Up)
                | (Directions::Down, Direction::Down)
        )
    }
}

impl From<Direction> for Directions {
    fn from(dir: Direction) -> Self {
        match dir {
            Direction::Up => Directions::Up,
            Direction::Down => Directions::Down,
        }
    }
}

/// What a partitioned direction does with the bytes offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionMode {
    /// Stop reading: bytes wait in the kernel buffers (the sender blocks once they are full)
    /// and flow again, intact and in order, when the partition heals. This is what TCP over a
    /// cut link looks like (retransmissions succeed after the cut is repaired), so a partition
    /// shorter than the peers' timeouts corrupts nothing.
    Hold,
    /// Read and discard: the bytes are lost for good, so the stream is corrupted on purpose
    /// and the peers must notice (TLS record MAC, frame CRC) and reconnect.
    Blackhole,
}

/// How [`kill_connections`](crate::FaultHandle::kill_connections) ends live connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KillMode {
    /// Abortive close (`SO_LINGER` 0): both peers see `ECONNRESET`, like a crashed middlebox.
    Reset,
    /// Orderly close (FIN) to both peers; the kernel still sends a reset to a peer whose bytes
    /// were left unread.
    Close,
}

/// Latency added to every chunk: `fixed` plus a uniform draw from `0..=jitter`.
///
/// Jitter never reorders a stream: a chunk is released no earlier than the chunk before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Delay {
    /// Latency every chunk gets (one way). 25 ms each way makes a 50 ms round trip.
    pub fixed: Duration,
    /// Upper bound of the extra, uniformly drawn latency.
    pub jitter: Duration,
}

impl Delay {
    /// A delay of `fixed` plus `0..=jitter`.
    pub fn new(fixed: Duration, jitter: Duration) -> Self {
        Delay { fixed, jitter }
    }

    pub(crate) fn sample(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.fixed;
        }
        let extra = rng.random_range(0..=self.jitter.as_nanos() as u64);
        self.fixed + Duration::from_nanos(extra)
    }
}

/// The faults one direction suffers at one instant (a snapshot; expired faults are absent).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkFaults {
    /// Set while the direction is partitioned.
    pub partition: Option<PartitionMode>,
    /// When the partition clears itself, if it was set with a duration.
    pub partition_until: Option<Instant>,
    /// Latency added to each chunk.
    pub delay: Option<Delay>,
    /// Probability that a chunk is discarded.
    pub drop: f64,
    /// Probability that a chunk is sent twice.
    pub duplicate: f64,
    /// Probability that a chunk is held back and sent after the next one.
    pub reorder: f64,
    /// Cap in bytes per second.
    pub throttle: Option<u64>,
}

impl LinkFaults {
    /// True when nothing is set.
    pub fn is_clear(&self) -> bool {
        *self == LinkFaults::default()
    }
}

/// Every fault of a proxy at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultSnapshot {
    /// Client to server.
    pub up: LinkFaults,
    /// Server to client.
    pub down: LinkFaults,
    /// New connections are reset right after accept.
    pub refuse_new: bool,
}

impl FaultSnapshot {
    /// The faults of one direction.
    pub fn get(&self, dir: Direction) -> &LinkFaults {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// True when no fault is set in either direction and new connections are accepted.
    pub fn is_clear(&self) -> bool {
        self.up.is_clear() && self.down.is_clear() && !self.refuse_new
    }
}

/// A value that stops applying at `until`.
#[derive(Debug, Clone, Copy)]
struct Timed<T> {
    value: T,
    until: Option<Instant>,
}

impl<T: Copy> Timed<T> {
    fn new(value: T, duration: Option<Duration>) -> Self {
        Timed {
            value,
            until: duration.map(|d| Instant::now() + d),
        }
    }

    fn active(slot: &Option<Timed<T>>, now: Instant) -> Option<T> {
        slot.as_ref()
            .filter(|t| t.until.is_none_or(|u| now < u))
            .map(|t| t.value)
    }
}

/// The stored (timed) faults of one direction.
#[derive(Debug, Clone, Default)]
struct DirectionFaults {
    partition: Option<Timed<PartitionMode>>,
    delay: Option<Timed<Delay>>,
    drop: Option<Timed<f64>>,
    duplicate: Option<Timed<f64>>,
    reorder: Option<Timed<f64>>,
    throttle: Option<Timed<u64>>,
}

impl DirectionFaults {
    fn active(&self, now: Instant) -> LinkFaults {
        let partition = Timed::active(&self.partition, now);
        LinkFaults {
            partition,
            partition_until: partition.and(self.partition.and_then(|t| t.until)),
            delay: Timed::active(&self.delay, now),
            drop: Timed::active(&self.drop, now).unwrap_or(0.0),
            duplicate: Timed::active(&self.duplicate, now).unwrap_or(0.0),
            reorder: Timed::active(&self.reorder, now).unwrap_or(0.0),
            throttle: Timed::active(&self.throttle, now),
        }
    }
}

/// A probabilistic fault, for [`FaultState::set_chance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chance {
    Drop,
    Duplicate,
    Reorder,
}

impl Chance {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Chance::Drop => "drop",
            Chance::Duplicate => "duplicate",
            Chance::Reorder => "reorder",
        }
    }
}

/// All faults of one proxy, behind the proxy's mutex.
#[derive(Debug, Clone)]
pub(crate) struct FaultState {
    up: DirectionFaults,
    down: DirectionFaults,
    refuse_new: Option<Timed<()>>,
    /// The seed the pumps derive their RNGs from, and a counter bumped at every reseed so a
    /// running pump notices and reseeds itself.
    pub(crate) seed: u64,
    pub(crate) seed_generation: u64,
}

impl FaultState {
    pub(crate) fn new(seed: u64) -> Self {
        FaultState {
            up: DirectionFaults::default(),
            down: DirectionFaults::default(),
            refuse_new: None,
            seed,
            seed_generation: 0,
        }
    }

    fn each(&mut self, dirs: Directions, mut f: impl FnMut(&mut DirectionFaults)) {
        if dirs.includes(Direction::Up) {
            f(&mut self.up);
        }
        if dirs.includes(Direction::Down) {
            f(&mut self.down);
        }
    }

    pub(crate) fn active(&self, dir: Direction, now: Instant) -> LinkFaults {
        match dir {
            Direction::Up => self.up.active(now),
            Direction::Down => self.down.active(now),
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> FaultSnapshot {
        FaultSnapshot {
            up: self.up.active(now),
            down: self.down.active(now),
            refuse_new: self.refusing(now),
        }
    }

    pub(crate) fn refusing(&self, now: Instant) -> bool {
        Timed::active(&self.refuse_new, now).is_some()
    }

    pub(crate) fn set_partition(
        &mut self,
        dirs: Directions,
        mode: Option<PartitionMode>,
        duration: Option<Duration>,
    ) {
        self.each(dirs, |d| {
            d.partition = mode.map(|m| Timed::new(m, duration))
        });
    }

    pub(crate) fn set_delay(
        &mut self,
        dirs: Directions,
        delay: Option<Delay>,
        duration: Option<Duration>,
    ) {
        self.each(dirs, |d| d.delay = delay.map(|v| Timed::new(v, duration)));
    }

    pub(crate) fn set_chance(
        &mut self,
        dirs: Directions,
        which: Chance,
        p: f64,
        duration: Option<Duration>,
    ) {
        let value = (p > 0.0).then(|| Timed::new(p, duration));
        self.each(dirs, |d| match which {
            Chance::Drop => d.drop = value,
            Chance::Duplicate => d.duplicate = value,
            Chance::Reorder => d.reorder = value,
        });
    }

    pub(crate) fn set_throttle(
        &mut self,
        dirs: Directions,
        rate: Option<u64>,
        duration: Option<Duration>,
    ) {
        self.each(dirs, |d| d.throttle = rate.map(|r| Timed::new(r, duration)));
    }

    pub(crate) fn set_refuse_new(&mut self, on: bool, duration: Option<Duration>) {
        self.refuse_new = on.then(|| Timed::new((), duration));
    }

    pub(crate) fn clear(&mut self) {
        self.up = DirectionFaults::default();
        self.down = DirectionFaults::default();
        self.refuse_new = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_timed_fault_expires_and_an_untimed_one_stays() {
        let mut s = FaultState::new(1);
        s.set_partition(Directions::Up, Some(PartitionMode::Hold), None);
        s.set_throttle(
            Directions::Down,
            Some(1000),
            Some(Duration::from_millis(10)),
        );
        let now = Instant::now();
        assert_eq!(
            s.active(Direction::Up, now).partition,
            Some(PartitionMode::Hold)
        );
        assert_eq!(s.active(Direction::Down, now).throttle, Some(1000));
        let later = now + Duration::from_secs(1);
        assert_eq!(s.active(Direction::Down, later).throttle, None);
        assert_eq!(
            s.active(Direction::Up, later).partition,
            Some(PartitionMode::Hold)
        );
        assert!(s.snapshot(later).down.is_clear());
        s.clear();
        assert!(s.snapshot(now).is_clear());
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let d = Delay::new(Duration::from_millis(5), Duration::from_millis(3));
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let s = d.sample(&mut rng);
            assert!(
                s >= Duration::from_millis(5) && s <= Duration::from_millis(8),
                "{s:?}"
            );
        }
    }
}
