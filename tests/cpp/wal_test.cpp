// C++ wrapper tests: the WAL round trip through WalManager, errors as ReplicationError, and the
// hybrid logical clock. Built with ASan + UBSan against the installed package
// (find_package(replication)); see tests/CMakeLists.txt.
#include <replication/replication.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace repl = themis::replication;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("repl-cpp-test-" + std::to_string(rd()) + "-" +
                                             std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string str() const { return path_.string(); }

private:
    fs::path path_;
};

constexpr std::uint64_t kHlcBase = std::uint64_t{1732540000000} << 16;

/// Record `i`, every field derived from `i` so a reader can check it.
repl::WALEntry makeEntry(std::uint64_t i) {
    std::mt19937_64 rng(i);
    repl::WALEntry e;
    e.term = i / 1000 + 1;
    e.hlc = kHlcBase + i * 3;
    e.origin = rng() % 5 + 1;
    e.operation = (i % 997 == 0) ? static_cast<repl::Operation>(200)
                                 : static_cast<repl::Operation>(1 + i % 4);
    e.collection = "coll_" + std::to_string(i % 13);
    e.doc_id = "dokument-" + std::to_string(i) + "-\xc3\xa9";
    if (i % 3 == 0) e.txn_id = rng();
    e.payload.resize(i % 50 == 0 ? 0 : rng() % 600);
    for (auto& b : e.payload) b = static_cast<std::uint8_t>(rng() >> 56);
    return e;
}

repl::WalOptions fastOptions(const TempDir& dir) {
    repl::WalOptions o(dir.str());
    o.durability = repl::Durability::None;
    return o;
}

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

}  // namespace

TEST(WalManager, RoundTripOf100000RecordsThroughCloseAndReopen) {
    TempDir dir;
    constexpr std::uint64_t kCount = 100000;
    repl::WalOptions o = fastOptions(dir);
    o.segment_size_bytes = 256 * 1024;
    {
        repl::WAL wal(o);
        EXPECT_EQ(wal.lastLsn(), 0u);
        std::uint64_t i = 1;
        for (; i <= kCount / 2; i++) ASSERT_EQ(wal.append(makeEntry(i)), i);
        while (i <= kCount) {
            std::vector<repl::WALEntry> batch;
            for (; batch.size() < 500 && i <= kCount; i++) batch.push_back(makeEntry(i));
            auto [first, last] = wal.appendBatch(batch);
            ASSERT_EQ(first, i - batch.size());
            ASSERT_EQ(last, i - 1);
        }
        wal.sync();
        EXPECT_EQ(wal.durableLsn(), kCount);
        wal.close();
    }
    o.durability = repl::Durability::EveryCommit;
    o.recovery_mode = repl::RecoveryMode::AbsoluteConsistency;
    repl::WalManager wal = repl::WalManager::open(o);
    EXPECT_EQ(wal.firstLsn(), 1u);
    EXPECT_EQ(wal.lastLsn(), kCount);

    std::uint64_t expected = 1;
    for (const repl::WALEntry& e : wal.readFrom(1)) {
        repl::WALEntry want = makeEntry(expected);
        want.lsn = expected;
        ASSERT_EQ(e, want) << "record " << expected;
        expected++;
    }
    EXPECT_EQ(expected, kCount + 1);

    auto tail = wal.readAll(kCount - 4);
    ASSERT_EQ(tail.size(), 5u);
    EXPECT_EQ(tail.back().lsn, kCount);
    EXPECT_EQ(tail.back().doc_id, makeEntry(kCount).doc_id);
}

