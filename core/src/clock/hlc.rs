//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! An HLC timestamp stays close to wall-clock time (so it can be used for point-in-time
//! recovery and last-writer-wins) while still capturing causality: every local event and every
//! received message moves the clock strictly forward, even when the physical clock stalls or
//! steps backwards.
//!
//! The whole clock state is one `u64` in the same packed layout as [`HlcTimestamp`], so a tick
//! is a single compare-and-swap on an `AtomicU64` and the layout makes the HLC rules plain
//! integer arithmetic: "increment the logical counter, carrying into the physical part when it
//! overflows" is just `+ 1`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Number of low bits that hold the logical counter.
const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;
/// Largest physical time that fits in the upper 48 bits (about the year 10889).
const PHYSICAL_MAX_MS: u64 = u64::MAX >> LOGICAL_BITS;

/// Default bound on how far a remote timestamp may be ahead of the local physical clock.
pub const DEFAULT_MAX_DRIFT: Duration = Duration::from_millis(500);

/// A hybrid logical clock timestamp.
///
/// Layout: the upper 48 bits hold physical milliseconds since the Unix epoch, the lower 16 bits a
/// logical counter. Because the physical part is in the high bits, the derived integer ordering
/// is the HLC ordering (physical first, then logical), and the value can be stored, compared and
/// shipped as a plain `u64` (serde serialises it as one).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct HlcTimestamp(pub u64);

impl HlcTimestamp {
    /// The smallest timestamp; every clock reading is greater.
    pub const ZERO: Self = Self(0);
    /// The largest representable timestamp, useful as an "until the end" bound in range scans.
    pub const MAX: Self = Self(u64::MAX);

    /// Builds a timestamp from its parts.
    ///
    /// A physical time beyond the 48-bit range saturates to the largest representable one rather
    /// than wrapping, so an absurd input can never sort before a sane one.
    #[inline]
    pub const fn new(physical_ms: u64, logical: u16) -> Self {
        let physical = if physical_ms > PHYSICAL_MAX_MS {
            PHYSICAL_MAX_MS
        } else {
            physical_ms
        };
        Self((physical << LOGICAL_BITS) | logical as u64)
    }

    /// Physical part: milliseconds since the Unix epoch.
    #[inline]
    pub const fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// Logical part: orders events that share the same physical millisecond.
    #[inline]
    pub const fn logical(self) -> u16 {
        (self.0 & LOGICAL_MASK) as u16
    }

    /// The packed representation, as stored in WAL records and sent on the wire.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Inverse of [`as_u64`](Self::as_u64). Every `u64` is a valid timestamp.
    #[inline]
    pub const fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for HlcTimestamp {
    /// `physical_ms.logical`, e.g. `1732540000000.3`: readable in logs and sorts like the
    /// timestamp as long as the physical parts have the same number of digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

impl From<HlcTimestamp> for u64 {
    fn from(ts: HlcTimestamp) -> u64 {
        ts.0
    }
}

impl From<u64> for HlcTimestamp {
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

/// Errors from [`HlcClock::update`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The remote timestamp is further ahead of our physical clock than `max_drift` allows.
    ///
    /// Accepting it would drag this node's clock (and every timestamp it issues afterwards) into
    /// the future, which is how a single node with a broken clock poisons a whole cluster.
    #[error(
        "remote HLC timestamp is {} ms ahead of the local physical clock (remote {remote_ms} ms, \
         local {local_ms} ms since the Unix epoch), more than the allowed max drift of \
         {max_drift_ms} ms; the message was rejected and the local clock was not advanced. \
         Check clock synchronisation (NTP/chrony) on both nodes, or raise the max drift if \
         this skew is expected",
        .remote_ms.saturating_sub(*.local_ms)
    )]
    DriftExceeded {
        /// Physical part of the rejected remote timestamp.
        remote_ms: u64,
        /// Local physical clock reading when the timestamp was rejected.
        local_ms: u64,
        /// The configured bound.
        max_drift_ms: u64,
    },
}

/// Source of physical time in milliseconds since the Unix epoch.
///
/// The clock is generic over this trait (not a `dyn` object) so the production path compiles to a
/// direct, inlinable `clock_gettime` call, while tests substitute [`ManualClock`].
pub trait PhysicalClock: Send + Sync {
    /// Current physical time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock (`CLOCK_REALTIME` via `SystemTime`).
///
/// Wall-clock time rather than a monotonic clock, because HLC timestamps must be comparable
/// across machines and meaningful to an operator asking for point-in-time recovery. Backward
/// steps of the wall clock are absorbed by the HLC rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as 0; the HLC then keeps counting logically from its
        // last value, which is the best we can do without a sane physical clock.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A physical clock that only moves when told to; for deterministic tests and simulation.
///
/// Share it with the HLC through an `Arc` (`Arc<ManualClock>` is itself a [`PhysicalClock`]) so
/// the test keeps a handle to move time.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `ms` until changed.
    pub fn new(ms: u64) -> Self {
        Self {
            ms: AtomicU64::new(ms),
        }
    }

