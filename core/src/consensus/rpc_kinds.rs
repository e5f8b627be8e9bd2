//! Consensus RPCs on the node-to-node transport: frame kinds and payload encodings.
//!
//! Shared by the client side ([`super::network_tls`]) and the server side
//! ([`super::raft_server`]); docs/FORMAT.md ("Consensus RPCs") describes the same layouts.
//!
//! Encoding choice: the rare messages go as JSON (serde_json, already a dependency). openraft
//! derives serde for them, so JSON follows its types across pre-releases without a
//! hand-written codec to keep in step, and a captured frame is readable while debugging.
//! Three payloads are not JSON: AppendEntries (a binary codec, [`super::append_codec`],
//! because it carries nearly every byte and JSON made its payloads arrays of numbers), the
//! vote envelope header (a fixed binary header in front of the JSON request, so the signature
//! is not re-encoded) and the snapshot chunks (raw bytes after a small JSON header).
//!
//! Errors travel as ERROR frames (a UTF-8 message), never as a JSON body.

use bytes::{BufMut, Bytes, BytesMut};
use openraft::raft::VoteRequest;
use serde::{Deserialize, Serialize};

use super::types::{SnapshotMeta, Vote, C};
use crate::security::{ClaimLogId, SignedVote, VoteClaim, VoteSignature, VoteSigner};

// 0x0101 was AppendEntries as JSON (retired; never reuse the number).

/// Frame kind of an AppendEntries request in the binary layout of [`super::append_codec`]; the
/// reply is the binary append result. Requests of this kind on one connection reach Raft in
/// the order they were sent, so a leader may pipeline them (see `raft_server.rs`).
pub const KIND_APPEND_STREAM: u16 = 0x0106;
/// Frame kind of a vote request ([`SignedVoteRequest`]; reply JSON `VoteResponse`).
pub const KIND_VOTE: u16 = 0x0102;
/// Frame kind of a pre-vote request ([`SignedVoteRequest`]; reply JSON `VoteResponse`).
pub const KIND_PRE_VOTE: u16 = 0x0103;
/// Frame kind of one piece of a full snapshot ([`SnapshotChunk`]; reply JSON
/// `Option<SnapshotResponse>`, `Some` only for the last chunk).
pub const KIND_SNAPSHOT_CHUNK: u16 = 0x0104;
/// Frame kind of a TransferLeader message (JSON `TransferLeaderRequest`; reply JSON
/// `TransferLeaderResponse`).
pub const KIND_TRANSFER_LEADER: u16 = 0x0105;

/// Version of the vote envelope header.
pub const VOTE_ENVELOPE_VERSION: u8 = 1;
/// Bytes before the JSON request in a vote envelope.
pub const VOTE_ENVELOPE_HEADER_LEN: usize = 1 + 1 + 64 + 8;

/// A payload that does not follow its layout.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{what}: payload of {len} bytes is shorter than its {need}-byte header")]
    Short {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what}: unsupported version {version}")]
    Version { what: &'static str, version: u8 },
    #[error("{what}: reserved flag bits set ({flags:#04x})")]
    Flags { what: &'static str, flags: u8 },
    #[error("{what}: invalid at byte {offset}: {detail}")]
    Invalid {
        what: &'static str,
        offset: usize,
        detail: String,
    },
    #[error("{what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub fn to_json<T: Serialize>(value: &T) -> Bytes {
    // Serializing openraft's messages into memory cannot fail: every map key is a string or
    // an integer and no Serialize impl reports errors.
    Bytes::from(serde_json::to_vec(value).expect("consensus messages serialize to JSON"))
}

pub fn from_json<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|source| CodecError::Json { what, source })
}

/// The claim a vote request makes: every field of `req`, the kind and the nonce. Both ends
/// build it the same way, so the signature covers exactly the request Raft will see.
pub fn claim_of(req: &VoteRequest<C>, pre_vote: bool, nonce: u64) -> VoteClaim {
    VoteClaim {
        term: req.vote.leader_id.term,
        candidate: req.vote.leader_id.voted_for,
        last_log: req.last_log_id.map(|l| ClaimLogId {
            term: l.leader_id.term,
            index: l.index,
        }),
        nonce,
        pre_vote,
        leadership_transfer: req.leadership_transfer,
        vote_committed: req.vote.committed,
    }
}

