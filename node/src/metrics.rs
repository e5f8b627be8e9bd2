//! `/metrics`: the node's state in the Prometheus text format (what `promtool check metrics`
//! accepts).
//!
//! Two kinds of series:
//! - sampled at scrape time from [`ReplicationNode::status`]: role, term, leader, LSN positions,
//!   and on the leader, per follower (label `follower`): matched LSN, lag in entries, in record
//!   bytes and in seconds, whether its lag alert is raised, and the age of its last
//!   acknowledgement;
//! - counted as things happen: writes by mode and result, write latency, term and leader
//!   changes (from a task watching the Raft metrics, so no change between two scrapes is
//!   missed), and rejected votes, copied from a [`RejectedVotesSource`] the network layer
//!   provides (the consensus server's vote verifier; a single node has none and its series
//!   stay at 0);
//! - counted by the node and copied at scrape time (the counters catch up with the node's
//!   monotonic counts): lag alert events by kind, and document reads by consistency, by
//!   linearizable read path and refused.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use parking_lot::Mutex;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use replication_core::config::ReplicationMode;
use replication_core::consensus::{LagAlertCounts, ReplicationNode, Role};
use replication_core::security::VoteMetricsSnapshot;

/// Where rejected-vote counts come from: the vote verifier of the TLS server
/// (`move || verifier.metrics().snapshot()`). Must be cheap; called on every scrape.
pub type RejectedVotesSource = Arc<dyn Fn() -> VoteMetricsSnapshot + Send + Sync>;

const ROLES: [(Role, &str); 5] = [
    (Role::Leader, "leader"),
    (Role::Follower, "follower"),
    (Role::Candidate, "candidate"),
    (Role::Learner, "learner"),
    (Role::Shutdown, "shutdown"),
];

/// `reason` label values of `replicad_rejected_votes_total`, in the order of
/// [`VoteMetricsSnapshot`]'s fields. `identity_mismatch`: a vote whose candidate is not the node
/// named by the sender's TLS certificate.
const REJECT_REASONS: [&str; 5] = [
    "unsigned",
    "bad_signature",
    "replayed",
    "unknown_node",
    "identity_mismatch",
];

/// `event` label values of `replicad_lag_alerts_total`, in the order of [`LagAlertCounts`]'s
/// fields (`LagAlertKind`: raised, recovered, ended).
const LAG_ALERT_EVENTS: [&str; 3] = ["raised", "recovered", "ended"];

/// `consistency` label values of `replicad_reads_total` (the admin API's spellings).
const READ_CONSISTENCIES: [&str; 3] = ["linearizable", "leader", "follower"];

/// `path` label values of `replicad_linearizable_reads_by_path_total`.
const READ_PATHS: [&str; 2] = ["lease", "read_index"];

/// `reason` label values of `replicad_reads_refused_total`.
const READ_REFUSALS: [&str; 2] = ["stale", "error"];

const MODES: [ReplicationMode; 3] = [
    ReplicationMode::Sync,
    ReplicationMode::SemiSync,
    ReplicationMode::Async,
];

/// Outcome label of `replicad_writes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Ok,
    /// The write never entered the log (safe to retry).
    NotDurable,
    /// The write may or may not commit.
    Unknown,
    /// Refused before reaching consensus (invalid) or failed otherwise.
    Error,
}

