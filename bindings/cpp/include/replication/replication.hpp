// replication.hpp - header-only C++17 RAII wrapper over the C API in replication.h.
//
// Names follow ThemisDB: WALEntry, WalManager (alias WAL), HybridLogicalClock,
// ReplicationError, Operation. Every failing C call becomes a ReplicationError carrying the
// repl_result code and the library's detail text (file, offset, LSNs, OS error).
//
// Ownership: WalManager, WalReader and HybridLogicalClock own their C handle, are move-only and
// release it in their destructor. Thread safety is that of the C API: a WalManager and a
// HybridLogicalClock may be used from many threads at once; a WalReader from one at a time.
#ifndef THEMIS_REPLICATION_REPLICATION_HPP
#define THEMIS_REPLICATION_REPLICATION_HPP

#include <replication.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace themis::replication {

/// What a WAL record does to the host's data. Values other than the four named ones (5..255)
/// come from newer writers and are preserved unchanged.
enum class Operation : std::uint8_t {
    Insert = REPL_OP_INSERT,
    Update = REPL_OP_UPDATE,
    Delete = REPL_OP_DELETE,
    Ddl = REPL_OP_DDL,
};

enum class Durability : std::uint32_t {
    EveryCommit = REPL_DURABILITY_EVERY_COMMIT,
    Interval = REPL_DURABILITY_INTERVAL,
    None = REPL_DURABILITY_NONE,
};

enum class RecoveryMode : std::uint32_t {
    TolerateTornTail = REPL_RECOVERY_TOLERATE_TORN_TAIL,
    AbsoluteConsistency = REPL_RECOVERY_ABSOLUTE_CONSISTENCY,
};

namespace detail {

/// Reads a text through one of the C API's (buf, len, &out_len) functions, growing the buffer
/// once if needed.
template <typename Fill>
std::string read_text(Fill fill) {
    char small[256];
    std::size_t len = 0;
    repl_result rc = fill(small, sizeof small, &len);
    if (rc == REPL_OK) return std::string(small, len);
    if (rc != REPL_ERR_BUFFER_TOO_SMALL) return std::string();
    std::string big(len + 1, '\0');
    if (fill(big.data(), big.size(), &len) != REPL_OK) return std::string();
    big.resize(len);
    return big;
}

inline std::string error_message(repl_result code) {
    return read_text([code](char* buf, std::size_t len, std::size_t* out) {
        return repl_error_message(static_cast<std::uint32_t>(code), buf, len, out);
    });
}

inline std::string last_error_detail() {
    return read_text([](char* buf, std::size_t len, std::size_t* out) {
        return repl_last_error_detail(buf, len, out);
    });
}

inline const std::uint8_t* bytes(std::string_view s) noexcept {
    return reinterpret_cast<const std::uint8_t*>(s.data());
}

}  // namespace detail

/// A failed call of the replication library.
class ReplicationError : public std::runtime_error {
public:
    ReplicationError(repl_result code, std::string detail)
        : std::runtime_error(detail.empty() ? detail::error_message(code) : detail),
          code_(code),
          detail_(std::move(detail)) {}

    /// The stable result code (REPL_ERR_...).
    repl_result code() const noexcept { return code_; }
    /// The fixed description of the code.
    std::string message() const { return detail::error_message(code_); }
    /// The library's full text for this failure: function, file, offset, LSNs, OS error.
    const std::string& detail() const noexcept { return detail_; }

private:
    repl_result code_;
    std::string detail_;
};

namespace detail {

/// Throws a ReplicationError for a failed call. Must run right after the call, on the same
/// thread, before any other repl_* call: the detail is per thread and per last failure.
inline void check(repl_result rc) {
    if (rc != REPL_OK) throw ReplicationError(rc, last_error_detail());
}

}  // namespace detail

/// Version of the library, e.g. "0.1.0".
inline std::string version() { return repl_version(); }

