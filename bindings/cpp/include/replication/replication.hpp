// replication.hpp - header-only C++17 RAII wrapper over the C API in replication.h.
//
// Names follow ThemisDB: WALEntry, WalManager (alias WAL), HybridLogicalClock, VectorClock,
// ReplicationConfig (accessors named like its fields), ReplicationMode, ReplicationError,
// Operation, ReplicationManager (one cluster member), IReplicationListener. Every failing C call becomes a ReplicationError carrying the repl_result code and
// the library's detail text (file, offset, LSNs, OS error, every configuration problem).
//
// Ownership: WalManager, WalReader, HybridLogicalClock and ReplicationManager own their C handle, are move-only and
// release it in their destructor. VectorClock owns its handle and copies it on copy.
// ReplicationConfig is immutable, so copies share one handle, released with the last copy.
// Thread safety is that of the C API: a WalManager, a HybridLogicalClock and a
// ReplicationConfig may be used from many threads at once; a WalReader from one at a time; a
// VectorClock like a std::vector (concurrent const calls only).
#ifndef THEMIS_REPLICATION_REPLICATION_HPP
#define THEMIS_REPLICATION_REPLICATION_HPP

#include <replication.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
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

/// When a write counts as committed (ReplicationConfig::mode()).
enum class ReplicationMode : std::uint32_t {
    /// Every voter has durably appended the write.
    SYNC = REPL_MODE_SYNC,
    /// min_sync_replicas() followers have durably appended it (or the timeout passed).
    SEMI_SYNC = REPL_MODE_SEMI_SYNC,
    /// The leader has durably appended it; followers catch up in the background.
    ASYNC = REPL_MODE_ASYNC,
};

