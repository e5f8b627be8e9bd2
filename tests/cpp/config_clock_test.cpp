// C++ wrapper tests of ReplicationConfig (accessors, errors as exceptions carrying every
// problem, opening a WAL from a config) and VectorClock. Built with ASan + UBSan against the
// installed package (find_package(replication)); see tests/CMakeLists.txt.
#include <replication/replication.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace repl = themis::replication;
namespace fs = std::filesystem;

namespace {

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("repl-cpp-cfg-" + std::to_string(rd()) + "-" +
                                             std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    fs::path path() const { return path_; }

private:
    fs::path path_;
};

constexpr const char* kFullToml = R"(node_id = 7
listen_address = "0.0.0.0:7500"
mode = "SEMI_SYNC"
min_sync_replicas = 2
heartbeat_interval_ms = 500
election_timeout_min_ms = 2000
election_timeout_max_ms = 2600
replication_timeout_ms = 4000
batch_size = 64
batch_timeout_ms = 5
wal_directory = "/var/lib/repl/wal"
wal_segment_size_bytes = 16777216
wal_sync_on_commit = false
wal_sync_interval_ms = 20
wal_zero_fill_ahead = false
enable_wal_compression = false
compression_level = 9
allow_plaintext_dev = true

[[peers]]
node_id = 8
address = "10.0.0.8:7500"

[[peers]]
node_id = 9
address = "[fd00::9]:7500"
)";

/// Runs `f`, expects a ReplicationError with `code`, and returns it.
template <typename F>
repl::ReplicationError expectError(F&& f, repl_result code) {
    try {
        f();
    } catch (const repl::ReplicationError& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        return e;
    }
    ADD_FAILURE() << "expected ReplicationError with code " << code;
    return repl::ReplicationError(REPL_OK, "");
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

repl::WALEntry entry(std::uint64_t i) {
    repl::WALEntry e;
    e.term = 1;
    e.hlc = 1000 + i;
    e.origin = 3;
    e.operation = i % 2 ? repl::Operation::Insert : repl::Operation::Update;
    e.collection = "users";
    e.doc_id = "user-" + std::to_string(i);
    e.payload.assign(40, static_cast<std::uint8_t>(i));
    return e;
}

std::string tomlWithWal(const fs::path& dir, const std::string& extra = "") {
    return "node_id = 1\nwal_directory = \"" + (dir / "wal").string() + "\"\n" + extra;
}

}  // namespace

TEST(ReplicationConfig, AccessorsReturnTheDocumentsValues) {
    const auto cfg = repl::ReplicationConfig::fromToml(kFullToml);
    EXPECT_EQ(cfg.node_id(), 7u);
    EXPECT_EQ(cfg.listen_address(), "0.0.0.0:7500");
    EXPECT_EQ(cfg.mode(), repl::ReplicationMode::SEMI_SYNC);
    EXPECT_EQ(cfg.min_sync_replicas(), 2u);
    EXPECT_EQ(cfg.heartbeat_interval_ms(), 500u);
    EXPECT_EQ(cfg.election_timeout_min_ms(), 2000u);
    EXPECT_EQ(cfg.election_timeout_max_ms(), 2600u);
    EXPECT_EQ(cfg.replication_timeout_ms(), 4000u);
    EXPECT_EQ(cfg.batch_size(), 64u);
    EXPECT_EQ(cfg.batch_timeout_ms(), 5u);
    EXPECT_EQ(cfg.wal_directory(), "/var/lib/repl/wal");
    EXPECT_EQ(cfg.wal_segment_size_bytes(), 16777216u);
    EXPECT_FALSE(cfg.wal_sync_on_commit());
    EXPECT_EQ(cfg.wal_sync_interval_ms(), 20u);
    EXPECT_FALSE(cfg.wal_zero_fill_ahead());
    EXPECT_FALSE(cfg.enable_wal_compression());
    EXPECT_EQ(cfg.compression_level(), 9);
    const std::vector<repl::PeerConfig> want{{8, "10.0.0.8:7500"}, {9, "[fd00::9]:7500"}};
    EXPECT_EQ(cfg.peers(), want);
    const auto warnings = cfg.warnings();
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].rfind("allow_plaintext_dev = true:", 0), 0u) << warnings[0];
}

