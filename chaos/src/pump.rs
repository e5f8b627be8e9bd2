//! One direction of a proxied connection: a reader that decides each chunk's fate, a queue,
//! and a writer that releases the chunks at their time.
//!
//! The unit of every fault is a *chunk*: the bytes one `read` returned (at most 16 KiB). How
//! a byte stream is cut into chunks depends on timing, so a probabilistic fault is
//! reproducible from the seed only as far as the chunking is.
//!
//! Splitting reader and writer keeps the delay a pure latency: the reader goes on reading
//! while earlier chunks wait for their release time, so a delayed link keeps its bandwidth.

use std::io;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::faults::{Direction, PartitionMode};
use crate::proxy::{LinkNow, Shared};
use crate::seed::rng_for;
use crate::stats::add;
use crate::throttle::TokenBucket;

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight between reader and writer (up to 4 MiB): enough for a delayed link to
/// keep its bandwidth, bounded so a stalled peer pushes back on the sender.
const QUEUE: usize = 256;

/// A chunk on its way to the writer.
struct Chunk {
    data: Vec<u8>,
    /// Not written before this instant (the delay).
    release: Instant,
    /// 1, or 2 when duplicated.
    copies: u8,
}

/// Forwards `src` to `dst` under the faults of `dir` until `src` ends, then half-closes `dst`.
pub(crate) async fn pump<R, W>(
    shared: &Shared,
    conn_id: u64,
    dir: Direction,
    src: R,
    dst: W,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::try_join!(
        read_side(shared, conn_id, dir, src, tx),
        write_side(shared, dir, dst, rx)
    )?;
    Ok(())
}

/// Returns the faults of `dir` once it is not held by a [`PartitionMode::Hold`] partition,
/// waking on every fault change and at the partition's own deadline.
async fn pass_hold(shared: &Shared, dir: Direction, changes: &mut watch::Receiver<u64>) -> LinkNow {
    wait_partition(shared, dir, changes, false).await
}

/// Like [`pass_hold`], and when `any_mode` also waits out a blackhole partition.
async fn wait_partition(
    shared: &Shared,
    dir: Direction,
    changes: &mut watch::Receiver<u64>,
    any_mode: bool,
) -> LinkNow {
    loop {
        // Mark the current version seen *before* reading the state, so a change made
        // between the read and the wait is not missed.
        changes.borrow_and_update();
        let now = shared.link(dir);
        let blocked = match now.faults.partition {
            Some(PartitionMode::Hold) => true,
            Some(PartitionMode::Blackhole) => any_mode,
            None => false,
        };
        if !blocked {
            return now;
        }
        match now.faults.partition_until {
            Some(until) => {
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep_until(until.into()) => {}
                }
            }
            // The sender lives in `shared`, which outlives this borrow, so this cannot fail.
            None => {
                let _ = changes.changed().await;
            }
        }
    }
}