/// How one vector clock relates causally to another (VectorClock::compare()).
enum class VectorOrdering : std::uint32_t {
    Before = REPL_VCLOCK_BEFORE,
    After = REPL_VCLOCK_AFTER,
    Equal = REPL_VCLOCK_EQUAL,
    /// Neither saw all of the other's events: concurrent updates, a conflict.
    Concurrent = REPL_VCLOCK_CONCURRENT,
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

/// Like read_text, for a text the caller asked for: failures other than the first too-small
/// buffer throw.
template <typename Fill>
std::string copy_text(Fill fill) {
    char small[256];
    std::size_t len = 0;
    repl_result rc = fill(small, sizeof small, &len);
    if (rc == REPL_OK) return std::string(small, len);
    if (rc != REPL_ERR_BUFFER_TOO_SMALL) check(rc);
    std::string big(len + 1, '\0');
    check(fill(big.data(), big.size(), &len));
    big.resize(len);
    return big;
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

/// One other member of the cluster (ReplicationConfig::peers()).
struct PeerConfig {
    std::uint64_t node_id = 0;
    /// host:port
    std::string address;

    friend bool operator==(const PeerConfig& a, const PeerConfig& b) {
        return a.node_id == b.node_id && a.address == b.address;
    }
    friend bool operator!=(const PeerConfig& a, const PeerConfig& b) { return !(a == b); }
};

/// A node's replication configuration, loaded from TOML with ThemisDB's keys and validated:
/// every value it holds is usable. Immutable; copies are cheap and share the loaded config.
///
///     auto cfg = ReplicationConfig::fromFile("/etc/themis/replication.toml");
///     for (const std::string& w : cfg.warnings()) log_warning(w);
///     WalManager wal(cfg);
class ReplicationConfig {
public:
    /// Parses and validates a TOML document. Throws ReplicationError with code
    /// REPL_ERR_CONFIG_PARSE (syntax; what() gives line and column) or REPL_ERR_CONFIG_INVALID
    /// (what() lists every problem, one per line, each with its key and line).
    static ReplicationConfig fromToml(std::string_view toml) {
        repl_config* handle = nullptr;
        detail::check(repl_config_from_toml(detail::bytes(toml), toml.size(), &handle));
        return ReplicationConfig(handle);
    }

    /// Reads a TOML file, then as fromToml. An unreadable file throws REPL_ERR_CONFIG_IO.
    static ReplicationConfig fromFile(std::string_view path) {
        repl_config* handle = nullptr;
        detail::check(repl_config_from_file(detail::bytes(path), path.size(), &handle));
        return ReplicationConfig(handle);
    }

    std::uint64_t node_id() const { return get(repl_config_node_id); }
    std::string listen_address() const { return text(repl_config_listen_address); }
    ReplicationMode mode() const {
        return static_cast<ReplicationMode>(get(repl_config_mode));
    }
    std::uint32_t min_sync_replicas() const { return get(repl_config_min_sync_replicas); }
    std::uint64_t heartbeat_interval_ms() const { return get(repl_config_heartbeat_interval_ms); }
    std::uint64_t election_timeout_min_ms() const {
        return get(repl_config_election_timeout_min_ms);
    }
    std::uint64_t election_timeout_max_ms() const {
        return get(repl_config_election_timeout_max_ms);
    }
    std::uint64_t replication_timeout_ms() const {
        return get(repl_config_replication_timeout_ms);
    }
    std::uint64_t batch_size() const { return get(repl_config_batch_size); }
    std::uint64_t batch_timeout_ms() const { return get(repl_config_batch_timeout_ms); }
    /// As written in the configuration; a relative path is relative to the working directory.
    std::string wal_directory() const { return text(repl_config_wal_directory); }
    std::uint64_t wal_segment_size_bytes() const {
        return get(repl_config_wal_segment_size_bytes);
    }
    bool wal_sync_on_commit() const { return get(repl_config_wal_sync_on_commit); }
    std::uint64_t wal_sync_interval_ms() const { return get(repl_config_wal_sync_interval_ms); }
    bool wal_zero_fill_ahead() const { return get(repl_config_wal_zero_fill_ahead); }
    bool enable_wal_compression() const { return get(repl_config_enable_wal_compression); }
    std::int32_t compression_level() const { return get(repl_config_compression_level); }

    /// The [[peers]] entries, in document order.
    std::vector<PeerConfig> peers() const {
        std::size_t n = get(repl_config_peer_count);
        std::vector<PeerConfig> out(n);
        for (std::size_t i = 0; i < n; i++) {
            detail::check(repl_config_peer_id(native(), i, &out[i].node_id));
            out[i].address = detail::copy_text([&](char* buf, std::size_t len, std::size_t* n_out) {
                return repl_config_peer_address(native(), i, buf, len, n_out);
            });
        }
        return out;
    }

    /// Legal but risky settings worth logging at startup.
    std::vector<std::string> warnings() const {
        std::size_t n = get(repl_config_warnings_count);
        std::vector<std::string> out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; i++) {
            out.push_back(detail::copy_text([&](char* buf, std::size_t len, std::size_t* n_out) {
                return repl_config_warning(native(), i, buf, len, n_out);
            }));
        }
        return out;
    }

    const repl_config* native() const noexcept { return handle_.get(); }

private:
    // The deleter runs even if the shared_ptr cannot allocate its control block.
    explicit ReplicationConfig(repl_config* handle) : handle_(handle, repl_config_free) {}

    template <typename T>
    T get(repl_result (*f)(const repl_config*, T*)) const {
        T v{};
        detail::check(f(native(), &v));
        return v;
    }

    std::string text(repl_result (*f)(const repl_config*, char*, std::size_t, std::size_t*)) const {
        return detail::copy_text([&](char* buf, std::size_t len, std::size_t* n) {
            return f(native(), buf, len, n);
        });
    }

    std::shared_ptr<repl_config> handle_;
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

    /// Opens (creating if needed) the WAL `config` describes: wal_directory, segment size,
    /// durability (wal_sync_on_commit / wal_sync_interval_ms), compression, recovery mode.
    /// The WAL does not keep the config.
    explicit WalManager(const ReplicationConfig& config) {
        detail::check(repl_wal_open_from_config(config.native(), &handle_));
    }
    static WalManager open(const ReplicationConfig& config) { return WalManager(config); }

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

/// A vector clock: one event counter per node id (0 for nodes it has no entry for). Tells
/// causally ordered updates from concurrent ones (conflicts) in multi-master replication.
/// Copies are independent clocks. A moved-from clock may only be assigned to or destroyed.
class VectorClock {
public:
    using Entry = std::pair<std::uint64_t, std::uint64_t>;  // (node, counter)

    /// The empty clock.
    VectorClock() { detail::check(repl_vclock_new(&handle_)); }

    /// A clock with the given (node, counter) entries, in any order; zero counters are
    /// dropped. Throws ReplicationError(REPL_ERR_CLOCK_DUPLICATE_NODE) if a node repeats.
    explicit VectorClock(const std::vector<Entry>& entries) {
        std::vector<std::uint64_t> nodes, counters;
        nodes.reserve(entries.size());
        counters.reserve(entries.size());
        for (const Entry& e : entries) {
            nodes.push_back(e.first);
            counters.push_back(e.second);
        }
        detail::check(
            repl_vclock_from_entries(nodes.data(), counters.data(), entries.size(), &handle_));
    }

    VectorClock(const VectorClock& other) {
        detail::check(repl_vclock_clone(other.handle_, &handle_));
    }
    VectorClock& operator=(const VectorClock& other) {
        if (this != &other) {
            VectorClock copy(other);
            std::swap(handle_, copy.handle_);
        }
        return *this;
    }
    VectorClock(VectorClock&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    VectorClock& operator=(VectorClock&& other) noexcept {
        if (this != &other) {
            repl_vclock_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    ~VectorClock() { repl_vclock_free(handle_); }

    /// Records a local event on `node`; returns its new counter (saturating, never wrapping).
    std::uint64_t increment(std::uint64_t node) {
        std::uint64_t counter = 0;
        detail::check(repl_vclock_increment(handle_, node, &counter));
        return counter;
    }

    /// Counter of `node` (0 if it has none).
    std::uint64_t get(std::uint64_t node) const {
        std::uint64_t counter = 0;
        detail::check(repl_vclock_get(handle_, node, &counter));
        return counter;
    }

    /// Pointwise maximum with `other`, in place; `other` may be this clock.
    void merge(const VectorClock& other) {
        detail::check(repl_vclock_merge(handle_, other.handle_));
    }

    /// How this clock relates causally to `other`.
    VectorOrdering compare(const VectorClock& other) const {
        std::uint32_t ordering = 0;
        detail::check(repl_vclock_compare(handle_, other.handle_, &ordering));
        return static_cast<VectorOrdering>(ordering);
    }
    bool happenedBefore(const VectorClock& other) const {
        return compare(other) == VectorOrdering::Before;
    }
    bool isConcurrent(const VectorClock& other) const {
        return compare(other) == VectorOrdering::Concurrent;
    }

    /// Number of nodes with a non-zero counter.
    std::size_t size() const {
        std::size_t n = 0;
        detail::check(repl_vclock_len(handle_, &n));
        return n;
    }

    /// (node, counter) for every non-zero counter, in increasing node order: what to send to
    /// another node, which rebuilds the clock with VectorClock(entries).
    std::vector<Entry> entries() const {
        std::vector<Entry> out(size());
        for (std::size_t i = 0; i < out.size(); i++) {
            detail::check(repl_vclock_entry(handle_, i, &out[i].first, &out[i].second));
        }
        return out;
    }

    /// Same history (compare() == VectorOrdering::Equal).
    friend bool operator==(const VectorClock& a, const VectorClock& b) {
        return a.compare(b) == VectorOrdering::Equal;
    }
    friend bool operator!=(const VectorClock& a, const VectorClock& b) { return !(a == b); }

    repl_vclock* native() noexcept { return handle_; }

private:
    repl_vclock* handle_ = nullptr;
};

// --- Cluster ----------------------------------------------------------------------------------

/// A node's role in the cluster (ReplicationManager::role()).
enum class NodeRole : std::uint32_t {
    Leader = REPL_ROLE_LEADER,
    Follower = REPL_ROLE_FOLLOWER,
    Candidate = REPL_ROLE_CANDIDATE,
    /// A non-voting member.
    Learner = REPL_ROLE_LEARNER,
    /// The node was shut down.
    Shutdown = REPL_ROLE_SHUTDOWN,
};

/// How fresh a ReplicationManager::read() must be.
enum class ReadConsistency : std::uint32_t {
    /// Sees every write acknowledged before the read started. Leader only.
    Linearizable = REPL_READ_LINEARIZABLE,
    /// The leader's applied state, without confirming leadership. Leader only.
    LeaderLocal = REPL_READ_LEADER_LOCAL,
    /// The local state, if at most `maxStaleness` behind the leader. Any node.
    FollowerBounded = REPL_READ_FOLLOWER_BOUNDED,
};

/// The write was refused because this node is not the leader. leader() names the leader this
/// node knows of; send the write there.
class NotLeaderError : public ReplicationError {
public:
    NotLeaderError(repl_result code, std::string detail, std::optional<std::uint64_t> leader_id)
        : ReplicationError(code, std::move(detail)), leader_(leader_id) {}
    std::optional<std::uint64_t> leader() const noexcept { return leader_; }

private:
    std::optional<std::uint64_t> leader_;
};

/// The write entered the log but was not acknowledged in time: it may still commit.
/// Deduplicate before retrying (REPL_ERR_CLUSTER_COMMIT_UNKNOWN).
class CommitUnknownError : public ReplicationError {
public:
    using ReplicationError::ReplicationError;
};

/// The write never entered the log; retrying it is safe (REPL_ERR_CLUSTER_NOT_DURABLE).
class NotDurableError : public ReplicationError {
public:
    using ReplicationError::ReplicationError;
};

/// A wait did not finish in time (REPL_ERR_CLUSTER_TIMEOUT).
class ClusterTimeoutError : public ReplicationError {
public:
    using ReplicationError::ReplicationError;
};

/// The host's state machine behind a ReplicationManager: receives every committed write, in
/// LSN order, and (optionally) snapshots and restores the host's whole state.
///
/// The methods run on a library thread (`replication-rt`), never concurrently with each other
/// for one manager. When a node restarts, its snapshot on disk (onRestore) and the entries its
/// log holds as committed (onWALEntryApplied) are replayed on the thread constructing the
/// ReplicationManager, before the constructor returns. They may call the non-blocking ReplicationManager
/// methods (role, leader, term, nodeId, status, localAddress, setMode, setMinSyncReplicas) but
/// not the blocking ones (append, waitForLsn, read, triggerSnapshot, ...): those throw
/// ReplicationError with REPL_ERR_CLUSTER_REENTRANT_CALL there.
///
/// onWALEntryApplied must not throw: an entry cannot be skipped, so an escaping exception
/// terminates the process (std::terminate). An exception from onSnapshot or onRestore is
/// caught at the C boundary and reported as a failure (code kListenerThrew in the error
/// detail), which stops the node, as described in replication.h (repl_snapshot_fn,
/// repl_restore_fn).
///
/// Override onSnapshot and onRestore together, and supportsSnapshots to return true: they let
/// a node that is behind the leader's purged log (a new member, or one that was down meanwhile)
/// catch up through a snapshot, and let a restarted node resume from its latest snapshot. A
/// listener without them (supportsSnapshots() false, the default) never snapshots, so its log
/// is kept and a restart re-applies it; it cannot catch up once the leader purged entries it
/// lacks.
class IReplicationListener {
public:
    /// Error codes the C boundary reports for onSnapshot / onRestore.
    static constexpr std::int32_t kListenerThrew = -1;
    static constexpr std::int32_t kSnapshotWriteFailed = -2;

    virtual ~IReplicationListener() = default;
    /// `entry.origin` is 0 (the applied entry does not carry it); `entry.lsn` is set.
    virtual void onWALEntryApplied(const WALEntry& entry) = 0;
    /// True if this listener implements onSnapshot and onRestore (read once, at start).
    virtual bool supportsSnapshots() const { return false; }
    /// Returns the host's whole state as bytes, reflecting exactly the entries applied so far.
    virtual std::vector<std::uint8_t> onSnapshot() { return {}; }
    /// Replaces the host's whole state with bytes that onSnapshot returned (possibly on another
    /// node); `data` is valid only during the call. Applies continue after the snapshot's LSN.
    virtual void onRestore(const std::uint8_t* data, std::size_t len) {
        (void)data;
        (void)len;
        throw std::logic_error(
            "this IReplicationListener does not override onRestore, so it cannot restore a "
            "snapshot");
    }
};

/// ReplicationManager::status().
struct NodeStatus {
    std::uint64_t node_id = 0;
    NodeRole role = NodeRole::Follower;
    std::uint64_t term = 0;
    std::optional<std::uint64_t> leader;
    std::uint64_t last_lsn = 0;
    std::uint64_t durable_lsn = 0;
    std::uint64_t commit_lsn = 0;
    std::uint64_t applied_lsn = 0;
    ReplicationMode mode = ReplicationMode::SEMI_SYNC;
    std::uint32_t min_sync_replicas = 0;
    std::size_t voter_count = 0;
    std::size_t learner_count = 0;
};

namespace detail {

/// The trampoline handed to repl_node_start: userdata is the IReplicationListener.
inline void apply_trampoline(void* userdata, const repl_applied_entry* e) noexcept {
    WALEntry entry;
    entry.lsn = e->lsn;
    entry.term = e->term;
    entry.hlc = e->hlc;
    entry.operation = static_cast<Operation>(e->op);
    entry.collection.assign(reinterpret_cast<const char*>(e->collection), e->collection_len);
    entry.doc_id.assign(reinterpret_cast<const char*>(e->doc_id), e->doc_id_len);
    if (e->has_txn_id) entry.txn_id = e->txn_id;
    if (e->payload_len > 0) entry.payload.assign(e->payload, e->payload + e->payload_len);
    // noexcept: an exception from the listener calls std::terminate (see IReplicationListener).
    static_cast<IReplicationListener*>(userdata)->onWALEntryApplied(entry);
}

/// The repl_snapshot_fn handed to repl_node_start_with_snapshots: exceptions stop here.
inline std::int32_t snapshot_trampoline(void* userdata, repl_snapshot_writer* writer) noexcept {
    try {
        std::vector<std::uint8_t> bytes = static_cast<IReplicationListener*>(userdata)->onSnapshot();
        if (repl_snapshot_write(writer, bytes.data(), bytes.size()) != REPL_OK) {
            return IReplicationListener::kSnapshotWriteFailed;
        }
        return 0;
    } catch (...) {
        return IReplicationListener::kListenerThrew;
    }
}

/// The repl_restore_fn handed to repl_node_start_with_snapshots: exceptions stop here.
inline std::int32_t restore_trampoline(void* userdata, const std::uint8_t* data,
                                       std::size_t len) noexcept {
    try {
        static_cast<IReplicationListener*>(userdata)->onRestore(data, len);
        return 0;
    } catch (...) {
        return IReplicationListener::kListenerThrew;
    }
}

}  // namespace detail

/// Writes throwaway TLS certificates and vote-signing keys for `ids` into `dir`
/// (repl_dev_cluster_materials: ca.pem, node-<id>.pem/.key/.ed25519/.pub). Development only.
inline void devClusterMaterials(std::string_view dir, const std::vector<std::uint64_t>& ids) {
    detail::check(repl_dev_cluster_materials(detail::bytes(dir), dir.size(), ids.data(),
                                             ids.size()));
}

/// One member of a replication cluster (Raft consensus on the WAL, mutual TLS to its peers),
/// started from a ReplicationConfig (which must name node_key_path, the peers' public keys and
/// the TLS files). Move-only; the destructor shuts the node down (if still running) and frees
/// it, losing any error of that shutdown: call shutdown() to see it.
///
/// Thread safety: every method may be called from many threads at once. Blocking methods
/// (initialize, append, waitForLsn, read, startElection, addLearner, changeMembership,
/// triggerSnapshot, shutdown) wait on the calling thread and must not be called from a listener.
///
/// Errors throw ReplicationError; the cluster's outcomes have their own types: NotLeaderError,
/// NotDurableError (safe to retry), CommitUnknownError (deduplicate before retrying),
/// ClusterTimeoutError.
class ReplicationManager {
public:
    /// Starts the node. With a listener, it receives every committed write and, if its
    /// supportsSnapshots() is true, snapshots and restores the host state (onSnapshot /
    /// onRestore, through repl_node_start_with_snapshots; a snapshot on disk is restored before
    /// the constructor returns). The listener must outlive the
    /// node (until shutdown() returns or the manager is destroyed). Without one
    /// (nullptr), the node keeps its state in a built-in in-memory store that read() serves.
    explicit ReplicationManager(const ReplicationConfig& config,
                                IReplicationListener* listener = nullptr) {
        const repl_config* cfg = config.native();
        if (listener != nullptr && !listener->supportsSnapshots()) {
            detail::check(repl_node_start(cfg, &detail::apply_trampoline, listener, &handle_));
        } else if (listener != nullptr) {
            detail::check(repl_node_start_with_snapshots(cfg, &detail::apply_trampoline,
                                                         &detail::snapshot_trampoline,
                                                         &detail::restore_trampoline, listener,
                                                         &handle_));
        } else {
            detail::check(repl_node_start(cfg, nullptr, nullptr, &handle_));
        }
    }

    ReplicationManager(ReplicationManager&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)) {}
    ReplicationManager& operator=(ReplicationManager&& other) noexcept {
        if (this != &other) {
            repl_node_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    ReplicationManager(const ReplicationManager&) = delete;
    ReplicationManager& operator=(const ReplicationManager&) = delete;
    ~ReplicationManager() { repl_node_free(handle_); }

    /// Forms a new cluster of `members` (node id -> "host:port", this node included). Call
    /// once, on one node.
    void initialize(const std::map<std::uint64_t, std::string>& members) {
        std::vector<repl_member> c;
        c.reserve(members.size());
        for (const auto& [id, addr] : members) {
            repl_member m{};
            m.node_id = id;
            m.address = detail::bytes(addr);
            m.address_len = addr.size();
            c.push_back(m);
        }
        check(repl_node_initialize(handle_, c.data(), c.size()));
    }

    /// Appends `entry` through consensus (only operation, collection, doc_id, txn_id and
    /// payload are used) and returns its LSN once acknowledged per `mode` (default: the node's
    /// current mode).
    std::uint64_t append(const WALEntry& entry, std::optional<ReplicationMode> mode = {}) {
        repl_record r = detail::to_c(entry);
        std::uint32_t m = mode ? static_cast<std::uint32_t>(*mode) : REPL_MODE_DEFAULT;
        std::uint64_t lsn = 0;
        check(repl_node_append(handle_, &r, m, &lsn));
        return lsn;
    }

    /// Waits until this node has applied `lsn`; throws ClusterTimeoutError after `timeout`.
    void waitForLsn(std::uint64_t lsn, std::chrono::milliseconds timeout) {
        check(repl_node_wait_for_lsn(handle_, lsn, static_cast<std::uint64_t>(timeout.count())));
    }

    /// Reads a document; std::nullopt if it does not exist. Only for a manager without a
    /// listener (built-in store). `maxStaleness` is used with FollowerBounded only.
    std::optional<std::vector<std::uint8_t>> read(
        std::string_view collection, std::string_view doc_id,
        ReadConsistency consistency = ReadConsistency::Linearizable,
        std::chrono::milliseconds maxStaleness = std::chrono::milliseconds(0)) {
        std::vector<std::uint8_t> buf(256);
        for (;;) {
            std::size_t len = 0;
            bool found = false;
            repl_result rc = repl_node_read(
                handle_, detail::bytes(collection), collection.size(), detail::bytes(doc_id),
                doc_id.size(), static_cast<std::uint32_t>(consistency),
                static_cast<std::uint64_t>(maxStaleness.count()), buf.data(), buf.size(), &len,
                &found);
            if (rc == REPL_ERR_BUFFER_TOO_SMALL) {
                buf.resize(len);  // the document grew meanwhile: try again
                continue;
            }
            check(rc);
            if (!found) return std::nullopt;
            buf.resize(len);
            return buf;
        }
    }

    std::uint64_t nodeId() const { return get<std::uint64_t>(repl_node_id); }
    NodeRole role() const { return static_cast<NodeRole>(get<std::uint32_t>(repl_node_role)); }
    /// The leader this node knows of, if any.
    std::optional<std::uint64_t> leader() const {
        std::uint64_t l = get<std::uint64_t>(repl_node_leader);
        return l == 0 ? std::nullopt : std::optional<std::uint64_t>(l);
    }
    std::uint64_t term() const { return get<std::uint64_t>(repl_node_term); }
    bool isLeader() const { return role() == NodeRole::Leader; }

    /// The address the consensus listener is bound to ("host:port").
    std::string localAddress() const {
        return detail::copy_text([this](char* buf, std::size_t len, std::size_t* out) {
            return repl_node_local_addr(handle_, buf, len, out);
        });
    }

    NodeStatus status() const {
        repl_node_info i{};
        detail::check(repl_node_status(handle_, &i));
        NodeStatus s;
        s.node_id = i.node_id;
        s.role = static_cast<NodeRole>(i.role);
        s.term = i.term;
        if (i.leader != 0) s.leader = i.leader;
        s.last_lsn = i.last_lsn;
        s.durable_lsn = i.durable_lsn;
        s.commit_lsn = i.commit_lsn;
        s.applied_lsn = i.applied_lsn;
        s.mode = static_cast<ReplicationMode>(i.mode);
        s.min_sync_replicas = i.min_sync_replicas;
        s.voter_count = i.voter_count;
        s.learner_count = i.learner_count;
        return s;
    }

    /// On the leader: hands leadership to the most caught-up voter and returns its id. With no
    /// known leader: campaigns and returns std::nullopt. On a follower: NotLeaderError.
    std::optional<std::uint64_t> startElection() {
        std::uint64_t to = 0;
        check(repl_node_start_election(handle_, &to));
        return to == 0 ? std::nullopt : std::optional<std::uint64_t>(to);
    }

    /// Changes the acknowledgement mode for later writes, at run time.
    void setMode(ReplicationMode mode) {
        check(repl_node_set_mode(handle_, static_cast<std::uint32_t>(mode)));
    }
    void setMinSyncReplicas(std::uint32_t n) { check(repl_node_set_min_sync_replicas(handle_, n)); }

    /// Adds a non-voting member; returns the LSN of the membership entry.
    std::uint64_t addLearner(std::uint64_t id, std::string_view address,
                             bool waitCaughtUp = true) {
        std::uint64_t lsn = 0;
        check(repl_node_add_learner(handle_, id, detail::bytes(address), address.size(),
                                    waitCaughtUp, &lsn));
        return lsn;
    }

    /// Replaces the voter set through joint consensus; returns the LSN of the change.
    std::uint64_t changeMembership(const std::vector<std::uint64_t>& voters,
                                   bool retain = false) {
        std::uint64_t lsn = 0;
        check(repl_node_change_membership(handle_, voters.data(), voters.size(), retain, &lsn));
        return lsn;
    }

    /// Builds a snapshot now (the built-in store's, or the listener's onSnapshot), covering every
    /// entry applied so far, purges this node's log up to it, and returns the snapshot's LSN.
    /// Members behind that point then catch up through onRestore. The library also snapshots
    /// by itself every 5000 entries. Throws ClusterTimeoutError after `timeout`, and
    /// ReplicationError with REPL_ERR_CLUSTER_STORAGE if onSnapshot failed (the node stopped).
    std::uint64_t triggerSnapshot(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        std::uint64_t lsn = 0;
        check(repl_node_trigger_snapshot(handle_, static_cast<std::uint64_t>(timeout.count()),
                                         &lsn));
        return lsn;
    }

    /// Stops the node; no listener call happens after it returns. Later calls (except role,
    /// leader, term, nodeId, status, localAddress) throw REPL_ERR_HANDLE_CLOSED.
    void shutdown() { check(repl_node_shutdown(handle_)); }

    repl_node* native() noexcept { return handle_; }

private:
    template <typename T>
    T get(repl_result (*f)(const repl_node*, T*)) const {
        T v{};
        detail::check(f(handle_, &v));
        return v;
    }

    /// Throws the exception type of a cluster outcome. Reads the detail first: it is the
    /// calling thread's last failure only until the next failing call.
    void check(repl_result rc) const {
        if (rc == REPL_OK) return;
        std::string what = detail::last_error_detail();
        switch (rc) {
            case REPL_ERR_CLUSTER_NOT_LEADER: {
                std::uint64_t l = 0;
                std::optional<std::uint64_t> leader;
                if (repl_node_leader(handle_, &l) == REPL_OK && l != 0) leader = l;
                throw NotLeaderError(rc, std::move(what), leader);
            }
            case REPL_ERR_CLUSTER_COMMIT_UNKNOWN:
                throw CommitUnknownError(rc, std::move(what));
            case REPL_ERR_CLUSTER_NOT_DURABLE:
                throw NotDurableError(rc, std::move(what));
            case REPL_ERR_CLUSTER_TIMEOUT:
                throw ClusterTimeoutError(rc, std::move(what));
            default:
                throw ReplicationError(rc, std::move(what));
        }
    }

    repl_node* handle_ = nullptr;
};

}  // namespace themis::replication

#endif  // THEMIS_REPLICATION_REPLICATION_HPP
