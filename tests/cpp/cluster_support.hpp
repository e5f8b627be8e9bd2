// Shared by the C++ cluster tests (cluster_test.cpp, snapshot_test.cpp): free ports, waiting
// for a condition, WAL entries, and ClusterFixture, a GoogleTest fixture that makes dev
// materials (certificates and node keys) in a temporary directory and writes each node's
// configuration over mutual TLS with fast timings (heartbeat 50 ms, election 150-300 ms).
#pragma once

#include <replication/replication.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace repl = themis::replication;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The port is free when this returns, not reserved: the peers' addresses must be in every
// node's configuration before the nodes start.
inline std::uint16_t freePort() {
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

inline bool waitUntil(const std::function<bool()>& cond,
                      std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

inline repl::WALEntry entry(const std::string& doc, const std::string& payload) {
    repl::WALEntry e;
    e.operation = repl::Operation::Insert;
    e.collection = "users";
    e.doc_id = doc;
    e.payload.assign(payload.begin(), payload.end());
    return e;
}

/// Dev materials, ports and public keys for nodes 1..`members` in a fresh temporary
/// directory (removed in TearDown), and the nodes' configurations.
class ClusterFixture : public ::testing::Test {
protected:
    /// `dirPrefix`: the temporary directory's name before its random suffix; `voters`: the
    /// peers config(id) names.
    ClusterFixture(std::string dirPrefix, std::uint64_t members, std::uint64_t voters)
        : dirPrefix_(std::move(dirPrefix)), members_(members), voters_(voters) {}

    void SetUp() override {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + dirPrefix_ +
                           "-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        tls_ = dir_ / "tls";
        std::vector<std::uint64_t> ids;
        for (std::uint64_t id = 1; id <= members_; id++) ids.push_back(id);
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

    /// Node `id`'s configuration; its peers are voters 1..`voters`.
    repl::ReplicationConfig config(std::uint64_t id, std::uint64_t voters) const {
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

    /// Node `id`'s configuration with the fixture's voters as its peers.
    repl::ReplicationConfig config(std::uint64_t id) const { return config(id, voters_); }

    fs::path dir_, tls_;
    std::map<std::uint64_t, std::uint16_t> ports_;
    std::map<std::uint64_t, std::string> keys_;
    std::map<std::uint64_t, repl::ReplicationManager> nodes_;

private:
    std::string dirPrefix_;
    std::uint64_t members_;
    std::uint64_t voters_;
};

}  // namespace
