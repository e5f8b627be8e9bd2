//! Signed vote and pre-vote requests.
//!
//! A candidate signs a [`VoteClaim`] (term, candidate id, last log id, nonce, pre-vote flag)
//! with its [`NodeKey`]; every voter checks the signature against the candidate's configured
//! public key and refuses replays before Raft sees the request.
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
//! check that the TLS peer's node id matches `candidate` ([`crate::transport::PeerInfo`]).

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
/// any other message this system signs, now or later (other messages use other prefixes).
pub const VOTE_CLAIM_DOMAIN: &[u8; 24] = b"replication/vote-claim/1";
/// Length of [`VoteClaim::signing_bytes`].
pub const VOTE_CLAIM_SIGNING_LEN: usize = VOTE_CLAIM_DOMAIN.len() + 5 * 8 + 1;

/// What a candidate asserts when it asks for a vote or a pre-vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteClaim {
    pub term: u64,
    pub candidate: NodeId,
    pub last_log_term: u64,
    pub last_log_index: u64,
    /// Strictly increasing per candidate; see the module docs.
    pub nonce: u64,
    pub pre_vote: bool,
}

impl VoteClaim {
    /// The exact bytes that are signed.
    // Format: vote claim signing input (65 bytes, integers little-endian)
    //   0  [u8; 24] domain "replication/vote-claim/1"
    //  24  u64      term
    //  32  u64      candidate node id
    //  40  u64      last log term
    //  48  u64      last log index
    //  56  u64      nonce
    //  64  u8       1 for a pre-vote, 0 for a vote
    pub fn signing_bytes(&self) -> [u8; VOTE_CLAIM_SIGNING_LEN] {
        let mut b = [0u8; VOTE_CLAIM_SIGNING_LEN];
        let d = VOTE_CLAIM_DOMAIN.len();
        b[..d].copy_from_slice(VOTE_CLAIM_DOMAIN);
        for (i, v) in [
            self.term,
            self.candidate,
            self.last_log_term,
            self.last_log_index,
            self.nonce,
        ]
        .into_iter()
        .enumerate()
        {
            b[d + 8 * i..d + 8 * (i + 1)].copy_from_slice(&v.to_le_bytes());
        }
        b[d + 40] = u8::from(self.pre_vote);
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

    /// Builds a claim for this node with a fresh nonce and signs it.
    pub fn signed_claim(
        &self,
        term: u64,
        last_log_term: u64,
        last_log_index: u64,
        pre_vote: bool,
    ) -> SignedVote {
        let claim = VoteClaim {
            term,
            candidate: self.node_id,
            last_log_term,
            last_log_index,
            nonce: self.next_nonce(),
            pre_vote,
        };
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
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteMetricsSnapshot {
    pub valid: u64,
    pub unsigned: u64,
    pub bad_signature: u64,
    pub replayed: u64,
    pub unknown_node: u64,
}

impl VoteMetricsSnapshot {
    pub fn rejected(&self) -> u64 {
        self.unsigned + self.bad_signature + self.replayed + self.unknown_node
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

    /// Checks a received claim and counts the outcome. On `Valid` the claim is remembered, so
    /// the same claim is `Replayed` the next time.
    pub fn verify(&self, vote: &SignedVote) -> VoteOutcome {
        let outcome = self.check(vote);
        self.metrics.record(outcome);
        if !outcome.is_valid() {
            tracing::warn!(
                candidate = vote.claim.candidate,
                term = vote.claim.term,
                nonce = vote.claim.nonce,
                pre_vote = vote.claim.pre_vote,
                outcome = outcome.as_str(),
                "rejected vote request"
            );
        }
        outcome
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let vote = signer.signed_claim(5, 4, 100, false);
        assert_eq!(verifier.verify(&vote), VoteOutcome::Valid);
        let m = verifier.metrics().snapshot();
        assert_eq!(m.valid, 1);
        assert_eq!(m.rejected(), 0);
    }

    #[test]
    fn every_tampered_field_breaks_the_signature() {
        let (signer, verifier) = setup();
        let vote = signer.signed_claim(5, 4, 100, true);
        let tamperings: [fn(&mut VoteClaim); 5] = [
            |c| c.term += 1,
            |c| c.last_log_term += 1,
            |c| c.last_log_index += 1,
            |c| c.nonce += 1,
            |c| c.pre_vote = !c.pre_vote,
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
        assert_eq!(verifier.metrics().snapshot().bad_signature, 7);
        // The untouched original still verifies: failures did not poison the replay state.
        assert_eq!(verifier.verify(&vote), VoteOutcome::Valid);
    }

    #[test]
    fn signature_by_the_wrong_key_is_refused() {
        let (_, verifier) = setup();
        let impostor = VoteSigner::new(2, NodeKey::from_seed([9u8; 32]));
        let vote = impostor.signed_claim(5, 4, 100, false);
        assert_eq!(verifier.verify(&vote), VoteOutcome::BadSignature);
    }

    #[test]
    fn replays_are_refused() {
        let (signer, verifier) = setup();
        let first = signer.signed_claim(5, 4, 100, true);
        let second = signer.signed_claim(5, 4, 100, false);
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
                term,
                candidate: 2,
                last_log_term: 1,
                last_log_index: 1,
                nonce,
                pre_vote: false,
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
            verifier.verify(&stranger.signed_claim(1, 0, 0, false)),
            VoteOutcome::UnknownNode
        );
        let (signer, _) = setup();
        let mut unsigned = signer.signed_claim(1, 0, 0, false);
        unsigned.signature = None;
        assert_eq!(verifier.verify(&unsigned), VoteOutcome::Unsigned);
        let m = verifier.metrics().snapshot();
        assert_eq!((m.unknown_node, m.unsigned, m.valid), (1, 1, 0));
        // Membership: adding node 3 makes its claims verifiable; removing node 2 does not.
        verifier.set_key(3, stranger.public_key());
        assert_eq!(
            verifier.verify(&stranger.signed_claim(1, 0, 0, false)),
            VoteOutcome::Valid
        );
        verifier.remove_node(2);
        assert_eq!(
            verifier.verify(&signer.signed_claim(2, 0, 0, false)),
            VoteOutcome::UnknownNode
        );
    }

    #[test]
    fn signing_bytes_follow_the_format_comment() {
        let claim = VoteClaim {
            term: 0x0102,
            candidate: 3,
            last_log_term: 4,
            last_log_index: 5,
            nonce: 6,
            pre_vote: true,
        };
        let b = claim.signing_bytes();
        assert_eq!(b.len(), 65);
        assert_eq!(&b[..24], b"replication/vote-claim/1");
        assert_eq!(&b[24..32], &0x0102u64.to_le_bytes());
        assert_eq!(&b[32..40], &3u64.to_le_bytes());
        assert_eq!(&b[40..48], &4u64.to_le_bytes());
        assert_eq!(&b[48..56], &5u64.to_le_bytes());
        assert_eq!(&b[56..64], &6u64.to_le_bytes());
        assert_eq!(b[64], 1);
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
        let vote = signer.signed_claim(9, 1, 1, false);
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
