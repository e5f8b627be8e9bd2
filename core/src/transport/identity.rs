//! Which node a certificate belongs to.
//!
//! Convention: a node certificate carries the DNS subject alternative name `node-<id>`, where
//! `<id>` is the node id in decimal without sign or leading zeros (`node-0`, `node-17`). It may
//! carry other names too (a host name, `localhost`, an IP address); they are ignored here.
//!
//! Why a DNS name and not a custom extension or the subject CN: rustls' client verifier checks
//! DNS names natively, so a node dialling node 3 passes `node-3` as the server name and the
//! TLS library itself refuses a server whose certificate was issued for another node. On the
//! accepting side the client certificate has already been chained to the cluster CA by the
//! time we read the name, so the id is one the CA vouched for. Any CA-issued certificate
//! whose names do not follow the convention (or name two different nodes) has no node id,
//! and the consensus layer should refuse to take Raft messages from it.

use rustls_pki_types::CertificateDer;

use crate::NodeId;

const PREFIX: &str = "node-";

/// The DNS name a node's certificate carries and the name to dial it by: `node-<id>`.
pub fn node_server_name(id: NodeId) -> String {
    format!("{PREFIX}{id}")
}

/// Parses `node-<id>`; `None` for anything else, including leading zeros and `+`, so that
/// each id has exactly one spelling.
pub fn parse_node_name(name: &str) -> Option<NodeId> {
    let digits = name.strip_prefix(PREFIX)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok()
}

/// Names found in a certificate's subject alternative names extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
}

impl CertificateNames {
    /// The node id these names denote: exactly one distinct `node-<id>` DNS name.
    pub fn node_id(&self) -> Option<NodeId> {
        let mut ids = self.dns.iter().filter_map(|n| parse_node_name(n));
        let first = ids.next()?;
        if ids.all(|other| other == first) {
            Some(first)
        } else {
            None
        }
    }
}

/// Reads the subject alternative names of a DER certificate. `None` if it does not parse.
pub fn certificate_names(cert: &CertificateDer<'_>) -> Option<CertificateNames> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(CertificateNames {
        dns: parsed.valid_dns_names().map(str::to_owned).collect(),
        uri: parsed.valid_uri_names().map(str::to_owned).collect(),
    })
}

/// The node id a certificate was issued for, following the `node-<id>` convention.
pub fn node_id_from_certificate(cert: &CertificateDer<'_>) -> Option<NodeId> {
    certificate_names(cert)?.node_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_only_in_canonical_form() {
        assert_eq!(parse_node_name("node-0"), Some(0));
        assert_eq!(parse_node_name("node-17"), Some(17));
        assert_eq!(parse_node_name(&node_server_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "node-",
            "node-01",
            "node-+1",
            "node--1",
            "node-1a",
            "Node-1",
            "node-1.example",
            "xnode-1",
            "node-18446744073709551616",
        ] {
            assert_eq!(parse_node_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_different_node_names_mean_no_identity() {
        let names = CertificateNames {
            dns: vec!["node-1".into(), "localhost".into(), "node-1".into()],
            uri: vec![],
        };
        assert_eq!(names.node_id(), Some(1));
        let names = CertificateNames {
            dns: vec!["node-1".into(), "node-2".into()],
            uri: vec![],
        };
        assert_eq!(names.node_id(), None);
        assert_eq!(CertificateNames::default().node_id(), None);
    }

    #[test]
    fn garbage_certificate_has_no_names() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(certificate_names(&junk), None);
        assert_eq!(node_id_from_certificate(&junk), None);
    }
}
