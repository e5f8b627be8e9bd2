//! Signed vote and pre-vote requests.
//!
//! A candidate signs a [`VoteClaim`] (term, candidate id, last log id, nonce, pre-vote and
//! leadership-transfer flags) with its [`NodeKey`]; every voter checks the signature against the
//! candidate's configured public key and refuses replays before Raft sees the request. The claim
//! is a lossless image of openraft's `VoteRequest` plus the nonce and the kind, so a voter can
//! rebuild it from the request it received and nothing in the request is left unsigned.
//!
//! Why `leadership_transfer` is signed: openraft skips both lease checks (the follower's lease
//! and the leader's quorum lease) for a vote that says it is a leadership transfer, so a transfer
//! vote could depose a healthy leader. Why the kind (`pre_vote`) is signed: a pre-vote signature
//! must not be usable as a real vote.
//!
//! Replay rule. Each candidate's claims carry a nonce that its [`VoteSigner`] makes strictly
//! increasing (nanoseconds since the Unix epoch, bumped past the previous nonce when the
//! clock stalls). A voter remembers, per candidate, the `(term, nonce)` of the last claim it
//! accepted and accepts a new claim only if its `(term, nonce)` is greater, comparing term
//! first. So:
//! - the same signed claim is accepted at most once per voter (a captured request is useless);
//! - an older claim delivered late is refused for the same or an older term;
//! - a claim for a newer term is accepted even if its nonce is lower. This is sound because the
//!   signature proves the candidate produced exactly that claim and the voter has never
//!   accepted it (nor anything after it in the candidate's order); it is what lets a candidate
//!   whose clock stepped back across a restart still win elections, since real elections
//!   always raise the term.
//!
//! Sign once per transmission: a retransmitted request needs a fresh nonce, or the voter
//! counts it as a replay. A claim for the same term as before with a smaller nonce (a
//! candidate whose clock went back during a pre-vote round) is refused until the candidate's
//! clock passes its previous nonce or its term moves on.
//!
//! What a signature does not say: it does not bind the claim to one voter, so the same signed
//! claim may be broadcast to all voters (each accepts it once). The consensus layer must still
//! check that the TLS peer's node id matches `candidate` ([`crate::transport::PeerInfo`]) and
//! count a mismatch with [`VoteVerifier::record_rejection`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::Signature;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::error::SecurityError;
use super::node_key::{NodeKey, NodePublicKey};
use crate::NodeId;

/// Domain separation: a signature over these bytes can never be mistaken for a signature over
/// any other message this system signs, now or later (other messages use other prefixes). The
/// version moved to 2 when the leadership-transfer flag and the full last log id were added,
/// and to 3 when log ids became (term, index) (one leader per term), so a signature of one
/// version never verifies as a claim of another.
pub const VOTE_CLAIM_DOMAIN: &[u8; 24] = b"replication/vote-claim/3";
/// Length of [`VoteClaim::signing_bytes`].
pub const VOTE_CLAIM_SIGNING_LEN: usize = VOTE_CLAIM_DOMAIN.len() + 5 * 8 + 1;

const FLAG_PRE_VOTE: u8 = 1 << 0;
const FLAG_LEADERSHIP_TRANSFER: u8 = 1 << 1;
const FLAG_HAS_LAST_LOG: u8 = 1 << 2;
const FLAG_VOTE_COMMITTED: u8 = 1 << 3;

/// A log id as a vote claim names it: the term of the leader that proposed the entry (one
/// leader per term, so the term names it) and the entry's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimLogId {
    pub term: u64,
    pub index: u64,
}

/// What a candidate asserts when it asks for a vote or a pre-vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteClaim {
    pub term: u64,
    pub candidate: NodeId,
    /// The candidate's last log id; `None` for an empty log.
    pub last_log: Option<ClaimLogId>,
    /// Strictly increasing per candidate; see the module docs.
    pub nonce: u64,
    pub pre_vote: bool,
    /// The candidate campaigns because the leader handed leadership to it; voters then skip
    /// their lease checks.
    pub leadership_transfer: bool,
    /// The `committed` bit of the vote in the request (false for every real candidate; signed
    /// so that no bit of the request is left out).
    pub vote_committed: bool,
}