TEST(ReplicationConfig, DefaultsAndLongTexts) {
    // A wal_directory longer than the wrapper's first buffer takes the grow-and-retry path.
    const std::string long_dir = "/srv/" + std::string(300, 'd');
    const auto cfg = repl::ReplicationConfig::fromToml("node_id = 2\nmode = \"SYNC\"\n"
                                                       "wal_directory = \"" +
                                                       long_dir + "\"\n");
    EXPECT_EQ(cfg.wal_directory(), long_dir);
    EXPECT_EQ(cfg.mode(), repl::ReplicationMode::SYNC);
    EXPECT_EQ(cfg.heartbeat_interval_ms(), 1000u);
    EXPECT_EQ(cfg.listen_address(), "127.0.0.1:7400");
    EXPECT_TRUE(cfg.wal_sync_on_commit());
    EXPECT_TRUE(cfg.peers().empty());
    ASSERT_EQ(cfg.warnings().size(), 1u);
    EXPECT_TRUE(contains(cfg.warnings()[0], "no peers are configured")) << cfg.warnings()[0];
    EXPECT_EQ(repl::ReplicationConfig::fromToml("node_id = 3").mode(),
              repl::ReplicationMode::ASYNC);
}

TEST(ReplicationConfig, CopiesShareTheLoadedConfig) {
    auto a = repl::ReplicationConfig::fromToml(kFullToml);
    repl::ReplicationConfig b = a;
    EXPECT_EQ(a.native(), b.native());
    a = repl::ReplicationConfig::fromToml("node_id = 5");
    EXPECT_EQ(a.node_id(), 5u);
    EXPECT_EQ(b.node_id(), 7u);  // still alive after a let go of it
}

TEST(ReplicationConfig, ExceptionsCarryEveryProblem) {
    auto err = expectError(
        [] {
            repl::ReplicationConfig::fromToml("node_id = 0\n"
                                              "mode = \"SYNC\"\n"
                                              "min_sync_replicas = 0\n"
                                              "heartbeat_interval = 5\n");
        },
        REPL_ERR_CONFIG_INVALID);
    const std::string what = err.what();
    EXPECT_EQ(what, err.detail());
    EXPECT_EQ(what.rfind("repl_config_from_toml: replication config has 3 problems:", 0), 0u)
        << what;
    EXPECT_TRUE(contains(what, "\n  node_id (line 1): node_id must not be 0")) << what;
    EXPECT_TRUE(contains(what, "min_sync_replicas = 0 is not allowed in SYNC mode")) << what;
    EXPECT_TRUE(contains(what, "did you mean `heartbeat_interval_ms`?")) << what;
    EXPECT_TRUE(contains(err.message(), "invalid values")) << err.message();

    err = expectError([] { repl::ReplicationConfig::fromToml("node_id = [1"); },
                      REPL_ERR_CONFIG_PARSE);
    EXPECT_TRUE(contains(err.what(), "line 1")) << err.what();
    expectError([] { repl::ReplicationConfig::fromToml("node_id = 1\n\xff = 2\n"); },
                REPL_ERR_INVALID_UTF8);
    expectError([] { repl::ReplicationConfig::fromToml(""); }, REPL_ERR_CONFIG_INVALID);
}

TEST(ReplicationConfig, FromFile) {
    TempDir dir;
    const fs::path path = dir.path() / "replication.toml";
    std::ofstream(path) << kFullToml;
    EXPECT_EQ(repl::ReplicationConfig::fromFile(path.string()).node_id(), 7u);

    std::ofstream(path) << "node_id = 1\ncompression_level = 99\n";
    auto err = expectError([&] { repl::ReplicationConfig::fromFile(path.string()); },
                           REPL_ERR_CONFIG_INVALID);
    EXPECT_TRUE(contains(err.what(), "compression_level (line 2)")) << err.what();

    const fs::path missing = dir.path() / "missing.toml";
    err = expectError([&] { repl::ReplicationConfig::fromFile(missing.string()); },
                      REPL_ERR_CONFIG_IO);
    EXPECT_TRUE(contains(err.what(), missing.string())) << err.what();
}

