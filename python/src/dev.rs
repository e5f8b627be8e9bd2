//! `replication.dev_cluster_materials`: throwaway TLS and vote-signing material for tests and
//! examples. Never use it in production: the CA's private key is discarded, and nothing about
//! the certificates is meant to last.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use replication_core::security::NodeKey;
use replication_core::transport::dev_certs::DevCertificateAuthority;
use replication_core::NodeId;

use crate::errors::{new_err, Exc, IntoPyErr};
use crate::gil::blocking;

/// The files of one node written by `dev_cluster_materials`.
#[pyclass(module = "replication", name = "DevNodeMaterials", frozen, get_all)]
pub(crate) struct PyDevNodeMaterials {
    node_id: NodeId,
    cert_path: PathBuf,
    key_path: PathBuf,
    ca_path: PathBuf,
    node_key_path: PathBuf,
    /// The node's vote-signing public key, as hex (what `peer_public_keys` takes).
    public_key: String,
}

#[pymethods]
impl PyDevNodeMaterials {
    fn __repr__(&self) -> String {
        format!(
            "DevNodeMaterials(node_id={}, cert_path={:?}, node_key_path={:?})",
            self.node_id, self.cert_path, self.node_key_path
        )
    }
}

struct DevErr(String);

impl IntoPyErr for DevErr {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        new_err(py, Exc::Replication, self.0)
    }
}

/// Generates a throwaway CA, a certificate per node (for `localhost` and `127.0.0.1`, naming
/// `node-<id>`), and an ed25519 vote-signing key per node, all written into `directory`.
#[pyfunction]
pub(crate) fn dev_cluster_materials(
    py: Python<'_>,
    directory: PathBuf,
    node_ids: Vec<NodeId>,
) -> PyResult<BTreeMap<NodeId, PyDevNodeMaterials>> {
    blocking(py, move || {
        let err = |e: &dyn std::fmt::Display| DevErr(e.to_string());
        std::fs::create_dir_all(&directory)
            .map_err(|e| DevErr(format!("cannot create {}: {e}", directory.display())))?;
        let ca = DevCertificateAuthority::generate("replication dev CA").map_err(|e| err(&e))?;
        let mut out = BTreeMap::new();
        for id in node_ids {
            let cert = ca
                .issue_node_certificate(id, &["localhost", "127.0.0.1"])
                .map_err(|e| err(&e))?;
            let tls = cert.write_to(&directory, &ca).map_err(|e| err(&e))?;
            let key = NodeKey::generate();
            let node_key_path = directory.join(format!("node-{id}.ed25519"));
            key.save(&node_key_path).map_err(|e| err(&e))?;
            out.insert(
                id,
                PyDevNodeMaterials {
                    node_id: id,
                    cert_path: tls.cert_path,
                    key_path: tls.key_path,
                    ca_path: tls.ca_path,
                    node_key_path,
                    public_key: key.public_key().to_hex(),
                },
            );
        }
        Ok::<_, DevErr>(out)
    })
}
