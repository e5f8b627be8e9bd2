//! The one place where the GIL is released.

use pyo3::prelude::*;

use crate::errors::IntoPyErr;

/// Runs `f` with the GIL released, then converts its error (if any) into a Python exception.
///
/// Every call that can block (file I/O, fsync, recovery scans, waiting on a lock held by another
/// thread) goes through here, so other Python threads keep running meanwhile. `f` must not touch
/// Python objects: the `Send` bounds keep the `Python` token and borrowed objects out of it.
pub(crate) fn blocking<T, E, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: IntoPyErr + Send,
{
    py.detach(f).map_err(|e| e.into_pyerr(py))
}