impl VoteClaim {
    /// A vote (not pre-vote, not transfer) claim with nonce 0; see [`VoteSigner::sign_fresh`].
    pub fn new(term: u64, candidate: NodeId, last_log: Option<ClaimLogId>) -> VoteClaim {
        VoteClaim {
            term,
            candidate,
            last_log,
            nonce: 0,
            pre_vote: false,
            leadership_transfer: false,
            vote_committed: false,
        }
    }

    pub fn with_pre_vote(mut self, pre_vote: bool) -> VoteClaim {
        self.pre_vote = pre_vote;
        self
    }

    pub fn with_leadership_transfer(mut self, transfer: bool) -> VoteClaim {
        self.leadership_transfer = transfer;
        self
    }

    /// The exact bytes that are signed.
    // Format: vote claim signing input (65 bytes, integers little-endian)
    //   0  [u8; 24] domain "replication/vote-claim/3"
    //  24  u64      term
    //  32  u64      candidate node id
    //  40  u64      last log id: term of its leader (0 when absent)
    //  48  u64      last log id: index (0 when absent)
    //  56  u64      nonce
    //  64  u8       flags: bit 0 pre-vote, bit 1 leadership transfer, bit 2 last log id
    //               present, bit 3 vote committed; bits 4..8 zero
    pub fn signing_bytes(&self) -> [u8; VOTE_CLAIM_SIGNING_LEN] {
        let mut b = [0u8; VOTE_CLAIM_SIGNING_LEN];
        let d = VOTE_CLAIM_DOMAIN.len();
        b[..d].copy_from_slice(VOTE_CLAIM_DOMAIN);
        let last = self.last_log.unwrap_or(ClaimLogId { term: 0, index: 0 });
        for (i, v) in [self.term, self.candidate, last.term, last.index, self.nonce]
            .into_iter()
            .enumerate()
        {
            b[d + 8 * i..d + 8 * (i + 1)].copy_from_slice(&v.to_le_bytes());
        }
        let mut flags = 0u8;
        for (on, bit) in [
            (self.pre_vote, FLAG_PRE_VOTE),
            (self.leadership_transfer, FLAG_LEADERSHIP_TRANSFER),
            (self.last_log.is_some(), FLAG_HAS_LAST_LOG),
            (self.vote_committed, FLAG_VOTE_COMMITTED),
        ] {
            if on {
                flags |= bit;
            }
        }
        b[d + 40] = flags;
        b
    }
}

/// An ed25519 signature over [`VoteClaim::signing_bytes`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VoteSignature(pub [u8; 64]);

impl std::fmt::Debug for VoteSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VoteSignature({:02x?}..)", &self.0[..4])
    }
}

impl VoteSignature {
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    pub fn from_slice(bytes: &[u8]) -> Result<VoteSignature, SecurityError> {
        <[u8; 64]>::try_from(bytes)
            .map(VoteSignature)
            .map_err(|_| SecurityError::InvalidSignatureLength(bytes.len()))
    }
}

/// A claim and its signature as received; `signature` is `None` when the sender sent none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedVote {
    pub claim: VoteClaim,
    pub signature: Option<VoteSignature>,
}

/// Signs this node's vote claims and hands out their nonces.
#[derive(Debug)]
pub struct VoteSigner {
    node_id: NodeId,
    key: NodeKey,
    last_nonce: AtomicU64,
}

impl VoteSigner {
    pub fn new(node_id: NodeId, key: NodeKey) -> VoteSigner {
        VoteSigner {
            node_id,
            key,
            last_nonce: AtomicU64::new(0),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn public_key(&self) -> NodePublicKey {
        self.key.public_key()
    }

    /// A nonce greater than any this signer returned before: the wall clock in nanoseconds,
    /// or the previous nonce + 1 if the clock has not moved past it.
    pub fn next_nonce(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut prev = self.last_nonce.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev.saturating_add(1));
            match self.last_nonce.compare_exchange_weak(
                prev,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => prev = actual,
            }
        }
    }

    /// Signs `claim` as given. `claim.candidate` should be this signer's node id; voters
    /// check the signature against the key configured for `claim.candidate`.
    pub fn sign(&self, claim: &VoteClaim) -> VoteSignature {
        debug_assert_eq!(
            claim.candidate, self.node_id,
            "signing a claim for another candidate"
        );
        VoteSignature(self.key.sign_bytes(&claim.signing_bytes()))
    }

