//! Wire framing for node-to-node messages.
//!
//! A frame is a fixed 28-byte header followed by an opaque payload. The header names the
//! message kind (chosen by the layer above: append-entries, vote, snapshot chunk, ...), a
//! request id that ties a response to its request, and a CRC32C over header and payload.
//!
//! Decoding treats its input as hostile: the length is checked against a limit before any
//! allocation, unknown flag bits and versions are refused rather than guessed at, and every
//! failure is a [`FrameError`], never a panic. A peer that sends a bad frame is disconnected:
//! after a framing error the position of the next frame in the stream is unknown.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// First bytes of every frame. Chosen so that a TLS record (0x14..=0x17, 0x03, ...) or an
/// HTTP request can never be mistaken for a frame.
pub const FRAME_MAGIC: [u8; 4] = *b"RPLN";
/// Version written by this build and the only one it reads. Bump it for any change a
/// version-1 reader would misinterpret; peers of different versions then refuse each other
/// with [`FrameError::UnsupportedVersion`] instead of misreading.
pub const FRAME_VERSION: u16 = 1;
pub const FRAME_HEADER_LEN: usize = 28;
/// Payload limit used unless a connection is configured otherwise. Large enough for a
/// generous batch of log entries; snapshots travel in chunks well below it.
pub const DEFAULT_MAX_FRAME_PAYLOAD: u32 = 16 * 1024 * 1024;

/// Flag: this frame answers the request with the same request id.
pub const FLAG_RESPONSE: u16 = 1 << 0;
/// Flag (only with [`FLAG_RESPONSE`]): the request failed; the payload is a UTF-8 message.
pub const FLAG_ERROR: u16 = 1 << 1;
const KNOWN_FLAGS: u16 = FLAG_RESPONSE | FLAG_ERROR;

/// Why bytes could not be read as a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("bad frame magic {found:02x?} (expected {FRAME_MAGIC:02x?}): the peer does not speak this protocol, or plaintext met TLS")]
    BadMagic { found: [u8; 4] },

    #[error("frame format version {found} is not supported (this build speaks version {FRAME_VERSION}); run the same release on every node")]
    UnsupportedVersion { found: u16 },

    #[error("frame flags {flags:#06x} are not valid (known bits {KNOWN_FLAGS:#06x}; ERROR requires RESPONSE)")]
    BadFlags { flags: u16 },

    #[error("frame reserved field is {found:#06x}, expected 0")]
    NonZeroReserved { found: u16 },

    #[error("frame payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: u32 },

    #[error("frame checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch { stored: u32, computed: u32 },

    /// The buffer or stream ended inside a frame.
    #[error("frame truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },

    #[error("I/O error while reading or writing a frame: {0}")]
    Io(#[from] std::io::Error),
}

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is; meaning is up to the layer above.
    pub kind: u16,
    /// [`FLAG_RESPONSE`] and [`FLAG_ERROR`].
    pub flags: u16,
    /// Correlates a response with its request; 0 for one-way messages.
    pub request_id: u64,
    pub payload: Bytes,
}

/// The decoded fixed part of a frame, before the payload has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: u16,
    pub flags: u16,
    pub request_id: u64,
    pub payload_len: u32,
    pub crc: u32,
}

impl Frame {
    pub fn request(kind: u16, request_id: u64, payload: Bytes) -> Frame {
        Frame {
            kind,
            flags: 0,
            request_id,
            payload,
        }
    }

    /// The successful answer to `request`.
    pub fn response_to(request: &Frame, payload: Bytes) -> Frame {
        Frame {
            kind: request.kind,
            flags: FLAG_RESPONSE,
            request_id: request.request_id,
            payload,
        }
    }

    /// The failure answer to `request`, carrying a human-readable message.
    pub fn error_response_to(request: &Frame, message: &str) -> Frame {
        Frame {
            kind: request.kind,
            flags: FLAG_RESPONSE | FLAG_ERROR,
            request_id: request.request_id,
            payload: Bytes::copy_from_slice(message.as_bytes()),
        }
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }

