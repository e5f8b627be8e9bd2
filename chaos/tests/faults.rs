//! Each fault on a real connection, checked by bytes received and counters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use replication_chaos::{Delay, Direction, Directions, PartitionMode, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn one_way_hold_partition_blocks_only_that_way_and_heal_delivers() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults.partition(Directions::Up, PartitionMode::Hold, None);

    client.write_all(b"ping").await.unwrap();
    assert_quiet(&mut server).await;
    // The other direction still flows.
    server.write_all(b"pong").await.unwrap();
    assert_eq!(read_n(&mut client, 4).await, b"pong");

    faults.heal(Directions::Both);
    // Held bytes were kept: they arrive intact after the heal.
    assert_eq!(read_n(&mut server, 4).await, b"ping");
    let stats = faults.stats();
    assert_eq!(stats.up.bytes_forwarded, 4);
    assert_eq!(stats.down.bytes_forwarded, 4);
    assert_eq!(stats.up.bytes_blackholed, 0);
}

#[tokio::test]
async fn blackhole_partition_discards_and_heal_restores_new_bytes() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults.partition(Directions::Down, PartitionMode::Blackhole, None);
    assert_eq!(
        faults.faults().down.partition,
        Some(PartitionMode::Blackhole)
    );
    assert_eq!(faults.faults().up.partition, None);

    server.write_all(b"lost").await.unwrap();
    eventually("bytes to be blackholed", || {
        faults.stats().down.bytes_blackholed == 4
    })
    .await;
    client.write_all(b"up!").await.unwrap();
    assert_eq!(read_n(&mut server, 3).await, b"up!");

    faults.heal(Directions::Down);
    server.write_all(b"kept").await.unwrap();
    // Only the bytes sent after the heal arrive.
    assert_eq!(read_n(&mut client, 4).await, b"kept");
    assert_eq!(faults.stats().down.bytes_forwarded, 4);
}

#[tokio::test]
async fn end_of_stream_waits_for_the_heal_even_in_blackhole() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults.partition(Directions::Up, PartitionMode::Blackhole, None);
    client.write_all(b"gone").await.unwrap();
    client.shutdown().await.unwrap();
    eventually("bytes to be blackholed", || {
        faults.stats().up.bytes_blackholed == 4
    })
    .await;
    // Neither the bytes nor the FIN crossed.
    assert_quiet(&mut server).await;
    faults.heal(Directions::Up);
    let mut rest = Vec::new();
    within(server.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn symmetric_partition_with_duration_clears_itself() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    let hold = Duration::from_millis(400);
    let start = Instant::now();
    faults.partition(Directions::Both, PartitionMode::Hold, Some(hold));
    assert_eq!(faults.faults().up.partition, Some(PartitionMode::Hold));
    assert_eq!(faults.faults().down.partition, Some(PartitionMode::Hold));

    client.write_all(b"late").await.unwrap();
    server.write_all(b"also").await.unwrap();
    assert_eq!(read_n(&mut server, 4).await, b"late");
    assert_eq!(read_n(&mut client, 4).await, b"also");
    // Nothing crossed before the deadline, and nobody called heal.
    assert!(
        start.elapsed() >= hold,
        "partition ended early: {:?}",
        start.elapsed()
    );
    assert!(faults.faults().is_clear(), "{:?}", faults.faults());
}

