//! The leader side of pipelined AppendEntries: a stream of replies to a stream of requests, with
//! up to `window` requests in flight on the peer's connection.
//!
//! openraft's default `stream_append` sends a request and waits for its reply before it takes
//! the next one, so a follower's throughput was one batch per round trip, and that round trip
//! includes the follower's fsync. Here each request is queued on the connection as soon as
//! openraft produces it (while the window has room), so batch k+1 travels while the follower
//! syncs batch k. Replies come back in request order (`FuturesOrdered`), as openraft requires;
//! the follower keeps the order on its side (`append_pipeline.rs`).
//!
//! The stream ends after the first error or refusal (the contract of `stream_append`); the
//! requests still in flight are forgotten, and openraft resends from what was acknowledged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesOrdered, Stream, StreamExt};
use openraft::errors::RPCError;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};

use super::append_codec;
use super::network_tls::{network_error, ErrorMap};
use super::rpc_kinds::KIND_APPEND_STREAM;
use super::types::C;
use crate::transport::RpcClient;

type Reply = Result<StreamAppendResult<C>, RPCError<C>>;
type InFlight = Pin<Box<dyn Future<Output = Reply> + Send>>;

pub(super) struct PipelinedAppends<S> {
    /// `None` once exhausted or after an error.
    input: Option<S>,
    client: Arc<RpcClient>,
    errors: Arc<ErrorMap>,
    window: usize,
    inflight: FuturesOrdered<InFlight>,
    ended: bool,
}

impl<S> PipelinedAppends<S>
where
    S: Stream<Item = AppendEntriesRequest<C>> + Unpin,
{
    pub(super) fn new(input: S, client: Arc<RpcClient>, errors: ErrorMap, window: usize) -> Self {
        PipelinedAppends {
            input: Some(input),
            client,
            errors: Arc::new(errors),
            window: window.max(1),
            inflight: FuturesOrdered::new(),
            ended: false,
        }
    }

    /// Encodes `req` and queues it on the connection now, so requests leave in input order.
    fn send(&self, req: &AppendEntriesRequest<C>) -> InFlight {
        let errors = self.errors.clone();
        let client = self.client.clone();
        let started = append_codec::encode_request(req)
            .map_err(network_error)
            .map(|payload| client.start_call(KIND_APPEND_STREAM, payload, errors.ttl()));
        Box::pin(async move {
            let result = match started? {
                Ok(reply) => reply.await,
                Err(e) => Err(e),
            };
            let body = errors.map(result, &client).await?;
            append_codec::decode_result(&body).map_err(network_error)
        })
    }
}

impl<S> Stream for PipelinedAppends<S>
where
    S: Stream<Item = AppendEntriesRequest<C>> + Unpin,
{
    type Item = Reply;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        while this.inflight.len() < this.window {
            let Some(input) = this.input.as_mut() else {
                break;
            };
            match input.poll_next_unpin(cx) {
                Poll::Ready(Some(req)) => {
                    let call = this.send(&req);
                    this.inflight.push_back(call);
                }
                Poll::Ready(None) => this.input = None,
                Poll::Pending => break,
            }
        }
        match this.inflight.poll_next_unpin(cx) {
            Poll::Ready(Some(reply)) => {
                if !matches!(reply, Ok(Ok(_))) {
                    this.ended = true;
                    this.input = None;
                    this.inflight = FuturesOrdered::new();
                }
                Poll::Ready(Some(reply))
            }
            // Nothing in flight: done if the input is, else its waker is registered above.
            Poll::Ready(None) if this.input.is_none() => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}
