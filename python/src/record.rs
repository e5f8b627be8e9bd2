//! `replication.Record` and the conversions between Python values and WAL records.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple};
use replication_core::wal::{NewRecord, Operation, Record};
use replication_core::HlcTimestamp;

use crate::enums;
use crate::errors::{new_err, Exc};

/// Longest payload prefix shown by `repr()`.
const REPR_PAYLOAD_BYTES: usize = 32;

/// One WAL record. Immutable; records read from the WAL carry their LSN, records built to be
/// appended have `lsn == 0` (the WAL assigns it).
#[pyclass(module = "replication", name = "Record", frozen)]
pub(crate) struct PyRecord {
    #[pyo3(get)]
    lsn: u64,
    #[pyo3(get)]
    term: u64,
    #[pyo3(get)]
    hlc: u64,
    #[pyo3(get)]
    origin: u64,
    op: Operation,
    #[pyo3(get)]
    collection: String,
    #[pyo3(get)]
    doc_id: String,
    #[pyo3(get)]
    txn_id: Option<u64>,
    #[pyo3(get)]
    payload: Py<PyBytes>,
}

#[pymethods]
impl PyRecord {
    #[new]
    #[pyo3(signature = (op, collection, doc_id, payload, *, term = 0, hlc = 0, origin = 0, txn_id = None, lsn = 0))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature, keyword-only past payload
    fn new(
        op: &Bound<'_, PyAny>,
        collection: String,
        doc_id: String,
        payload: &Bound<'_, PyAny>,
        term: u64,
        hlc: u64,
        origin: u64,
        txn_id: Option<u64>,
        lsn: u64,
    ) -> PyResult<Self> {
        Ok(PyRecord {
            lsn,
            term,
            hlc,
            origin,
            op: parse_op(op)?,
            collection,
            doc_id,
            txn_id,
            payload: payload_bytes(payload)?,
        })
    }

    /// The operation, an `Operation` member (an `OTHER` pseudo-member for unnamed codes).
    #[getter]
    fn op<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::operation(py, self.op)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let payload = self.payload.bind(py).as_bytes();
        let shown = PyBytes::new(py, &payload[..payload.len().min(REPR_PAYLOAD_BYTES)]);
        let mut payload_repr = shown.repr()?.to_string();
        if payload.len() > REPR_PAYLOAD_BYTES {
            payload_repr.push_str(&format!("... ({} bytes)", payload.len()));
        }
        let op = match self.op {
            Operation::Other(code) => format!("Operation({code})"),
            named => format!("Operation.{}", named.name()),
        };
        Ok(format!(
            "Record(lsn={}, op={op}, collection={}, doc_id={}, payload={payload_repr}, term={}, \
             hlc={}, origin={}, txn_id={})",
            self.lsn,
            PyString::new(py, &self.collection).repr()?,
            PyString::new(py, &self.doc_id).repr()?,
            self.term,
            self.hlc,
            self.origin,
            self.txn_id
                .map_or_else(|| "None".to_owned(), |t| t.to_string()),
        ))
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyRecord>() else {
            return Ok(py.NotImplemented());
        };
        let equal = self.same_as(py, other.get());
        match op {
            CompareOp::Eq => Ok(PyBool::new(py, equal).to_owned().into_any().unbind()),
            CompareOp::Ne => Ok(PyBool::new(py, !equal).to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self, py: Python<'_>) -> u64 {
        let mut h = DefaultHasher::new();
        (
            self.lsn,
            self.term,
            self.hlc,
            self.origin,
            self.op.code(),
            &self.collection,
            &self.doc_id,
            self.txn_id,
        )
            .hash(&mut h);
        self.payload.bind(py).as_bytes().hash(&mut h);
        h.finish()
    }

    /// Pickle support: the constructor arguments (positional, keyword).
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
        let args = PyTuple::new(
            py,
            [
                self.op.code().into_pyobject(py)?.into_any(),
                PyString::new(py, &self.collection).into_any(),
                PyString::new(py, &self.doc_id).into_any(),
                self.payload.bind(py).clone().into_any(),
            ],
        )?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("term", self.term)?;
        kwargs.set_item("hlc", self.hlc)?;
        kwargs.set_item("origin", self.origin)?;
        kwargs.set_item("txn_id", self.txn_id)?;
        kwargs.set_item("lsn", self.lsn)?;
        Ok((args, kwargs))
    }
}

impl PyRecord {
    /// Converts a record read from the WAL; copies the payload into a Python `bytes`, so the
    /// record does not keep the whole decoded frame alive.
    pub(crate) fn from_core(py: Python<'_>, r: Record) -> PyRecord {
        PyRecord {
            lsn: r.lsn,
            term: r.term,
            hlc: r.hlc.as_u64(),
            origin: r.origin,
            op: r.op,
            collection: r.collection,
            doc_id: r.doc_id,
            txn_id: r.txn_id,
            payload: PyBytes::new(py, &r.payload).unbind(),
        }
    }

    /// The record to append (its `lsn` is ignored). The payload is shared, not copied.
    pub(crate) fn to_new(&self, py: Python<'_>) -> NewRecord {
        NewRecord {
            term: self.term,
            hlc: HlcTimestamp::from_u64(self.hlc),
            origin: self.origin,
            op: self.op,
            collection: self.collection.as_str().into(),
            doc_id: self.doc_id.as_str().into(),
            txn_id: self.txn_id,
            payload: Bytes::from_owner(PyBackedBytes::from(self.payload.bind(py).clone())),
        }
    }