/// A WAL record. `lsn` is assigned by the WAL: it is ignored by append and set by reads.
struct WALEntry {
    std::uint64_t lsn = 0;
    std::uint64_t term = 0;
    /// HLC timestamp (HybridLogicalClock::now()).
    std::uint64_t hlc = 0;
    /// Node id where the change originated.
    std::uint64_t origin = 0;
    Operation operation = Operation::Insert;
    std::string collection;
    std::string doc_id;
    std::optional<std::uint64_t> txn_id;
    std::vector<std::uint8_t> payload;

    friend bool operator==(const WALEntry& a, const WALEntry& b) {
        return a.lsn == b.lsn && a.term == b.term && a.hlc == b.hlc && a.origin == b.origin &&
               a.operation == b.operation && a.collection == b.collection &&
               a.doc_id == b.doc_id && a.txn_id == b.txn_id && a.payload == b.payload;
    }
    friend bool operator!=(const WALEntry& a, const WALEntry& b) { return !(a == b); }
};

namespace detail {

/// A C view of `e`; borrows e's memory, so it is valid while `e` is unchanged.
inline repl_record to_c(const WALEntry& e) noexcept {
    repl_record r{};
    r.term = e.term;
    r.hlc = e.hlc;
    r.origin = e.origin;
    r.op = static_cast<std::uint8_t>(e.operation);
    r.collection = bytes(e.collection);
    r.collection_len = e.collection.size();
    r.doc_id = bytes(e.doc_id);
    r.doc_id_len = e.doc_id.size();
    r.has_txn_id = e.txn_id.has_value();
    r.txn_id = e.txn_id.value_or(0);
    r.payload = e.payload.empty() ? nullptr : e.payload.data();
    r.payload_len = e.payload.size();
    return r;
}

inline WALEntry from_c(const repl_record_view& v) {
    const repl_record& r = v.record;
    WALEntry e;
    e.lsn = v.lsn;
    e.term = r.term;
    e.hlc = r.hlc;
    e.origin = r.origin;
    e.operation = static_cast<Operation>(r.op);
    e.collection.assign(reinterpret_cast<const char*>(r.collection), r.collection_len);
    e.doc_id.assign(reinterpret_cast<const char*>(r.doc_id), r.doc_id_len);
    if (r.has_txn_id) e.txn_id = r.txn_id;
    if (r.payload_len > 0) e.payload.assign(r.payload, r.payload + r.payload_len);
    return e;
}

}  // namespace detail

/// Options of WalManager::open. The constructor starts from the library's defaults.
struct WalOptions {
    std::string dir;
    std::uint64_t segment_size_bytes = 0;
    Durability durability = Durability::EveryCommit;
    /// Used only with Durability::Interval.
    std::chrono::milliseconds sync_interval{0};
    bool compression_enabled = false;
    std::int32_t compression_level = 0;
    std::size_t compression_min_batch_bytes = 0;
    RecoveryMode recovery_mode = RecoveryMode::TolerateTornTail;

    explicit WalOptions(std::string directory) : dir(std::move(directory)) {
        repl_wal_options o{};
        detail::check(repl_wal_options_default(&o));
        segment_size_bytes = o.segment_size_bytes;
        durability = static_cast<Durability>(o.durability);
        sync_interval = std::chrono::milliseconds(o.sync_interval_ms);
        compression_enabled = o.compression_enabled;
        compression_level = o.compression_level;
        compression_min_batch_bytes = o.compression_min_batch_bytes;
        recovery_mode = static_cast<RecoveryMode>(o.recovery_mode);
    }

    /// A C view; borrows `dir`.
    repl_wal_options to_c() const noexcept {
        repl_wal_options o{};
        o.dir = detail::bytes(dir);
        o.dir_len = dir.size();
        o.segment_size_bytes = segment_size_bytes;
        o.durability = static_cast<std::uint32_t>(durability);
        o.sync_interval_ms = static_cast<std::uint64_t>(sync_interval.count());
        o.compression_enabled = compression_enabled;
        o.compression_level = compression_level;
        o.compression_min_batch_bytes = compression_min_batch_bytes;
        o.recovery_mode = static_cast<std::uint32_t>(recovery_mode);
        return o;
    }
};

