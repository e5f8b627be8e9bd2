// GoogleTest of IReplicationListener::onSnapshot / onRestore and
// ReplicationManager::triggerSnapshot: a 3-node cluster in one process over mutual TLS (dev
// materials, fast timings) whose leader snapshots through its listener and purges its log;
// a new member (node 4, a learner) then has no log to catch up from and must install the
// leader's snapshot through its own listener, after which its documents equal the leader's
// and later writes still reach it. Also: an exception thrown by onSnapshot does not cross the
// C boundary but fails triggerSnapshot with REPL_ERR_CLUSTER_STORAGE.
#include "cluster_support.hpp"

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// A host state machine: documents (id -> payload) that it snapshots and restores.
class DocStore : public repl::IReplicationListener {
public:
    void onWALEntryApplied(const repl::WALEntry& entry) override {
        std::lock_guard<std::mutex> g(mu_);
        docs_[entry.doc_id] = std::string(entry.payload.begin(), entry.payload.end());
    }

    bool supportsSnapshots() const override { return true; }

    // Format: per document, u32 id length, id, u32 payload length, payload (host byte order).
    std::vector<std::uint8_t> onSnapshot() override {
        if (throwOnSnapshot) throw std::runtime_error("deliberate onSnapshot failure");
        std::lock_guard<std::mutex> g(mu_);
        snapshots_++;
        std::vector<std::uint8_t> out;
        auto put = [&out](const std::string& s) {
            auto n = static_cast<std::uint32_t>(s.size());
            const auto* p = reinterpret_cast<const std::uint8_t*>(&n);
            out.insert(out.end(), p, p + sizeof n);
            out.insert(out.end(), s.begin(), s.end());
        };
        for (const auto& [id, payload] : docs_) {
            put(id);
            put(payload);
        }
        return out;
    }

    void onRestore(const std::uint8_t* data, std::size_t len) override {
        std::map<std::string, std::string> docs;
        std::size_t pos = 0;
        auto take = [&]() {
            std::uint32_t n = 0;
            if (len - pos < sizeof n) throw std::runtime_error("truncated snapshot");
            std::memcpy(&n, data + pos, sizeof n);
            pos += sizeof n;
            if (len - pos < n) throw std::runtime_error("truncated snapshot");
            std::string s(reinterpret_cast<const char*>(data + pos), n);
            pos += n;
            return s;
        };
        while (pos < len) {
            std::string id = take();
            docs[id] = take();
        }
        std::lock_guard<std::mutex> g(mu_);
        docs_ = std::move(docs);
        restores_++;
    }

    std::map<std::string, std::string> docs() const {
        std::lock_guard<std::mutex> g(mu_);
        return docs_;
    }
    int snapshots() const {
        std::lock_guard<std::mutex> g(mu_);
        return snapshots_;
    }
    int restores() const {
        std::lock_guard<std::mutex> g(mu_);
        return restores_;
    }

    std::atomic<bool> throwOnSnapshot{false};

private:
    mutable std::mutex mu_;
    std::map<std::string, std::string> docs_;
    int snapshots_ = 0;
    int restores_ = 0;
};

class SnapshotTest : public ClusterFixture {
protected:
    static constexpr std::uint64_t kVoters = 3;

    SnapshotTest() : ClusterFixture("repl-cpp-snap", 4, kVoters) {}

    repl::ReplicationManager& startNode(std::uint64_t id, std::uint64_t voters = kVoters) {
        stores_[id] = std::make_unique<DocStore>();
        return nodes_.emplace(id, repl::ReplicationManager(config(id, voters), stores_[id].get()))
            .first->second;
    }