    fn same_as(&self, py: Python<'_>, other: &PyRecord) -> bool {
        self.lsn == other.lsn
            && self.term == other.term
            && self.hlc == other.hlc
            && self.origin == other.origin
            && self.op == other.op
            && self.collection == other.collection
            && self.doc_id == other.doc_id
            && self.txn_id == other.txn_id
            && self.payload.bind(py).as_bytes() == other.payload.bind(py).as_bytes()
    }
}

/// Builds the record to append from the fields given to `Wal.append`.
pub(crate) struct Fields<'a, 'py> {
    pub op: &'a Bound<'py, PyAny>,
    pub collection: String,
    pub doc_id: String,
    pub payload: &'a Bound<'py, PyAny>,
    pub term: u64,
    pub hlc: u64,
    pub origin: u64,
    pub txn_id: Option<u64>,
}

impl Fields<'_, '_> {
    pub(crate) fn into_new(self) -> PyResult<NewRecord> {
        Ok(NewRecord {
            term: self.term,
            hlc: HlcTimestamp::from_u64(self.hlc),
            origin: self.origin,
            op: parse_op(self.op)?,
            collection: self.collection.into(),
            doc_id: self.doc_id.into(),
            txn_id: self.txn_id,
            payload: payload_shared(self.payload)?,
        })
    }
}

/// One item of `Wal.append_batch`: a `Record` or an `(op, collection, doc_id, payload)` tuple.
pub(crate) fn batch_item(item: &Bound<'_, PyAny>, index: usize) -> PyResult<NewRecord> {
    let py = item.py();
    if let Ok(rec) = item.cast::<PyRecord>() {
        return Ok(rec.get().to_new(py));
    }
    if let Ok(tuple) = item.cast::<PyTuple>() {
        if tuple.len() != 4 {
            return Err(PyTypeError::new_err(format!(
                "batch item {index} is a tuple of {} items; expected (op, collection, doc_id, \
                 payload), or a Record for term/hlc/origin/txn_id",
                tuple.len()
            )));
        }
        let fields = Fields {
            op: &tuple.get_item(0)?,
            collection: tuple
                .get_item(1)?
                .extract()
                .map_err(|e| context(py, e, index, "collection"))?,
            doc_id: tuple
                .get_item(2)?
                .extract()
                .map_err(|e| context(py, e, index, "doc_id"))?,
            payload: &tuple.get_item(3)?,
            term: 0,
            hlc: 0,
            origin: 0,
            txn_id: None,
        };
        return fields
            .into_new()
            .map_err(|e| context(py, e, index, "record"));
    }
    Err(PyTypeError::new_err(format!(
        "batch item {index} is a {}; expected a Record or an (op, collection, doc_id, payload) \
         tuple",
        type_name(item)
    )))
}

/// Prefixes an error about a batch item with its position, keeping its class.
fn context(py: Python<'_>, err: PyErr, index: usize, what: &str) -> PyErr {
    let msg = format!("batch item {index} {what}: {}", err.value(py));
    PyErr::from_type(err.get_type(py), msg)
}

/// Accepts an `Operation` member or any int code 1..=255, or a name (`"insert"`, `"DDL"`).
pub(crate) fn parse_op(obj: &Bound<'_, PyAny>) -> PyResult<Operation> {
    let py = obj.py();
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "op must be an Operation, an operation name or an integer code, not bool",
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<u8>()
            .ok()
            .and_then(Operation::from_code)
            .ok_or_else(|| {
                new_err(
                    py,
                    Exc::InvalidRecord,
                    format!(
                        "operation code {obj} is out of range; use 1..=255 (1 INSERT, 2 UPDATE, \
                         3 DELETE, 4 DDL, 5 and up for application-defined operations)"
                    ),
                )
            });
    }
    if let Ok(name) = obj.cast::<PyString>() {
        let name = name.to_cow()?;
        return match name.to_ascii_uppercase().as_str() {
            "INSERT" => Ok(Operation::Insert),
            "UPDATE" => Ok(Operation::Update),
            "DELETE" => Ok(Operation::Delete),
            "DDL" => Ok(Operation::Ddl),
            _ => Err(new_err(
                py,
                Exc::InvalidRecord,
                format!(
                    "unknown operation {name:?}; use INSERT, UPDATE, DELETE or DDL (any case), an \
                     Operation member, or an integer code 5..=255 for other operations"
                ),
            )),
        };
    }
    Err(PyTypeError::new_err(format!(
        "op must be an Operation, an operation name or an integer code, not {}",
        type_name(obj)
    )))
}

/// The payload as a `bytes` object (a `bytearray` is copied; a `bytes` is shared).
fn payload_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Py<PyBytes>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.clone().unbind());
    }
    let backed = payload_backed(obj)?;
    Ok(PyBytes::new(obj.py(), &backed).unbind())
}

/// The payload as `Bytes` that borrow the Python object's buffer (no copy for `bytes`).
fn payload_shared(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    Ok(Bytes::from_owner(payload_backed(obj)?))
}

fn payload_backed(obj: &Bound<'_, PyAny>) -> PyResult<PyBackedBytes> {
    obj.extract::<PyBackedBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "payload must be bytes or bytearray, not {}",
            type_name(obj)
        ))
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "an unknown type".to_owned(), |n| n.to_string())
}
