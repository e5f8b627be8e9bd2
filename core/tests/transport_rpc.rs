//! RPC semantics over the transport: pipelining, errors, panics, timeouts, closed
//! connections, hostile bytes. These run over the development plaintext transport, since they
//! are about the RPC layer; transport_tls.rs covers the TLS path end to end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use replication_core::transport::{
    Listener, PeerInfo, RemoteError, RpcClient, RpcClientOptions, RpcError, RpcServer,
    TransportError, TransportSecurity,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const ECHO: u16 = 1;
/// Waits until the test releases it, then answers "slow".
const BLOCKED: u16 = 2;
const FAIL: u16 = 3;
const PANIC: u16 = 4;
const SLEEP_200MS: u16 = 5;

struct Fixture {
    server: RpcServer,
    release: Arc<Notify>,
    handled: Arc<AtomicU64>,
}

async fn server() -> Fixture {
    let release = Arc::new(Notify::new());
    let handled = Arc::new(AtomicU64::new(0));
    let (r, h) = (release.clone(), handled.clone());
    let listener = Listener::bind(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        TransportSecurity::plaintext_for_development(),
    )
    .await
    .unwrap();
    let server = RpcServer::spawn(listener, move |_peer: PeerInfo, kind, payload: Bytes| {
        let (release, handled) = (r.clone(), h.clone());
        async move {
            handled.fetch_add(1, Ordering::SeqCst);
            match kind {
                ECHO => Ok(payload),
                BLOCKED => {
                    release.notified().await;
                    Ok(Bytes::from_static(b"slow"))
                }
                FAIL => Err(RemoteError::new(format!(
                    "no such key: {}",
                    String::from_utf8_lossy(&payload)
                ))),
                PANIC => panic!("handler bug (expected by the test)"),
                SLEEP_200MS => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(payload)
                }
                _ => Err(RemoteError::new("unknown kind")),
            }
        }
    });
    Fixture {
        server,
        release,
        handled,
    }
}

