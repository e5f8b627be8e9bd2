//! Follower health and lag, as the leader sees it, and the lag alert.
//!
//! Sources:
//! - **Matched LSN and last contact** come from openraft's leader metrics: `replication` (the
//!   highest log id each follower durably holds) and `heartbeat` (when the follower last
//!   acknowledged an AppendEntries, heartbeats included).
//! - **Lag in entries** is `last LSN - matched LSN`.
//! - **Lag in bytes and in milliseconds** come from an [`AppendTracker`] kept by the log store:
//!   a ring of recent append batches with the time each was appended to *this* node's log and
//!   the running total of record bytes. Lag in bytes is the record bytes between the matched
//!   LSN and the last LSN (the uncompressed record encoding of docs/FORMAT.md, without frame
//!   headers: what replication has to ship, before compression). Lag in ms is `now - the time
//!   LSN matched+1 was appended here`, i.e. how long the oldest entry the follower lacks has
//!   been waiting; 0 when the follower is caught up.
//!
//! Precision: batches appended within the same millisecond share one ring slot, so times have
//! millisecond resolution and bytes inside a merged slot are interpolated. The ring keeps the
//! latest [`TRACKED_BATCHES`] slots; for a follower lagging beyond it, lag in ms is a lower bound
//! (the age of the oldest slot) and the bytes before the ring are estimated from the ring's
//! average record size. The ring starts empty when a node starts, so the same holds for entries
//! appended before this node's start.
//!
//! The lag alert: the node runs a monitor task that checks every follower at half the
//! heartbeat interval (so an alert fires within one heartbeat interval of a follower passing a
//! threshold, inside the two-interval target). A follower is lagging when its lag is above
//! `lag_alert_threshold_entries` or above `lag_alert_threshold_ms` (0 turns a threshold off).
//! The monitor reports each transition once: [`LagAlertKind::Raised`] when a follower starts
//! lagging, [`LagAlertKind::Recovered`] when it is back under both thresholds and
//! [`LagAlertKind::Ended`] when this node stops watching it (leadership lost, or the follower
//! left the membership) while it was lagging.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;
use openraft::{Instant as _, RaftMetrics, ServerState};
use parking_lot::{Mutex, RwLock};

use super::types::{ConsensusRaft, C};
use crate::wal::NewRecord;
use crate::{Lsn, NodeId};

/// Ring slots kept by [`AppendTracker`] (about 40 bytes each).
pub const TRACKED_BATCHES: usize = 8192;

/// Fixed part of an encoded WAL record (docs/FORMAT.md, "Record"; `FIXED_LEN` in
/// `wal/record.rs`): term, hlc, origin, op, flags, three lengths.
const RECORD_FIXED_BYTES: u64 = 34;

/// Encoded size of a record in the WAL before compression (docs/FORMAT.md, "Record").
pub(crate) fn record_bytes(rec: &NewRecord) -> u64 {
    RECORD_FIXED_BYTES
        + if rec.txn_id.is_some() { 8 } else { 0 }
        + rec.collection.len() as u64
        + rec.doc_id.len() as u64
        + rec.payload.len() as u64
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    first: Lsn,
    last: Lsn,
    at: Instant,
    /// Record bytes of every entry before `first` (running total).
    bytes_before: u64,
    /// Record bytes of `first..=last`.
    bytes: u64,
}

impl Slot {
    /// Running total of bytes up to and including `lsn`, which lies in this slot.
    fn cumulative_at(&self, lsn: Lsn) -> u64 {
        let n = self.last - self.first + 1;
        let k = lsn - self.first + 1;
        self.bytes_before + (u128::from(self.bytes) * u128::from(k) / u128::from(n)) as u64
    }
}

/// When each recent LSN was appended to this node's log, and how many record bytes the log
/// holds up to it. Written by the log store, read by the health code. Cheap: one short lock per
/// append batch.
#[derive(Default)]
pub struct AppendTracker {
    slots: Mutex<VecDeque<Slot>>,
}

