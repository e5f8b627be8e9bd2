//! The follower side of pipelined AppendEntries: one per leader connection.
//!
//! A leader keeps several AppendEntries in flight to each follower (see `network_tls.rs`), so
//! the follower's fsync of one batch overlaps the transfer of the next. Raft must still see them
//! in the order the leader sent them, and each reply must answer its own request. The RPC
//! server hands requests over in arrival order ([`crate::transport::RpcServer::
//! spawn_per_connection`]); this pipeline feeds them, in that order, into one
//! `Raft::stream_append` session and pairs the session's in-order results with the waiting
//! replies.
//!
//! A session ends after its first refusal (a log conflict or a higher vote): openraft stops the
//! stream there, and the leader starts a new session after it sees the refusal. Requests
//! queued behind the refusal are answered with an error (the leader discards them anyway) and
//! the next request starts a new session.

use std::collections::VecDeque;
use std::pin::pin;

use futures_util::StreamExt;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::types::{ConsensusRaft, C};

/// The outcome of one queued request: Raft's result, or why there is none.
pub(crate) type PipelineReply = Result<StreamAppendResult<C>, String>;

struct Submission {
    req: AppendEntriesRequest<C>,
    reply: oneshot::Sender<PipelineReply>,
}

/// Queues AppendEntries of one connection to Raft in order. Dropping it ends the pipeline once
/// the queued requests are answered.
pub(crate) struct AppendPipeline {
    tx: mpsc::UnboundedSender<Submission>,
}

impl AppendPipeline {
    /// Starts the pipeline's task (call within a tokio runtime). `raft` is asked for the
    /// node's Raft at the start of every session, so a server that detached its Raft (or
    /// attached another) is followed rather than a stale handle kept.
    pub(crate) fn start(
        raft: impl Fn() -> Result<ConsensusRaft, String> + Send + 'static,
    ) -> AppendPipeline {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx).instrument(tracing::debug_span!("raft.append_pipeline")));
        AppendPipeline { tx }
    }

    /// True once the task has stopped (a new pipeline is needed).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues `req` behind every request submitted before it. Never blocks: the RPC server
    /// bounds the requests in flight per connection.
    pub(crate) fn submit(&self, req: AppendEntriesRequest<C>) -> oneshot::Receiver<PipelineReply> {
        let (reply, rx) = oneshot::channel();
        // If the task is gone the reply sender is dropped with the message: the caller sees an
        // error instead of waiting.
        let _ = self.tx.send(Submission { req, reply });
        rx
    }
}

type Waiting = VecDeque<oneshot::Sender<PipelineReply>>;

/// Hands `s` to the session's input, or answers it at once if the session has no input left.
fn queue(
    s: Submission,
    input: &Option<mpsc::UnboundedSender<AppendEntriesRequest<C>>>,
    waiting: &mut Waiting,
) {
    match input.as_ref().map(|i| i.send(s.req)) {
        Some(Ok(())) => waiting.push_back(s.reply),
        _ => {
            let _ = s.reply.send(Err("the append session has ended".into()));
        }
    }
}

fn fail_all(waiting: &mut Waiting, reason: &str) {
    for w in waiting.drain(..) {
        let _ = w.send(Err(reason.to_string()));
    }
}

async fn run(
    raft: impl Fn() -> Result<ConsensusRaft, String>,
    mut rx: mpsc::UnboundedReceiver<Submission>,
) {
    let mut open = true;
    while open {
        // A session starts with the next request.
        let Some(first) = rx.recv().await else { return };
        let raft = match raft() {
            Ok(r) => r,
            Err(reason) => {
                let _ = first.reply.send(Err(reason));
                continue;
            }
        };
        let (input_tx, mut input_rx) = mpsc::unbounded_channel::<AppendEntriesRequest<C>>();
        let input = futures_util::stream::poll_fn(move |cx| input_rx.poll_recv(cx));
        let mut results = pin!(raft.stream_append(input));
        let mut input_tx = Some(input_tx);
        let mut waiting = VecDeque::new();
        queue(first, &input_tx, &mut waiting);
        loop {
            tokio::select! {
                sub = rx.recv(), if open => match sub {
                    Some(s) => queue(s, &input_tx, &mut waiting),
                    // The connection is gone: answer what is queued, then stop.
                    None => {
                        open = false;
                        input_tx = None;
                    }
                },
                item = results.next() => {
                    let ended = match item {
                        Some(Ok(result)) => {
                            let refused = result.is_err();
                            if let Some(w) = waiting.pop_front() {
                                let _ = w.send(Ok(result));
                            }
                            refused
                        }
                        Some(Err(fatal)) => {
                            if let Some(w) = waiting.pop_front() {
                                let _ = w.send(Err(format!("this node's consensus stopped: {fatal}")));
                            }
                            true
                        }
                        None => true,
                    };
                    if ended {
                        fail_all(&mut waiting, "the append session ended at an earlier request");
                        break;
                    }
                }
            }
        }
        // `input_tx` is dropped here, which ends what is left of the session.
        drop(input_tx);
    }
}
