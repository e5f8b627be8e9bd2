//! The client / admin HTTP API (HTTP/1.1, JSON).
//!
//! | request | answer |
//! |---|---|
//! | `PUT /v1/docs/{collection}/{id}[?mode=SYNC\|SEMI_SYNC\|ASYNC]`, body = payload | `200 {"lsn", "mode"}` |
//! | `DELETE /v1/docs/{collection}/{id}[?mode=...]` | `200 {"lsn", "mode"}` |
//! | `GET /v1/docs/{collection}/{id}` | `200` payload bytes, or `404 {"error"}` |
//! | `GET /v1/status` | `200` node status as JSON |
//! | `GET /v1/hash` | `200 {"content_hash", "applied_lsn"}`: this node's store (replicas agree iff equal) |
//! | `GET /metrics` | Prometheus text format |
//!
//! Writes go through consensus and are acknowledged per the mode (the node's current mode when
//! none is given). A PUT is an upsert and is logged as an `Update` record: the store treats
//! insert and update alike, and telling them apart would need a read racing other writers.
//! Reads come from this node's store: on a follower, or on a leader whose store has not yet
//! applied a just-acknowledged write, they can be stale. Consistent reads arrive with the
//! node's read API (issue 3, point 5).
//!
//! Errors are `{"error": message}` plus, where known, `"leader"` (the node to retry on) and
//! `"lsn"`:
//! - 400 invalid request (bad mode, key too long, SYNC with min_sync_replicas = 0, ...);
//! - 413 body over [`MAX_BODY_BYTES`];
//! - 503 the write was *not* appended (not the leader, not enough replicas): safe to retry,
//!   on `leader` if given;
//! - 504 the outcome is unknown (acknowledgements not gathered in time): the write may still
//!   commit, so deduplicate before retrying;
//! - 500 storage or consensus failure.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use replication_core::config::ReplicationMode;
use replication_core::consensus::{ClientWrite, ConsensusError, NodeStatus, ReplicationNode};
use replication_core::store::DocumentStore;
use replication_core::wal::Operation;
use replication_core::{Lsn, NodeId};
use serde::Serialize;

use crate::metrics::{role_name, NodeMetrics, WriteResult};

/// Largest accepted request body. The WAL takes records up to 256 MiB, but the admin API
/// buffers a whole body in memory, so it keeps a lower bound.
pub const MAX_BODY_BYTES: usize = 16 << 20;

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
        let (status, leader, lsn) = match e {
            ConsensusError::NotDurable { leader, .. } | ConsensusError::NotLeader { leader } => {
                (StatusCode::SERVICE_UNAVAILABLE, leader, None)
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
        (self.status, Json(body)).into_response()
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
) -> Result<Response, ApiError> {
    let store = Arc::clone(&state.store);
    let (c, d) = (collection.clone(), id.clone());
    let found = tokio::task::spawn_blocking(move || store.get(&c, &d))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
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