TEST(WalManager, TimestampsTruncateAndPurge) {
    TempDir dir;
    repl::WalOptions o = fastOptions(dir);
    o.segment_size_bytes = 4096;
    repl::WAL wal(o);
    for (std::uint64_t i = 1; i <= 1000; i++) wal.append(makeEntry(i));

    EXPECT_EQ(wal.findLsnByTimestamp(kHlcBase + 500 * 3), std::optional<std::uint64_t>(500));
    EXPECT_EQ(wal.findLsnByTimestamp(kHlcBase + 500 * 3 - 1), std::optional<std::uint64_t>(500));
    EXPECT_EQ(wal.findLsnByTimestamp(kHlcBase + 2000 * 3), std::nullopt);

    wal.truncateAfter(900);
    EXPECT_EQ(wal.lastLsn(), 900u);
    EXPECT_GT(wal.purgeBefore(500), 0u);
    EXPECT_GT(wal.firstLsn(), 1u);
    EXPECT_LE(wal.firstLsn(), 500u);
    auto err = expectError([&] { wal.readFrom(1); }, REPL_ERR_WAL_LSN_OUT_OF_RANGE);
    EXPECT_NE(err.detail().find("repl_wal_read_from"), std::string::npos) << err.detail();
    EXPECT_EQ(wal.append(makeEntry(901)), 901u);
}

TEST(WalManager, ConcurrentAppendsGetDistinctDenseLsns) {
    TempDir dir;
    repl::WAL wal(fastOptions(dir));
    constexpr int kThreads = 4, kPerThread = 500;
    std::vector<std::vector<std::uint64_t>> lsns(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            for (int k = 0; k < kPerThread; k++) {
                lsns[static_cast<std::size_t>(t)].push_back(
                    wal.append(makeEntry(static_cast<std::uint64_t>(t * kPerThread + k + 1))));
            }
        });
    }
    for (auto& th : threads) th.join();
    std::set<std::uint64_t> all;
    for (const auto& v : lsns) {
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
        all.insert(v.begin(), v.end());
    }
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
    EXPECT_EQ(*all.begin(), 1u);
    EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kPerThread));
}

TEST(WalManager, EveryCallOnAClosedWalThrowsHandleClosed) {
    TempDir dir;
    repl::WAL wal(fastOptions(dir));
    wal.append(makeEntry(1));
    repl::WalReader reader = wal.readFrom(1);
    wal.close();
    const repl_result closed = REPL_ERR_HANDLE_CLOSED;
    expectError([&] { wal.append(makeEntry(2)); }, closed);
    expectError([&] { wal.appendBatch({makeEntry(2)}); }, closed);
    expectError([&] { wal.readFrom(1); }, closed);
    expectError([&] { wal.findLsnByTimestamp(0); }, closed);
    expectError([&] { wal.truncateAfter(0); }, closed);
    expectError([&] { wal.purgeBefore(1); }, closed);
    expectError([&] { wal.firstLsn(); }, closed);
    expectError([&] { wal.lastLsn(); }, closed);
    expectError([&] { wal.durableLsn(); }, closed);
    expectError([&] { wal.sync(); }, closed);
    expectError([&] { wal.close(); }, closed);
    auto err = expectError([&] { reader.next(); }, closed);
    EXPECT_EQ(err.detail().rfind("repl_wal_iter_next: ", 0), 0u) << err.detail();
}

TEST(WalManager, ErrorsCarryCodeMessageAndDetail) {
    TempDir dir;
    repl::WAL wal(fastOptions(dir));

    repl::WALEntry bad = makeEntry(1);
    bad.collection = "caf\xc3";  // truncated UTF-8 sequence
    auto err = expectError([&] { wal.append(bad); }, REPL_ERR_INVALID_UTF8);
    EXPECT_NE(err.detail().find("record.collection"), std::string::npos) << err.detail();
    EXPECT_EQ(std::string(err.what()), err.detail());
    EXPECT_FALSE(err.message().empty());

    bad = makeEntry(1);
    bad.doc_id = "\xff";
    expectError([&] { wal.appendBatch({makeEntry(1), bad}); }, REPL_ERR_INVALID_UTF8);
    bad.doc_id = "ok";
    bad.operation = static_cast<repl::Operation>(0);
    expectError([&] { wal.append(bad); }, REPL_ERR_WAL_INVALID_RECORD);
    expectError([&] { wal.appendBatch({}); }, REPL_ERR_WAL_INVALID_RECORD);
    EXPECT_EQ(wal.lastLsn(), 0u) << "failed appends must not append anything";

    err = expectError([&] { repl::WAL second(fastOptions(dir)); }, REPL_ERR_WAL_DIR_LOCKED);
    EXPECT_NE(err.detail().find(dir.str()), std::string::npos) << err.detail();

    repl::WalOptions tiny = fastOptions(dir);
    tiny.segment_size_bytes = 1;
    expectError([&] { repl::WAL w(tiny); }, REPL_ERR_WAL_INVALID_OPTIONS);
    repl::WalOptions interval = fastOptions(dir);
    interval.durability = repl::Durability::Interval;
    interval.sync_interval = 0ms;
    expectError([&] { repl::WAL w(interval); }, REPL_ERR_WAL_INVALID_OPTIONS);
}

