//! Errors of node key handling.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("cannot {action} the node key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the node key file {path} is not usable: {reason}; expected a PKCS#8 \"PRIVATE KEY\" \
         PEM holding an ed25519 key, or exactly 32 raw seed bytes"
    )]
    InvalidKeyFile { path: PathBuf, reason: String },

    #[error("invalid ed25519 public key: {0}")]
    InvalidPublicKey(String),

    #[error("invalid vote signature: expected 64 bytes, got {0}")]
    InvalidSignatureLength(usize),
}