    /// Sets the reading; may move backwards, as a real wall clock can.
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl PhysicalClock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

impl<P: PhysicalClock + ?Sized> PhysicalClock for Arc<P> {
    #[inline]
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

impl<P: PhysicalClock + ?Sized> PhysicalClock for &P {
    #[inline]
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// A thread-safe hybrid logical clock.
///
/// All methods take `&self`; share the clock between threads with an `Arc` or a `static`.
/// Readings are strictly increasing across all callers: no two calls to [`now`](Self::now) or
/// [`update`](Self::update) ever return the same timestamp.
#[derive(Debug)]
pub struct HlcClock<P: PhysicalClock = SystemClock> {
    /// Last timestamp handed out, packed like [`HlcTimestamp`]. Only ever increases.
    last: AtomicU64,
    max_drift_ms: u64,
    physical: P,
}

impl HlcClock<SystemClock> {
    /// A clock reading the system wall clock, rejecting remote timestamps more than `max_drift`
    /// ahead of it.
    pub fn new(max_drift: Duration) -> Self {
        Self::with_physical_source(max_drift, SystemClock)
    }
}

impl Default for HlcClock<SystemClock> {
    /// System clock with a max drift of 500 ms ([`DEFAULT_MAX_DRIFT`]): generous for NTP-synced
    /// machines in one region, yet small enough that a misconfigured node is noticed.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DRIFT)
    }
}

impl<P: PhysicalClock> HlcClock<P> {
    /// A clock driven by a custom physical time source (tests, simulation).
    pub fn with_physical_source(max_drift: Duration, physical: P) -> Self {
        Self {
            last: AtomicU64::new(0),
            max_drift_ms: u64::try_from(max_drift.as_millis()).unwrap_or(u64::MAX),
            physical,
        }
    }

    /// The configured max drift.
    pub fn max_drift(&self) -> Duration {
        Duration::from_millis(self.max_drift_ms)
    }

    /// The physical time source.
    pub fn physical_source(&self) -> &P {
        &self.physical
    }

    /// Timestamp for a local event (a write, or a message about to be sent).
    ///
    /// HLC send rule: take the physical time if it is ahead of the last timestamp, otherwise the
    /// last timestamp plus one. When the logical counter is full the `+ 1` carries into the
    /// physical part, i.e. the clock runs 1 ms ahead of wall time until wall time catches up;
    /// this keeps readings strictly increasing without a wider counter.
    #[inline]
    pub fn now(&self) -> HlcTimestamp {
        let physical = self.physical_packed();
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let next = physical.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return HlcTimestamp(next),
                Err(current) => last = current,
            }
        }
    }