    /// Signs `claim` as this node's, with a fresh nonce (overwriting `claim.nonce` and
    /// `claim.candidate`). Call once per transmission.
    pub fn sign_fresh(&self, mut claim: VoteClaim) -> SignedVote {
        claim.candidate = self.node_id;
        claim.nonce = self.next_nonce();
        SignedVote {
            claim,
            signature: Some(self.sign(&claim)),
        }
    }
}

/// Result of checking a received vote claim. Only `Valid` may be passed on to Raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteOutcome {
    Valid,
    /// The request carried no signature.
    Unsigned,
    /// The signature does not verify under the candidate's public key (forged or tampered).
    BadSignature,
    /// Correctly signed, but not newer than a claim already accepted from this candidate.
    Replayed,
    /// No public key is configured for the claimed candidate.
    UnknownNode,
    /// The connection's authenticated node id (TLS certificate) is not the claimed candidate.
    /// Decided by the transport layer, recorded with [`VoteVerifier::record_rejection`].
    IdentityMismatch,
}

impl VoteOutcome {
    pub fn is_valid(self) -> bool {
        self == VoteOutcome::Valid
    }

    /// A stable lower-case name, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            VoteOutcome::Valid => "valid",
            VoteOutcome::Unsigned => "unsigned",
            VoteOutcome::BadSignature => "bad_signature",
            VoteOutcome::Replayed => "replayed",
            VoteOutcome::UnknownNode => "unknown_node",
            VoteOutcome::IdentityMismatch => "identity_mismatch",
        }
    }
}

/// Counts of verification outcomes, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct VoteMetrics {
    pub valid: AtomicU64,
    pub unsigned: AtomicU64,
    pub bad_signature: AtomicU64,
    pub replayed: AtomicU64,
    pub unknown_node: AtomicU64,
    pub identity_mismatch: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteMetricsSnapshot {
    pub valid: u64,
    pub unsigned: u64,
    pub bad_signature: u64,
    pub replayed: u64,
    pub unknown_node: u64,
    pub identity_mismatch: u64,
}

impl VoteMetricsSnapshot {
    pub fn rejected(&self) -> u64 {
        self.unsigned
            + self.bad_signature
            + self.replayed
            + self.unknown_node
            + self.identity_mismatch
    }
}

