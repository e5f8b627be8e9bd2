//! A node's ed25519 signing key and its public half.
//!
//! On disk a key is a PKCS#8 `PRIVATE KEY` PEM (what `openssl genpkey -algorithm ed25519`
//! writes, so operators can create and inspect keys with standard tools). Loading also accepts
//! a file of exactly 32 raw seed bytes. Saving writes mode 0600 through a temporary file,
//! fsync and rename, so a crash never leaves a half-written key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::error::SecurityError;

/// A node's private signing key. `Debug` shows only the public key; the secret is wiped from
/// memory when the value is dropped.
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> NodeKey {
        NodeKey {
            signing: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// The key for a 32-byte seed (deterministic; tests and key import).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public_key(&self) -> NodePublicKey {
        NodePublicKey(self.signing.verifying_key())
    }

    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// PKCS#8 PEM of the private key.
    pub fn to_pem(&self) -> String {
        // Encoding a well-formed 32-byte ed25519 key cannot fail.
        match self.signing.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            Err(e) => unreachable!("PKCS#8 encoding of an ed25519 key failed: {e}"),
        }
    }

    pub fn from_pem(pem: &str) -> Result<NodeKey, String> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|signing| NodeKey { signing })
            .map_err(|e| e.to_string())
    }

    /// Reads a key written by [`NodeKey::save`], by `openssl genpkey -algorithm ed25519`, or a
    /// raw 32-byte seed. Warns if the file is readable by group or others.
    pub fn load(path: &Path) -> Result<NodeKey, SecurityError> {
        let io = |action, source| SecurityError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| io("read", e))?;
        let mode = std::fs::metadata(path)
            .map_err(|e| io("inspect", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "node key file is readable by other users; run chmod 600 on it"
            );
        }
        let invalid = |reason: String| SecurityError::InvalidKeyFile {
            path: path.to_path_buf(),
            reason,
        };
        if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(NodeKey::from_seed(seed));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| invalid(format!("{} bytes of binary data", bytes.len())))?;
        NodeKey::from_pem(text).map_err(invalid)
    }

    /// Writes the key as PKCS#8 PEM with mode 0600, atomically (temp file, fsync, rename,
    /// fsync of the directory).
    pub fn save(&self, path: &Path) -> Result<(), SecurityError> {
        super::write_file_atomically(path, self.to_pem().as_bytes(), 0o600).map_err(|source| {
            SecurityError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// The public half of a [`NodeKey`], as peers configure it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodePublicKey(pub(crate) VerifyingKey);

impl std::fmt::Debug for NodePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodePublicKey({})", self.to_hex())
    }
}

impl NodePublicKey {
    /// From the 32-byte compressed point. Refuses points that are not valid ed25519 keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<NodePublicKey, SecurityError> {
        VerifyingKey::from_bytes(bytes)
            .map(NodePublicKey)
            .map_err(|e| SecurityError::InvalidPublicKey(e.to_string()))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Lower-case hex of the 32 bytes, the form a config file would hold.
    pub fn to_hex(&self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Result<NodePublicKey, SecurityError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(SecurityError::InvalidPublicKey(format!(
                "expected 64 hex digits, got {:?}",
                hex
            )));
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| SecurityError::InvalidPublicKey(format!("bad hex: {e}")))?;
        }
        Self::from_bytes(&bytes)
    }

    /// SubjectPublicKeyInfo PEM (`PUBLIC KEY`), as `openssl pkey -pubout` writes it.
    pub fn to_pem(&self) -> String {
        match self.0.to_public_key_pem(LineEnding::LF) {
            Ok(pem) => pem,
            Err(e) => unreachable!("SPKI encoding of an ed25519 key failed: {e}"),
        }
    }

    pub fn from_pem(pem: &str) -> Result<NodePublicKey, SecurityError> {
        VerifyingKey::from_public_key_pem(pem)
            .map(NodePublicKey)
            .map_err(|e| SecurityError::InvalidPublicKey(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_gives_the_same_key_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::generate();
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        let back = NodeKey::load(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn raw_seed_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        std::fs::write(&path, [7u8; 32]).unwrap();
        let key = NodeKey::load(&path).unwrap();
        assert_eq!(key.public_key(), NodeKey::from_seed([7u8; 32]).public_key());
    }

    #[test]
    fn garbage_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, b"not a key at all").unwrap();
        let err = NodeKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.key"), "{err}");
        assert!(err.contains("PKCS#8"), "{err}");
        let missing = NodeKey::load(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, SecurityError::Io { action: "read", .. }));
    }

    #[test]
    fn openssl_interoperates_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openssl.key");
        let made = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&path)
            .status();
        match made {
            Ok(s) if s.success() => {
                let key = NodeKey::load(&path).unwrap();
                // Our public key PEM must equal what openssl derives from the same file.
                let out = std::process::Command::new("openssl")
                    .args(["pkey", "-pubout", "-in"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(out.status.success());
                assert_eq!(
                    String::from_utf8(out.stdout).unwrap().trim(),
                    key.public_key().to_pem().trim()
                );
            }
            _ => eprintln!("note: openssl not available; skipped the interoperability check"),
        }
    }

    #[test]
    fn public_key_encodings_round_trip() {
        let public = NodeKey::from_seed([1u8; 32]).public_key();
        assert_eq!(NodePublicKey::from_hex(&public.to_hex()).unwrap(), public);
        assert_eq!(NodePublicKey::from_pem(&public.to_pem()).unwrap(), public);
        assert_eq!(
            NodePublicKey::from_bytes(&public.to_bytes()).unwrap(),
            public
        );
        assert!(NodePublicKey::from_hex("abcd").is_err());
        assert!(NodePublicKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = NodeKey::from_seed([0xAB; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abababab"), "{shown}");
        assert!(shown.contains(&key.public_key().to_hex()));
    }
}
