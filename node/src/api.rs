//! The client / admin HTTP API (HTTP/1.1, JSON).
//!
//! | request | answer |
//! |---|---|
//! | `PUT /v1/docs/{collection}/{id}[?mode=SYNC\|SEMI_SYNC\|ASYNC]`, body = payload | `200 {"lsn", "mode"}` |
//! | `DELETE /v1/docs/{collection}/{id}[?mode=...]` | `200 {"lsn", "mode"}` |
//! | `GET /v1/docs/{collection}/{id}[?consistency=...]` | `200` payload bytes, or `404 {"error"}` |
//! | `GET /v1/status` | `200` node status as JSON |
//! | `GET /v1/hash` | `200 {"content_hash", "applied_lsn"}`: this node's store (replicas agree iff equal) |
//! | `GET /metrics` | Prometheus text format |
//!
//! Writes go through consensus and are acknowledged per the mode (the node's current mode when
//! none is given). A PUT is an upsert and is logged as an `Update` record: the store treats
//! insert and update alike, and telling them apart would need a read racing other writers.
//!
//! Reads go through [`ReplicationNode::read`] with the consistency asked for (any case):
//! - `consistency=linearizable` (the default): on the leader only; sees every write
//!   acknowledged before the read arrived, cluster-wide (leader lease, else a quorum round).
//! - `consistency=leader`: on the leader only; its applied state without a quorum check (a
//!   leader cut off from the cluster may return data a newer leader has overwritten).
//! - `consistency=follower&max_staleness_ms=N` (`bounded` is the same): on any node; this
//!   node's store if it is known to be at most N ms behind the leader, else `503`.
//!
//! `GET /v1/hash` and `/v1/status` read this node's own state, however stale.
//!
//! Errors are `{"error": message}` plus, where known, `"leader"` (the node to retry on) and
//! `"lsn"`:
//! - 400 invalid request (bad mode, unknown `consistency` value, `max_staleness_ms` not a
//!   number of milliseconds or missing for a follower read, key too long, SYNC with
//!   min_sync_replicas = 0, ...);
//! - 404 no such document (or endpoint);
//! - 413 body over [`MAX_BODY_BYTES`];
//! - 503 the request was refused and changed nothing, safe to retry: a write *not* appended
//!   (not the leader, not enough replicas), a read on a node that is not the leader, a
//!   follower read this node is too stale to serve, or a linearizable read on a leader that
//!   cannot confirm its leadership with a quorum. Retry on `leader` if given; the stale and
//!   no-quorum refusals also carry `Retry-After: 1`;
//! - 504 timed out: for a write the outcome is unknown (acknowledgements not gathered in time),
//!   so it may still commit and needs deduplication before a retry; for a read, this node did
//!   not apply the read position in time;
//! - 500 storage or consensus failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use replication_core::config::ReplicationMode;
use replication_core::consensus::{
    ClientWrite, ConsensusError, NodeStatus, ReadConsistency, ReplicationNode,
};
use replication_core::store::DocumentStore;
use replication_core::wal::Operation;
use replication_core::{Lsn, NodeId};
use serde::Serialize;

use crate::metrics::{role_name, NodeMetrics, WriteResult};

/// Largest accepted request body. The WAL takes records up to 256 MiB, but the admin API
/// buffers a whole body in memory, so it keeps a lower bound.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Largest accepted `max_staleness_ms` (one day): a bound beyond it means "any staleness", and
/// keeping it finite keeps the deadline arithmetic from overflowing.
pub const MAX_STALENESS_MS: u64 = 24 * 60 * 60 * 1000;

/// The accepted `consistency` values, as error messages list them.
const CONSISTENCY_VALUES: &str =
    "linearizable (the default), leader, follower or bounded (with max_staleness_ms=N)";

/// `Retry-After` of the 503s that clear up by themselves (a stale follower catching up, a
/// leader regaining its quorum or being replaced), in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<ReplicationNode>,
    pub store: Arc<DocumentStore>,
    pub metrics: Arc<NodeMetrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/docs/{collection}/{id}",
            get(get_doc).put(put_doc).delete(delete_doc),
        )
        .route("/v1/status", get(status))
        .route("/v1/hash", get(hash))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