    /// Encodes the header for this frame, checksum included. Fails if the payload is over
    /// `max_payload` (the sender's limit must not exceed the receiver's, or the receiver
    /// drops the connection) or the flags are invalid.
    // Format: frame header (28 bytes, little-endian), then `payload length` bytes of payload
    //   0  [u8; 4] magic "RPLN"
    //   4  u16     format version (1)
    //   6  u16     kind: what the payload is, defined by the layer above
    //   8  u16     flags: bit 0 RESPONSE, bit 1 ERROR (payload is a UTF-8 message; needs
    //              RESPONSE); other bits must be 0
    //  10  u16     reserved, 0
    //  12  u64     request id: a response repeats its request's id; 0 for one-way messages
    //  20  u32     payload length in bytes (at most the receiver's limit)
    //  24  u32     CRC32C of bytes 0..24 followed by the payload
    pub fn encode_header(&self, max_payload: u32) -> Result<[u8; FRAME_HEADER_LEN], FrameError> {
        check_flags(self.flags)?;
        let len = self.payload.len() as u64;
        if len > u64::from(max_payload) {
            return Err(FrameError::TooLarge {
                len,
                max: max_payload,
            });
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[0..4].copy_from_slice(&FRAME_MAGIC);
        h[4..6].copy_from_slice(&FRAME_VERSION.to_le_bytes());
        h[6..8].copy_from_slice(&self.kind.to_le_bytes());
        h[8..10].copy_from_slice(&self.flags.to_le_bytes());
        h[12..20].copy_from_slice(&self.request_id.to_le_bytes());
        // Cannot truncate: len <= max_payload, a u32.
        h[20..24].copy_from_slice(&(len as u32).to_le_bytes());
        let crc = frame_crc(&h, &self.payload);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        Ok(h)
    }

    /// Header and payload in one buffer.
    pub fn encode(&self, max_payload: u32) -> Result<Vec<u8>, FrameError> {
        let header = self.encode_header(max_payload)?;
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + self.payload.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Decodes one frame from the start of `buf`, returning it and the number of bytes it
    /// occupied. [`FrameError::Truncated`] means `buf` holds only part of a frame.
    pub fn decode(buf: &[u8], max_payload: u32) -> Result<(Frame, usize), FrameError> {
        let Some(header_bytes) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Err(FrameError::Truncated {
                needed: FRAME_HEADER_LEN,
                available: buf.len(),
            });
        };
        let header = FrameHeader::decode(header_bytes, max_payload)?;
        let total = FRAME_HEADER_LEN + header.payload_len as usize;
        let Some(payload) = buf.get(FRAME_HEADER_LEN..total) else {
            return Err(FrameError::Truncated {
                needed: total,
                available: buf.len(),
            });
        };
        header.verify(header_bytes, payload)?;
        Ok((header.into_frame(Bytes::copy_from_slice(payload)), total))
    }
}

impl FrameHeader {
    /// Checks everything that can be checked without the payload. The length is bounded by
    /// `max_payload` here, so a caller may allocate `payload_len` bytes afterwards.
    pub fn decode(h: &[u8; FRAME_HEADER_LEN], max_payload: u32) -> Result<FrameHeader, FrameError> {
        let [m0, m1, m2, m3, v0, v1, k0, k1, f0, f1, r0, r1, i0, i1, i2, i3, i4, i5, i6, i7, l0, l1, l2, l3, c0, c1, c2, c3] =
            *h;
        let magic = [m0, m1, m2, m3];
        if magic != FRAME_MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        let version = u16::from_le_bytes([v0, v1]);
        if version != FRAME_VERSION {
            return Err(FrameError::UnsupportedVersion { found: version });
        }
        let flags = u16::from_le_bytes([f0, f1]);
        check_flags(flags)?;
        let reserved = u16::from_le_bytes([r0, r1]);
        if reserved != 0 {
            return Err(FrameError::NonZeroReserved { found: reserved });
        }
        let payload_len = u32::from_le_bytes([l0, l1, l2, l3]);
        if payload_len > max_payload {
            return Err(FrameError::TooLarge {
                len: u64::from(payload_len),
                max: max_payload,
            });
        }
        Ok(FrameHeader {
            kind: u16::from_le_bytes([k0, k1]),
            flags,
            request_id: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            payload_len,
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    fn verify(
        &self,
        header_bytes: &[u8; FRAME_HEADER_LEN],
        payload: &[u8],
    ) -> Result<(), FrameError> {
        let computed = frame_crc(header_bytes, payload);
        if computed != self.crc {
            return Err(FrameError::ChecksumMismatch {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }

    fn into_frame(self, payload: Bytes) -> Frame {
        Frame {
            kind: self.kind,
            flags: self.flags,
            request_id: self.request_id,
            payload,
        }
    }
}

fn check_flags(flags: u16) -> Result<(), FrameError> {
    let unknown = flags & !KNOWN_FLAGS != 0;
    let error_without_response = flags & FLAG_ERROR != 0 && flags & FLAG_RESPONSE == 0;
    if unknown || error_without_response {
        return Err(FrameError::BadFlags { flags });
    }
    Ok(())
}

fn frame_crc(header: &[u8; FRAME_HEADER_LEN], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&header[0..24]), payload)
}

/// Reads one frame. Returns `Ok(None)` if the stream ends cleanly before the first byte of a
/// frame, and [`FrameError::Truncated`] if it ends inside one.
pub async fn read_frame<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    max_payload: u32,
) -> Result<Option<Frame>, FrameError> {
    let mut header_bytes = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let n = reader.read(&mut header_bytes[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                needed: FRAME_HEADER_LEN,
                available: filled,
            });
        }
        filled += n;
    }
    let header = FrameHeader::decode(&header_bytes, max_payload)?;
    // Bounded by max_payload in FrameHeader::decode.
    let mut payload = vec![0u8; header.payload_len as usize];
    let mut got = 0;
    while got < payload.len() {
        let n = reader.read(&mut payload[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                needed: FRAME_HEADER_LEN + payload.len(),
                available: FRAME_HEADER_LEN + got,
            });
        }
        got += n;
    }
    header.verify(&header_bytes, &payload)?;
    Ok(Some(header.into_frame(Bytes::from(payload))))
}

/// Writes one frame without flushing: a writer sending several frames flushes once after the
/// last (buffered and TLS streams hold bytes until then).
pub async fn write_frame<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    frame: &Frame,
    max_payload: u32,
) -> Result<(), FrameError> {
    let header = frame.encode_header(max_payload)?;
    writer.write_all(&header).await?;
    writer.write_all(&frame.payload).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Frame {
        Frame::request(7, 42, Bytes::from_static(b"hello raft"))
    }

    #[test]
    fn round_trip_through_bytes() {
        let f = sample();
        let bytes = f.encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        assert_eq!(bytes.len(), FRAME_HEADER_LEN + 10);
        let (back, used) = Frame::decode(&bytes, DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        assert_eq!(back, f);
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn header_layout_matches_format_comment() {
        let f = Frame::response_to(&sample(), Bytes::from_static(b"ok"));
        let b = f.encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        assert_eq!(&b[0..4], b"RPLN");
        assert_eq!(&b[4..6], &1u16.to_le_bytes());
        assert_eq!(&b[6..8], &7u16.to_le_bytes());
        assert_eq!(&b[8..10], &FLAG_RESPONSE.to_le_bytes());
        assert_eq!(&b[10..12], &[0, 0]);
        assert_eq!(&b[12..20], &42u64.to_le_bytes());
        assert_eq!(&b[20..24], &2u32.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..24]), b"ok");
        assert_eq!(&b[24..28], &crc.to_le_bytes());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let result = Frame::decode(&b, DEFAULT_MAX_FRAME_PAYLOAD);
            // A flip in the length field may also make the frame look truncated or too large;
            // what matters is that no flipped frame decodes.
            assert!(result.is_err(), "bit {bit} flipped but the frame decoded");
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut b = sample().encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        match Frame::decode(&b, DEFAULT_MAX_FRAME_PAYLOAD) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, DEFAULT_MAX_FRAME_PAYLOAD);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn sender_refuses_payload_over_its_limit() {
        let f = Frame::request(1, 1, Bytes::from(vec![0u8; 11]));
        assert!(matches!(
            f.encode(10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        ));
        assert!(f.encode(11).is_ok());
    }

    #[test]
    fn version_and_flags_are_checked() {
        let mut b = sample().encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        b[4..6].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(
            Frame::decode(&b, DEFAULT_MAX_FRAME_PAYLOAD),
            Err(FrameError::UnsupportedVersion { found: 2 })
        ));
        let bad = Frame {
            flags: FLAG_ERROR,
            ..sample()
        };
        assert!(matches!(
            bad.encode(DEFAULT_MAX_FRAME_PAYLOAD),
            Err(FrameError::BadFlags { .. })
        ));
    }

    #[test]
    fn plaintext_tls_record_is_bad_magic() {
        // A TLS alert record as a TLS server would send it to a plaintext client.
        let mut tls_alert = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];
        tls_alert.resize(FRAME_HEADER_LEN, 0);
        assert!(matches!(
            Frame::decode(&tls_alert, DEFAULT_MAX_FRAME_PAYLOAD),
            Err(FrameError::BadMagic { .. })
        ));
    }

    #[tokio::test]
    async fn async_round_trip_and_clean_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let frames = vec![
            sample(),
            Frame::response_to(&sample(), Bytes::new()),
            Frame::error_response_to(&sample(), "no leader"),
        ];
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for f in &sent {
                write_frame(&mut a, f, DEFAULT_MAX_FRAME_PAYLOAD)
                    .await
                    .unwrap();
            }
            a.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(f) = read_frame(&mut b, DEFAULT_MAX_FRAME_PAYLOAD).await.unwrap() {
            got.push(f);
        }
        writer.await.unwrap();
        assert_eq!(got, frames);
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_truncated() {
        let bytes = sample().encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
        for cut in 1..bytes.len() {
            let mut r = &bytes[..cut];
            let err = read_frame(&mut r, DEFAULT_MAX_FRAME_PAYLOAD)
                .await
                .unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256),
                                       max in 0u32..512) {
            // Must return, never panic or over-allocate; an accidental success must be a
            // frame that re-encodes to the same bytes.
            if let Ok((frame, used)) = Frame::decode(&bytes, max) {
                prop_assert_eq!(frame.encode(max).unwrap(), bytes[..used].to_vec());
            }
        }

        #[test]
        fn arbitrary_header_with_valid_magic_never_panics(
            rest in proptest::collection::vec(any::<u8>(), 24..200)) {
            let mut bytes = FRAME_MAGIC.to_vec();
            bytes.extend_from_slice(&rest);
            let _ = Frame::decode(&bytes, DEFAULT_MAX_FRAME_PAYLOAD);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut r = &bytes[..];
            let _ = rt.block_on(read_frame(&mut r, DEFAULT_MAX_FRAME_PAYLOAD));
        }

        #[test]
        fn round_trip(kind: u16, request_id: u64, response: bool, error: bool,
                      payload in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let flags = match (response, error) {
                (true, true) => FLAG_RESPONSE | FLAG_ERROR,
                (true, false) => FLAG_RESPONSE,
                _ => 0,
            };
            let f = Frame { kind, flags, request_id, payload: Bytes::from(payload) };
            let mut bytes = f.encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
            // A second frame behind the first must not confuse the decoder.
            bytes.extend_from_slice(&sample().encode(DEFAULT_MAX_FRAME_PAYLOAD).unwrap());
            let (back, used) = Frame::decode(&bytes, DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
            prop_assert_eq!(&back, &f);
            let (second, _) = Frame::decode(&bytes[used..], DEFAULT_MAX_FRAME_PAYLOAD).unwrap();
            prop_assert_eq!(second, sample());
        }
    }
}