TEST(ReplicationConfig, OpensTheWalItDescribesAndRoundTripsRecords) {
    TempDir dir;
    // No fsync on commit or interval: durability None, visible through durableLsn().
    const auto fast = repl::ReplicationConfig::fromToml(
        tomlWithWal(dir.path(), "wal_sync_on_commit = false\nwal_segment_size_bytes = 4096\n"));
    {
        repl::WAL wal(fast);
        for (std::uint64_t i = 1; i <= 100; i++) ASSERT_EQ(wal.append(entry(i)), i);
        std::vector<repl::WALEntry> batch{entry(101), entry(102), entry(103)};
        EXPECT_EQ(wal.appendBatch(batch), std::make_pair(std::uint64_t{101}, std::uint64_t{103}));
        EXPECT_EQ(wal.durableLsn(), 0u);
        auto err = expectError([&] { repl::WAL second(fast); }, REPL_ERR_WAL_DIR_LOCKED);
        EXPECT_TRUE(contains(err.what(), "repl_wal_open_from_config")) << err.what();
        wal.close();
    }
    std::size_t segments = 0;
    for (const auto& f : fs::directory_iterator(dir.path() / "wal"))
        segments += f.path().extension() == ".wal";
    EXPECT_GT(segments, 1u) << "wal_segment_size_bytes = 4096 was not applied";

    // Reopen with the defaults: every commit durable.
    repl::WalManager wal =
        repl::WalManager::open(repl::ReplicationConfig::fromToml(tomlWithWal(dir.path())));
    const auto all = wal.readAll(1);
    ASSERT_EQ(all.size(), 103u);
    for (std::uint64_t i = 1; i <= 103; i++) {
        repl::WALEntry want = entry(i);
        want.lsn = i;
        ASSERT_EQ(all[i - 1], want) << "record " << i;
    }
    EXPECT_EQ(wal.findLsnByTimestamp(1050), std::optional<std::uint64_t>(50));
    EXPECT_EQ(wal.append(entry(104)), 104u);
    EXPECT_EQ(wal.durableLsn(), 104u);
}

TEST(VectorClock, IncrementGetAndCompare) {
    repl::VectorClock a, b;
    EXPECT_EQ(a.compare(b), repl::VectorOrdering::Equal);
    EXPECT_EQ(a.increment(1), 1u);
    EXPECT_EQ(a.increment(1), 2u);
    EXPECT_EQ(a.increment(5), 1u);
    EXPECT_EQ(a.get(1), 2u);
    EXPECT_EQ(a.get(2), 0u);
    EXPECT_EQ(b.compare(a), repl::VectorOrdering::Before);
    EXPECT_EQ(a.compare(b), repl::VectorOrdering::After);
    EXPECT_TRUE(b.happenedBefore(a));
    EXPECT_EQ(a.compare(a), repl::VectorOrdering::Equal);

    b.increment(9);
    EXPECT_EQ(a.compare(b), repl::VectorOrdering::Concurrent);
    EXPECT_TRUE(a.isConcurrent(b));
    EXPECT_TRUE(b.isConcurrent(a));
}

TEST(VectorClock, MergeTakesThePointwiseMaximum) {
    repl::VectorClock a({{1, 5}, {3, 1}});
    const repl::VectorClock b({{1, 2}, {2, 4}, {3, 7}, {9, 1}});
    a.merge(b);
    const std::vector<repl::VectorClock::Entry> want{{1, 5}, {2, 4}, {3, 7}, {9, 1}};
    EXPECT_EQ(a.entries(), want);
    EXPECT_EQ(b.compare(a), repl::VectorOrdering::Before);
    a.merge(a);  // aliasing is allowed and changes nothing
    EXPECT_EQ(a.entries(), want);
    EXPECT_EQ(a.size(), 4u);
}

TEST(VectorClock, CopiesAreIndependentAndMovesTransfer) {
    repl::VectorClock a({{4, 2}});
    repl::VectorClock copy = a;
    EXPECT_EQ(copy, a);
    copy.increment(4);
    EXPECT_EQ(a.get(4), 2u);
    EXPECT_EQ(copy.compare(a), repl::VectorOrdering::After);
    EXPECT_NE(copy, a);
    copy = a;
    EXPECT_EQ(copy, a);

    repl::VectorClock moved = std::move(a);
    EXPECT_EQ(a.native(), nullptr);  // NOLINT(bugprone-use-after-move): checking moved-from state
    EXPECT_EQ(moved.get(4), 2u);
    auto err = expectError([&] { a.get(4); }, REPL_ERR_NULL_ARGUMENT);
    EXPECT_TRUE(contains(err.what(), "`clock`")) << err.what();
}

TEST(VectorClock, EntriesRoundTripAndDuplicatesAreRejected) {
    repl::VectorClock a;
    a.increment(30);
    a.increment(10);
    a.increment(30);
    const auto entries = a.entries();
    const std::vector<repl::VectorClock::Entry> want{{10, 1}, {30, 2}};
    EXPECT_EQ(entries, want);
    EXPECT_EQ(repl::VectorClock(entries), a);
    EXPECT_EQ(repl::VectorClock({{7, 0}}), repl::VectorClock());  // zero counters are dropped

    auto err = expectError([] { repl::VectorClock({{2, 1}, {2, 3}}); },
                           REPL_ERR_CLOCK_DUPLICATE_NODE);
    EXPECT_TRUE(contains(err.what(), "node 2")) << err.what();
}