#[tokio::test]
async fn timed_drop_clears_itself() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults
        .set_drop(Directions::Up, 1.0, Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(faults.faults().up.drop, 1.0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(faults.faults().is_clear(), "{:?}", faults.faults());
    client.write_all(b"through").await.unwrap();
    assert_eq!(read_n(&mut server, 7).await, b"through");
    assert_eq!(faults.stats().up.bytes_dropped, 0);
}

/// A 25 ms + 0..10 ms delay each way: every round trip takes at least 50 ms, and a burst of
/// numbered messages arrives in order despite the jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_latency_and_keeps_order() {
    let echo = echo_server().await;
    let proxy = proxy_to(echo.addr).await;
    let faults = proxy.handle();
    let one_way = Duration::from_millis(25);
    faults.set_delay(
        Directions::Both,
        Delay::new(one_way, Duration::from_millis(10)),
        None,
    );
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.set_nodelay(true).unwrap();

    let rounds = 5u32;
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        s.write_all(&i.to_be_bytes()).await.unwrap();
        assert_eq!(read_n(&mut s, 4).await, i.to_be_bytes());
        let rtt = t.elapsed();
        assert!(rtt >= 2 * one_way, "round trip {i} took {rtt:?}");
    }
    // Loose upper bound: the machine may be busy.
    assert!(start.elapsed() < Duration::from_secs(10));

    // Many small writes, each likely its own chunk with its own jitter draw.
    let (mut r, mut w) = s.into_split();
    let n = 300u32;
    let writer = tokio::spawn(async move {
        for i in 0..n {
            w.write_all(&i.to_be_bytes()).await.unwrap();
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        w
    });
    let mut back = vec![0u8; 4 * n as usize];
    within(r.read_exact(&mut back)).await.unwrap();
    let expected: Vec<u8> = (0..n).flat_map(|i| i.to_be_bytes()).collect();
    assert!(back == expected, "delay reordered the stream");
    within(writer).await.unwrap();

    let stats = faults.stats();
    assert_eq!(stats.up.bytes_delayed, stats.up.bytes_forwarded);
    assert_eq!(stats.up.bytes_forwarded, 4 * u64::from(rounds + n));
    assert!(stats.down.bytes_delayed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_caps_throughput_and_lifting_it_restores_speed() {
    let (proxy, client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    let rate = 256 * 1024;
    faults.set_throttle(Directions::Up, rate, None).unwrap();
    assert_eq!(faults.faults().up.throttle, Some(rate));
    assert_eq!(faults.faults().down.throttle, None);

    let data = vec![7u8; rate as usize];
    let (_r, mut w) = client.into_split();
    let start = Instant::now();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w
    });
    assert_eq!(read_n(&mut server, data.len()).await, data);
    let took = start.elapsed();
    // One second of budget, less at most one 50 ms burst.
    assert!(
        took >= Duration::from_millis(900),
        "256 KiB at 256 KiB/s took {took:?}"
    );
    let mut w = within(writer).await.unwrap();

    faults.clear_throttle(Directions::Up);
    let start = Instant::now();
    w.write_all(&data).await.unwrap();
    assert_eq!(read_n(&mut server, data.len()).await, data);
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn drop_with_p_1_discards_every_chunk() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults.set_drop(Directions::Up, 1.0, None).unwrap();
    client.write_all(b"hello").await.unwrap();
    eventually("bytes to be dropped", || {
        faults.stats().up.bytes_dropped == 5
    })
    .await;
    assert_quiet(&mut server).await;

    faults.set_drop(Directions::Up, 0.0, None).unwrap();
    client.write_all(b"world").await.unwrap();
    assert_eq!(read_n(&mut server, 5).await, b"world");
    let stats = faults.stats();
    assert_eq!(stats.up.bytes_dropped, 5);
    assert_eq!(stats.up.bytes_forwarded, 5);
}

/// True when `received` is `sent` cut into chunks with every chunk repeated twice.
fn is_doubled(received: &[u8], sent: &[u8]) -> bool {
    if sent.is_empty() {
        return received.is_empty();
    }
    (1..=sent.len()).any(|k| {
        received.len() >= 2 * k
            && received[..k] == sent[..k]
            && received[k..2 * k] == sent[..k]
            && is_doubled(&received[2 * k..], &sent[k..])
    })
}

#[tokio::test]
async fn duplicate_with_p_1_sends_every_chunk_twice() {
    let (proxy, mut client, mut server) = pair(ProxyOptions::default()).await;
    let faults = proxy.handle();
    faults.set_duplicate(Directions::Down, 1.0, None).unwrap();
    server.write_all(b"abcdef").await.unwrap();
    let got = read_n(&mut client, 12).await;
    assert!(
        is_doubled(&got, b"abcdef"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let stats = faults.stats();
    assert_eq!(stats.down.bytes_duplicated, 6);
    assert_eq!(stats.down.bytes_forwarded, 12);
    assert_eq!(stats.up.bytes_duplicated, 0);
}

#[tokio::test]
async fn reorder_with_p_1_sends_a_chunk_after_the_next() {
    // A long hold, so the overtaking chunk surely comes before the held one is released.
    let options = ProxyOptions {
        reorder_max_hold: Duration::from_secs(30),
        ..ProxyOptions::default()
    };
    let (proxy, mut client, mut server) = pair(options).await;
    let faults = proxy.handle();
    faults.set_reorder(Directions::Up, 1.0, None).unwrap();
    client.write_all(b"first").await.unwrap();
    // Wait until the proxy holds it, so the next write is a chunk of its own.
    eventually("first chunk to be held", || {
        faults.stats().up.chunks_held == 1
    })
    .await;
    assert_quiet(&mut server).await;
    client.write_all(b"second").await.unwrap();
    assert_eq!(read_n(&mut server, 11).await, b"secondfirst");
    let stats = faults.stats();
    assert_eq!(stats.up.chunks_reordered, 1);
    assert_eq!(stats.up.bytes_forwarded, 11);
}

#[tokio::test]
async fn probabilities_outside_0_1_are_refused_and_seed_is_exposed() {
    let (proxy, _client, _server) = pair(ProxyOptions {
        seed: Some(1234),
        ..ProxyOptions::default()
    })
    .await;
    let faults = proxy.handle();
    assert_eq!(faults.seed(), 1234);
    for p in [-0.1, 1.5, f64::NAN] {
        assert!(faults.set_drop(Directions::Up, p, None).is_err(), "{p}");
    }
    let err = faults
        .set_duplicate(Directions::Both, 2.0, None)
        .unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
    assert!(faults.set_throttle(Directions::Up, 0, None).is_err());
    faults.reseed(99);
    assert_eq!(faults.seed(), 99);
    assert!(faults.faults().get(Direction::Up).is_clear());
}

/// Sends 40 one-byte chunks through a proxy dropping half of them and returns the bytes that
/// arrived. Each byte is its own chunk: the next is written only once the proxy has dealt
/// with the previous one.
async fn survivors_of_half_drop(seed: u64) -> Vec<u8> {
    let (proxy, mut client, mut server) = pair(ProxyOptions {
        seed: Some(seed),
        ..ProxyOptions::default()
    })
    .await;
    let faults = proxy.handle();
    faults.set_drop(Directions::Up, 0.5, None).unwrap();
    for i in 0..40u8 {
        client.write_all(&[i]).await.unwrap();
        let done = u64::from(i) + 1;
        eventually("the byte to be handled", || {
            let s = faults.stats().up;
            s.bytes_dropped + s.bytes_forwarded == done
        })
        .await;
    }
    let forwarded = faults.stats().up.bytes_forwarded as usize;
    assert!(
        forwarded > 0 && forwarded < 40,
        "p = 0.5 kept {forwarded} of 40"
    );
    read_n(&mut server, forwarded).await
}

#[tokio::test]
async fn the_same_seed_drops_the_same_chunks() {
    let first = survivors_of_half_drop(2024).await;
    let again = survivors_of_half_drop(2024).await;
    assert_eq!(first, again, "seed 2024 did not replay");
}
