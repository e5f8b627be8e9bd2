// GoogleTest of IReplicationListener::onSnapshot / onRestore and
// ReplicationManager::triggerSnapshot: a 3-node cluster in one process over mutual TLS (dev
// materials, fast timings) whose leader snapshots through its listener and purges its log;
// a new member (node 4, a learner) then has no log to catch up from and must install the
// leader's snapshot through its own listener, after which its documents equal the leader's
// and later writes still reach it. Also: an exception thrown by onSnapshot does not cross the
// C boundary but fails triggerSnapshot with REPL_ERR_CLUSTER_STORAGE.
#include <replication/replication.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace repl = themis::replication;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::uint16_t freePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    ::close(fd);
    return ntohs(a.sin_port);
}

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

bool waitUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

repl::WALEntry entry(const std::string& doc, const std::string& payload) {
    repl::WALEntry e;
    e.operation = repl::Operation::Insert;
    e.collection = "users";
    e.doc_id = doc;
    e.payload.assign(payload.begin(), payload.end());
    return e;
}

class SnapshotTest : public ::testing::Test {
protected:
    static constexpr std::uint64_t kVoters = 3;

    void SetUp() override {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/repl-cpp-snap-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        tls_ = dir_ / "tls";
        std::vector<std::uint64_t> ids{1, 2, 3, 4};
        repl::devClusterMaterials(tls_.string(), ids);
        for (std::uint64_t id : ids) {
            ports_[id] = freePort();
            std::ifstream in(tls_ / ("node-" + std::to_string(id) + ".pub"));
            std::getline(in, keys_[id]);
            ASSERT_EQ(keys_[id].size(), 64u);
        }
    }

    void TearDown() override {
        nodes_.clear();  // shuts the nodes down before their listeners go away
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string address(std::uint64_t id) const {
        return "127.0.0.1:" + std::to_string(ports_.at(id));
    }

    /// Node `id`'s configuration; its peers are voters 1..kVoters (`voters` of them).
    repl::ReplicationConfig config(std::uint64_t id, std::uint64_t voters = kVoters) const {
        std::string n = "node-" + std::to_string(id);
        std::string t = "node_id = " + std::to_string(id) + "\nlisten_address = \"" +
                        address(id) +
                        "\"\nmode = \"SEMI_SYNC\"\nmin_sync_replicas = 1\n"
                        "heartbeat_interval_ms = 50\nelection_timeout_min_ms = 150\n"
                        "election_timeout_max_ms = 300\nreplication_timeout_ms = 5000\n"
                        "wal_directory = \"" +
                        (dir_ / ("wal-" + std::to_string(id))).string() + "\"\n";
        t += "cert_path = \"" + (tls_ / (n + ".pem")).string() + "\"\n";
        t += "key_path = \"" + (tls_ / (n + ".key")).string() + "\"\n";
        t += "ca_path = \"" + (tls_ / "ca.pem").string() + "\"\n";
        t += "node_key_path = \"" + (tls_ / (n + ".ed25519")).string() + "\"\n";
        for (std::uint64_t p = 1; p <= voters; p++) {
            if (p == id) continue;
            t += "[[peers]]\nnode_id = " + std::to_string(p) + "\naddress = \"" + address(p) +
                 "\"\npublic_key = \"" + keys_.at(p) + "\"\n";
        }
        return repl::ReplicationConfig::fromToml(t);
    }

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

    fs::path dir_, tls_;
    std::map<std::uint64_t, std::uint16_t> ports_;
    std::map<std::uint64_t, std::string> keys_;
    std::map<std::uint64_t, std::unique_ptr<DocStore>> stores_;
    std::map<std::uint64_t, repl::ReplicationManager> nodes_;
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