    /// Starts nodes 1..voters, forms the cluster and returns the leader's id.
    std::uint64_t startCluster(std::uint64_t voters) {
        std::map<std::uint64_t, std::string> members;
        for (std::uint64_t id = 1; id <= voters; id++) {
            startNode(id, voters);
            members[id] = address(id);
        }
        nodes_.at(1).initialize(members);
        std::uint64_t leader = 0;
        EXPECT_TRUE(waitUntil([&] {
            for (const auto& [id, n] : nodes_) {
                if (n.isLeader()) leader = id;
            }
            if (leader == 0) return false;
            for (const auto& [id, n] : nodes_) {
                if (n.leader() != leader) return false;
            }
            return true;
        })) << "no single leader within 10 s";
        return leader;
    }

    std::map<std::uint64_t, std::unique_ptr<DocStore>> stores_;
};

TEST_F(SnapshotTest, NewMemberCatchesUpThroughTheLeadersSnapshot) {
    std::uint64_t leader = startCluster(kVoters);
    ASSERT_NE(leader, 0u);
    repl::ReplicationManager& L = nodes_.at(leader);

    std::uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        last = L.append(entry("doc-" + std::to_string(i), "v1-" + std::to_string(i)));
    }
    last = L.append(entry("doc-3", "v2-3"));  // an overwrite the snapshot must carry
    for (auto& [id, n] : nodes_) n.waitForLsn(last, 5000ms);

    // The leader snapshots through its listener and purges its log up to the snapshot.
    std::uint64_t snap = L.triggerSnapshot(20s);
    EXPECT_GE(snap, last);
    EXPECT_GE(stores_.at(leader)->snapshots(), 1);

    // Node 4 joins with an empty log: the entries it needs are gone, so it must restore.
    repl::ReplicationManager& learner = startNode(4);
    L.addLearner(4, address(4), true);
    learner.waitForLsn(last, 20000ms);
    EXPECT_GE(stores_.at(4)->restores(), 1);
    EXPECT_EQ(stores_.at(4)->docs(), stores_.at(leader)->docs());
    EXPECT_EQ(stores_.at(4)->docs().size(), 20u);
    EXPECT_EQ(stores_.at(4)->docs().at("doc-3"), "v2-3");

    // Later writes are applied on top of the restored state.
    last = L.append(entry("after", "x"));
    learner.waitForLsn(last, 5000ms);
    EXPECT_EQ(stores_.at(4)->docs(), stores_.at(leader)->docs());
    EXPECT_EQ(stores_.at(4)->docs().at("after"), "x");
}

TEST_F(SnapshotTest, ThrowingOnSnapshotIsAnErrorNotACrash) {
    std::uint64_t leader = startCluster(1);
    ASSERT_EQ(leader, 1u);
    repl::ReplicationManager& m = nodes_.at(1);
    m.waitForLsn(m.append(entry("d", "v"), repl::ReplicationMode::ASYNC), 5000ms);
    stores_.at(1)->throwOnSnapshot = true;
    try {
        m.triggerSnapshot(10s);
        FAIL() << "triggerSnapshot succeeded although onSnapshot threw";
    } catch (const repl::ReplicationError& e) {
        EXPECT_EQ(e.code(), REPL_ERR_CLUSTER_STORAGE);
        std::string want = "code " + std::to_string(repl::IReplicationListener::kListenerThrew);
        EXPECT_NE(e.detail().find(want), std::string::npos) << e.detail();
    }
}

/// A listener written before snapshots existed still compiles and works (the defaults).
class LegacyListener : public repl::IReplicationListener {
public:
    void onWALEntryApplied(const repl::WALEntry&) override { applied++; }
    std::atomic<int> applied{0};
};

TEST_F(SnapshotTest, ListenersWithoutSnapshotsKeepWorking) {
    LegacyListener l;
    repl::ReplicationManager m(config(1, 1), &l);
    m.initialize({{1, address(1)}});
    ASSERT_TRUE(waitUntil([&] { return m.isLeader(); }));
    m.waitForLsn(m.append(entry("d", "v"), repl::ReplicationMode::ASYNC), 5000ms);
    EXPECT_EQ(l.applied.load(), 1);
    m.shutdown();
}

}  // namespace