impl WriteResult {
    fn as_str(self) -> &'static str {
        match self {
            WriteResult::Ok => "ok",
            WriteResult::NotDurable => "not_durable",
            WriteResult::Unknown => "unknown",
            WriteResult::Error => "error",
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map_or("unknown", |(_, n)| n)
}

/// Latency buckets in seconds: 100 us (an fsync here is ~170 us) up to the default
/// replication timeout of 10 s, roughly x2.5 apart.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// The node's Prometheus registry and collectors.
pub struct NodeMetrics {
    registry: Registry,
    role: IntGaugeVec,
    term: IntGauge,
    leader: IntGauge,
    last_lsn: IntGauge,
    durable_lsn: IntGauge,
    commit_lsn: IntGauge,
    applied_lsn: IntGauge,
    follower_matched: IntGaugeVec,
    follower_lag: IntGaugeVec,
    follower_lag_bytes: IntGaugeVec,
    follower_lag_seconds: GaugeVec,
    follower_lag_alert: IntGaugeVec,
    follower_last_ack: GaugeVec,
    lag_alerts: IntCounterVec,
    reads: IntCounterVec,
    read_paths: IntCounterVec,
    reads_refused: IntCounterVec,
    elections: IntCounter,
    split_votes_broken: IntCounter,
    leader_changes: IntCounter,
    rejected_votes: IntCounterVec,
    writes: IntCounterVec,
    write_latency: HistogramVec,
    votes_source: Mutex<Option<RejectedVotesSource>>,
}

fn int_gauge(reg: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
    reg.register(Box::new(c.clone()))?;
    for v in values {
        // Every series exists from the start, at 0.
        c.with_label_values(&[v]);
    }
    Ok(c)
}

/// Raises each counter of `vec` (one per label value, in order) to the count its source
/// reports; the sources count monotonically, so the counters never have to go down.
fn catch_up(vec: &IntCounterVec, values: &[&str], counts: &[u64]) {
    for (value, &count) in values.iter().zip(counts) {
        let c = vec.with_label_values(&[value]);
        c.inc_by(count.saturating_sub(c.get()));
    }
}

fn int_gauge_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

impl NodeMetrics {
    /// Creates the collectors. `node_id` becomes a constant label on every series, so several
    /// nodes scraped into one Prometheus stay apart even without target relabelling.
    pub fn new(node_id: u64) -> prometheus::Result<Self> {
        let labels = std::iter::once(("node".to_string(), node_id.to_string())).collect();
        let registry = Registry::new_custom(Some("replicad".into()), Some(labels))?;
        let r = &registry;
        let role = int_gauge_vec(
            r,
            "role",
            "1 for the role this node has now, 0 for the others",
            &["role"],
        )?;
        let term = int_gauge(r, "term", "Current Raft term")?;
        let leader = int_gauge(
            r,
            "leader_id",
            "Node id of the leader this node knows of (0: none known)",
        )?;
        let last_lsn = int_gauge(r, "last_lsn", "Last LSN in the local log (0: empty log)")?;
        let durable_lsn = int_gauge(r, "durable_lsn", "Highest LSN fsynced in the local WAL")?;
        let commit_lsn = int_gauge(
            r,
            "commit_lsn",
            "Highest LSN this node knows to be committed (0: none)",
        )?;
        let applied_lsn = int_gauge(
            r,
            "applied_lsn",
            "Highest LSN applied to the local store (0: none)",
        )?;
        let follower_matched = int_gauge_vec(
            r,
            "follower_matched_lsn",
            "On the leader: highest LSN durable on the follower and equal to the leader's",
            &["follower"],
        )?;
        let follower_lag = int_gauge_vec(
            r,
            "follower_lag_entries",
            "On the leader: entries the follower is behind the leader's last LSN",
            &["follower"],
        )?;
        let follower_lag_bytes = int_gauge_vec(
            r,
            "follower_lag_bytes",
            "On the leader: record bytes between the follower's matched LSN and the leader's \
             last LSN (uncompressed record encoding; an estimate)",
            &["follower"],
        )?;
        let follower_lag_seconds = GaugeVec::new(
            Opts::new(
                "follower_lag_seconds",
                "On the leader: how long the oldest entry the follower lacks has been in the \
                 leader's log (0: caught up; millisecond resolution)",
            ),
            &["follower"],
        )?;
        r.register(Box::new(follower_lag_seconds.clone()))?;
        let follower_lag_alert = int_gauge_vec(
            r,
            "follower_lag_alert",
            "On the leader: 1 while the follower's lag alert is raised, else 0",
            &["follower"],
        )?;
        let lag_alerts = counter_vec(
            r,
            "lag_alerts_total",
            "Follower lag alert events on this node since it started: raised (a follower passed \
             a threshold), recovered (back under both), ended (no longer watched while raised)",
            "event",
            &LAG_ALERT_EVENTS,
        )?;
        let reads = counter_vec(
            r,
            "reads_total",
            "Document reads served, by consistency",
            "consistency",
            &READ_CONSISTENCIES,
        )?;
        let read_paths = counter_vec(
            r,
            "linearizable_reads_by_path_total",
            "Linearizable reads served, by how leadership was confirmed: the lease, or a \
             quorum round (read_index)",
            "path",
            &READ_PATHS,
        )?;
        let reads_refused = counter_vec(
            r,
            "reads_refused_total",
            "Document reads not served: stale (a follower read over its staleness bound) or \
             error (not the leader, no quorum, timeout, store failure)",
            "reason",
            &READ_REFUSALS,
        )?;
        let follower_last_ack = GaugeVec::new(
            Opts::new(
                "follower_last_ack_age_seconds",
                "On the leader: time since the send of the latest RPC the follower acknowledged",
            ),
            &["follower"],
        )?;
        r.register(Box::new(follower_last_ack.clone()))?;
        let elections = IntCounter::new(
            "elections_total",
            "Term changes this node has seen since it started (each new term is one election)",
        )?;
        r.register(Box::new(elections.clone()))?;
        let split_votes_broken = IntCounter::new(
            "split_votes_broken_total",
            "Split votes this node broke by campaigning again at once as the preferred candidate",
        )?;
        r.register(Box::new(split_votes_broken.clone()))?;
        let leader_changes = IntCounter::new(
            "leader_changes_total",
            "Changes of the known leader this node has seen since it started",
        )?;
        r.register(Box::new(leader_changes.clone()))?;
        let rejected_votes = counter_vec(
            r,
            "rejected_votes_total",
            "Vote and pre-vote requests refused by signature checks, by reason",
            "reason",
            &REJECT_REASONS,
        )?;
        let writes = IntCounterVec::new(
            Opts::new(
                "writes_total",
                "Client writes (put and delete) by acknowledgement mode and result",
            ),
            &["mode", "result"],
        )?;
        r.register(Box::new(writes.clone()))?;
        let write_latency = HistogramVec::new(
            HistogramOpts::new(
                "write_latency_seconds",
                "Time from receiving a client write to its acknowledgement, by mode \
                 (successful writes only)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["mode"],
        )?;
        r.register(Box::new(write_latency.clone()))?;
        for mode in MODES {
            // Every series exists from the start, so rate() works from the first write.
            write_latency.with_label_values(&[mode.as_str()]);
            for result in [
                WriteResult::Ok,
                WriteResult::NotDurable,
                WriteResult::Unknown,
                WriteResult::Error,
            ] {
                writes.with_label_values(&[mode.as_str(), result.as_str()]);
            }
        }
        Ok(NodeMetrics {
            registry,
            role,
            term,
            leader,
            last_lsn,
            durable_lsn,
            commit_lsn,
            applied_lsn,
            follower_matched,
            follower_lag,
            follower_lag_bytes,
            follower_lag_seconds,
            follower_lag_alert,
            follower_last_ack,
            lag_alerts,
            reads,
            read_paths,
            reads_refused,
            elections,
            split_votes_broken,
            leader_changes,
            rejected_votes,
            writes,
            write_latency,
            votes_source: Mutex::new(None),
        })
    }

    /// Feeds `replicad_rejected_votes_total` from the network layer's vote verifier.
    pub fn set_rejected_votes_source(&self, source: RejectedVotesSource) {
        *self.votes_source.lock() = Some(source);
    }

    /// Records one client write.
    pub fn observe_write(&self, mode: ReplicationMode, result: WriteResult, latency: Duration) {
        self.writes
            .with_label_values(&[mode.as_str(), result.as_str()])
            .inc();
        if result == WriteResult::Ok {
            self.write_latency
                .with_label_values(&[mode.as_str()])
                .observe(latency.as_secs_f64());
        }
    }

    /// Counts term and leader changes as the node reports them. Runs until the node stops
    /// (its metrics channel closes) or the task is aborted.
    pub fn spawn_change_watcher(
        self: &Arc<Self>,
        node: &ReplicationNode,
    ) -> tokio::task::JoinHandle<()> {
        let mut rx = node.raft().metrics();
        let metrics = Arc::clone(self);
        tokio::spawn(async move {
            let (mut term, mut leader) = {
                let m = rx.borrow_watched();
                (m.current_term, m.current_leader)
            };
            while rx.changed().await.is_ok() {
                let (t, l) = {
                    let m = rx.borrow_watched();
                    (m.current_term, m.current_leader)
                };
                if t != term {
                    metrics.elections.inc();
                    term = t;
                }
                if l != leader {
                    if l.is_some() {
                        metrics.leader_changes.inc();
                    }
                    leader = l;
                }
            }
        })
    }

    /// Samples the node's status into the gauges and renders every series as text.
    pub fn render(&self, node: &ReplicationNode) -> Result<String, prometheus::Error> {
        let s = node.status();
        for (role, name) in ROLES {
            self.role
                .with_label_values(&[name])
                .set(i64::from(role == s.role));
        }
        self.term.set(clamp(s.term));
        self.leader.set(clamp(s.leader.unwrap_or(0)));
        self.last_lsn.set(clamp(s.last_lsn.unwrap_or(0)));
        self.durable_lsn.set(clamp(s.durable_lsn));
        self.commit_lsn.set(clamp(s.commit_lsn.unwrap_or(0)));
        self.applied_lsn.set(clamp(s.applied_lsn.unwrap_or(0)));
        let broken = node.split_votes_broken();
        self.split_votes_broken
            .inc_by(broken.saturating_sub(self.split_votes_broken.get()));
        // Followers come and go with membership and leadership: rebuild rather than update,
        // so a former follower's lag does not linger as a stale series.
        self.follower_matched.reset();
        self.follower_lag.reset();
        self.follower_lag_bytes.reset();
        self.follower_lag_seconds.reset();
        self.follower_lag_alert.reset();
        self.follower_last_ack.reset();
        for f in &s.followers {
            let id = f.id.to_string();
            self.follower_matched
                .with_label_values(&[&id])
                .set(clamp(f.matched_lsn.unwrap_or(0)));
            self.follower_lag
                .with_label_values(&[&id])
                .set(clamp(f.lag_entries));
            self.follower_lag_bytes
                .with_label_values(&[&id])
                .set(clamp(f.lag_bytes));
            self.follower_lag_seconds
                .with_label_values(&[&id])
                .set(Duration::from_millis(f.lag_ms).as_secs_f64());
            self.follower_lag_alert
                .with_label_values(&[&id])
                .set(i64::from(f.lag_alert));
            if let Some(age) = f.last_ack {
                self.follower_last_ack
                    .with_label_values(&[&id])
                    .set(age.as_secs_f64());
            }
        }
        let LagAlertCounts {
            raised,
            recovered,
            ended,
        } = s.lag_alerts;
        catch_up(
            &self.lag_alerts,
            &LAG_ALERT_EVENTS,
            &[raised, recovered, ended],
        );
        let r = s.reads;
        catch_up(
            &self.reads,
            &READ_CONSISTENCIES,
            &[r.linearizable, r.leader_local, r.follower_bounded],
        );
        catch_up(
            &self.read_paths,
            &READ_PATHS,
            &[r.lease_path, r.read_index_path],
        );
        catch_up(
            &self.reads_refused,
            &READ_REFUSALS,
            &[r.refused_stale, r.failed],
        );
        if let Some(source) = self.votes_source.lock().as_ref() {
            let v = source();
            let counts = [
                v.unsigned,
                v.bad_signature,
                v.replayed,
                v.unknown_node,
                v.identity_mismatch,
            ];
            catch_up(&self.rejected_votes, &REJECT_REASONS, &counts);
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Gauges are i64; LSNs and terms never reach 2^63 in practice, but saturate rather than wrap.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