/// A vote or pre-vote request with the candidate's signature. Whether it is a pre-vote is
/// not in the envelope: it is the frame kind, and it is signed, so a pre-vote cannot be
/// replayed as a vote.
#[derive(Debug, Clone)]
pub struct SignedVoteRequest {
    pub request: VoteRequest<C>,
    pub nonce: u64,
    pub signature: Option<VoteSignature>,
}

impl SignedVoteRequest {
    /// Signs `request` with a fresh nonce. Call once per transmission.
    pub fn sign(signer: &VoteSigner, request: VoteRequest<C>, pre_vote: bool) -> Self {
        let signed = signer.sign_fresh(claim_of(&request, pre_vote, 0));
        SignedVoteRequest {
            request,
            nonce: signed.claim.nonce,
            signature: signed.signature,
        }
    }

    /// What the receiver verifies.
    pub fn signed_vote(&self, pre_vote: bool) -> SignedVote {
        SignedVote {
            claim: claim_of(&self.request, pre_vote, self.nonce),
            signature: self.signature,
        }
    }

    // Format: vote envelope (payload of KIND_VOTE and KIND_PRE_VOTE, integers little-endian)
    //   0  u8        envelope version (1)
    //   1  u8        flags: bit 0 signature present; others 0
    //   2  [u8; 64]  ed25519 signature over the vote claim (zeros when absent)
    //  66  u64       nonce
    //  74  ..        the openraft VoteRequest as JSON
    pub fn encode(&self) -> Bytes {
        let json = serde_json::to_vec(&self.request).expect("vote requests serialize to JSON");
        let mut b = BytesMut::with_capacity(VOTE_ENVELOPE_HEADER_LEN + json.len());
        b.put_u8(VOTE_ENVELOPE_VERSION);
        b.put_u8(u8::from(self.signature.is_some()));
        b.put_slice(&self.signature.map(|s| s.0).unwrap_or([0u8; 64]));
        b.put_u64_le(self.nonce);
        b.put_slice(&json);
        b.freeze()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, CodecError> {
        const WHAT: &str = "vote envelope";
        if payload.len() < VOTE_ENVELOPE_HEADER_LEN {
            return Err(CodecError::Short {
                what: WHAT,
                len: payload.len(),
                need: VOTE_ENVELOPE_HEADER_LEN,
            });
        }
        if payload[0] != VOTE_ENVELOPE_VERSION {
            return Err(CodecError::Version {
                what: WHAT,
                version: payload[0],
            });
        }
        let flags = payload[1];
        if flags & !1 != 0 {
            return Err(CodecError::Flags { what: WHAT, flags });
        }
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&payload[2..66]);
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&payload[66..74]);
        Ok(SignedVoteRequest {
            request: from_json(WHAT, &payload[VOTE_ENVELOPE_HEADER_LEN..])?,
            nonce: u64::from_le_bytes(nonce),
            signature: (flags & 1 == 1).then_some(VoteSignature(sig)),
        })
    }
}

/// The JSON header of a snapshot chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotChunkHeader {
    /// Chosen by the sender, the same for every chunk of one snapshot.
    pub transfer_id: u64,
    /// The leader's vote (its node id must be the TLS peer's).
    pub vote: Vote,
    /// Where the chunk's bytes start in the snapshot.
    pub offset: u64,
    /// Size of the whole snapshot.
    pub total_len: u64,
    /// Present on the last chunk only: the receiver installs the snapshot then.
    pub meta: Option<SnapshotMeta>,
}

/// One piece of a full snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotChunk {
    pub header: SnapshotChunkHeader,
    pub data: Bytes,
}

impl SnapshotChunk {
    // Format: snapshot chunk (payload of KIND_SNAPSHOT_CHUNK)
    //   0  u32  length H of the header (little-endian)
    //   4  H    SnapshotChunkHeader as JSON
    //   4+H ..  the chunk's snapshot bytes
    pub fn encode(header: &SnapshotChunkHeader, data: &[u8]) -> Bytes {
        let json = serde_json::to_vec(header).expect("chunk headers serialize to JSON");
        let mut b = BytesMut::with_capacity(4 + json.len() + data.len());
        b.put_u32_le(json.len() as u32);
        b.put_slice(&json);
        b.put_slice(data);
        b.freeze()
    }