/// Reads WAL records in LSN order; from WalManager::readFrom. Move-only. Usable in a range-for:
/// `for (const WALEntry& e : wal.readFrom(1)) ...` (errors are thrown from the increment).
class WalReader {
public:
    explicit WalReader(repl_wal_iter* handle) noexcept : handle_(handle) {}
    WalReader(WalReader&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    WalReader& operator=(WalReader&& other) noexcept {
        if (this != &other) {
            repl_wal_iter_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    WalReader(const WalReader&) = delete;
    WalReader& operator=(const WalReader&) = delete;
    ~WalReader() { repl_wal_iter_free(handle_); }

    /// The next record, or std::nullopt at the end.
    std::optional<WALEntry> next() {
        repl_record_view view{};
        bool has = false;
        detail::check(repl_wal_iter_next(handle_, &view, &has));
        if (!has) return std::nullopt;
        return detail::from_c(view);
    }

    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = WALEntry;
        using difference_type = std::ptrdiff_t;
        using pointer = const WALEntry*;
        using reference = const WALEntry&;

        iterator() = default;
        explicit iterator(WalReader* reader) : reader_(reader) { ++*this; }
        reference operator*() const { return *current_; }
        pointer operator->() const { return &*current_; }
        iterator& operator++() {
            current_ = reader_->next();
            if (!current_) reader_ = nullptr;
            return *this;
        }
        friend bool operator==(const iterator& a, const iterator& b) {
            return a.reader_ == b.reader_;
        }
        friend bool operator!=(const iterator& a, const iterator& b) { return !(a == b); }

    private:
        WalReader* reader_ = nullptr;
        std::optional<WALEntry> current_;
    };

    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

    repl_wal_iter* native() noexcept { return handle_; }

private:
    repl_wal_iter* handle_;
};

/// The write-ahead log. Move-only; the destructor closes (if still open) and frees it, losing
/// any error of that final close: call close() to see it.
class WalManager {
public:
    /// Opens (creating if needed) the WAL in options.dir, running recovery.
    explicit WalManager(const WalOptions& options) {
        repl_wal_options o = options.to_c();
        detail::check(repl_wal_open(&o, &handle_));
    }
    static WalManager open(const WalOptions& options) { return WalManager(options); }

    WalManager(WalManager&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    WalManager& operator=(WalManager&& other) noexcept {
        if (this != &other) {
            repl_wal_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    WalManager(const WalManager&) = delete;
    WalManager& operator=(const WalManager&) = delete;
    ~WalManager() { repl_wal_free(handle_); }

    /// Appends one record (entry.lsn is ignored); returns its LSN.
    std::uint64_t append(const WALEntry& entry) {
        repl_record r = detail::to_c(entry);
        std::uint64_t lsn = 0;
        detail::check(repl_wal_append(handle_, &r, &lsn));
        return lsn;
    }

    /// Appends records as one atomic batch; returns the first and last LSN assigned.
    std::pair<std::uint64_t, std::uint64_t> appendBatch(const std::vector<WALEntry>& entries) {
        std::vector<repl_record> recs;
        recs.reserve(entries.size());
        for (const WALEntry& e : entries) recs.push_back(detail::to_c(e));
        std::uint64_t first = 0, last = 0;
        detail::check(repl_wal_append_batch(handle_, recs.data(), recs.size(), &first, &last));
        return {first, last};
    }

    /// Reads records from `lsn` up to the last LSN at the time of the call.
    WalReader readFrom(std::uint64_t lsn) const {
        repl_wal_iter* it = nullptr;
        detail::check(repl_wal_read_from(handle_, lsn, &it));
        return WalReader(it);
    }

    /// Reads every record from `lsn` on into a vector.
    std::vector<WALEntry> readAll(std::uint64_t lsn) const {
        std::vector<WALEntry> out;
        WalReader reader = readFrom(lsn);
        while (std::optional<WALEntry> e = reader.next()) out.push_back(std::move(*e));
        return out;
    }

    /// LSN of the first record with an HLC timestamp >= `hlc`, if any.
    std::optional<std::uint64_t> findLsnByTimestamp(std::uint64_t hlc) const {
        bool found = false;
        std::uint64_t lsn = 0;
        detail::check(repl_wal_find_lsn_by_timestamp(handle_, hlc, &found, &lsn));
        return found ? std::optional<std::uint64_t>(lsn) : std::nullopt;
    }

    /// Removes every record with LSN > `lsn`.
    void truncateAfter(std::uint64_t lsn) { detail::check(repl_wal_truncate_after(handle_, lsn)); }

    /// Deletes whole segments whose records all have LSN < `lsn`; returns how many.
    std::size_t purgeBefore(std::uint64_t lsn) {
        std::size_t removed = 0;
        detail::check(repl_wal_purge_before(handle_, lsn, &removed));
        return removed;
    }

    std::uint64_t firstLsn() const { return get(repl_wal_first_lsn); }
    std::uint64_t lastLsn() const { return get(repl_wal_last_lsn); }
    std::uint64_t durableLsn() const { return get(repl_wal_durable_lsn); }

    /// Writes and fdatasyncs everything appended so far.
    void sync() { detail::check(repl_wal_sync(handle_)); }

    /// Flushes and closes; later calls throw ReplicationError(REPL_ERR_HANDLE_CLOSED).
    void close() { detail::check(repl_wal_close(handle_)); }

    repl_wal* native() noexcept { return handle_; }

private:
    std::uint64_t get(repl_result (*f)(const repl_wal*, std::uint64_t*)) const {
        std::uint64_t v = 0;
        detail::check(f(handle_, &v));
        return v;
    }

    repl_wal* handle_ = nullptr;
};

using WAL = WalManager;

/// Hybrid logical clock over the system wall clock; timestamps are packed uint64_t values
/// (48 bits of milliseconds, 16 bits of logical counter) ordered like integers.
class HybridLogicalClock {
public:
    /// Rejects remote timestamps more than `max_drift` ahead of the local wall clock.
    explicit HybridLogicalClock(std::chrono::milliseconds max_drift) {
        detail::check(repl_hlc_new(static_cast<std::uint64_t>(max_drift.count()), &handle_));
    }
    HybridLogicalClock(HybridLogicalClock&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)) {}
    HybridLogicalClock& operator=(HybridLogicalClock&& other) noexcept {
        if (this != &other) {
            repl_hlc_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    HybridLogicalClock(const HybridLogicalClock&) = delete;
    HybridLogicalClock& operator=(const HybridLogicalClock&) = delete;
    ~HybridLogicalClock() { repl_hlc_free(handle_); }

    /// Timestamp for a local event; strictly greater than every earlier reading.
    std::uint64_t now() const {
        std::uint64_t t = 0;
        detail::check(repl_hlc_now(handle_, &t));
        return t;
    }

    /// Merges a remote timestamp; throws ReplicationError(REPL_ERR_CLOCK_DRIFT_EXCEEDED) if it
    /// is too far ahead (the clock is then unchanged).
    std::uint64_t update(std::uint64_t remote) const {
        std::uint64_t t = 0;
        detail::check(repl_hlc_update(handle_, remote, &t));
        return t;
    }

    repl_hlc* native() noexcept { return handle_; }

private:
    repl_hlc* handle_ = nullptr;
};

}  // namespace themis::replication

#endif  // THEMIS_REPLICATION_REPLICATION_HPP