TEST(WalManager, MoveTransfersOwnership) {
    TempDir dir;
    repl::WAL a(fastOptions(dir));
    a.append(makeEntry(1));
    repl::WAL b(std::move(a));
    EXPECT_EQ(a.native(), nullptr);  // NOLINT(bugprone-use-after-move): checking moved-from state
    EXPECT_EQ(b.lastLsn(), 1u);
    expectError([&] { a.lastLsn(); }, REPL_ERR_NULL_ARGUMENT);

    TempDir other;
    repl::WAL c(fastOptions(other));
    c = std::move(b);  // frees c's WAL, takes b's
    EXPECT_EQ(c.lastLsn(), 1u);
    // The WAL that c held was closed and freed: its directory opens again.
    repl::WAL reopened(fastOptions(other));
    EXPECT_EQ(reopened.lastLsn(), 0u);
}

TEST(WalManager, DefaultOptionsComeFromTheLibrary) {
    repl::WalOptions o("/unused");
    EXPECT_EQ(o.durability, repl::Durability::EveryCommit);
    EXPECT_EQ(o.recovery_mode, repl::RecoveryMode::TolerateTornTail);
    EXPECT_GE(o.segment_size_bytes, 4096u);
    EXPECT_TRUE(o.compression_enabled);
}

TEST(HybridLogicalClock, NowIsStrictlyMonotonic) {
    repl::HybridLogicalClock clock(500ms);
    std::uint64_t prev = clock.now();
    for (int i = 0; i < 100000; i++) {
        std::uint64_t t = clock.now();
        ASSERT_GT(t, prev);
        prev = t;
    }
    // Close to wall time: the upper 48 bits are milliseconds since the epoch.
    auto wall_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    EXPECT_LE((prev >> 16) > wall_ms ? (prev >> 16) - wall_ms : wall_ms - (prev >> 16), 5000u);
}

TEST(HybridLogicalClock, ReadingsAreUniqueAcrossThreads) {
    repl::HybridLogicalClock clock(500ms);
    constexpr int kThreads = 4, kPerThread = 20000;
    std::vector<std::vector<std::uint64_t>> seen(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            auto& mine = seen[static_cast<std::size_t>(t)];
            for (int k = 0; k < kPerThread; k++) mine.push_back(clock.now());
        });
    }
    for (auto& th : threads) th.join();
    std::set<std::uint64_t> all;
    for (const auto& v : seen) {
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
        all.insert(v.begin(), v.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(HybridLogicalClock, UpdateMergesRemoteAndRejectsExcessiveDrift) {
    repl::HybridLogicalClock clock(1000ms);
    std::uint64_t now = clock.now();
    std::uint64_t remote = now + (std::uint64_t{300} << 16);  // 300 ms ahead: accepted
    std::uint64_t merged = clock.update(remote);
    EXPECT_GT(merged, remote);
    EXPECT_GT(clock.now(), merged);

    std::uint64_t far = now + (std::uint64_t{3600000} << 16);  // an hour ahead
    auto err = expectError([&] { clock.update(far); }, REPL_ERR_CLOCK_DRIFT_EXCEEDED);
    EXPECT_NE(err.detail().find("drift"), std::string::npos) << err.detail();
    EXPECT_LT(clock.now(), far) << "a rejected update must not move the clock";

    repl::HybridLogicalClock moved(std::move(clock));
    EXPECT_GT(moved.now(), merged);
    EXPECT_EQ(clock.native(), nullptr);  // NOLINT(bugprone-use-after-move)
}

TEST(Library, VersionMatchesThePackage) {
    std::string v = repl::version();
    EXPECT_FALSE(v.empty());
    EXPECT_NE(v.find('.'), std::string::npos);
}