impl AppendTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `first..=last` (holding `bytes` record bytes) was appended now.
    pub fn record(&self, first: Lsn, last: Lsn, bytes: u64) {
        self.record_at(first, last, bytes, Instant::now());
    }

    fn record_at(&self, first: Lsn, last: Lsn, bytes: u64, at: Instant) {
        if last < first {
            return;
        }
        let mut slots = self.slots.lock();
        let total = slots.back().map_or(0, |s| s.bytes_before + s.bytes);
        if let Some(back) = slots.back_mut() {
            let same_ms = at.saturating_duration_since(back.at) < Duration::from_millis(1);
            if back.last + 1 == first && same_ms {
                back.last = last;
                back.bytes += bytes;
                return;
            }
            if first <= back.last {
                // Appends are dense and follow truncation; anything else means the log was
                // reset (a snapshot install): start over rather than mix two histories.
                slots.clear();
            }
        }
        if slots.len() == TRACKED_BATCHES {
            slots.pop_front();
        }
        let bytes_before = if slots.is_empty() { 0 } else { total };
        slots.push_back(Slot {
            first,
            last,
            at,
            bytes_before,
            bytes,
        });
    }

    /// Forgets entries after `keep` (the log was truncated there).
    pub fn truncate_after(&self, keep: Lsn) {
        let mut slots = self.slots.lock();
        while let Some(back) = slots.back_mut() {
            if back.first > keep {
                slots.pop_back();
            } else {
                if back.last > keep {
                    back.bytes = back.cumulative_at(keep) - back.bytes_before;
                    back.last = keep;
                }
                break;
            }
        }
    }

    /// When `lsn` was appended here. `None` if it is newer than anything tracked; for an LSN
    /// older than the ring, the oldest tracked time (a lower bound on its age).
    pub fn appended_at(&self, lsn: Lsn) -> Option<Instant> {
        let slots = self.slots.lock();
        if slots.back().is_none_or(|s| lsn > s.last) {
            return None;
        }
        let i = slots.partition_point(|s| s.last < lsn);
        slots.get(i).map(|s| s.at)
    }

    /// Record bytes of the entries after `from` up to and including `to` (an estimate; see the
    /// module docs).
    pub fn bytes_between(&self, from: Lsn, to: Lsn) -> u64 {
        if to <= from {
            return 0;
        }
        let slots = self.slots.lock();
        let (Some(front), Some(back)) = (slots.front(), slots.back()) else {
            return 0;
        };
        let entries = back.last - front.first + 1;
        let tracked = back.bytes_before + back.bytes - front.bytes_before;
        let avg = tracked / entries.max(1);
        let cumulative = |lsn: Lsn| -> i128 {
            if lsn >= back.last {
                // Appended but not tracked yet cannot happen (the store records every append);
                // treat anything past the ring's end as its end.
                i128::from(back.bytes_before + back.bytes)
            } else if lsn < front.first {
                i128::from(front.bytes_before) - i128::from(avg) * i128::from(front.first - lsn - 1)
            } else {
                let i = slots.partition_point(|s| s.last < lsn);
                i128::from(slots[i].cumulative_at(lsn))
            }
        };
        (cumulative(to) - cumulative(from)).max(0) as u64
    }
}

/// Replication progress and health of one follower or learner, as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    pub id: NodeId,
    /// The node's role in the membership: a voter (follower) or, if `false`, a learner.
    pub voter: bool,
    /// Highest LSN known to be durable on that node and equal to the leader's.
    pub matched_lsn: Option<Lsn>,
    /// Entries the node is behind the leader's last LSN.
    pub lag_entries: u64,
    /// Record bytes between `matched_lsn` and the leader's last LSN (estimate; see
    /// [`health`](super::health)).
    pub lag_bytes: u64,
    /// How long the oldest entry the node lacks has been in the leader's log; 0 when caught up.
    pub lag_ms: u64,
    /// Time since the send of the latest RPC (heartbeat or AppendEntries) the node acknowledged:
    /// the leader's "last contact" with it.
    pub last_ack: Option<Duration>,
    /// The lag alert for this node is raised.
    pub lag_alert: bool,
}

/// Lag thresholds: a follower above either one is lagging. 0 turns a threshold off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagThresholds {
    pub entries: u64,
    pub ms: u64,
}

impl LagThresholds {
    fn exceeded_by(&self, f: &FollowerStatus) -> bool {
        (self.entries > 0 && f.lag_entries > self.entries) || (self.ms > 0 && f.lag_ms > self.ms)
    }
}

/// What happened to a follower's lag alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagAlertKind {
    /// The follower passed a threshold.
    Raised,
    /// The follower is back under both thresholds.
    Recovered,
    /// This node stopped watching the follower while its alert was raised: it lost leadership,
    /// or the follower left the membership. Its lag is unknown from here on.
    Ended,
}

