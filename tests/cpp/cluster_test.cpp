// GoogleTest of ReplicationManager + IReplicationListener: a 3-node cluster in one process over
// mutual TLS (dev materials, fast timings: heartbeat 50 ms, election 150-300 ms). Elects a
// leader, appends, kills (shuts down) the leader, checks that a new leader is elected and holds
// every acknowledged write with the same content, setMode / setMinSyncReplicas at run time,
// startElection (leadership transfer), the exception types, move semantics, and reads from a
// manager with the built-in store.
#include "cluster_support.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

/// A host state machine: every applied entry, in order.
class Replica : public repl::IReplicationListener {
public:
    void onWALEntryApplied(const repl::WALEntry& entry) override {
        std::lock_guard<std::mutex> g(mu_);
        if (!entries_.empty() && entry.lsn <= entries_.back().lsn) outOfOrder_ = true;
        if (std::this_thread::get_id() == mainThread_) onMainThread_ = true;
        entries_.push_back(entry);
    }
    std::vector<repl::WALEntry> entries() const {
        std::lock_guard<std::mutex> g(mu_);
        return entries_;
    }
    bool outOfOrder() const {
        std::lock_guard<std::mutex> g(mu_);
        return outOfOrder_;
    }
    bool onMainThread() const {
        std::lock_guard<std::mutex> g(mu_);
        return onMainThread_;
    }

private:
    mutable std::mutex mu_;
    std::vector<repl::WALEntry> entries_;
    bool outOfOrder_ = false;
    bool onMainThread_ = false;
    std::thread::id mainThread_ = std::this_thread::get_id();
};

class ClusterTest : public ClusterFixture {
protected:
    static constexpr std::size_t kNodes = 3;

    ClusterTest() : ClusterFixture("repl-cpp", kNodes + 1, kNodes) {}

    void startCluster() {
        for (std::uint64_t id = 1; id <= kNodes; id++) {
            replicas_[id] = std::make_unique<Replica>();
            nodes_.emplace(id, repl::ReplicationManager(config(id), replicas_[id].get()));
        }
        std::map<std::uint64_t, std::string> members;
        for (std::uint64_t id = 1; id <= kNodes; id++) members[id] = address(id);
        nodes_.at(1).initialize(members);
    }

    /// The leader every running node agrees on, if there is exactly one.
    std::optional<std::uint64_t> agreedLeader() const {
        std::optional<std::uint64_t> leader;
        int leaders = 0;
        for (const auto& [id, n] : nodes_) {
            if (n.role() == repl::NodeRole::Shutdown) continue;
            if (n.role() == repl::NodeRole::Leader) {
                leaders++;
                leader = id;
            }
        }
        if (leaders != 1) return std::nullopt;
        for (const auto& [id, n] : nodes_) {
            if (n.role() != repl::NodeRole::Shutdown && n.leader() != leader) return std::nullopt;
        }
        return leader;
    }

    std::uint64_t awaitLeader(std::optional<std::uint64_t> notThis = std::nullopt) {
        std::optional<std::uint64_t> l;
        bool ok = waitUntil([&] {
            l = agreedLeader();
            return l.has_value() && l != notThis;
        });
        EXPECT_TRUE(ok) << "no single leader within 10 s";
        return l.value_or(0);
    }

    std::map<std::uint64_t, std::unique_ptr<Replica>> replicas_;
};

