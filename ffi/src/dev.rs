//! `repl_dev_cluster_materials`: throwaway TLS and vote-signing material for tests and examples.
//! Development only: the CA's private key is discarded and nothing here is meant to last.

use std::collections::BTreeSet;
use std::path::Path;

use replication_core::security::NodeKey;
use replication_core::transport::dev_certs::DevCertificateAuthority;

use crate::boundary::{arg_slice, arg_str, boundary};
use crate::result::{repl_result, Failure, FfiResult};

fn io(detail: String) -> Failure {
    Failure::new(repl_result::REPL_ERR_CONFIG_IO, detail)
}

fn write_materials(dir: &Path, ids: &[u64]) -> FfiResult<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
    let ca = DevCertificateAuthority::generate("replication dev CA")
        .map_err(|e| io(format!("cannot generate the CA: {e}")))?;
    for &id in ids {
        let cert = ca
            .issue_node_certificate(id, &["localhost", "127.0.0.1"])
            .map_err(|e| io(format!("cannot issue the certificate of node {id}: {e}")))?;
        cert.write_to(dir, &ca).map_err(|e| io(e.to_string()))?;
        let key = NodeKey::generate();
        key.save(&dir.join(format!("node-{id}.ed25519")))
            .map_err(|e| io(e.to_string()))?;
        let public = dir.join(format!("node-{id}.pub"));
        std::fs::write(&public, format!("{}\n", key.public_key().to_hex()))
            .map_err(|e| io(format!("cannot write {}: {e}", public.display())))?;
    }
    Ok(())
}

/// **Development only.** Generates a throwaway CA, a TLS certificate per node and an ed25519
/// vote-signing key per node for the `n` ids in `ids`, and writes them into directory `dir`
/// (UTF-8, `dir_len` bytes; created if missing). Never use them in production: the CA's private
/// key is discarded and the files are not protected beyond their modes.
///
/// Files, for each id `<id>` in decimal:
/// - `ca.pem`: the CA certificate (every node's `ca_path`);
/// - `node-<id>.pem`, `node-<id>.key`: the node's certificate (for `localhost` and
///   `127.0.0.1`, naming `node-<id>`) and its private key (mode 0600): `cert_path`, `key_path`;
/// - `node-<id>.ed25519`: the vote-signing key (mode 0600): `node_key_path`;
/// - `node-<id>.pub`: its public key as 64 hex digits and a newline: what the other nodes put
///   in `peers[].public_key`.
///
/// Fails with `REPL_ERR_INVALID_ARGUMENT` for an id of 0 or a repeated id (nothing is
/// written), `REPL_ERR_CONFIG_IO` when a file cannot be written.
///
/// Blocking; thread safety: any thread (two calls must not share a directory).
///
/// # Safety
/// `dir` readable for `dir_len` bytes; `ids` NULL or an array of `n` ids.
#[no_mangle]
pub unsafe extern "C" fn repl_dev_cluster_materials(
    dir: *const u8,
    dir_len: usize,
    ids: *const u64,
    n: usize,
) -> repl_result {
    boundary("repl_dev_cluster_materials", || {
        // SAFETY: the caller's contract.
        let (dir, ids) = unsafe { (arg_str(dir, dir_len, &"dir")?, arg_slice(ids, n, &"ids")?) };
        if dir.is_empty() {
            return Err(Failure::new(
                repl_result::REPL_ERR_INVALID_ARGUMENT,
                "dir is empty; give the directory to write into",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, &id) in ids.iter().enumerate() {
            if id == 0 || !seen.insert(id) {
                return Err(Failure::new(
                    repl_result::REPL_ERR_INVALID_ARGUMENT,
                    format!("ids[{i}] = {id} is 0 or repeated"),
                ));
            }
        }
        write_materials(Path::new(dir), ids)
    })
}
