//! Access to the Python enums `Operation` and `VectorOrdering`.
//!
//! They are real `enum` classes, defined in Python (replication/_enums.py), so that members are
//! singletons (`rec.op is Operation.INSERT`), `Operation` is an `IntEnum` and `VectorOrdering`
//! compares equal to its string value. Members are looked up once and cached here.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use replication_core::clock::VectorOrdering;
use replication_core::wal::Operation;

const MODULE: &str = "replication._enums";

/// `Operation(code)` for every code 0..=255 (0 is reserved and maps to `None`).
static OPERATIONS: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
static ORDERINGS: PyOnceLock<[Py<PyAny>; 4]> = PyOnceLock::new();

/// The `Operation` member for `op`; codes the core does not name are pseudo-members called
/// `OTHER` whose value is the code.
pub(crate) fn operation(py: Python<'_>, op: Operation) -> PyResult<Bound<'_, PyAny>> {
    let members = OPERATIONS.get_or_try_init(py, || {
        let class = py.import(MODULE)?.getattr("Operation")?;
        let mut members = Vec::with_capacity(256);
        members.push(py.None());
        for code in 1..=u8::MAX {
            members.push(class.call1((code,))?.unbind());
        }
        Ok::<_, PyErr>(members)
    })?;
    match members.get(usize::from(op.code())) {
        Some(member) if op.code() != 0 => Ok(member.bind(py).clone()),
        _ => Err(PyRuntimeError::new_err(format!(
            "operation code {} has no Operation member",
            op.code()
        ))),
    }
}

/// The `VectorOrdering` member for `ordering`.
pub(crate) fn vector_ordering(
    py: Python<'_>,
    ordering: VectorOrdering,
) -> PyResult<Bound<'_, PyAny>> {
    let members = ORDERINGS.get_or_try_init(py, || {
        let class = py.import(MODULE)?.getattr("VectorOrdering")?;
        Ok::<_, PyErr>([
            class.getattr("BEFORE")?.unbind(),
            class.getattr("AFTER")?.unbind(),
            class.getattr("EQUAL")?.unbind(),
            class.getattr("CONCURRENT")?.unbind(),
        ])
    })?;
    let i = match ordering {
        VectorOrdering::Before => 0,
        VectorOrdering::After => 1,
        VectorOrdering::Equal => 2,
        VectorOrdering::Concurrent => 3,
    };
    Ok(members[i].bind(py).clone())
}
