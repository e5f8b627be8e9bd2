//! Throwaway certificates for demos and tests (feature `dev-certs`).
//!
//! The node daemon's `demo` starts a TLS cluster with no setup, so it needs a CA and node
//! certificates generated on the spot. They follow the same conventions as real ones
//! (`node-<id>` DNS name, server and client authentication), so the demo exercises exactly the
//! production TLS path. The CA key lives only in memory; nothing here is fit for production.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::error::TransportError;
use super::identity::node_server_name;
use super::tls::{TlsIdentity, TlsSettings};
use crate::NodeId;

/// A freshly generated certificate authority that can issue node certificates.
pub struct DevCertificateAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A node certificate and its private key, PEM-encoded.
pub struct DevNodeCertificate {
    pub node_id: NodeId,
    pub cert_pem: String,
    pub key_pem: String,
}

fn rcgen_error(what: &str, e: rcgen::Error) -> TransportError {
    TransportError::TlsConfig(format!("generating {what}: {e}"))
}

impl DevCertificateAuthority {
    /// Generates a CA with an ECDSA P-256 key and the given common name.
    pub fn generate(common_name: &str) -> Result<Self, TransportError> {
        let key = KeyPair::generate().map_err(|e| rcgen_error("CA key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| rcgen_error("CA certificate", e))?;
        Ok(DevCertificateAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for node `node_id`: DNS name `node-<id>`, plus `extra_names`
    /// (DNS names or IP addresses), usable for both server and client authentication.
    pub fn issue_node_certificate(
        &self,
        node_id: NodeId,
        extra_names: &[&str],
    ) -> Result<DevNodeCertificate, TransportError> {
        let name = node_server_name(node_id);
        let mut names = vec![name.clone()];
        names.extend(extra_names.iter().map(|s| s.to_string()));
        let mut params =
            CertificateParams::new(names).map_err(|e| rcgen_error("node certificate", e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        debug_assert!(params
            .subject_alt_names
            .iter()
            .any(|s| matches!(s, SanType::DnsName(_))));
        let key = KeyPair::generate().map_err(|e| rcgen_error("node key", e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| rcgen_error("node certificate", e))?;
        Ok(DevNodeCertificate {
            node_id,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a node certificate and builds its [`TlsIdentity`] in one step.
    pub fn node_identity(&self, node_id: NodeId) -> Result<TlsIdentity, TransportError> {
        let node = self.issue_node_certificate(node_id, &["localhost", "127.0.0.1"])?;
        node.identity(self)
    }
}

impl DevNodeCertificate {
    pub fn identity(&self, ca: &DevCertificateAuthority) -> Result<TlsIdentity, TransportError> {
        TlsIdentity::from_pem(
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
            ca.certificate_pem().as_bytes(),
        )
    }

    /// Writes `node-<id>.pem`, `node-<id>.key` (mode 0600) and `ca.pem` into `dir` and returns
    /// settings naming them, as a config file would.
    pub fn write_to(
        &self,
        dir: &Path,
        ca: &DevCertificateAuthority,
    ) -> Result<TlsSettings, TransportError> {
        let base = node_server_name(self.node_id);
        let settings = TlsSettings {
            cert_path: dir.join(format!("{base}.pem")),
            key_path: dir.join(format!("{base}.key")),
            ca_path: dir.join("ca.pem"),
        };
        let io = |what: &'static str, path: &Path, e: std::io::Error| TransportError::TlsMaterial {
            what,
            origin: path.display().to_string(),
            problem: format!("cannot write the file: {e}"),
        };
        crate::security::write_file_atomically(&settings.key_path, self.key_pem.as_bytes(), 0o600)
            .map_err(|e| io("private key", &settings.key_path, e))?;
        crate::security::write_file_atomically(
            &settings.cert_path,
            self.cert_pem.as_bytes(),
            0o644,
        )
        .map_err(|e| io("node certificate", &settings.cert_path, e))?;
        crate::security::write_file_atomically(
            &settings.ca_path,
            ca.certificate_pem().as_bytes(),
            0o644,
        )
        .map_err(|e| io("CA certificate", &settings.ca_path, e))?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_files_load_back_with_the_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCertificateAuthority::generate("demo").unwrap();
        let node = ca.issue_node_certificate(9, &["localhost"]).unwrap();
        let settings = node.write_to(dir.path(), &ca).unwrap();
        let mode = std::fs::metadata(&settings.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let identity = settings.load().unwrap();
        assert_eq!(identity.node_id(), Some(9));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_identities_talk_mutual_tls() {
        use crate::transport::{
            node_server_name, Listener, RemoteError, RpcClient, RpcClientOptions, RpcServer,
            TransportSecurity,
        };
        let ca = DevCertificateAuthority::generate("demo").unwrap();
        let listener = Listener::bind(
            "127.0.0.1:0".parse().unwrap(),
            TransportSecurity::tls(ca.node_identity(1).unwrap()),
        )
        .await
        .unwrap();
        let server = RpcServer::spawn(listener, |peer, _kind, _payload| async move {
            Ok::<_, RemoteError>(bytes::Bytes::from(format!("{:?}", peer.node_id)))
        });
        let client = RpcClient::connect(
            server.local_addr(),
            &TransportSecurity::tls(ca.node_identity(2).unwrap()),
            &node_server_name(1),
            RpcClientOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(client.peer().node_id, Some(1));
        let reply = client.call(1, bytes::Bytes::new()).await.unwrap();
        assert_eq!(&reply[..], b"Some(2)");
    }
}