/// One lag alert event, handed to the callbacks registered with
/// [`ReplicationNode::on_lag_alert`](super::ReplicationNode::on_lag_alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagAlert {
    pub kind: LagAlertKind,
    /// The leader that observed it (this node).
    pub leader: NodeId,
    pub term: u64,
    /// The follower's health when the event was decided.
    pub follower: FollowerStatus,
    pub thresholds: LagThresholds,
}

/// Counters of lag alert events since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LagAlertCounts {
    pub raised: u64,
    pub recovered: u64,
    pub ended: u64,
}

pub(crate) type LagCallback = Arc<dyn Fn(&LagAlert) + Send + Sync + 'static>;

/// Health of every follower, from the leader's metrics. Empty unless `m` is a leader's.
pub(crate) fn follower_health(
    m: &RaftMetrics<C>,
    me: NodeId,
    appends: &AppendTracker,
    alerted: &BTreeSet<NodeId>,
) -> Vec<FollowerStatus> {
    let Some(repl) = &m.replication else {
        return Vec::new();
    };
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let last = m.last_log_index.unwrap_or(0);
    let now = Instant::now();
    repl.iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, matched)| {
            let matched_lsn = matched.map(|l| l.index);
            let matched_index = matched_lsn.unwrap_or(0);
            let lag_entries = last.saturating_sub(matched_index);
            let lag_ms = if lag_entries == 0 {
                0
            } else {
                appends
                    .appended_at(matched_index + 1)
                    .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64)
            };
            let last_ack = m
                .heartbeat
                .as_ref()
                .and_then(|h| h.get(id).copied().flatten())
                .map(|t| t.elapsed());
            FollowerStatus {
                id: *id,
                voter: voters.contains(id),
                matched_lsn,
                lag_entries,
                lag_bytes: appends.bytes_between(matched_index, last),
                lag_ms,
                last_ack,
                lag_alert: alerted.contains(id),
            }
        })
        .collect()
}

/// State shared by the node and its lag monitor task.
pub(crate) struct Health {
    pub(crate) me: NodeId,
    pub(crate) thresholds: LagThresholds,
    pub(crate) appends: Arc<AppendTracker>,
    callbacks: RwLock<Vec<LagCallback>>,
    alerted: Mutex<BTreeSet<NodeId>>,
    raised: AtomicU64,
    recovered: AtomicU64,
    ended: AtomicU64,
}

impl Health {
    pub(crate) fn new(me: NodeId, thresholds: LagThresholds, appends: Arc<AppendTracker>) -> Self {
        Health {
            me,
            thresholds,
            appends,
            callbacks: RwLock::new(Vec::new()),
            alerted: Mutex::new(BTreeSet::new()),
            raised: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            ended: AtomicU64::new(0),
        }
    }

    pub(crate) fn add_callback(&self, cb: LagCallback) {
        self.callbacks.write().push(cb);
    }

    pub(crate) fn alerted(&self) -> BTreeSet<NodeId> {
        self.alerted.lock().clone()
    }

    pub(crate) fn counts(&self) -> LagAlertCounts {
        LagAlertCounts {
            raised: self.raised.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
            ended: self.ended.load(Ordering::Relaxed),
        }
    }

