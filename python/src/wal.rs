//! `replication.Wal` and `replication.WalIterator`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};
use replication_core::wal::{
    Compression, Durability, Record, RecoveryMode, WalIter, WalOptions, DEFAULT_SEGMENT_SIZE_BYTES,
};
use replication_core::{HlcTimestamp, Wal, WalError};

use crate::config::PyReplicationConfig;
use crate::errors::{new_err, wal_options_err, Exc};
use crate::gil::blocking;
use crate::record::{batch_item, Fields, PyRecord};

/// Interval of `durability="interval"` when `sync_interval_ms` is not given.
const DEFAULT_SYNC_INTERVAL_MS: u64 = 100;

/// An iterator reads ahead at most this many records, or this many payload bytes, each time it
/// releases the GIL; between two read-aheads it checks for Ctrl-C.
const READ_AHEAD_RECORDS: usize = 1024;
const READ_AHEAD_BYTES: usize = 8 << 20;

/// A write-ahead log directory, open for appending and reading. Thread-safe.
#[pyclass(module = "replication", name = "Wal", frozen)]
pub(crate) struct PyWal {
    /// `None` once closed: dropping the handle releases the directory lock.
    handle: Mutex<Option<Wal>>,
    path: PathBuf,
    /// Read state of the iterators opened on this WAL; `close()` empties them so they release
    /// their share of the log (and with it the directory lock) and raise `WalClosedError`.
    iterators: Mutex<Vec<Weak<Mutex<ReadState>>>>,
}

