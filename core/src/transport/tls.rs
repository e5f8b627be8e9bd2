//! TLS material and the rustls configurations built from it.
//!
//! One [`TlsIdentity`] serves both directions, because every node both accepts and opens
//! connections: its server side demands a client certificate chaining to the cluster CA, its
//! client side verifies the server against the same CA and presents the node certificate.
//! Both sides speak TLS 1.3 only.
//!
//! Node certificates must carry the `node-<id>` DNS name (see [`super::identity`]) and an
//! extended key usage that allows both server and client authentication (or none at all),
//! since the same certificate is presented in both roles.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::TransportError;
use super::identity::node_id_from_certificate;
use crate::NodeId;

/// Where a node finds its TLS material: PEM files, as a config file names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The node certificate, optionally followed by intermediates (leaf first).
    pub cert_path: PathBuf,
    /// The private key of the node certificate (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key_path: PathBuf,
    /// The cluster CA certificate(s) that peers' certificates must chain to.
    pub ca_path: PathBuf,
}

impl TlsSettings {
    /// Reads and checks the three files and builds the rustls configurations.
    pub fn load(&self) -> Result<TlsIdentity, TransportError> {
        TlsIdentity::from_settings(self)
    }
}

/// A node's TLS identity: rustls server and client configurations ready to use.
#[derive(Clone)]
pub struct TlsIdentity {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    node_id: Option<NodeId>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Bytes of one piece of TLS material and where they came from, for error messages.
struct Material<'a> {
    what: &'static str,
    origin: String,
    bytes: std::borrow::Cow<'a, [u8]>,
}