    /// One check: compares every follower with the thresholds and reports transitions.
    pub(crate) fn check(&self, m: &RaftMetrics<C>) {
        let mut events = Vec::new();
        {
            let mut alerted = self.alerted.lock();
            let followers = if m.state == ServerState::Leader {
                follower_health(m, self.me, &self.appends, &alerted)
            } else {
                Vec::new()
            };
            let mut seen = BTreeSet::new();
            for mut f in followers {
                seen.insert(f.id);
                let over = self.thresholds.exceeded_by(&f);
                let kind = match (over, alerted.contains(&f.id)) {
                    (true, false) => LagAlertKind::Raised,
                    (false, true) => LagAlertKind::Recovered,
                    _ => continue,
                };
                if over {
                    alerted.insert(f.id);
                } else {
                    alerted.remove(&f.id);
                }
                f.lag_alert = over;
                events.push((kind, f));
            }
            let gone: Vec<NodeId> = alerted.difference(&seen).copied().collect();
            for id in gone {
                alerted.remove(&id);
                let f = FollowerStatus {
                    id,
                    voter: m
                        .membership_config
                        .membership()
                        .voter_ids()
                        .any(|v| v == id),
                    matched_lsn: None,
                    lag_entries: 0,
                    lag_bytes: 0,
                    lag_ms: 0,
                    last_ack: None,
                    lag_alert: false,
                };
                events.push((LagAlertKind::Ended, f));
            }
        }
        if events.is_empty() {
            return;
        }
        // Callbacks run without any lock held, so they may call back into the node.
        let callbacks: Vec<LagCallback> = self.callbacks.read().clone();
        for (kind, follower) in events {
            let counter = match kind {
                LagAlertKind::Raised => &self.raised,
                LagAlertKind::Recovered => &self.recovered,
                LagAlertKind::Ended => &self.ended,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            match kind {
                LagAlertKind::Raised => tracing::warn!(
                    node = self.me,
                    term = m.current_term,
                    follower = follower.id,
                    lag_entries = follower.lag_entries,
                    lag_ms = follower.lag_ms,
                    "follower lag alert raised"
                ),
                _ => tracing::info!(
                    node = self.me,
                    term = m.current_term,
                    follower = follower.id,
                    ?kind,
                    "follower lag alert cleared"
                ),
            }
            let alert = LagAlert {
                kind,
                leader: self.me,
                term: m.current_term,
                follower,
                thresholds: self.thresholds,
            };
            for cb in &callbacks {
                cb(&alert);
            }
        }
    }
}

/// Runs [`Health::check`] every `period` until the node's metrics channel closes (shutdown).
pub(crate) async fn monitor(health: Arc<Health>, raft: ConsensusRaft, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let rx = raft.metrics();
    loop {
        tick.tick().await;
        let m = rx.borrow_watched().clone();
        // A shut-down node is no leader: the check ends every raised alert, then we stop.
        health.check(&m);
        if m.state == ServerState::Shutdown {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_times_and_bytes() {
        let t = AppendTracker::new();
        let t0 = Instant::now();
        t.record_at(1, 1, 100, t0);
        t.record_at(2, 5, 400, t0 + Duration::from_millis(10));
        // Same millisecond: merged into the previous slot.
        t.record_at(6, 6, 100, t0 + Duration::from_millis(10));
        t.record_at(7, 8, 200, t0 + Duration::from_millis(20));
        assert_eq!(t.appended_at(1), Some(t0));
        assert_eq!(t.appended_at(4), Some(t0 + Duration::from_millis(10)));
        assert_eq!(t.appended_at(6), Some(t0 + Duration::from_millis(10)));
        assert_eq!(t.appended_at(8), Some(t0 + Duration::from_millis(20)));
        assert_eq!(t.appended_at(9), None);
        assert_eq!(t.bytes_between(0, 8), 800);
        assert_eq!(t.bytes_between(1, 8), 700);
        assert_eq!(t.bytes_between(6, 8), 200);
        assert_eq!(t.bytes_between(8, 8), 0);
        // Truncation drops the tail and trims the straddling slot.
        t.truncate_after(7);
        assert_eq!(t.appended_at(8), None);
        assert_eq!(t.bytes_between(0, 7), 700);
        t.truncate_after(3);
        assert_eq!(t.bytes_between(0, 3), 300);
        t.record_at(4, 4, 50, t0 + Duration::from_millis(30));
        assert_eq!(t.bytes_between(3, 4), 50);
        assert_eq!(t.appended_at(4), Some(t0 + Duration::from_millis(30)));
    }

    #[test]
    fn tracker_estimates_beyond_the_ring() {
        let t = AppendTracker::new();
        let t0 = Instant::now();
        for i in 0..(TRACKED_BATCHES as u64 + 10) {
            t.record_at(i + 1, i + 1, 10, t0 + Duration::from_millis(2 * i));
        }
        // LSN 1..=10 fell out of the ring: the oldest slot's time is the lower bound.
        assert_eq!(t.appended_at(1), Some(t0 + Duration::from_millis(20)));
        let last = TRACKED_BATCHES as u64 + 10;
        assert_eq!(t.bytes_between(0, last), 10 * last);
        assert_eq!(t.bytes_between(last - 3, last), 30);
    }

    #[test]
    fn thresholds_of_zero_are_off() {
        let f = FollowerStatus {
            id: 2,
            voter: true,
            matched_lsn: Some(1),
            lag_entries: 50,
            lag_bytes: 0,
            lag_ms: 9000,
            last_ack: None,
            lag_alert: false,
        };
        let off = LagThresholds { entries: 0, ms: 0 };
        assert!(!off.exceeded_by(&f));
        assert!(LagThresholds { entries: 49, ms: 0 }.exceeded_by(&f));
        assert!(!LagThresholds { entries: 50, ms: 0 }.exceeded_by(&f));
        assert!(LagThresholds {
            entries: 0,
            ms: 8999
        }
        .exceeded_by(&f));
    }
}