#[pymethods]
impl PyWal {
    #[new]
    #[pyo3(signature = (
        path,
        *,
        segment_size_bytes = DEFAULT_SEGMENT_SIZE_BYTES,
        durability = "every_commit",
        sync_interval_ms = None,
        compression = true,
        compression_level = 1,
        compression_min_batch_bytes = 1024,
        recovery_mode = "tolerate_torn_tail",
        zero_fill_ahead = true,
    ))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature; all keyword-only
    fn new(
        py: Python<'_>,
        path: PathBuf,
        segment_size_bytes: u64,
        durability: &str,
        sync_interval_ms: Option<u64>,
        compression: bool,
        compression_level: i32,
        compression_min_batch_bytes: usize,
        recovery_mode: &str,
        zero_fill_ahead: bool,
    ) -> PyResult<Self> {
        let durability = match (durability, sync_interval_ms) {
            ("every_commit", None) => Durability::EveryCommit,
            ("none", None) => Durability::None,
            ("interval", ms) => Durability::Interval(Duration::from_millis(
                ms.unwrap_or(DEFAULT_SYNC_INTERVAL_MS),
            )),
            ("every_commit" | "none", Some(_)) => {
                return Err(wal_options_err(
                    py,
                    format!(
                        "sync_interval_ms only applies to durability=\"interval\", not \
                         durability={durability:?}; drop it or switch to \"interval\""
                    ),
                ))
            }
            (other, _) => {
                return Err(wal_options_err(
                    py,
                    format!(
                        "durability={other:?} is not one of \"every_commit\", \"interval\", \
                         \"none\""
                    ),
                ))
            }
        };
        let recovery_mode = match recovery_mode {
            "tolerate_torn_tail" => RecoveryMode::TolerateTornTail,
            "absolute_consistency" => RecoveryMode::AbsoluteConsistency,
            other => {
                return Err(wal_options_err(
                    py,
                    format!(
                        "recovery_mode={other:?} is not one of \"tolerate_torn_tail\", \
                         \"absolute_consistency\""
                    ),
                ))
            }
        };
        let opts = WalOptions {
            dir: path,
            segment_size_bytes,
            durability,
            compression: Compression {
                enabled: compression,
                level: compression_level,
                min_batch_bytes: compression_min_batch_bytes,
            },
            recovery_mode,
            zero_fill_ahead,
        };
        Self::open(py, opts)
    }

    /// Opens the WAL that `config` describes (`wal_directory`, segment size, durability,
    /// compression, recovery mode).
    #[classmethod]
    fn from_config(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyReplicationConfig>,
    ) -> PyResult<Self> {
        Self::open(py, config.get().inner().wal_options())
    }

    #[pyo3(signature = (op, collection, doc_id, payload, *, term = 0, hlc = 0, origin = 0, txn_id = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature
    fn append(
        &self,
        py: Python<'_>,
        op: &Bound<'_, PyAny>,
        collection: String,
        doc_id: String,
        payload: &Bound<'_, PyAny>,
        term: u64,
        hlc: u64,
        origin: u64,
        txn_id: Option<u64>,
    ) -> PyResult<u64> {
        let record = Fields {
            op,
            collection,
            doc_id,
            payload,
            term,
            hlc,
            origin,
            txn_id,
        }
        .into_new()?;
        let wal = self.handle(py)?;
        let lsn = blocking(py, || wal.append(&record));
        // `record` shares the payload with a Python object: dropped here, with the GIL held.
        drop(record);
        lsn
    }

    /// Appends the records as one frame; returns the first and last LSN assigned.
    fn append_batch(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
        let mut batch = Vec::new();
        for (i, item) in records.try_iter()?.enumerate() {
            batch.push(batch_item(&item?, i)?);
        }
        let wal = self.handle(py)?;
        let lsns = blocking(py, || wal.append_batch(&batch));
        drop(batch);
        lsns
    }

    /// Records from `lsn` to the last one appended when the call is made.
    fn read_from(&self, py: Python<'_>, lsn: u64) -> PyResult<PyWalIterator> {
        let wal = self.handle(py)?;
        let iter = blocking(py, || wal.read_from(lsn))?;
        Ok(self.track(iter))
    }

    /// Records with `start <= lsn < end`.
    fn read_range(&self, py: Python<'_>, start: u64, end: u64) -> PyResult<PyWalIterator> {
        let wal = self.handle(py)?;
        let iter = blocking(py, || wal.read_range(start, end))?;
        Ok(self.track(iter))
    }

    /// LSN of the first record whose HLC is >= `hlc`, or `None` if all records are older.
    fn find_lsn_by_timestamp(&self, py: Python<'_>, hlc: u64) -> PyResult<Option<u64>> {
        let wal = self.handle(py)?;
        blocking(py, || {
            wal.find_lsn_by_timestamp(HlcTimestamp::from_u64(hlc))
        })
    }

    /// Removes every record after `lsn` (durable on return).
    fn truncate_after(&self, py: Python<'_>, lsn: u64) -> PyResult<()> {
        let wal = self.handle(py)?;
        blocking(py, || wal.truncate_after(lsn))
    }

    /// Deletes whole segments whose records are all below `lsn`; returns how many.
    fn purge_before(&self, py: Python<'_>, lsn: u64) -> PyResult<usize> {
        let wal = self.handle(py)?;
        blocking(py, || wal.purge_before(lsn))
    }

    /// Writes and fsyncs everything appended so far.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let wal = self.handle(py)?;
        blocking(py, || wal.sync())
    }

    /// Flushes, closes the WAL and releases its directory. Open iterators raise
    /// `WalClosedError` afterwards. Closing twice is fine.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(wal) = self.handle.lock().take() else {
            return Ok(());
        };
        let iterators = std::mem::take(&mut *self.iterators.lock());
        blocking(py, move || {
            for state in iterators.iter().filter_map(Weak::upgrade) {
                state.lock().close();
            }
            wal.close()
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, PyTuple>) -> PyResult<()> {
        // Returns None: an exception raised in the `with` body propagates.
        self.close(py)
    }

    /// LSN of the oldest record held (`last_lsn + 1` when the WAL is empty).
    #[getter]
    fn first_lsn(&self, py: Python<'_>) -> PyResult<u64> {
        // Through `blocking`: a truncation or purge in another thread holds the segment list
        // while it works on files.
        let wal = self.handle(py)?;
        blocking(py, || Ok::<_, PyErr>(wal.first_lsn()))
    }

    /// LSN of the last record appended (0 if none ever was).
    #[getter]
    fn last_lsn(&self, py: Python<'_>) -> PyResult<u64> {
        // Through `blocking`: a truncation in another thread holds the append state while it
        // works on files.
        let wal = self.handle(py)?;
        blocking(py, || Ok::<_, PyErr>(wal.last_lsn()))
    }

    /// Every record up to this LSN has been fsynced.
    #[getter]
    fn durable_lsn(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.handle(py)?.durable_lsn())
    }

    /// Every record up to this LSN is in the segment files (maybe not yet fsynced).
    #[getter]
    fn written_lsn(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.handle(py)?.written_lsn())
    }

    /// Paths of the segment files, oldest first (writes out pending records first).
    fn segment_paths(&self, py: Python<'_>) -> PyResult<Vec<PathBuf>> {
        let wal = self.handle(py)?;
        blocking(py, || wal.segment_paths())
    }

    /// The WAL directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.handle.lock().is_none()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let handle = self.handle.lock().clone();
        let state = match handle {
            Some(w) => {
                let (first, last) = blocking(py, || Ok::<_, PyErr>((w.first_lsn(), w.last_lsn())))?;
                format!("first_lsn={first}, last_lsn={last}")
            }
            None => "closed".to_owned(),
        };
        Ok(format!(
            "Wal({:?}, {state})",
            self.path.display().to_string()
        ))
    }
}