    /// Merges a timestamp received from another node and returns the timestamp of the receive
    /// event, which is greater than both `remote` and every timestamp this clock issued before.
    ///
    /// HLC receive rule: the new physical part is the maximum of the local last, the remote and
    /// the physical clock; the logical part is one past the largest logical counter among those
    /// that share that physical part (0 if only the physical clock has it). With the packed
    /// layout that is `max(last + 1, remote + 1, physical << 16)`.
    ///
    /// # Errors
    ///
    /// [`ClockError::DriftExceeded`] if `remote` is more than `max_drift` ahead of the local
    /// physical clock. The clock is left untouched in that case.
    pub fn update(&self, remote: HlcTimestamp) -> Result<HlcTimestamp, ClockError> {
        let local_ms = self.physical_ms();
        let remote_ms = remote.physical_ms();
        if remote_ms > local_ms.saturating_add(self.max_drift_ms) {
            tracing::warn!(
                remote_ms,
                local_ms,
                max_drift_ms = self.max_drift_ms,
                "rejected remote HLC timestamp: clock drift exceeds max drift"
            );
            return Err(ClockError::DriftExceeded {
                remote_ms,
                local_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        let physical = local_ms << LOGICAL_BITS;
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let next = physical.max(last.max(remote.0).saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(HlcTimestamp(next)),
                Err(current) => last = current,
            }
        }
    }

    /// The last timestamp handed out, without advancing the clock ([`HlcTimestamp::ZERO`] before
    /// the first reading).
    #[inline]
    pub fn last(&self) -> HlcTimestamp {
        HlcTimestamp(self.last.load(Ordering::Acquire))
    }

    #[inline]
    fn physical_ms(&self) -> u64 {
        self.physical.now_ms().min(PHYSICAL_MAX_MS)
    }

    /// Physical time in the packed layout with a zero logical counter.
    #[inline]
    fn physical_packed(&self) -> u64 {
        self.physical_ms() << LOGICAL_BITS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn manual(ms: u64) -> (Arc<ManualClock>, HlcClock<Arc<ManualClock>>) {
        let physical = Arc::new(ManualClock::new(ms));
        let clock = HlcClock::with_physical_source(DEFAULT_MAX_DRIFT, Arc::clone(&physical));
        (physical, clock)
    }

    #[test]
    fn timestamp_packs_physical_high_and_logical_low() {
        let ts = HlcTimestamp::new(1_732_540_000_000, 3);
        assert_eq!(ts.physical_ms(), 1_732_540_000_000);
        assert_eq!(ts.logical(), 3);
        assert_eq!(ts.as_u64(), (1_732_540_000_000 << 16) | 3);
        assert_eq!(HlcTimestamp::from_u64(ts.as_u64()), ts);
        assert_eq!(ts.to_string(), "1732540000000.3");
    }

    #[test]
    fn timestamp_orders_by_physical_then_logical() {
        assert!(HlcTimestamp::new(10, u16::MAX) < HlcTimestamp::new(11, 0));
        assert!(HlcTimestamp::new(10, 1) < HlcTimestamp::new(10, 2));
        assert!(HlcTimestamp::ZERO < HlcTimestamp::new(0, 1));
        assert!(HlcTimestamp::new(PHYSICAL_MAX_MS, u16::MAX) == HlcTimestamp::MAX);
        assert_eq!(HlcTimestamp::default(), HlcTimestamp::ZERO);
    }

    #[test]
    fn timestamp_physical_saturates_instead_of_wrapping() {
        let ts = HlcTimestamp::new(u64::MAX, 7);
        assert_eq!(ts.physical_ms(), PHYSICAL_MAX_MS);
        assert_eq!(ts.logical(), 7);
        assert!(ts > HlcTimestamp::new(1_732_540_000_000, 0));
    }

    #[test]
    fn timestamp_serializes_as_plain_integer() {
        #[derive(Serialize, Deserialize)]
        struct Doc {
            ts: HlcTimestamp,
        }
        let ts = HlcTimestamp::new(1_732_540_000_000, 42);
        let text = toml::to_string(&Doc { ts }).unwrap();
        assert_eq!(text.trim(), format!("ts = {}", ts.as_u64()));
        let back: Doc = toml::from_str(&text).unwrap();
        assert_eq!(back.ts, ts);
    }

    #[test]
    fn now_follows_physical_clock_when_it_moves() {
        let (physical, clock) = manual(1_000);
        assert_eq!(clock.last(), HlcTimestamp::ZERO);
        assert_eq!(clock.now(), HlcTimestamp::new(1_000, 0));
        assert_eq!(clock.now(), HlcTimestamp::new(1_000, 1));
        assert_eq!(clock.last(), HlcTimestamp::new(1_000, 1));
        physical.advance(5);
        assert_eq!(clock.now(), HlcTimestamp::new(1_005, 0));
    }

    #[test]
    fn now_stays_monotonic_when_physical_clock_steps_back() {
        let (physical, clock) = manual(1_000);
        let before = clock.now();
        physical.set(400);
        let after = clock.now();
        assert_eq!(after, HlcTimestamp::new(1_000, 1));
        assert!(after > before);
    }

    #[test]
    fn logical_overflow_advances_physical_by_one_ms() {
        let (physical, clock) = manual(1_000);
        let mut prev = clock.now();
        assert_eq!(prev, HlcTimestamp::new(1_000, 0));
        for _ in 0..u16::MAX {
            let next = clock.now();
            assert!(next > prev);
            prev = next;
        }
        assert_eq!(prev, HlcTimestamp::new(1_000, u16::MAX));
        // The counter is full: the next reading borrows the next millisecond.
        assert_eq!(clock.now(), HlcTimestamp::new(1_001, 0));
        assert_eq!(clock.now(), HlcTimestamp::new(1_001, 1));
        // Wall time catching up takes over again.
        physical.set(1_002);
        assert_eq!(clock.now(), HlcTimestamp::new(1_002, 0));
    }

    #[test]
    fn now_is_strictly_monotonic_and_unique_across_threads() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 20_000;
        let clock = Arc::new(HlcClock::default());
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || (0..PER_THREAD).map(|_| clock.now()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for handle in handles {
            let readings = handle.join().expect("clock thread panicked");
            assert_eq!(readings.len(), PER_THREAD);
            for pair in readings.windows(2) {
                assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            }
            for ts in readings {
                assert!(all.insert(ts), "timestamp {ts} handed out twice");
            }
        }
        assert_eq!(all.len(), THREADS * PER_THREAD);
        assert_eq!(clock.last(), *all.iter().max().unwrap());
    }

    #[test]
    fn system_clock_reading_is_close_to_wall_time() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ts = HlcClock::default().now();
        assert!(ts.physical_ms() >= wall && ts.physical_ms() <= wall + 60_000);
    }

    #[test]
    fn update_with_remote_ahead_takes_remote_physical_and_bumps_its_logical() {
        let (_physical, clock) = manual(1_000);
        clock.now();
        let got = clock.update(HlcTimestamp::new(1_200, 5)).unwrap();
        assert_eq!(got, HlcTimestamp::new(1_200, 6));
        // Subsequent local events stay ahead of what we received.
        assert_eq!(clock.now(), HlcTimestamp::new(1_200, 7));
    }

    #[test]
    fn update_with_remote_behind_bumps_local_logical() {
        let (_physical, clock) = manual(1_000);
        for _ in 0..4 {
            clock.now();
        }
        assert_eq!(clock.last(), HlcTimestamp::new(1_000, 3));
        let got = clock.update(HlcTimestamp::new(900, 9)).unwrap();
        assert_eq!(got, HlcTimestamp::new(1_000, 4));
    }

    #[test]
    fn update_with_equal_physical_uses_larger_logical() {
        let (_physical, clock) = manual(1_000);
        for _ in 0..4 {
            clock.now();
        }
        // Remote logical larger than ours.
        let got = clock.update(HlcTimestamp::new(1_000, 7)).unwrap();
        assert_eq!(got, HlcTimestamp::new(1_000, 8));
        // Remote logical smaller than ours.
        let got = clock.update(HlcTimestamp::new(1_000, 2)).unwrap();
        assert_eq!(got, HlcTimestamp::new(1_000, 9));
    }

    #[test]
    fn update_with_physical_clock_ahead_of_both_resets_logical() {
        let (physical, clock) = manual(1_000);
        clock.now();
        physical.set(2_000);
        let got = clock.update(HlcTimestamp::new(1_500, 2)).unwrap();
        assert_eq!(got, HlcTimestamp::new(2_000, 0));
    }

    #[test]
    fn update_carries_into_physical_when_remote_logical_is_full() {
        let (_physical, clock) = manual(1_000);
        let got = clock.update(HlcTimestamp::new(1_000, u16::MAX)).unwrap();
        assert_eq!(got, HlcTimestamp::new(1_001, 0));
    }

    #[test]
    fn update_rejects_remote_beyond_max_drift_without_advancing() {
        let physical = Arc::new(ManualClock::new(10_000));
        let clock =
            HlcClock::with_physical_source(Duration::from_millis(500), Arc::clone(&physical));
        let before = clock.now();

        let err = clock.update(HlcTimestamp::new(10_501, 0)).unwrap_err();
        assert_eq!(
            err,
            ClockError::DriftExceeded {
                remote_ms: 10_501,
                local_ms: 10_000,
                max_drift_ms: 500,
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("501 ms ahead"), "{msg}");
        assert!(msg.contains("max drift of 500 ms"), "{msg}");
        assert!(msg.contains("NTP"), "{msg}");
        assert_eq!(clock.last(), before);

        // Exactly at the bound is still accepted.
        let got = clock.update(HlcTimestamp::new(10_500, 0)).unwrap();
        assert_eq!(got, HlcTimestamp::new(10_500, 1));
    }

    #[test]
    fn default_clock_uses_500_ms_drift() {
        assert_eq!(HlcClock::default().max_drift(), Duration::from_millis(500));
        let clock = HlcClock::new(Duration::from_millis(20));
        assert_eq!(clock.max_drift(), Duration::from_millis(20));
        assert!(clock.now() > HlcTimestamp::ZERO);
    }

    #[test]
    fn readings_are_unique_when_now_and_update_race() {
        let (_physical, clock) = manual(5_000);
        let clock = Arc::new(clock);
        let local = {
            let clock = Arc::clone(&clock);
            std::thread::spawn(move || (0..5_000).map(|_| clock.now()).collect::<Vec<_>>())
        };
        let remote = {
            let clock = Arc::clone(&clock);
            std::thread::spawn(move || {
                (0..5_000u16)
                    .map(|i| clock.update(HlcTimestamp::new(5_000, i)).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        let mut all: Vec<_> = local.join().unwrap();
        let remote = remote.join().unwrap();
        for (i, ts) in remote.iter().enumerate() {
            assert!(*ts > HlcTimestamp::new(5_000, i as u16));
        }
        all.extend(remote);
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total);
    }
}