/// An error answer: `{"error", "leader"?, "lsn"?}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    leader: Option<NodeId>,
    lsn: Option<Lsn>,
    /// Send `Retry-After` ([`RETRY_AFTER_SECS`]).
    retry_after: bool,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lsn: Option<Lsn>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            leader: None,
            lsn: None,
            retry_after: false,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl From<ConsensusError> for ApiError {
    fn from(e: ConsensusError) -> Self {
        let message = e.to_string();
        let retry_after = matches!(
            e,
            ConsensusError::Stale { .. } | ConsensusError::QuorumUnavailable(_)
        );
        let (status, leader, lsn) = match e {
            ConsensusError::NotDurable { leader, .. } | ConsensusError::NotLeader { leader } => {
                (StatusCode::SERVICE_UNAVAILABLE, leader, None)
            }
            // Reads refused before reading anything: retrying, later or elsewhere, is safe.
            ConsensusError::Stale { .. } | ConsensusError::QuorumUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, None, None)
            }
            ConsensusError::Unknown { lsn, .. } => (StatusCode::GATEWAY_TIMEOUT, None, lsn),
            ConsensusError::Timeout(..) => (StatusCode::GATEWAY_TIMEOUT, None, None),
            ConsensusError::Invalid(_) => (StatusCode::BAD_REQUEST, None, None),
            // Storage and consensus failures, and variants added later until they get a
            // mapping of their own.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None, None),
        };
        ApiError {
            status,
            message,
            leader,
            lsn,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
            leader: self.leader,
            lsn: self.lsn,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// Parses `mode=...` (the only query parameter); the config spellings, any case.
fn parse_mode(query: Option<&str>) -> Result<Option<ReplicationMode>, ApiError> {
    let mut mode = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "mode" {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{key}`; the only one is `mode`"
            )));
        }
        mode = Some(
            [
                ReplicationMode::Sync,
                ReplicationMode::SemiSync,
                ReplicationMode::Async,
            ]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "mode `{value}` is not one of SYNC, SEMI_SYNC, ASYNC"
                ))
            })?,
        );
    }
    Ok(mode)
}

/// Parses the query of a document `GET`: `consistency=...` (any case; default linearizable)
/// and, for follower reads, `max_staleness_ms=N`.
fn parse_read(query: Option<&str>) -> Result<ReadConsistency, ApiError> {
    let mut consistency = None;
    let mut staleness = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "consistency" => consistency = Some(value.to_ascii_lowercase()),
            "max_staleness_ms" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= MAX_STALENESS_MS)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "max_staleness_ms `{value}` is not a whole number of milliseconds \
                             from 0 to {MAX_STALENESS_MS}"
                        ))
                    })?;
                staleness = Some(ms);
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{key}`; a document read takes `consistency` and \
                     `max_staleness_ms`"
                )))
            }
        }
    }
    match (consistency.as_deref().unwrap_or("linearizable"), staleness) {
        ("linearizable", None) => Ok(ReadConsistency::Linearizable),
        ("leader", None) => Ok(ReadConsistency::LeaderLocal),
        ("follower" | "bounded", Some(ms)) => Ok(ReadConsistency::FollowerBounded {
            max_staleness: Duration::from_millis(ms),
        }),
        ("follower" | "bounded", None) => Err(ApiError::bad_request(
            "a follower read needs max_staleness_ms=N: how many milliseconds behind the leader \
             this node may be",
        )),
        (c @ ("linearizable" | "leader"), Some(_)) => Err(ApiError::bad_request(format!(
            "max_staleness_ms applies to consistency=follower or bounded only, not to `{c}`"
        ))),
        (other, _) => Err(ApiError::bad_request(format!(
            "consistency `{other}` is not one of {CONSISTENCY_VALUES}"
        ))),
    }
}