impl PyWal {
    fn open(py: Python<'_>, opts: WalOptions) -> PyResult<Self> {
        let path = opts.dir.clone();
        let wal = blocking(py, || Wal::open(opts))?;
        Ok(PyWal {
            handle: Mutex::new(Some(wal)),
            path,
            iterators: Mutex::new(Vec::new()),
        })
    }

    /// A clone of the open handle (cheap), so no lock is held while the call runs.
    fn handle(&self, py: Python<'_>) -> PyResult<Wal> {
        self.handle.lock().clone().ok_or_else(|| closed_err(py))
    }

    fn track(&self, iter: WalIter) -> PyWalIterator {
        let state = Arc::new(Mutex::new(ReadState {
            iter: Some(iter),
            buffer: VecDeque::new(),
            error: None,
            wal_closed: false,
        }));
        {
            let mut iterators = self.iterators.lock();
            iterators.retain(|w| w.strong_count() > 0);
            iterators.push(Arc::downgrade(&state));
        }
        // A `close()` in another thread may have emptied the list before the push above; it
        // took the handle first, so checking it now catches that case.
        if self.handle.lock().is_none() {
            state.lock().close();
        }
        PyWalIterator { state }
    }
}

fn closed_err(py: Python<'_>) -> PyErr {
    new_err(py, Exc::WalClosed, "the WAL is closed")
}

/// Iterator over WAL records, returned by `Wal.read_from` and `Wal.read_range`.
///
/// Records are read ahead in chunks with the GIL released; Ctrl-C is checked between chunks.
#[pyclass(module = "replication", name = "WalIterator", frozen)]
pub(crate) struct PyWalIterator {
    state: Arc<Mutex<ReadState>>,
}

struct ReadState {
    /// `None` once the core iterator is exhausted, failed or its WAL closed: the iterator then
    /// no longer keeps the log alive.
    iter: Option<WalIter>,
    buffer: VecDeque<Record>,
    /// An error met while reading ahead, raised once the records before it are consumed.
    error: Option<WalError>,
    wal_closed: bool,
}

impl ReadState {
    fn close(&mut self) {
        self.iter = None;
        self.buffer.clear();
        self.error = None;
        self.wal_closed = true;
    }

    /// The next record, reading ahead a chunk when the buffer is empty. Blocks on I/O.
    fn next_record(&mut self) -> Result<Option<Record>, WalError> {
        if self.wal_closed {
            return Err(WalError::Closed);
        }
        if self.buffer.is_empty() && self.error.is_none() {
            self.read_ahead();
        }
        if let Some(r) = self.buffer.pop_front() {
            return Ok(Some(r));
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    fn read_ahead(&mut self) {
        let Some(iter) = self.iter.as_mut() else {
            return;
        };
        let mut bytes = 0;
        while self.buffer.len() < READ_AHEAD_RECORDS && bytes < READ_AHEAD_BYTES {
            match iter.next() {
                Some(Ok(r)) => {
                    bytes += r.payload.len();
                    self.buffer.push_back(r);
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.iter = None;
                    return;
                }
                None => {
                    self.iter = None;
                    return;
                }
            }
        }
    }
}

#[pymethods]
impl PyWalIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRecord>> {
        // Fast path: a record already read ahead, and nobody else is using this iterator.
        if let Some(mut state) = self.state.try_lock() {
            if let Some(r) = state.buffer.pop_front() {
                drop(state);
                return Ok(Some(PyRecord::from_core(py, r)));
            }
        }
        let next = blocking(py, || self.state.lock().next_record())?;
        py.check_signals()?;
        Ok(next.map(|r| PyRecord::from_core(py, r)))
    }
}