async fn read_side<R: AsyncRead + Unpin>(
    shared: &Shared,
    conn_id: u64,
    dir: Direction,
    mut src: R,
    tx: mpsc::Sender<Chunk>,
) -> io::Result<()> {
    let counters = shared.counters.dir(dir);
    let mut changes = shared.changes.subscribe();
    let mut rng: Option<(u64, StdRng)> = None;
    let mut last_release = Instant::now();
    let mut held: Option<Chunk> = None;
    loop {
        // Under a held partition nothing is read: the bytes stay in the kernel and the
        // sender feels TCP backpressure, as over a cut link.
        pass_hold(shared, dir, &mut changes).await;
        let mut buf = vec![0u8; CHUNK];
        let n = if held.is_some() {
            tokio::select! {
                r = src.read(&mut buf) => r?,
                // A stream that goes quiet is never stalled by the fault.
                _ = tokio::time::sleep(shared.reorder_max_hold) => {
                    if let Some(h) = held.take() {
                        send(&tx, h).await?;
                    }
                    continue;
                }
            }
        } else {
            src.read(&mut buf).await?
        };
        if n == 0 {
            if let Some(h) = held.take() {
                send(&tx, h).await?;
            }
            // The end of the stream (FIN) does not cross a partition of either mode: TCP
            // would retransmit it until the link is back, so it is passed on after the heal.
            wait_partition(shared, dir, &mut changes, true).await;
            // Dropping `tx` lets the writer drain the queue and half-close its side.
            return Ok(());
        }
        buf.truncate(n);

        // A partition may have started while the read was pending.
        let now = pass_hold(shared, dir, &mut changes).await;
        let f = now.faults;
        if f.partition == Some(PartitionMode::Blackhole) {
            add(&counters.blackholed, n);
            continue;
        }
        let rng = match &mut rng {
            Some((generation, rng)) if *generation == now.seed_generation => rng,
            slot => {
                &mut slot
                    .insert((now.seed_generation, rng_for(now.seed, conn_id, dir)))
                    .1
            }
        };
        if f.drop > 0.0 && rng.random_bool(f.drop) {
            add(&counters.dropped, n);
            continue;
        }
        let copies = if f.duplicate > 0.0 && rng.random_bool(f.duplicate) {
            2
        } else {
            1
        };
        let delay = f.delay.map(|d| d.sample(rng)).unwrap_or_default();
        if !delay.is_zero() {
            add(&counters.delayed, n);
        }
        // Never earlier than the chunk before: jitter must not reorder the stream.
        let release = (Instant::now() + delay).max(last_release);
        last_release = release;
        let chunk = Chunk {
            data: buf,
            release,
            copies,
        };
        if let Some(h) = held.take() {
            // `h` was released no later than `chunk`, so the writer sends it right after.
            send(&tx, chunk).await?;
            send(&tx, h).await?;
            add(&counters.reordered, 1);
        } else if f.reorder > 0.0 && rng.random_bool(f.reorder) {
            held = Some(chunk);
            add(&counters.held, 1);
        } else {
            send(&tx, chunk).await?;
        }
    }
}

async fn send(tx: &mpsc::Sender<Chunk>, chunk: Chunk) -> io::Result<()> {
    tx.send(chunk)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "proxy writer has stopped"))
}

async fn write_side<W: AsyncWrite + Unpin>(
    shared: &Shared,
    dir: Direction,
    mut dst: W,
    mut rx: mpsc::Receiver<Chunk>,
) -> io::Result<()> {
    let counters = shared.counters.dir(dir);
    let mut changes = shared.changes.subscribe();
    let mut bucket = TokenBucket::new();
    while let Some(chunk) = rx.recv().await {
        tokio::time::sleep_until(chunk.release.into()).await;
        for copy in 0..chunk.copies {
            // Checked again here so a partition also stops the chunks already queued.
            let now = pass_hold(shared, dir, &mut changes).await;
            if now.faults.partition == Some(PartitionMode::Blackhole) {
                add(&counters.blackholed, chunk.data.len());
                continue;
            }
            write_throttled(shared, dir, &mut dst, &chunk.data, &mut bucket).await?;
            add(&counters.forwarded, chunk.data.len());
            if copy > 0 {
                add(&counters.duplicated, chunk.data.len());
            }
        }
    }
    // The source ended: pass the half-close on, after the last byte.
    dst.shutdown().await
}

/// Writes `data`, in pieces paced by the token bucket while a throttle is set. The throttle
/// is looked up per piece so that setting or lifting it applies within a piece's time.
async fn write_throttled<W: AsyncWrite + Unpin>(
    shared: &Shared,
    dir: Direction,
    dst: &mut W,
    data: &[u8],
    bucket: &mut TokenBucket,
) -> io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        let n = match shared.link(dir).faults.throttle {
            None => {
                bucket.reset();
                rest.len()
            }
            Some(rate) => {
                let n = rest.len().min(TokenBucket::piece(rate));
                let wait = bucket.take(n, rate);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                n
            }
        };
        dst.write_all(&rest[..n]).await?;
        rest = &rest[n..];
    }
    Ok(())
}