    pub fn decode(payload: &Bytes) -> Result<Self, CodecError> {
        const WHAT: &str = "snapshot chunk";
        let short = |need| CodecError::Short {
            what: WHAT,
            len: payload.len(),
            need,
        };
        if payload.len() < 4 {
            return Err(short(4));
        }
        let h = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        let end = 4usize.checked_add(h).ok_or_else(|| short(usize::MAX))?;
        if payload.len() < end {
            return Err(short(end));
        }
        Ok(SnapshotChunk {
            header: from_json(WHAT, &payload[4..end])?,
            data: payload.slice(end..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::log_id;
    use crate::security::{NodeKey, VoteOutcome, VoteVerifier};

    fn request(transfer: bool) -> VoteRequest<C> {
        VoteRequest {
            vote: openraft::Vote::new(7, 2),
            last_log_id: Some(log_id(6, 42)),
            leadership_transfer: transfer,
        }
    }

    #[test]
    fn envelope_round_trips_and_verifies() {
        let signer = VoteSigner::new(2, NodeKey::from_seed([2; 32]));
        let verifier = VoteVerifier::new([(2, signer.public_key())]);
        let env = SignedVoteRequest::sign(&signer, request(true), false);
        let back = SignedVoteRequest::decode(&env.encode()).unwrap();
        assert_eq!(back.request, env.request);
        assert_eq!(back.nonce, env.nonce);
        assert_eq!(back.signature, env.signature);
        let claim = back.signed_vote(false).claim;
        assert!(claim.leadership_transfer);
        assert_eq!(claim.last_log.map(|l| (l.term, l.index)), Some((6, 42)));
        assert_eq!(
            verifier.verify(&back.signed_vote(false)),
            VoteOutcome::Valid
        );
    }

    #[test]
    fn pre_vote_signature_is_not_a_vote_signature() {
        let signer = VoteSigner::new(2, NodeKey::from_seed([2; 32]));
        let verifier = VoteVerifier::new([(2, signer.public_key())]);
        let env = SignedVoteRequest::sign(&signer, request(false), true);
        assert_eq!(
            verifier.verify(&env.signed_vote(false)),
            VoteOutcome::BadSignature
        );
        // Setting the transfer flag after signing breaks the signature too.
        let mut forged = env.clone();
        forged.request.leadership_transfer = true;
        assert_eq!(
            verifier.verify(&forged.signed_vote(true)),
            VoteOutcome::BadSignature
        );
        assert_eq!(verifier.verify(&env.signed_vote(true)), VoteOutcome::Valid);
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let signer = VoteSigner::new(2, NodeKey::from_seed([2; 32]));
        let good = SignedVoteRequest::sign(&signer, request(false), false).encode();
        assert!(SignedVoteRequest::decode(&good[..10]).is_err());
        let mut bad = good.to_vec();
        bad[0] = 9;
        assert!(SignedVoteRequest::decode(&bad).is_err());
        let mut bad = good.to_vec();
        bad[1] = 0x81;
        assert!(SignedVoteRequest::decode(&bad).is_err());
        let mut bad = good.to_vec();
        bad.truncate(bad.len() - 1);
        assert!(SignedVoteRequest::decode(&bad).is_err());
        // Unsigned envelopes decode (and are then refused by the verifier).
        let mut unsigned = good.to_vec();
        unsigned[1] = 0;
        assert!(SignedVoteRequest::decode(&unsigned)
            .unwrap()
            .signature
            .is_none());
    }

    #[test]
    fn chunk_round_trips() {
        let header = SnapshotChunkHeader {
            transfer_id: 3,
            vote: openraft::Vote::new_committed(4, 1),
            offset: 10,
            total_len: 13,
            meta: None,
        };
        let payload = SnapshotChunk::encode(&header, b"abc");
        let back = SnapshotChunk::decode(&payload).unwrap();
        assert_eq!(&back.data[..], b"abc");
        assert_eq!(back.header.offset, 10);
        assert_eq!(back.header.vote, header.vote);
        assert!(SnapshotChunk::decode(&payload.slice(..6)).is_err());
        assert!(SnapshotChunk::decode(&Bytes::from_static(&[255, 255, 255, 255])).is_err());
    }
}
