//! `replication.HlcClock`, `replication.HlcTimestamp` and `replication.VectorClock`.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyDict, PyMapping};
use replication_core::clock::DEFAULT_MAX_DRIFT;
use replication_core::{HlcClock, HlcTimestamp, VectorClock};

use crate::enums;
use crate::errors::IntoPyErr;

/// A hybrid logical clock. Readings are plain ints (the packed 64-bit HLC value), strictly
/// increasing across all callers; `HlcTimestamp(value)` splits one into its parts.
#[pyclass(module = "replication", name = "HlcClock", frozen)]
pub(crate) struct PyHlcClock {
    inner: HlcClock,
}

#[pymethods]
impl PyHlcClock {
    /// The default comes from the core; the text signature spells it out for `help()` and
    /// stubtest, and tests/python/test_clock.py checks that the two agree.
    #[new]
    #[pyo3(
        signature = (max_drift_ms = DEFAULT_MAX_DRIFT.as_millis() as u64),
        text_signature = "(max_drift_ms=500)"
    )]
    fn new(max_drift_ms: u64) -> Self {
        PyHlcClock {
            inner: HlcClock::new(Duration::from_millis(max_drift_ms)),
        }
    }

    /// Timestamp for a local event.
    fn now(&self) -> u64 {
        self.inner.now().as_u64()
    }

    /// Merges a timestamp received from another node; returns the receive event's timestamp.
    /// Raises `ClockDriftError` (and leaves the clock alone) if `remote` is too far ahead.
    fn update(&self, py: Python<'_>, remote: u64) -> PyResult<u64> {
        self.inner
            .update(HlcTimestamp::from_u64(remote))
            .map(HlcTimestamp::as_u64)
            .map_err(|e| e.into_pyerr(py))
    }

    /// The last timestamp handed out (0 before the first reading).
    #[getter]
    fn last(&self) -> u64 {
        self.inner.last().as_u64()
    }

    #[getter]
    fn max_drift_ms(&self) -> u64 {
        u64::try_from(self.inner.max_drift().as_millis()).unwrap_or(u64::MAX)
    }

    fn __repr__(&self) -> String {
        format!(
            "HlcClock(max_drift_ms={}, last={})",
            self.max_drift_ms(),
            self.inner.last()
        )
    }
}

/// An HLC value split into physical milliseconds since the Unix epoch and a logical counter.
/// Ordered like the int it wraps, and usable wherever an int timestamp is expected.
#[pyclass(
    module = "replication",
    name = "HlcTimestamp",
    frozen,
    eq,
    ord,
    hash,
    str
)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PyHlcTimestamp(HlcTimestamp);

impl std::fmt::Display for PyHlcTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[pymethods]
impl PyHlcTimestamp {
    #[new]
    fn new(value: u64) -> Self {
        PyHlcTimestamp(HlcTimestamp::from_u64(value))
    }

    /// Builds a timestamp from its parts; a physical time beyond 48 bits saturates.
    #[staticmethod]
    fn from_parts(physical_ms: u64, logical: u16) -> Self {
        PyHlcTimestamp(HlcTimestamp::new(physical_ms, logical))
    }

    /// The packed 64-bit value, as stored in WAL records.
    #[getter]
    fn value(&self) -> u64 {
        self.0.as_u64()
    }

    #[getter]
    fn physical_ms(&self) -> u64 {
        self.0.physical_ms()
    }

    #[getter]
    fn logical(&self) -> u16 {
        self.0.logical()
    }

    fn __int__(&self) -> u64 {
        self.0.as_u64()
    }

    fn __index__(&self) -> u64 {
        self.0.as_u64()
    }

    fn __repr__(&self) -> String {
        format!(
            "HlcTimestamp(physical_ms={}, logical={})",
            self.0.physical_ms(),
            self.0.logical()
        )
    }
}

/// A vector clock: one event counter per node id. Mutable (`increment`, `merge`), so not
/// hashable; `copy()` gives an independent clock.
#[pyclass(module = "replication", name = "VectorClock", frozen)]
pub(crate) struct PyVectorClock {
    inner: Mutex<VectorClock>,
}

#[pymethods]
impl PyVectorClock {
    /// `VectorClock()` or `VectorClock({node: counter, ...})`; zero counters are dropped.
    #[new]
    #[pyo3(signature = (counters = None))]
    fn new(py: Python<'_>, counters: Option<&Bound<'_, PyMapping>>) -> PyResult<Self> {
        let mut entries = Vec::new();
        if let Some(map) = counters {
            for item in map.items()?.iter() {
                entries.push(item.extract::<(u64, u64)>()?);
            }
        }
        let clock = VectorClock::try_from_entries(entries).map_err(|e| e.into_pyerr(py))?;
        Ok(PyVectorClock {
            inner: Mutex::new(clock),
        })
    }

    /// Records a local event on `node`; returns its new counter.
    fn increment(&self, node: u64) -> u64 {
        self.inner.lock().increment(node)
    }

    /// Counter of `node` (0 if it has none).
    fn get(&self, node: u64) -> u64 {
        self.inner.lock().get(node)
    }

    /// Pointwise maximum with `other`, in place.
    fn merge(&self, other: &Bound<'_, PyVectorClock>) {
        // Copy first: `other` may be `self`, and two locks are never held at once.
        let theirs = other.get().snapshot();
        self.inner.lock().merge(&theirs);
    }

    /// How this clock relates to `other`: a `VectorOrdering` (BEFORE, AFTER, EQUAL or
    /// CONCURRENT, which compare equal to "before", "after", "equal", "concurrent").
    fn compare<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyVectorClock>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let theirs = other.get().snapshot();
        let ordering = self.inner.lock().compare(&theirs);
        enums::vector_ordering(py, ordering)
    }

    fn happened_before(&self, other: &Bound<'_, PyVectorClock>) -> bool {
        let theirs = other.get().snapshot();
        self.inner.lock().happened_before(&theirs)
    }

    fn is_concurrent(&self, other: &Bound<'_, PyVectorClock>) -> bool {
        let theirs = other.get().snapshot();
        self.inner.lock().is_concurrent(&theirs)
    }

    fn copy(&self) -> Self {
        PyVectorClock {
            inner: Mutex::new(self.snapshot()),
        }
    }

    /// `{node: counter}` for every node with a non-zero counter.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (node, counter) in self.snapshot().iter() {
            dict.set_item(node, counter)?;
        }
        Ok(dict)
    }

    fn __len__(&self) -> usize {
        self.inner.lock().len()
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> Py<PyAny> {
        let py = other.py();
        let Ok(other) = other.cast::<PyVectorClock>() else {
            return py.NotImplemented();
        };
        let equal = self.snapshot() == other.get().snapshot();
        match op {
            CompareOp::Eq => PyBool::new(py, equal).to_owned().into_any().unbind(),
            CompareOp::Ne => PyBool::new(py, !equal).to_owned().into_any().unbind(),
            // Causal order is partial: `<` would be ambiguous for concurrent clocks; use
            // compare() or happened_before().
            _ => py.NotImplemented(),
        }
    }

    /// Mutable, so unhashable (like `list` and `dict`).
    #[classattr]
    const __hash__: Option<Py<PyAny>> = None;

    fn __repr__(&self) -> String {
        let body = self
            .snapshot()
            .iter()
            .map(|(n, c)| format!("{n}: {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("VectorClock({{{body}}})")
    }
}

impl PyVectorClock {
    fn snapshot(&self) -> VectorClock {
        self.inner.lock().clone()
    }
}