impl Material<'_> {
    fn error(&self, problem: impl Into<String>) -> TransportError {
        TransportError::TlsMaterial {
            what: self.what,
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    fn from_file(what: &'static str, path: &Path) -> Result<Material<'static>, TransportError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            let problem = match e.kind() {
                std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (check the file's owner and mode)".to_string()
                }
                _ => format!("cannot read the file: {e}"),
            };
            TransportError::TlsMaterial {
                what,
                origin: origin.clone(),
                problem,
            }
        })?;
        Ok(Material {
            what,
            origin,
            bytes: bytes.into(),
        })
    }

    fn in_memory<'a>(what: &'static str, bytes: &'a [u8]) -> Material<'a> {
        Material {
            what,
            origin: "in-memory PEM".to_string(),
            bytes: bytes.into(),
        }
    }

    fn looks_like_pem(&self) -> bool {
        self.bytes.windows(11).any(|w| w == b"-----BEGIN ")
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TransportError> {
        if !self.looks_like_pem() {
            return Err(self.error(
                "not PEM (no \"-----BEGIN\" line); convert DER with \
                 `openssl x509 -inform der -in FILE -out FILE.pem`",
            ));
        }
        let certs = CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("malformed PEM: {e}")))?;
        if certs.is_empty() {
            return Err(self.error("PEM holds no CERTIFICATE block"));
        }
        for (i, cert) in certs.iter().enumerate() {
            if let Err(e) = webpki::EndEntityCert::try_from(cert) {
                return Err(self.error(format!(
                    "certificate #{} is not a valid X.509 certificate: {e:?}",
                    i + 1
                )));
            }
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TransportError> {
        if !self.looks_like_pem() {
            return Err(self.error("not PEM (no \"-----BEGIN\" line)"));
        }
        PrivateKeyDer::from_pem_slice(&self.bytes).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => self.error(
                "PEM holds no private key (expected a PRIVATE KEY, RSA PRIVATE KEY or \
                 EC PRIVATE KEY block); did you point key_path at the certificate?",
            ),
            other => self.error(format!("malformed PEM: {other}")),
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsIdentity {
    /// Loads the node certificate, key and CA from the files named in `settings`.
    pub fn from_settings(settings: &TlsSettings) -> Result<TlsIdentity, TransportError> {
        let cert = Material::from_file("node certificate", &settings.cert_path)?;
        let key = Material::from_file("private key", &settings.key_path)?;
        let ca = Material::from_file("CA certificate", &settings.ca_path)?;
        Self::build(&cert, &key, &ca)
    }

    /// Builds an identity from PEM held in memory (tests, generated demo certificates).
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        ca_pem: &[u8],
    ) -> Result<TlsIdentity, TransportError> {
        Self::build(
            &Material::in_memory("node certificate", cert_pem),
            &Material::in_memory("private key", key_pem),
            &Material::in_memory("CA certificate", ca_pem),
        )
    }

    fn build(
        cert: &Material<'_>,
        key: &Material<'_>,
        ca: &Material<'_>,
    ) -> Result<TlsIdentity, TransportError> {
        let chain = cert.certificates()?;
        let private_key = key.private_key()?;
        let ca_certs = ca.certificates()?;

        let mut roots = RootCertStore::empty();
        for (i, c) in ca_certs.into_iter().enumerate() {
            roots.add(c).map_err(|e| {
                ca.error(format!(
                    "certificate #{} cannot be used as a trust anchor: {e}",
                    i + 1
                ))
            })?;
        }
        let roots = Arc::new(roots);
        let provider = provider();
        let mismatch = |e: rustls::Error| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TransportError::KeyMismatch {
                    cert_origin: cert.origin.clone(),
                    key_origin: key.origin.clone(),
                }
            }
            other => key.error(format!("rustls cannot use this key: {other}")),
        };

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TransportError::TlsConfig(format!("client verifier: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TransportError::TlsConfig(e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), private_key.clone_key())
            .map_err(mismatch)?;

        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TransportError::TlsConfig(format!("server verifier: {e}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TransportError::TlsConfig(e.to_string()))?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(chain.clone(), private_key)
            .map_err(mismatch)?;

        Ok(TlsIdentity {
            server: Arc::new(server),
            client: Arc::new(client),
            node_id: chain.first().and_then(node_id_from_certificate),
        })
    }

    /// Accepting side: TLS 1.3 only, client certificate required and chained to the CA.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// Connecting side: TLS 1.3 only, server verified against the CA, node certificate
    /// presented.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The node id in this node's own certificate (`node-<id>`), if it follows the convention.
    pub fn node_id(&self) -> Option<NodeId> {
        self.node_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::dev_certs::DevCertificateAuthority;

    fn material() -> (String, String, String) {
        let ca = DevCertificateAuthority::generate("test cluster").unwrap();
        let node = ca.issue_node_certificate(4, &[]).unwrap();
        (
            node.cert_pem,
            node.key_pem,
            ca.certificate_pem().to_string(),
        )
    }

    fn problem_of(err: TransportError) -> (String, String) {
        match err {
            TransportError::TlsMaterial {
                what,
                origin,
                problem,
            } => (format!("{what} @ {origin}"), problem),
            other => panic!("expected TlsMaterial, got {other}"),
        }
    }

    #[test]
    fn builds_from_memory_and_reads_own_node_id() {
        let (cert, key, ca) = material();
        let id = TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes(), ca.as_bytes()).unwrap();
        assert_eq!(id.node_id(), Some(4));
        assert!(id.server_config().alpn_protocols.is_empty());
    }

    #[test]
    fn missing_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = material();
        std::fs::write(dir.path().join("node.pem"), cert).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        let _ = key;
        let settings = TlsSettings {
            cert_path: dir.path().join("node.pem"),
            key_path: dir.path().join("node.key"),
            ca_path: dir.path().join("ca.pem"),
        };
        let err = settings.load().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("private key"), "{text}");
        assert!(text.contains("node.key"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn not_pem_is_reported() {
        let (_, key, ca) = material();
        let (who, problem) = problem_of(
            TlsIdentity::from_pem(b"\x30\x82\x01\x00 binary", key.as_bytes(), ca.as_bytes())
                .unwrap_err(),
        );
        assert!(who.starts_with("node certificate"), "{who}");
        assert!(problem.contains("not PEM"), "{problem}");
    }

    #[test]
    fn certificate_given_as_key_is_reported() {
        let (cert, _, ca) = material();
        let (who, problem) = problem_of(
            TlsIdentity::from_pem(cert.as_bytes(), cert.as_bytes(), ca.as_bytes()).unwrap_err(),
        );
        assert!(who.starts_with("private key"), "{who}");
        assert!(problem.contains("no private key"), "{problem}");
    }

    #[test]
    fn key_given_as_ca_is_reported() {
        let (cert, key, _) = material();
        let (who, problem) = problem_of(
            TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes(), key.as_bytes()).unwrap_err(),
        );
        assert!(who.starts_with("CA certificate"), "{who}");
        assert!(problem.contains("no CERTIFICATE"), "{problem}");
    }

    #[test]
    fn key_of_another_certificate_is_a_mismatch() {
        let (cert, _, ca) = material();
        let (_, other_key, _) = material();
        let err = TlsIdentity::from_pem(cert.as_bytes(), other_key.as_bytes(), ca.as_bytes())
            .unwrap_err();
        assert!(
            matches!(err, TransportError::KeyMismatch { .. }),
            "expected KeyMismatch, got {err}"
        );
    }

    #[test]
    fn truncated_pem_is_malformed() {
        let (cert, key, ca) = material();
        let cut = &cert.as_bytes()[..cert.len() / 2];
        let (_, problem) =
            problem_of(TlsIdentity::from_pem(cut, key.as_bytes(), ca.as_bytes()).unwrap_err());
        assert!(problem.contains("malformed PEM"), "{problem}");
    }
}
