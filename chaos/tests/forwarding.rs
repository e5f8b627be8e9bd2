//! Plain forwarding, the loopback guard and killing connections.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use replication_chaos::{ChaosError, FaultProxy, KillMode, ProxyMesh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 8 MiB up and back through the proxy, byte for byte, with a half-close at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_8_mib_both_ways_byte_exact() {
    let echo = echo_server().await;
    let proxy = proxy_to(echo.addr).await;
    let mut data = vec![0u8; 8 << 20];
    StdRng::seed_from_u64(42).fill_bytes(&mut data);

    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    // read_to_end returns only when the echo's half-close came back through the proxy.
    within(r.read_to_end(&mut back)).await.unwrap();
    within(writer).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");

    let stats = proxy.handle().stats();
    assert_eq!(stats.up.bytes_forwarded, data.len() as u64);
    assert_eq!(stats.down.bytes_forwarded, data.len() as u64);
    assert_eq!(stats.connections_accepted, 1);
    eventually("connection to close", || {
        proxy.handle().stats().connections_active == 0
    })
    .await;
}

#[tokio::test]
async fn non_loopback_addresses_are_refused() {
    let echo = echo_server().await;
    let cases = [
        ("10.0.0.1:0", echo.addr.to_string()),
        ("0.0.0.0:0", echo.addr.to_string()),
        ("[::1]:0", echo.addr.to_string()),
        ("127.0.0.1:0", "192.0.2.1:80".to_string()),
        ("127.0.0.1:0", "[::1]:80".to_string()),
    ];
    for (listen, target) in cases {
        let err = FaultProxy::start(listen.parse().unwrap(), target.parse().unwrap())
            .await
            .expect_err("non-loopback address accepted");
        assert!(matches!(err, ChaosError::NotLoopback { .. }), "{err:?}");
        assert!(err.to_string().contains("loopback"), "{err}");
    }
    let err = ProxyMesh::start([(1, echo.addr), (2, "192.0.2.1:80".parse().unwrap())])
        .await
        .expect_err("mesh with a non-loopback node accepted");
    assert!(err.to_string().contains("loopback"), "{err}");
}

async fn live_connection(proxy: &FaultProxy) -> TcpStream {
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut s, 2).await, b"hi");
    s
}

#[tokio::test]
async fn kill_resets_live_connections_and_new_ones_work() {
    let echo = echo_server().await;
    let proxy = proxy_to(echo.addr).await;
    let mut a = live_connection(&proxy).await;
    let mut b = live_connection(&proxy).await;

    assert_eq!(proxy.handle().kill_connections(KillMode::Reset), 2);
    for s in [&mut a, &mut b] {
        let mut buf = [0u8; 8];
        let err = within(s.read(&mut buf))
            .await
            .expect_err("read after a reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }
    eventually("kills to be counted", || {
        proxy.handle().stats().connections_killed == 2
    })
    .await;

    // The listener is untouched: a new connection works.
    live_connection(&proxy).await;
    assert_eq!(proxy.handle().stats().connections_killed, 2);
}

#[tokio::test]
async fn kill_with_close_sends_eof() {
    let echo = echo_server().await;
    let proxy = proxy_to(echo.addr).await;
    let mut a = live_connection(&proxy).await;
    assert_eq!(proxy.handle().kill_connections(KillMode::Close), 1);
    let mut buf = [0u8; 8];
    assert_eq!(within(a.read(&mut buf)).await.expect("orderly close"), 0);
    eventually("kill to be counted", || {
        proxy.handle().stats().connections_killed == 1
    })
    .await;
}

#[tokio::test]
async fn refused_connections_are_reset_until_accepted_again() {
    let echo = echo_server().await;
    let proxy = proxy_to(echo.addr).await;
    let live = live_connection(&proxy).await;
    proxy.handle().refuse_new(None);
    assert!(proxy.handle().faults().refuse_new);

    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buf = [0u8; 8];
    let err = within(s.read(&mut buf))
        .await
        .expect_err("refused connection readable");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    eventually("refusal to be counted", || {
        proxy.handle().stats().connections_refused == 1
    })
    .await;

    // The live connection was not touched.
    let mut live = live;
    live.write_all(b"ok").await.unwrap();
    assert_eq!(read_n(&mut live, 2).await, b"ok");

    proxy.handle().accept_new();
    live_connection(&proxy).await;
    assert_eq!(proxy.handle().stats().connections_accepted, 2);
}
