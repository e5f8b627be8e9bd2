//! Clusters over the real network: Raft RPCs on mutual TLS 1.3 between nodes on 127.0.0.1
//! (ephemeral ports), with signed votes. Election, SEMI_SYNC replication to identical replicas,
//! leader kill without losing an acknowledged write, forged / badly signed / replayed votes and
//! spoofed senders refused and counted without disturbing the cluster, and plaintext only with
//! the explicit development flag.
//!
//! Certificates come from the crate's `dev-certs` helpers, written to files and loaded through
//! the config, as a deployed node would. Fast timings: heartbeat 50 ms, election 150-300 ms.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::consensus::append_codec;
use replication_core::consensus::rpc_kinds::{
    to_json, SignedVoteRequest, KIND_APPEND_STREAM, KIND_PRE_VOTE, KIND_VOTE,
};
use replication_core::consensus::types::log_id;
use replication_core::consensus::{
    ClientWrite, ConsensusError, MemoryStore, NetworkedNode, ReplicationNode, Role,
    TlsNetworkOptions,
};
use replication_core::security::{NodeKey, NodePublicKey, VoteSigner};
use replication_core::transport::dev_certs::DevCertificateAuthority;
use replication_core::transport::{
    node_server_name, Listener, RpcClient, RpcClientOptions, RpcError, TransportSecurity,
};
use replication_core::wal::Operation;
use replication_core::{Lsn, NodeId, ReplicationConfig};

const WAIT: Duration = Duration::from_secs(10);

fn node_key(id: NodeId) -> NodeKey {
    NodeKey::from_seed([id as u8; 32])
}

fn put(doc: &str, payload: &[u8]) -> ClientWrite {
    ClientWrite::new(Operation::Insert, "docs", doc, payload.to_vec())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    Tls,
    PlaintextDev,
}

struct Cluster {
    root: tempfile::TempDir,
    security: Security,
    ca: DevCertificateAuthority,
    addrs: BTreeMap<NodeId, SocketAddr>,
    nodes: BTreeMap<NodeId, NetworkedNode>,
    stores: BTreeMap<NodeId, Arc<MemoryStore>>,
    network: TlsNetworkOptions,
}

impl Cluster {
    /// Starts `n` nodes, each on its own ephemeral port, and initializes them as voters.
    async fn start(n: u64, security: Security) -> Cluster {
        Self::start_with(n, security, TlsNetworkOptions::default()).await
    }

    async fn start_with(n: u64, security: Security, network: TlsNetworkOptions) -> Cluster {
        let mut c = Cluster {
            root: tempfile::tempdir().unwrap(),
            security,
            ca: DevCertificateAuthority::generate("consensus-tls test CA").unwrap(),
            addrs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            stores: BTreeMap::new(),
            network,
        };
        // Phase 1: every node's TLS material and listener, so all addresses are known.
        let mut prepared = BTreeMap::new();
        for id in 1..=n {
            prepared.insert(id, c.prepare(id).await);
        }
        // Phase 2: start the nodes on their listeners.
        for (id, (config, listener)) in prepared {
            c.launch(id, config, listener).await;
        }
        let members = c.addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        c.node(1).initialize(members).await.unwrap();
        c
    }

    /// Node `id`'s config (certificate files written, as a deployment would) and listener.
    async fn prepare(&mut self, id: NodeId) -> (ReplicationConfig, Listener) {
        let mut config = ReplicationConfig {
            node_id: id,
            mode: ReplicationMode::SemiSync,
            min_sync_replicas: 1,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            replication_timeout_ms: 2000,
            wal_directory: self.root.path().join(format!("n{id}")),
            allow_plaintext_dev: self.security == Security::PlaintextDev,
            ..ReplicationConfig::default()
        };
        if self.security == Security::Tls {
            let dir = self.root.path().join(format!("certs{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            let settings = self
                .ca
                .issue_node_certificate(id, &["localhost", "127.0.0.1"])
                .unwrap()
                .write_to(&dir, &self.ca)
                .unwrap();
            config.cert_path = Some(settings.cert_path);
            config.key_path = Some(settings.key_path);
            config.ca_path = Some(settings.ca_path);
        }
        let sec = NetworkedNode::security_from_config(&config).unwrap();
        assert_eq!(sec.is_tls(), self.security == Security::Tls);
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), sec)
            .await
            .unwrap();
        config.listen_address = listener.local_addr().to_string();
        self.addrs.insert(id, listener.local_addr());
        (config, listener)
    }