/// The WAL stores collection and document id lengths as u16; refusing longer keys here keeps
/// them from ever reaching the log.
fn check_key(collection: &str, id: &str) -> Result<(), ApiError> {
    for (what, value) in [("collection", collection), ("document id", id)] {
        if value.len() > usize::from(u16::MAX) {
            return Err(ApiError::bad_request(format!(
                "the {what} is {} bytes; the limit is {}",
                value.len(),
                u16::MAX
            )));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct WriteReply {
    lsn: Lsn,
    mode: &'static str,
}

async fn write(
    state: &AppState,
    write: ClientWrite,
    mode: Option<ReplicationMode>,
) -> Result<Json<WriteReply>, ApiError> {
    let effective = mode.unwrap_or(state.node.policy().mode);
    let started = Instant::now();
    let outcome = state.node.append(write, mode).await;
    let result = match &outcome {
        Ok(_) => WriteResult::Ok,
        Err(ConsensusError::NotDurable { .. } | ConsensusError::NotLeader { .. }) => {
            WriteResult::NotDurable
        }
        Err(ConsensusError::Unknown { .. } | ConsensusError::Timeout(..)) => WriteResult::Unknown,
        Err(_) => WriteResult::Error,
    };
    state
        .metrics
        .observe_write(effective, result, started.elapsed());
    let lsn = outcome?;
    Ok(Json(WriteReply {
        lsn,
        mode: effective.as_str(),
    }))
}

async fn put_doc(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<WriteReply>, ApiError> {
    let mode = parse_mode(query.as_deref())?;
    check_key(&collection, &id)?;
    let payload: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body could not be read within the {MAX_BODY_BYTES}-byte limit: {e}"),
            )
        })?;
    let w = ClientWrite::new(Operation::Update, collection, id, payload.to_vec());
    write(&state, w, mode).await
}

async fn delete_doc(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<WriteReply>, ApiError> {
    let mode = parse_mode(query.as_deref())?;
    check_key(&collection, &id)?;
    let w = ClientWrite::new(Operation::Delete, collection, id, Vec::new());
    write(&state, w, mode).await
}

async fn get_doc(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let consistency = parse_read(query.as_deref())?;
    check_key(&collection, &id)?;
    let found = state
        .node
        .read(&collection, &id, consistency)
        .await
        .map_err(|e| {
            let stale = matches!(e, ConsensusError::Stale { .. });
            let mut e = ApiError::from(e);
            if stale {
                // The leader is always fresh enough.
                e.leader = state.node.leader().filter(|&l| l != state.node.id());
            }
            e
        })?;
    match found {
        Some(payload) => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            payload,
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no document {collection}/{id} on this node"),
        )),
    }
}

/// `GET /v1/status` body.
#[derive(Debug, Serialize)]
pub struct StatusReply {
    pub id: NodeId,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_lsn: Option<Lsn>,
    pub durable_lsn: Lsn,
    pub commit_lsn: Option<Lsn>,
    pub applied_lsn: Option<Lsn>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub mode: &'static str,
    pub min_sync_replicas: u32,
    /// Empty unless this node is the leader.
    pub followers: Vec<FollowerReply>,
}

#[derive(Debug, Serialize)]
pub struct FollowerReply {
    pub id: NodeId,
    pub voter: bool,
    pub matched_lsn: Option<Lsn>,
    pub lag_entries: u64,
    /// Record bytes the follower lacks (an estimate, see `replication_core::consensus::health`).
    pub lag_bytes: u64,
    /// How long the oldest entry the follower lacks has been in the leader's log; 0 when
    /// caught up.
    pub lag_ms: u64,
    /// The lag alert for this follower is raised.
    pub lag_alert: bool,
    /// Milliseconds since the send of the latest RPC the follower acknowledged.
    pub last_ack_ms: Option<u64>,
}

impl From<NodeStatus> for StatusReply {
    fn from(s: NodeStatus) -> Self {
        StatusReply {
            id: s.id,
            role: role_name(s.role),
            term: s.term,
            leader: s.leader,
            last_lsn: s.last_lsn,
            durable_lsn: s.durable_lsn,
            commit_lsn: s.commit_lsn,
            applied_lsn: s.applied_lsn,
            voters: s.voters.into_iter().collect(),
            learners: s.learners.into_iter().collect(),
            mode: s.policy.mode.as_str(),
            min_sync_replicas: s.policy.min_sync_replicas,
            followers: s
                .followers
                .into_iter()
                .map(|f| FollowerReply {
                    id: f.id,
                    voter: f.voter,
                    matched_lsn: f.matched_lsn,
                    lag_entries: f.lag_entries,
                    lag_bytes: f.lag_bytes,
                    lag_ms: f.lag_ms,
                    lag_alert: f.lag_alert,
                    last_ack_ms: f
                        .last_ack
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                })
                .collect(),
        }
    }
}

async fn status(State(state): State<AppState>) -> Json<StatusReply> {
    Json(state.node.status().into())
}

/// `GET /v1/hash` body.
#[derive(Debug, Serialize)]
pub struct HashReply {
    /// [`DocumentStore::content_hash`] as 16 lower-case hex digits (a string, so JSON readers
    /// limited to 53-bit integers see it intact).
    pub content_hash: String,
    /// The highest LSN applied to the store (`null`: nothing yet), read in a separate
    /// transaction: equal hashes mean equal content only once writes have stopped.
    pub applied_lsn: Option<Lsn>,
}