async fn client(addr: SocketAddr) -> Arc<RpcClient> {
    Arc::new(
        RpcClient::connect(
            addr,
            &TransportSecurity::plaintext_for_development(),
            "unused",
            RpcClientOptions::default(),
        )
        .await
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_request_does_not_hold_up_later_ones_on_the_same_connection() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.call(BLOCKED, Bytes::new()).await })
    };
    // Answered while the first request is still waiting in its handler.
    for i in 0..20u32 {
        let payload = Bytes::from(i.to_le_bytes().to_vec());
        assert_eq!(c.call(ECHO, payload.clone()).await.unwrap(), payload);
    }
    assert!(!slow.is_finished());
    f.release.notify_one();
    assert_eq!(&slow.await.unwrap().unwrap()[..], b"slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_each_get_their_own_response() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    let calls: Vec<_> = (0..200u32)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let payload = Bytes::from(format!("request {i}"));
                let reply = c.call(ECHO, payload.clone()).await.unwrap();
                assert_eq!(reply, payload);
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(f.server.metrics().requests.load(Ordering::SeqCst), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_panics_come_back_as_remote_errors() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    match c.call(FAIL, Bytes::from_static(b"k1")).await {
        Err(RpcError::Remote { message, .. }) => assert_eq!(message, "no such key: k1"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    match c.call(PANIC, Bytes::new()).await {
        Err(RpcError::Remote { message, .. }) => assert!(message.contains("panicked")),
        other => panic!("expected a remote error, got {other:?}"),
    }
    // The connection and the server survive both.
    assert_eq!(
        &c.call(ECHO, Bytes::from_static(b"still here"))
            .await
            .unwrap()[..],
        b"still here"
    );
    assert_eq!(f.server.metrics().handler_errors.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_does_not_confuse_later_calls() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    let err = c
        .call_with_timeout(
            SLEEP_200MS,
            Bytes::from_static(b"late"),
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err}");
    // The late answer to the timed-out request arrives meanwhile and must be discarded, not
    // delivered to this call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        &c.call(ECHO, Bytes::from_static(b"fresh")).await.unwrap()[..],
        b"fresh"
    );
    assert!(!c.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_fails_pending_and_later_calls_promptly() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    assert_eq!(
        &c.call(ECHO, Bytes::from_static(b"x")).await.unwrap()[..],
        b"x"
    );
    let pending = {
        let c = c.clone();
        tokio::spawn(async move {
            c.call_with_timeout(BLOCKED, Bytes::new(), Duration::from_secs(60))
                .await
        })
    };
    while f.handled.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f.server.shutdown().await;
    // Bounded well below the call's 60 s timeout: the close is noticed, not waited out.
    let err = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("pending call was not failed when the server went away")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RpcError::Closed { .. }), "{err}");
    assert!(c.is_closed());
    let err = c.call(ECHO, Bytes::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Closed { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_refused_before_sending() {
    let f = server().await;
    let c = client(f.server.local_addr()).await;
    let huge = Bytes::from(vec![0u8; 16 * 1024 * 1024 + 1]);
    let err = c.call(ECHO, huge).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Transport(TransportError::Frame { .. })),
        "{err}"
    );
    assert_eq!(f.handled.load(Ordering::SeqCst), 0);
    assert!(!c.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_close_only_that_connection() {
    let f = server().await;
    let mut raw = tokio::net::TcpStream::connect(f.server.local_addr())
        .await
        .unwrap();
    // Longer than a frame header, so the server can judge it at once.
    raw.write_all(b"GET / HTTP/1.1\r\nHost: replication.example\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server drops the connection without answering.
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut buf))
        .await
        .expect("server kept a hostile connection open")
        .unwrap_or(0);
    assert_eq!(n, 0, "server answered garbage with {buf:?}");
    assert_eq!(f.server.metrics().protocol_errors.load(Ordering::SeqCst), 1);
    assert_eq!(f.handled.load(Ordering::SeqCst), 0);
    // Other peers are unaffected.
    let c = client(f.server.local_addr()).await;
    assert_eq!(
        &c.call(ECHO, Bytes::from_static(b"ok")).await.unwrap()[..],
        b"ok"
    );
}

/// `start_call` queues frames in call order, and a per-connection handler is called in arrival
/// order even when its futures finish in the opposite order: what pipelined AppendEntries rely
/// on. Each connection gets its own handler state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_calls_reach_a_per_connection_handler_in_order() {
    let listener = Listener::bind(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        TransportSecurity::plaintext_for_development(),
    )
    .await
    .unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let seen_by_conn = connections.clone();
    let server = RpcServer::spawn_per_connection(listener, 256, move |_peer| {
        seen_by_conn.fetch_add(1, Ordering::SeqCst);
        let mut order: Vec<u64> = Vec::new();
        move |_kind, payload: Bytes| {
            let n = u64::from_le_bytes(payload[..8].try_into().unwrap());
            order.push(n);
            // Later requests answer sooner, so completion order is reversed.
            let delay = Duration::from_micros(200 * (100 - n.min(100)));
            let in_order = order.iter().copied().eq(0..order.len() as u64);
            async move {
                tokio::time::sleep(delay).await;
                if in_order {
                    Ok(payload)
                } else {
                    Err(RemoteError::new(format!(
                        "request {n} arrived out of order"
                    )))
                }
            }
        }
    });
    let c = client(server.local_addr()).await;
    let calls: Vec<_> = (0..100u64)
        .map(|n| {
            c.start_call(
                ECHO,
                Bytes::copy_from_slice(&n.to_le_bytes()),
                Duration::from_secs(5),
            )
            .unwrap()
        })
        .collect();
    for (n, call) in calls.into_iter().enumerate() {
        let body = call.await.unwrap();
        assert_eq!(u64::from_le_bytes(body[..8].try_into().unwrap()), n as u64);
    }
    // A second connection starts its own sequence.
    let c2 = client(server.local_addr()).await;
    let first = c2
        .start_call(
            ECHO,
            Bytes::copy_from_slice(&0u64.to_le_bytes()),
            Duration::from_secs(5),
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&first[..8], &0u64.to_le_bytes());
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}