TEST_F(ClusterTest, FailoverKeepsEveryAcknowledgedWrite) {
    startCluster();
    std::uint64_t leader = awaitLeader();
    ASSERT_NE(leader, 0u);
    repl::ReplicationManager& L = nodes_.at(leader);
    EXPECT_GE(L.term(), 1u);
    EXPECT_EQ(L.localAddress(), address(leader));

    // A follower refuses writes and names the leader.
    std::uint64_t follower = leader % kNodes + 1;
    try {
        nodes_.at(follower).append(entry("x", "y"));
        FAIL() << "append on a follower succeeded";
    } catch (const repl::NotLeaderError& e) {
        EXPECT_EQ(e.code(), REPL_ERR_CLUSTER_NOT_LEADER);
        EXPECT_EQ(e.leader(), std::optional<std::uint64_t>(leader));
    }

    // Acknowledged writes, SEMI_SYNC.
    std::map<std::uint64_t, std::string> acked;  // LSN -> doc id (payload "v-" + doc)
    for (int i = 0; i < 20; i++) {
        std::string doc = "doc-" + std::to_string(i);
        std::uint64_t lsn = L.append(entry(doc, "v-" + doc), repl::ReplicationMode::SEMI_SYNC);
        ASSERT_TRUE(acked.empty() || lsn > acked.rbegin()->first);
        acked[lsn] = doc;
    }

    // Run-time mode changes.
    L.setMode(repl::ReplicationMode::SYNC);
    EXPECT_EQ(L.status().mode, repl::ReplicationMode::SYNC);
    try {
        L.setMinSyncReplicas(0);
        FAIL() << "min_sync_replicas 0 accepted in SYNC";
    } catch (const repl::ReplicationError& e) {
        EXPECT_EQ(e.code(), REPL_ERR_CLUSTER_INVALID_REQUEST);
        EXPECT_NE(std::string(e.what()).find("min_sync_replicas"), std::string::npos);
    }
    acked[L.append(entry("sync-doc", "v-sync-doc"))] = "sync-doc";
    L.setMode(repl::ReplicationMode::SEMI_SYNC);
    acked[L.append(entry("async-doc", "v-async-doc"), repl::ReplicationMode::ASYNC)] =
        "async-doc";
    acked[L.append(entry("semi-doc", "v-semi-doc"))] = "semi-doc";

    // Kill the leader: a new one is elected among the other two.
    std::uint64_t lastAcked = acked.rbegin()->first;
    L.shutdown();
    EXPECT_EQ(L.role(), repl::NodeRole::Shutdown);
    EXPECT_THROW(L.append(entry("late", "x")), repl::ReplicationError);
    std::uint64_t next = awaitLeader(leader);
    ASSERT_NE(next, 0u);
    ASSERT_NE(next, leader);
    repl::ReplicationManager& N = nodes_.at(next);

    // No acknowledged write is lost: every acked LSN is applied on the new leader, same content.
    N.waitForLsn(lastAcked, 5000ms);
    std::map<std::uint64_t, repl::WALEntry> applied;
    for (const repl::WALEntry& e : replicas_.at(next)->entries()) applied[e.lsn] = e;
    for (const auto& [lsn, doc] : acked) {
        auto it = applied.find(lsn);
        ASSERT_NE(it, applied.end()) << "acknowledged LSN " << lsn << " lost";
        EXPECT_EQ(it->second.doc_id, doc);
        std::string payload(it->second.payload.begin(), it->second.payload.end());
        EXPECT_EQ(payload, "v-" + doc);
        EXPECT_EQ(it->second.collection, "users");
        EXPECT_EQ(it->second.operation, repl::Operation::Insert);
    }
    EXPECT_FALSE(replicas_.at(next)->outOfOrder());
    EXPECT_FALSE(replicas_.at(next)->onMainThread());

    // The new leader takes writes (SEMI_SYNC: one live follower is enough).
    std::uint64_t lsn = N.append(entry("after-failover", "v"));
    EXPECT_GT(lsn, lastAcked);

    // startElection on the leader hands leadership to the other live voter.
    std::uint64_t other = 0;
    for (const auto& [id, n] : nodes_) {
        if (id != leader && id != next) other = id;
    }
    nodes_.at(other).waitForLsn(lsn, 5000ms);
    std::optional<std::uint64_t> to = N.startElection();
    ASSERT_TRUE(to.has_value());
    EXPECT_EQ(*to, other);
    ASSERT_TRUE(waitUntil([&] { return agreedLeader() == std::optional<std::uint64_t>(other); }))
        << "leadership did not move to node " << other;
    EXPECT_GT(nodes_.at(other).term(), 0u);
    // The former leader is now a follower: startElection there names the leader.
    EXPECT_THROW(N.startElection(), repl::NotLeaderError);
    std::uint64_t after = nodes_.at(other).append(entry("after-transfer", "v"));
    N.waitForLsn(after, 5000ms);

    // Timeouts have their own type.
    EXPECT_THROW(N.waitForLsn(after + 1000, 50ms), repl::ClusterTimeoutError);
}

TEST_F(ClusterTest, BuiltinStoreServesReadsAndManagersMove) {
    // A single-voter cluster of node 1 without a listener (built-in in-memory store).
    repl::ReplicationManager a(config(1));
    repl::ReplicationManager m(std::move(a));  // move-only RAII
    EXPECT_EQ(a.native(), nullptr);
    m.initialize({{1, address(1)}});
    ASSERT_TRUE(waitUntil([&] { return m.isLeader(); }));
    std::uint64_t lsn = m.append(entry("k", std::string(1000, 'z')), repl::ReplicationMode::ASYNC);
    m.waitForLsn(lsn, 5000ms);
    std::optional<std::vector<std::uint8_t>> v = m.read("users", "k");
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->size(), 1000u);  // larger than the first buffer: read() retried
    EXPECT_EQ(m.read("users", "missing", repl::ReadConsistency::LeaderLocal), std::nullopt);
    repl::NodeStatus s = m.status();
    EXPECT_EQ(s.node_id, 1u);
    EXPECT_EQ(s.voter_count, 1u);
    EXPECT_GE(s.applied_lsn, lsn);
    // No other voter to hand leadership to.
    EXPECT_THROW(m.startElection(), repl::ReplicationError);
    m.shutdown();
    try {
        m.shutdown();
        FAIL() << "second shutdown succeeded";
    } catch (const repl::ReplicationError& e) {
        EXPECT_EQ(e.code(), REPL_ERR_HANDLE_CLOSED);
    }
}

TEST_F(ClusterTest, ListenerNodesDoNotServeReads) {
    Replica r;
    repl::ReplicationManager m(config(1), &r);
    try {
        m.read("users", "k");
        FAIL() << "read without the built-in store succeeded";
    } catch (const repl::ReplicationError& e) {
        EXPECT_EQ(e.code(), REPL_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("built-in store"), std::string::npos);
    }
}

}  // namespace