    /// Starts node `id`; it knows the public keys of every node prepared so far.
    async fn launch(&mut self, id: NodeId, mut config: ReplicationConfig, listener: Listener) {
        config.peers = self
            .addrs
            .iter()
            .filter(|(p, _)| **p != id)
            .map(|(p, a)| PeerConfig {
                node_id: *p,
                address: a.to_string(),
                public_key: None,
            })
            .collect();
        let peer_keys: Vec<(NodeId, NodePublicKey)> = self
            .addrs
            .keys()
            .filter(|p| **p != id)
            .map(|p| (*p, node_key(*p).public_key()))
            .collect();
        let store = Arc::new(MemoryStore::new());
        let sec = NetworkedNode::security_from_config(&config).unwrap();
        let node = NetworkedNode::start_on_with(
            listener,
            &config,
            store.clone(),
            sec,
            node_key(id),
            peer_keys,
            self.network.clone(),
        )
        .await
        .unwrap();
        self.nodes.insert(id, node);
        self.stores.insert(id, store);
    }

    fn node(&self, id: NodeId) -> &Arc<ReplicationNode> {
        self.nodes[&id].node()
    }

    /// Waits until every live node names the same live leader (other than `not`), which holds
    /// a quorum lease; returns it and the time taken.
    async fn wait_leader(&self, not: Option<NodeId>) -> (NodeId, Duration) {
        let start = Instant::now();
        loop {
            let views: BTreeSet<Option<NodeId>> =
                self.nodes.values().map(|n| n.node().leader()).collect();
            if let [Some(l)] = views.iter().copied().collect::<Vec<_>>()[..] {
                if Some(l) != not
                    && self.nodes.contains_key(&l)
                    && self.node(l).role() == Role::Leader
                {
                    self.node(l)
                        .raft()
                        .wait(Some(WAIT))
                        .leader_with_quorum_acked(None, "leader lease")
                        .await
                        .unwrap();
                    return (l, start.elapsed());
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "no agreed leader within {WAIT:?}: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_applied(&self, lsn: Lsn) {
        for n in self.nodes.values() {
            n.node().wait_for_lsn(lsn, WAIT).await.unwrap();
        }
    }

    fn assert_identical(&self) {
        let hashes: BTreeMap<NodeId, u64> = self
            .nodes
            .keys()
            .map(|id| (*id, self.stores[id].content_hash()))
            .collect();
        let distinct: BTreeSet<u64> = hashes.values().copied().collect();
        assert_eq!(distinct.len(), 1, "replicas differ: {hashes:?}");
    }

    async fn kill(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await.unwrap();
    }

    /// Restarts node `id` (killed before) on its old address, WAL and certificate name.
    async fn restart(&mut self, id: NodeId) {
        let addr = self.addrs[&id];
        let (mut config, _) = self.prepare(id).await;
        // `prepare` bound a new port; go back to the one in the membership.
        self.addrs.insert(id, addr);
        config.listen_address = addr.to_string();
        let sec = NetworkedNode::security_from_config(&config).unwrap();
        let listener = Listener::bind(addr, sec).await.unwrap();
        self.launch(id, config, listener).await;
    }

    /// A raw RPC client presenting a valid certificate of node `as_node`, connected to `to`.
    async fn raw_client(&self, as_node: NodeId, to: NodeId) -> RpcClient {
        let identity = self.ca.node_identity(as_node).unwrap();
        RpcClient::connect(
            self.addrs[&to],
            &TransportSecurity::tls(identity),
            &node_server_name(to),
            RpcClientOptions::default(),
        )
        .await
        .unwrap()
    }

    /// (term, leader) as every live node sees it.
    fn views(&self) -> BTreeMap<NodeId, (u64, Option<NodeId>)> {
        self.nodes
            .iter()
            .map(|(id, n)| (*id, (n.node().term(), n.node().leader())))
            .collect()
    }
}

async fn write_many(
    c: &Cluster,
    leader: NodeId,
    prefix: &str,
    count: usize,
    acked: &mut BTreeMap<String, Vec<u8>>,
) -> Lsn {
    let mut last = 0;
    for i in 0..count {
        let doc = format!("{prefix}-{i}");
        let payload = format!("value of {doc}").into_bytes();
        last = c
            .node(leader)
            .append(put(&doc, &payload), Some(ReplicationMode::SemiSync))
            .await
            .unwrap();
        acked.insert(doc, payload);
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_cluster_replicates_and_survives_a_leader_kill() {
    let mut c = Cluster::start(3, Security::Tls).await;
    let (leader, took) = c.wait_leader(None).await;
    println!("leader {leader} elected in {took:?}");
    let mut acked = BTreeMap::new();
    let last = write_many(&c, leader, "a", 40, &mut acked).await;
    c.wait_applied(last).await;
    c.assert_identical();
    assert_eq!(c.stores[&leader].len(), 40);
    // Every RPC went through the servers: each follower served requests, none was refused.
    for n in c.nodes.values() {
        let m = n.server().metrics_snapshot();
        assert_eq!(m.votes.rejected(), 0, "node {}: {m:?}", n.node().id());
        assert_eq!((m.rejected_sender, m.malformed), (0, 0));
        // Connections are one-way (the caller sends, the acceptor serves), so only followers
        // are sure to have accepted one.
        if n.node().id() != leader {
            assert!(m.listener.accepted >= 1);
            assert!(m.served > 0, "node {} served nothing", n.node().id());
        }
    }

    c.kill(leader).await;
    let (new, took) = c.wait_leader(Some(leader)).await;
    println!("killed {leader}; new leader {new} after {took:?}");
    assert!(took < Duration::from_secs(5), "failover took {took:?}");
    // The new leader won with signed votes that its peer verified.
    let valid_votes: u64 = c
        .nodes
        .values()
        .map(|n| n.server().metrics_snapshot().votes.valid)
        .sum();
    assert!(valid_votes >= 1);
    // No acknowledged write is lost, and the survivors keep replicating.
    let last = write_many(&c, new, "b", 20, &mut acked).await;
    c.wait_applied(last).await;
    c.assert_identical();
    for (doc, payload) in &acked {
        for (id, store) in c.stores.iter().filter(|(id, _)| c.nodes.contains_key(id)) {
            assert_eq!(
                store.get("docs", doc).as_deref(),
                Some(&payload[..]),
                "node {id} lost {doc}"
            );
        }
    }
}

/// A returning old leader whose log has an uncommitted tail that the new leader overwrote:
/// over the pipelined binary AppendEntries, the new leader's first requests conflict, the
/// session ends, and a new one finds the common prefix; the old leader truncates its tail
/// (and its in-memory tail cache) and ends up identical to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn returning_leader_with_a_divergent_tail_is_truncated_and_catches_up() {
    let mut c = Cluster::start(3, Security::Tls).await;
    let (old, _) = c.wait_leader(None).await;
    let mut acked = BTreeMap::new();
    let last = write_many(&c, old, "a", 20, &mut acked).await;
    c.wait_applied(last).await;
    let followers: Vec<NodeId> = c.nodes.keys().copied().filter(|id| *id != old).collect();

    // Stop the followers, then write to the old leader alone: ASYNC acks after its own
    // durable append, so entries land in its log that no one else has (until its lease
    // lapses and it refuses writes).
    for f in &followers {
        c.kill(*f).await;
    }
    let mut divergent = Vec::new();
    for i in 0..200 {
        let doc = format!("lost-{i}");
        match c
            .node(old)
            .append(put(&doc, b"never committed"), Some(ReplicationMode::Async))
            .await
        {
            Ok(lsn) => divergent.push((doc, lsn)),
            Err(_) => break,
        }
    }
    assert!(
        !divergent.is_empty(),
        "the old leader took no write alone; the test would not diverge"
    );
    let old_last = c.node(old).status().last_lsn.unwrap();
    println!(
        "old leader {old} took {} writes alone, up to LSN {old_last}",
        divergent.len()
    );
    c.kill(old).await;

    // The followers come back without it, elect a leader and overwrite those indexes.
    for f in &followers {
        c.restart(*f).await;
    }
    let (new, _) = c.wait_leader(None).await;
    assert_ne!(new, old);
    let mut last = 0;
    while last <= old_last + 5 {
        last = write_many(&c, new, &format!("b{last}"), 10, &mut acked).await;
    }

    // The old leader returns as a follower and must give up its tail.
    c.restart(old).await;
    c.wait_applied(last).await;
    c.assert_identical();
    for (doc, _) in &divergent {
        assert_eq!(
            c.stores[&old].get("docs", doc),
            None,
            "{doc} was never committed"
        );
    }
    for (doc, payload) in &acked {
        for (id, store) in &c.stores {
            assert_eq!(
                store.get("docs", doc).as_deref(),
                Some(&payload[..]),
                "node {id} lacks {doc}"
            );
        }
    }
    // The conflicting requests were answered, not refused as malformed or spoofed.
    let m = c.nodes[&old].server().metrics_snapshot();
    assert_eq!((m.rejected_sender, m.malformed), (0, 0), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn learner_catches_up_from_a_chunked_snapshot() {
    // 1 KiB chunks, so the snapshot crosses the wire in many frames.
    let network = TlsNetworkOptions {
        snapshot_chunk_bytes: 1024,
        ..TlsNetworkOptions::default()
    };
    let mut c = Cluster::start_with(3, Security::Tls, network).await;
    let (leader, _) = c.wait_leader(None).await;
    let mut acked = BTreeMap::new();
    let last = write_many(&c, leader, "s", 100, &mut acked).await;
    c.wait_applied(last).await;
    // Snapshot and purge the leader's log, so a new member can only catch up by snapshot.
    let raft = c.node(leader).raft().clone();
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last),
            "snapshot covers the writes",
        )
        .await
        .unwrap();
    raft.trigger().purge_log(last).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= last), "log purged")
        .await
        .unwrap();

    let (config, listener) = c.prepare(4).await;
    c.launch(4, config, listener).await;
    let addr4 = c.addrs[&4].to_string();
    c.node(leader).add_learner(4, addr4, true).await.unwrap();
    c.node(4).wait_for_lsn(last, WAIT).await.unwrap();
    assert_eq!(c.stores[&4].len(), acked.len());
    c.assert_identical();
    let m = c.nodes[&4].server().metrics_snapshot();
    println!("node 4: {m:?}");
    assert!(m.snapshots_installed >= 1, "{m:?}");
    assert!(
        m.snapshot_chunks > m.snapshots_installed,
        "one chunk only: {m:?}"
    );
    assert_eq!((m.rejected_sender, m.malformed), (0, 0));
}

fn vote_request(
    term: u64,
    candidate: NodeId,
    last: Option<(u64, u64)>,
    leadership_transfer: bool,
) -> VoteRequest<C> {
    VoteRequest {
        vote: openraft::Vote::new(term, candidate),
        last_log_id: last.map(|(t, i)| log_id(t, i)),
        leadership_transfer,
    }
}

type C = replication_core::consensus::TypeConfig;

fn refused(r: Result<Bytes, RpcError>, needle: &str) {
    match r {
        Err(RpcError::Remote { message, .. }) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_replayed_and_spoofed_rpcs_are_refused_and_counted() {
    let c = Cluster::start(3, Security::Tls).await;
    let (leader, _) = c.wait_leader(None).await;
    let before = c.views();
    let term = before[&leader].0;
    // Aim at a follower other than node 3 (node 3's certificate is the attacker's).
    let target = *c
        .nodes
        .keys()
        .find(|id| **id != leader && **id != 3)
        .unwrap_or(&leader);
    let mallory = c.raw_client(3, target).await;
    assert_eq!(mallory.peer().node_id, Some(target));
    let far_ahead = Some((term + 100, 1_000_000));

    // 1. Node 3's certificate, but a vote for candidate 2 signed with node 2's real key: a
    //    transfer vote with a huge term that would depose the leader if it got through.
    let signer2 = VoteSigner::new(2, node_key(2));
    let spoofed =
        SignedVoteRequest::sign(&signer2, vote_request(term + 10, 2, far_ahead, true), false);
    refused(
        mallory.call(KIND_VOTE, spoofed.encode()).await,
        "authenticated as node 3",
    );

    // 2. Correctly framed vote for candidate 3 with a broken signature.
    let signer3 = VoteSigner::new(3, node_key(3));
    let mut bad =
        SignedVoteRequest::sign(&signer3, vote_request(term + 10, 3, far_ahead, true), false);
    bad.signature.as_mut().unwrap().0[7] ^= 0x20;
    refused(mallory.call(KIND_VOTE, bad.encode()).await, "bad_signature");

    // 3. Signed by node 3 with a key the cluster does not know (an impostor key).
    let impostor = VoteSigner::new(3, NodeKey::from_seed([77; 32]));
    let forged = SignedVoteRequest::sign(
        &impostor,
        vote_request(term + 10, 3, far_ahead, true),
        false,
    );
    refused(
        mallory.call(KIND_VOTE, forged.encode()).await,
        "bad_signature",
    );

    // 4. Unsigned.
    let mut unsigned =
        SignedVoteRequest::sign(&signer3, vote_request(term + 10, 3, far_ahead, true), false);
    unsigned.signature = None;
    refused(mallory.call(KIND_VOTE, unsigned.encode()).await, "unsigned");

    // 5. Replay: a genuinely signed pre-vote for the current term with an empty log is verified
    //    and answered by Raft (not granted: the term is not newer and the log is behind); the
    //    same bytes again are refused. Pre-votes never change state, so the first delivery is
    //    harmless. (The term is the current one, not 1: node 3's own earlier campaigns may have
    //    left a newer claim in the verifier's replay state.)
    let stale = SignedVoteRequest::sign(&signer3, vote_request(term, 3, None, false), true);
    let first = mallory.call(KIND_PRE_VOTE, stale.encode()).await.unwrap();
    let resp: openraft::raft::VoteResponse<C> = serde_json::from_slice(&first).unwrap();
    assert!(!resp.vote_granted, "{resp:?}");
    refused(
        mallory.call(KIND_PRE_VOTE, stale.encode()).await,
        "replayed",
    );
    // A pre-vote signature sent as a vote does not verify.
    let again = SignedVoteRequest::sign(&signer3, vote_request(term, 3, None, false), true);
    refused(
        mallory.call(KIND_VOTE, again.encode()).await,
        "bad_signature",
    );

    // 6. AppendEntries claiming to come from another leader: refused before Raft.
    let append = AppendEntriesRequest::<C> {
        vote: openraft::Vote::new_committed(term + 10, 1),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    refused(
        mallory
            .call(
                KIND_APPEND_STREAM,
                append_codec::encode_request(&append).unwrap(),
            )
            .await,
        "names leader 1",
    );
    // A truncated binary AppendEntries is malformed, and so is the retired JSON kind.
    refused(
        mallory
            .call(KIND_APPEND_STREAM, Bytes::from_static(b"\x01\x00"))
            .await,
        "malformed",
    );
    refused(
        mallory.call(0x0101, to_json(&append)).await,
        "unknown consensus RPC kind",
    );
    // 7. Garbage.
    refused(
        mallory
            .call(KIND_VOTE, Bytes::from_static(b"\x01\x00junk"))
            .await,
        "malformed",
    );

    let m = c.nodes[&target].server().metrics_snapshot();
    println!("target {target}: {m:?}");
    assert_eq!(m.votes.identity_mismatch, 1);
    assert_eq!(m.votes.bad_signature, 3);
    assert_eq!(m.votes.unsigned, 1);
    assert_eq!(m.votes.replayed, 1);
    assert_eq!(m.votes.rejected(), 6);
    assert_eq!(m.rejected_sender, 1);
    assert_eq!(m.malformed, 3);

    // The cluster did not notice: same term, same leader everywhere, writes still work.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.views(), before);
    let lsn = c
        .node(leader)
        .append(put("after", b"attack"), None)
        .await
        .unwrap();
    c.wait_applied(lsn).await;
    c.assert_identical();

    // A genuine leadership transfer (TransferLeader RPC, then a signed vote with the transfer
    // flag) still goes through.
    let to = *c.nodes.keys().find(|id| **id != leader).unwrap();
    c.node(leader).transfer_leadership(to).await.unwrap();
    let start = Instant::now();
    while c.node(to).role() != Role::Leader {
        assert!(start.elapsed() < WAIT, "transfer to {to} did not happen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (now, _) = c.wait_leader(Some(leader)).await;
    assert_eq!(now, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plaintext_cluster_needs_the_explicit_development_flag() {
    // Without the flag: no TLS material is an error, and plaintext is refused at start.
    let root = tempfile::tempdir().unwrap();
    let config = ReplicationConfig {
        node_id: 1,
        listen_address: "127.0.0.1:0".into(),
        wal_directory: root.path().join("n1"),
        allow_plaintext_dev: false,
        ..ReplicationConfig::default()
    };
    let err = NetworkedNode::security_from_config(&config).unwrap_err();
    assert!(err.to_string().contains("allow_plaintext_dev"), "{err}");
    let plaintext = TransportSecurity::plaintext_for_development();
    let err = NetworkedNode::start(
        &config,
        Arc::new(MemoryStore::new()),
        plaintext,
        node_key(1),
        [],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConsensusError::Invalid(m) if m.contains("plaintext transport refused")),
        "{err}"
    );
    // A certificate for another node is refused too.
    let ca = DevCertificateAuthority::generate("ca").unwrap();
    let wrong = TransportSecurity::tls(ca.node_identity(2).unwrap());
    let err = NetworkedNode::start(
        &config,
        Arc::new(MemoryStore::new()),
        wrong,
        node_key(1),
        [],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("names node-2"), "{err}");

    // With the flag: a plaintext cluster works (votes are still signed and verified).
    let c = Cluster::start(3, Security::PlaintextDev).await;
    let (leader, _) = c.wait_leader(None).await;
    let mut acked = BTreeMap::new();
    let last = write_many(&c, leader, "p", 10, &mut acked).await;
    c.wait_applied(last).await;
    c.assert_identical();
    let valid: u64 = c
        .nodes
        .values()
        .map(|n| n.server().metrics_snapshot().votes.valid)
        .sum();
    assert!(valid >= 1, "no signed vote was verified");
}

/// The vote replay state survives a restart: a signed pre-vote claim accepted once is refused
/// as a replay by the same voter after it restarts (it is kept in the `vote_replay` state file).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_voter_still_refuses_a_replayed_vote() {
    let mut c = Cluster::start(3, Security::Tls).await;
    let (leader, _) = c.wait_leader(None).await;
    let term = c.views()[&leader].0;
    let target = *c
        .nodes
        .keys()
        .find(|id| **id != leader && **id != 3)
        .unwrap_or(&leader);
    // A pre-vote never changes the voter's state, so delivering it is harmless.
    let signer3 = VoteSigner::new(3, node_key(3));
    let claim = SignedVoteRequest::sign(&signer3, vote_request(term, 3, None, false), true);
    let mallory = c.raw_client(3, target).await;
    let first = mallory.call(KIND_PRE_VOTE, claim.encode()).await.unwrap();
    let _: openraft::raft::VoteResponse<C> = serde_json::from_slice(&first).unwrap();
    refused(
        mallory.call(KIND_PRE_VOTE, claim.encode()).await,
        "replayed",
    );
    drop(mallory);

    c.kill(target).await;
    c.restart(target).await;
    let mallory = c.raw_client(3, target).await;
    refused(
        mallory.call(KIND_PRE_VOTE, claim.encode()).await,
        "replayed",
    );
    let m = c.nodes[&target].server().metrics_snapshot();
    assert_eq!(m.votes.replayed, 1, "{m:?}");
    // A fresh claim from the same candidate is still accepted.
    let fresh = SignedVoteRequest::sign(&signer3, vote_request(term, 3, None, false), true);
    let resp = mallory.call(KIND_PRE_VOTE, fresh.encode()).await.unwrap();
    let _: openraft::raft::VoteResponse<C> = serde_json::from_slice(&resp).unwrap();
}