impl VoteMetrics {
    fn record(&self, outcome: VoteOutcome) {
        let counter = match outcome {
            VoteOutcome::Valid => &self.valid,
            VoteOutcome::Unsigned => &self.unsigned,
            VoteOutcome::BadSignature => &self.bad_signature,
            VoteOutcome::Replayed => &self.replayed,
            VoteOutcome::UnknownNode => &self.unknown_node,
            VoteOutcome::IdentityMismatch => &self.identity_mismatch,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> VoteMetricsSnapshot {
        VoteMetricsSnapshot {
            valid: self.valid.load(Ordering::Relaxed),
            unsigned: self.unsigned.load(Ordering::Relaxed),
            bad_signature: self.bad_signature.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            unknown_node: self.unknown_node.load(Ordering::Relaxed),
            identity_mismatch: self.identity_mismatch.load(Ordering::Relaxed),
        }
    }
}

/// Checks vote claims received by this node: signature, known candidate, replay.
#[derive(Debug, Default)]
pub struct VoteVerifier {
    keys: RwLock<HashMap<NodeId, NodePublicKey>>,
    /// Per candidate, the `(term, nonce)` of the last accepted claim. Only candidates with a
    /// configured key get an entry, so a flood of unknown ids cannot grow it.
    last_accepted: Mutex<HashMap<NodeId, (u64, u64)>>,
    metrics: VoteMetrics,
}

impl VoteVerifier {
    pub fn new(keys: impl IntoIterator<Item = (NodeId, NodePublicKey)>) -> VoteVerifier {
        VoteVerifier {
            keys: RwLock::new(keys.into_iter().collect()),
            ..VoteVerifier::default()
        }
    }

    /// Adds a node or replaces its key (membership change, key rotation). The replay state of
    /// the node is kept: its signer's nonces keep increasing across a key change.
    pub fn set_key(&self, node: NodeId, key: NodePublicKey) {
        self.keys.write().insert(node, key);
    }

    /// Forgets a node removed from the cluster; its claims become `UnknownNode`.
    pub fn remove_node(&self, node: NodeId) {
        self.keys.write().remove(&node);
        self.last_accepted.lock().remove(&node);
    }

    pub fn metrics(&self) -> &VoteMetrics {
        &self.metrics
    }

    /// The replay state: per candidate, the `(term, nonce)` of the last accepted claim. A node
    /// persists it (see `consensus/raft_server.rs`) so a restart does not forget it.
    pub fn replay_positions(&self) -> Vec<(NodeId, u64, u64)> {
        let mut v: Vec<_> = self
            .last_accepted
            .lock()
            .iter()
            .map(|(id, (term, nonce))| (*id, *term, *nonce))
            .collect();
        v.sort_unstable();
        v
    }

    /// Takes in a persisted replay state; a position only ever moves forward.
    pub fn restore_replay_positions(
        &self,
        positions: impl IntoIterator<Item = (NodeId, u64, u64)>,
    ) {
        let mut last = self.last_accepted.lock();
        for (id, term, nonce) in positions {
            let e = last.entry(id).or_insert((term, nonce));
            *e = (*e).max((term, nonce));
        }
    }

    /// Checks a received claim and counts the outcome. On `Valid` the claim is remembered, so
    /// the same claim is `Replayed` the next time.
    pub fn verify(&self, vote: &SignedVote) -> VoteOutcome {
        let outcome = self.check(vote);
        self.metrics.record(outcome);
        if !outcome.is_valid() {
            log_rejection(vote, outcome);
        }
        outcome
    }

    /// Counts and logs a rejection decided outside this verifier (by the transport, e.g.
    /// [`VoteOutcome::IdentityMismatch`]) without touching the replay state. A `Valid`
    /// outcome is ignored: only [`VoteVerifier::verify`] may accept a claim.
    pub fn record_rejection(&self, vote: &SignedVote, outcome: VoteOutcome) {
        if outcome.is_valid() {
            return;
        }
        self.metrics.record(outcome);
        log_rejection(vote, outcome);
    }

    fn check(&self, vote: &SignedVote) -> VoteOutcome {
        let claim = &vote.claim;
        let Some(signature) = vote.signature else {
            return VoteOutcome::Unsigned;
        };
        let Some(key) = self.keys.read().get(&claim.candidate).copied() else {
            return VoteOutcome::UnknownNode;
        };
        let signature = Signature::from_bytes(&signature.0);
        // verify_strict also refuses small-order keys and non-canonical signatures, so one
        // claim has exactly one accepted signature.
        if key
            .0
            .verify_strict(&claim.signing_bytes(), &signature)
            .is_err()
        {
            return VoteOutcome::BadSignature;
        }
        // Check and record under one lock: two concurrent deliveries of the same claim must
        // not both pass.
        let mut last = self.last_accepted.lock();
        let position = (claim.term, claim.nonce);
        match last.get(&claim.candidate) {
            Some(&seen) if position <= seen => VoteOutcome::Replayed,
            _ => {
                last.insert(claim.candidate, position);
                VoteOutcome::Valid
            }
        }
    }
}

fn log_rejection(vote: &SignedVote, outcome: VoteOutcome) {
    tracing::warn!(
        candidate = vote.claim.candidate,
        term = vote.claim.term,
        nonce = vote.claim.nonce,
        pre_vote = vote.claim.pre_vote,
        leadership_transfer = vote.claim.leadership_transfer,
        outcome = outcome.as_str(),
        "rejected vote request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(term: u64, index: u64) -> Option<ClaimLogId> {
        Some(ClaimLogId { term, index })
    }

    fn signed(
        signer: &VoteSigner,
        term: u64,
        log_term: u64,
        log_index: u64,
        pre_vote: bool,
    ) -> SignedVote {
        let claim = VoteClaim::new(term, signer.node_id(), log(log_term, log_index));
        signer.sign_fresh(claim.with_pre_vote(pre_vote))
    }

    fn setup() -> (VoteSigner, VoteVerifier) {
        let signer = VoteSigner::new(2, NodeKey::from_seed([2u8; 32]));
        let verifier = VoteVerifier::new([
            (1, NodeKey::from_seed([1u8; 32]).public_key()),
            (2, signer.public_key()),
        ]);
        (signer, verifier)
    }

    #[test]
    fn valid_claim_is_accepted_and_counted() {
        let (signer, verifier) = setup();
        let vote = signed(&signer, 5, 4, 100, false);
        assert_eq!(verifier.verify(&vote), VoteOutcome::Valid);
        let m = verifier.metrics().snapshot();
        assert_eq!(m.valid, 1);
        assert_eq!(m.rejected(), 0);
    }

    #[test]
    fn every_tampered_field_breaks_the_signature() {
        let (signer, verifier) = setup();
        let vote = signed(&signer, 5, 4, 100, true);
        let tamperings: [fn(&mut VoteClaim); 8] = [
            |c| c.term += 1,
            |c| c.last_log.as_mut().unwrap().term += 1,
            |c| c.last_log.as_mut().unwrap().index += 1,
            |c| c.last_log = None,
            |c| c.nonce += 1,
            |c| c.pre_vote = !c.pre_vote,
            |c| c.leadership_transfer = !c.leadership_transfer,
            |c| c.vote_committed = !c.vote_committed,
        ];
        for tamper in tamperings {
            let mut forged = vote;
            tamper(&mut forged.claim);
            assert_eq!(verifier.verify(&forged), VoteOutcome::BadSignature);
        }
        // Claiming to be node 1 with node 2's signature.
        let mut forged = vote;
        forged.claim.candidate = 1;
        assert_eq!(verifier.verify(&forged), VoteOutcome::BadSignature);
        // A flipped signature bit.
        let mut forged = vote;
        let mut sig = forged.signature.unwrap();
        sig.0[10] ^= 0x01;
        forged.signature = Some(sig);
        assert_eq!(verifier.verify(&forged), VoteOutcome::BadSignature);
        assert_eq!(verifier.metrics().snapshot().bad_signature, 10);
        // The untouched original still verifies: failures did not poison the replay state.
        assert_eq!(verifier.verify(&vote), VoteOutcome::Valid);
    }

    #[test]
    fn signature_by_the_wrong_key_is_refused() {
        let (_, verifier) = setup();
        let impostor = VoteSigner::new(2, NodeKey::from_seed([9u8; 32]));
        let vote = signed(&impostor, 5, 4, 100, false);
        assert_eq!(verifier.verify(&vote), VoteOutcome::BadSignature);
    }

    #[test]
    fn restored_replay_state_refuses_what_was_accepted_before() {
        let (signer, verifier) = setup();
        let first = signed(&signer, 5, 4, 100, false);
        assert_eq!(verifier.verify(&first), VoteOutcome::Valid);
        let saved = verifier.replay_positions();
        // A new verifier (a restarted voter) that took in the saved state.
        let (_, restarted) = setup();
        restarted.restore_replay_positions(saved.clone());
        // An older position in a later restore does not move it back.
        restarted.restore_replay_positions([(2, 1, 1)]);
        assert_eq!(restarted.replay_positions(), saved);
        assert_eq!(restarted.verify(&first), VoteOutcome::Replayed);
        let second = signed(&signer, 5, 4, 100, false);
        assert_eq!(restarted.verify(&second), VoteOutcome::Valid);
    }

    #[test]
    fn replays_are_refused() {
        let (signer, verifier) = setup();
        let first = signed(&signer, 5, 4, 100, true);
        let second = signed(&signer, 5, 4, 100, false);
        assert!(second.claim.nonce > first.claim.nonce);
        assert_eq!(verifier.verify(&first), VoteOutcome::Valid);
        assert_eq!(verifier.verify(&first), VoteOutcome::Replayed);
        assert_eq!(verifier.verify(&second), VoteOutcome::Valid);
        // The earlier claim arriving late is a replay too.
        assert_eq!(verifier.verify(&first), VoteOutcome::Replayed);
        assert_eq!(verifier.verify(&second), VoteOutcome::Replayed);
        assert_eq!(verifier.metrics().snapshot().replayed, 3);
    }

    #[test]
    fn newer_term_is_accepted_with_a_lower_nonce_but_not_older_term() {
        let (signer, verifier) = setup();
        let sign = |term, nonce| {
            let claim = VoteClaim {
                nonce,
                ..VoteClaim::new(term, 2, log(1, 1))
            };
            SignedVote {
                claim,
                signature: Some(signer.sign(&claim)),
            }
        };
        assert_eq!(verifier.verify(&sign(7, 1_000)), VoteOutcome::Valid);
        // Clock went back across a restart, but the term moved on: accepted.
        assert_eq!(verifier.verify(&sign(8, 10)), VoteOutcome::Valid);
        // Same term, nonce not greater: refused. Older term with a big nonce: refused.
        assert_eq!(verifier.verify(&sign(8, 10)), VoteOutcome::Replayed);
        assert_eq!(verifier.verify(&sign(8, 9)), VoteOutcome::Replayed);
        assert_eq!(verifier.verify(&sign(7, 5_000)), VoteOutcome::Replayed);
        assert_eq!(verifier.verify(&sign(8, 11)), VoteOutcome::Valid);
    }

    #[test]
    fn unknown_and_unsigned_are_refused() {
        let (_, verifier) = setup();
        let stranger = VoteSigner::new(3, NodeKey::from_seed([3u8; 32]));
        assert_eq!(
            verifier.verify(&signed(&stranger, 1, 0, 0, false)),
            VoteOutcome::UnknownNode
        );
        let (signer, _) = setup();
        let mut unsigned = signed(&signer, 1, 0, 0, false);
        unsigned.signature = None;
        assert_eq!(verifier.verify(&unsigned), VoteOutcome::Unsigned);
        let m = verifier.metrics().snapshot();
        assert_eq!((m.unknown_node, m.unsigned, m.valid), (1, 1, 0));
        // Membership: adding node 3 makes its claims verifiable; removing node 2 does not.
        verifier.set_key(3, stranger.public_key());
        assert_eq!(
            verifier.verify(&signed(&stranger, 1, 0, 0, false)),
            VoteOutcome::Valid
        );
        verifier.remove_node(2);
        assert_eq!(
            verifier.verify(&signed(&signer, 2, 0, 0, false)),
            VoteOutcome::UnknownNode
        );
    }

    #[test]
    fn signing_bytes_follow_the_format_comment() {
        let claim = VoteClaim {
            term: 0x0102,
            candidate: 3,
            last_log: Some(ClaimLogId { term: 4, index: 5 }),
            nonce: 6,
            pre_vote: true,
            leadership_transfer: true,
            vote_committed: false,
        };
        let b = claim.signing_bytes();
        assert_eq!(b.len(), 65);
        assert_eq!(&b[..24], b"replication/vote-claim/3");
        assert_eq!(&b[24..32], &0x0102u64.to_le_bytes());
        assert_eq!(&b[32..40], &3u64.to_le_bytes());
        assert_eq!(&b[40..48], &4u64.to_le_bytes());
        assert_eq!(&b[48..56], &5u64.to_le_bytes());
        assert_eq!(&b[56..64], &6u64.to_le_bytes());
        assert_eq!(b[64], 0b0111);
        let empty = VoteClaim::new(1, 3, None).signing_bytes();
        assert_eq!(&empty[40..56], &[0u8; 16]);
        assert_eq!(empty[64], 0);
        // "No last log id" and "log id (0, 0, 0)" sign differently.
        let zero = VoteClaim::new(1, 3, Some(ClaimLogId { term: 0, index: 0 }));
        assert_ne!(zero.signing_bytes(), empty);
    }

    #[test]
    fn identity_rejections_are_counted_without_touching_replay_state() {
        let (signer, verifier) = setup();
        let vote = signed(&signer, 3, 1, 1, false);
        verifier.record_rejection(&vote, VoteOutcome::IdentityMismatch);
        verifier.record_rejection(&vote, VoteOutcome::Valid);
        let m = verifier.metrics().snapshot();
        assert_eq!((m.identity_mismatch, m.valid, m.rejected()), (1, 0, 1));
        // The claim was never accepted, so it is still fresh.
        assert_eq!(verifier.verify(&vote), VoteOutcome::Valid);
    }

    #[test]
    fn nonces_strictly_increase_even_when_called_fast() {
        let (signer, _) = setup();
        let mut prev = 0;
        for _ in 0..10_000 {
            let n = signer.next_nonce();
            assert!(n > prev);
            prev = n;
        }
    }

    #[test]
    fn concurrent_deliveries_of_one_claim_accept_it_once() {
        let (signer, verifier) = setup();
        let vote = signed(&signer, 9, 1, 1, false);
        let verifier = std::sync::Arc::new(verifier);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let v = verifier.clone();
                std::thread::spawn(move || v.verify(&vote))
            })
            .collect();
        let valid = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|o| o.is_valid())
            .count();
        assert_eq!(valid, 1);
        assert_eq!(verifier.metrics().snapshot().replayed, 7);
    }
}
