//! The `replication._native` extension module: thin wrappers over `replication-core`.
//!
//! Nothing here makes replication decisions; every function converts its arguments, forwards to
//! the core and converts the result or error back. The public Python API is the `replication`
//! package (python/python/replication), which re-exports what is defined here; the typed
//! signatures live in `_native.pyi` next to it.
//!
//! Two rules hold throughout:
//! - every call that may block (disk I/O, fsync, waiting for a lock another thread holds)
//!   runs through [`gil::blocking`], which releases the GIL;
//! - every error becomes an exception rooted in `replication.ReplicationError` ([`errors`]).

mod clock;
mod config;
mod dev;
mod enums;
mod errors;
mod gil;
mod node;
mod record;
mod runtime;
mod wal;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "DEFAULT_SEGMENT_SIZE_BYTES",
        replication_core::wal::DEFAULT_SEGMENT_SIZE_BYTES,
    )?;
    errors::register(m)?;
    m.add_class::<record::PyRecord>()?;
    m.add_class::<wal::PyWal>()?;
    m.add_class::<wal::PyWalIterator>()?;
    m.add_class::<clock::PyHlcClock>()?;
    m.add_class::<clock::PyHlcTimestamp>()?;
    m.add_class::<clock::PyVectorClock>()?;
    m.add_class::<config::PyReplicationConfig>()?;
    m.add_class::<config::PyPeerConfig>()?;
    m.add_class::<node::PyNode>()?;
    m.add_class::<node::PyAppliedEntry>()?;
    m.add_class::<dev::PyDevNodeMaterials>()?;
    m.add_function(wrap_pyfunction!(dev::dev_cluster_materials, m)?)?;
    Ok(())
}
