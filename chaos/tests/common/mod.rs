//! Real TCP servers and clients on 127.0.0.1 for the proxy tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use replication_chaos::{FaultProxy, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Generous bound for anything that should happen "now": the machine may be busy.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long a test waits to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// An echo server; aborted when dropped.
pub struct Echo {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn echo_server() -> Echo {
    let listener = TcpListener::bind(any_port()).await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                // Echo until the client half-closes, then half-close back.
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    Echo { addr, task }
}

/// A proxy with a fixed seed in front of `target`.
pub async fn proxy_to(target: SocketAddr) -> FaultProxy {
    proxy_with(target, ProxyOptions::default()).await
}

pub async fn proxy_with(target: SocketAddr, mut options: ProxyOptions) -> FaultProxy {
    options.seed.get_or_insert(0x5eed);
    FaultProxy::start_with(any_port(), target, options)
        .await
        .expect("start proxy")
}

/// A connection through a new proxy, with the test holding both ends: returns the proxy, the
/// client end and the server end.
pub async fn pair(options: ProxyOptions) -> (FaultProxy, TcpStream, TcpStream) {
    let listener = TcpListener::bind(any_port()).await.expect("bind server");
    let proxy = proxy_with(listener.local_addr().expect("addr"), options).await;
    let client = TcpStream::connect(proxy.local_addr())
        .await
        .expect("connect proxy");
    let (server, _) = within(listener.accept()).await.expect("accept");
    (proxy, client, server)
}

/// Awaits `f`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .expect("timed out waiting")
}

/// Reads exactly `n` bytes (fails the test on error or after [`PATIENCE`]).
pub async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within(s.read_exact(&mut buf)).await.expect("read");
    buf
}

/// Asserts that nothing can be read from `s` for [`QUIET`].
pub async fn assert_quiet(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(QUIET, s.read(&mut buf)).await {
        Err(_) => {}
        Ok(r) => panic!("expected no bytes, got {r:?} ({:?})", &buf[..4]),
    }
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
