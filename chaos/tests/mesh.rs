//! `ProxyMesh` over three echo "nodes".

mod common;

use std::collections::BTreeSet;

use common::*;
use replication_chaos::{ChaosError, MeshOptions, NodeId, PartitionMode, ProxyMesh};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn echo_via(mesh: &ProxyMesh, from: NodeId, to: NodeId) -> TcpStream {
    let mut s = TcpStream::connect(mesh.addr_for(from, to).unwrap())
        .await
        .unwrap();
    s.write_all(b"hi").await.unwrap();
    s
}

fn partitioned(mesh: &ProxyMesh, from: NodeId, to: NodeId) -> (bool, bool) {
    let f = mesh.link(from, to).unwrap().handle().faults();
    (f.up.partition.is_some(), f.down.partition.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_maps_every_pair_and_cuts_links() {
    let nodes = [
        echo_server().await,
        echo_server().await,
        echo_server().await,
    ];
    let mesh = ProxyMesh::start_with(
        (1..=3).zip(nodes.iter().map(|e| e.addr)),
        MeshOptions {
            seed: Some(7),
            partition_mode: PartitionMode::Hold,
        },
    )
    .await
    .unwrap();
    assert_eq!(mesh.seed(), 7);

    // Mapping: one proxy per ordered pair, distinct from the real addresses.
    assert_eq!(mesh.addr_for(1, 1), None);
    assert_eq!(mesh.addr_for(1, 4), None);
    let peers = mesh.peer_addrs(1);
    assert_eq!(peers.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    let all: BTreeSet<_> = mesh
        .nodes()
        .flat_map(|f| mesh.peer_addrs(f).into_values())
        .collect();
    assert_eq!(all.len(), 6);
    assert_eq!(mesh.link(1, 2).unwrap().target_addr(), nodes[1].addr);
    assert_eq!(mesh.node_addr(3), Some(nodes[2].addr));

    // partition(1, 2): 1 -> 2 stalls, 1 -> 3 works, heal delivers.
    mesh.partition(1, 2, None).unwrap();
    assert_eq!(partitioned(&mesh, 1, 2), (true, true));
    assert_eq!(partitioned(&mesh, 2, 1), (true, true));
    assert_eq!(partitioned(&mesh, 1, 3), (false, false));
    let mut cut = echo_via(&mesh, 1, 2).await;
    assert_quiet(&mut cut).await;
    let mut open = echo_via(&mesh, 1, 3).await;
    assert_eq!(read_n(&mut open, 2).await, b"hi");
    mesh.heal_all();
    assert_eq!(read_n(&mut cut, 2).await, b"hi");

    // One way: bytes from 1 to 2 are cut on both connections, the rest flows.
    mesh.partition_one_way(1, 2, None).unwrap();
    assert_eq!(partitioned(&mesh, 1, 2), (true, false));
    assert_eq!(partitioned(&mesh, 2, 1), (false, true));
    mesh.heal(2, 1).unwrap();
    assert_eq!(partitioned(&mesh, 1, 2), (false, false));
    assert_eq!(partitioned(&mesh, 2, 1), (false, false));

    // isolate(3): every link touching 3, both ways, and nothing else.
    mesh.isolate(3, Some(Duration::from_secs(60))).unwrap();
    for other in [1, 2] {
        assert_eq!(partitioned(&mesh, 3, other), (true, true));
        assert_eq!(partitioned(&mesh, other, 3), (true, true));
    }
    assert_eq!(partitioned(&mesh, 1, 2), (false, false));
    let mut to_isolated = echo_via(&mesh, 2, 3).await;
    assert_quiet(&mut to_isolated).await;
    mesh.heal_all();
    assert_eq!(read_n(&mut to_isolated, 2).await, b"hi");

    mesh.delay_all(Duration::from_millis(5), Duration::ZERO, None);
    for from in 1..=3 {
        for to in mesh.peer_addrs(from).into_keys() {
            let f = mesh.link(from, to).unwrap().handle().faults();
            assert!(f.up.delay.is_some() && f.down.delay.is_some());
        }
    }
    mesh.clear_all();
    assert!(mesh.stats().keys().all(|&(f, t)| mesh
        .link(f, t)
        .unwrap()
        .handle()
        .faults()
        .is_clear()));
    assert_eq!(mesh.stats()[&(1, 2)].connections_accepted, 1);

    assert!(matches!(
        mesh.isolate(9, None),
        Err(ChaosError::UnknownNode(9))
    ));
}

#[tokio::test]
async fn mesh_refuses_a_node_listed_twice() {
    let e = echo_server().await;
    let err = ProxyMesh::start([(1, e.addr), (1, e.addr)])
        .await
        .unwrap_err();
    assert!(matches!(err, ChaosError::DuplicateNode(1)), "{err:?}");
}