async fn hash(State(state): State<AppState>) -> Result<Json<HashReply>, ApiError> {
    let store = Arc::clone(&state.store);
    let (hash, applied) = tokio::task::spawn_blocking(move || {
        Ok::<_, replication_core::store::StoreError>((store.content_hash()?, store.last_applied()?))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(HashReply {
        content_hash: format!("{hash:016x}"),
        applied_lsn: applied.map(|(lsn, _)| lsn),
    }))
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state
        .metrics
        .render(&state.node)
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parsing_accepts_config_spellings_and_refuses_the_rest() {
        assert_eq!(parse_mode(None).unwrap(), None);
        assert_eq!(
            parse_mode(Some("mode=semi_sync")).unwrap(),
            Some(ReplicationMode::SemiSync)
        );
        assert_eq!(
            parse_mode(Some("mode=SYNC")).unwrap(),
            Some(ReplicationMode::Sync)
        );
        let e = parse_mode(Some("mode=fast")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("SEMI_SYNC"), "{}", e.message);
        assert!(parse_mode(Some("durable=1")).is_err());
    }

    #[test]
    fn consensus_errors_map_to_retry_semantics() {
        let e: ApiError = ConsensusError::NotDurable {
            reason: "x".into(),
            leader: Some(2),
        }
        .into();
        assert_eq!(
            (e.status, e.leader),
            (StatusCode::SERVICE_UNAVAILABLE, Some(2))
        );
        let e: ApiError = ConsensusError::Unknown {
            lsn: Some(9),
            reason: "y".into(),
        }
        .into();
        assert_eq!((e.status, e.lsn), (StatusCode::GATEWAY_TIMEOUT, Some(9)));
        let e: ApiError = ConsensusError::Invalid("z".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn refused_reads_are_503_with_retry_after_and_the_error_text() {
        for err in [
            ConsensusError::Stale {
                staleness: Some(Duration::from_millis(40)),
                bound: Duration::ZERO,
            },
            ConsensusError::Stale {
                staleness: None,
                bound: Duration::from_secs(1),
            },
            ConsensusError::QuorumUnavailable("2 of 3 did not answer".into()),
        ] {
            let text = err.to_string();
            let e: ApiError = err.into();
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
            assert_eq!(e.message, text);
            let r = e.into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
        }
        // A refused write names the leader to retry on and needs no wait.
        let r = ApiError::from(ConsensusError::NotLeader { leader: Some(3) }).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn read_consistency_parsing() {
        assert_eq!(parse_read(None).unwrap(), ReadConsistency::Linearizable);
        assert_eq!(
            parse_read(Some("consistency=Linearizable")).unwrap(),
            ReadConsistency::Linearizable
        );
        assert_eq!(
            parse_read(Some("consistency=leader")).unwrap(),
            ReadConsistency::LeaderLocal
        );
        for q in [
            "consistency=follower&max_staleness_ms=250",
            "max_staleness_ms=250&consistency=BOUNDED",
        ] {
            assert_eq!(
                parse_read(Some(q)).unwrap(),
                ReadConsistency::FollowerBounded {
                    max_staleness: Duration::from_millis(250)
                },
                "{q}"
            );
        }
        assert_eq!(
            parse_read(Some("consistency=follower&max_staleness_ms=0")).unwrap(),
            ReadConsistency::FollowerBounded {
                max_staleness: Duration::ZERO
            }
        );
        let bad = |q: &str| {
            let e = parse_read(Some(q)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{q}");
            e.message
        };
        let m = bad("consistency=eventual");
        for value in ["linearizable", "leader", "follower", "bounded"] {
            assert!(m.contains(value), "{m}");
        }
        for q in [
            "consistency=follower&max_staleness_ms=abc",
            "consistency=follower&max_staleness_ms=-1",
            "consistency=follower&max_staleness_ms=",
            "consistency=follower&max_staleness_ms=18446744073709551615",
        ] {
            assert!(bad(q).contains("max_staleness_ms"), "{q}");
        }
        assert!(bad("consistency=follower").contains("max_staleness_ms=N"));
        assert!(bad("consistency=leader&max_staleness_ms=5").contains("follower"));
        assert!(bad("mode=SYNC").contains("consistency"));
    }

    #[test]
    fn overlong_keys_are_refused_before_the_log() {
        let long = "x".repeat(usize::from(u16::MAX) + 1);
        assert!(check_key("users", "a").is_ok());
        assert_eq!(
            check_key(&long, "a").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(check_key("users", &long).is_err());
    }
}
