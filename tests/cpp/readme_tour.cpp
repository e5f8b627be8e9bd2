// README tour (C++): the same steps with RAII handles and exceptions.
#include <replication/replication.hpp>

#include <iostream>

namespace repl = themis::replication;
using Op = repl::Operation;

int main() try {
    auto cfg = repl::ReplicationConfig::fromToml(R"(
        node_id = 1
        mode = "ASYNC"
        wal_directory = "tour-wal"
    )");
    for (const std::string& warning : cfg.warnings()) std::cerr << warning << "\n";
    repl::WAL wal(cfg);  // closed and freed by its destructor

    repl::HybridLogicalClock clock(std::chrono::milliseconds(500));
    auto entry = [&clock](Op op, std::string doc_id, std::string_view json) {
        repl::WALEntry e;
        e.hlc = clock.now();
        e.operation = op;
        e.collection = "users";
        e.doc_id = std::move(doc_id);
        e.payload.assign(json.begin(), json.end());
        return e;
    };
    std::uint64_t lsn = wal.append(entry(Op::Insert, "u1", R"({"name":"Ada"})"));
    std::uint64_t since = clock.now();
    auto [first, last] = wal.appendBatch({entry(Op::Update, "u1", R"({"name":"Ada L."})"),
                                          entry(Op::Delete, "u2", "")});  // atomic
    for (const repl::WALEntry& e : wal.readFrom(lsn))
        std::cout << "lsn " << e.lsn << ": " << e.doc_id << "\n";
    std::optional<std::uint64_t> at = wal.findLsnByTimestamp(since);  // first record >= since

    try {
        repl::ReplicationConfig::fromToml("node_id = 0\nmode = \"SYNC\"\nmin_sync_replicas = 0\n");
        return 1;  // not reached: both values are invalid
    } catch (const repl::ReplicationError& e) {
        // e.code() == REPL_ERR_CONFIG_INVALID; e.what() lists every problem, one per line.
        std::cout << e.what() << "\n";
    }
    return (first == lsn + 1 && last == lsn + 2 && at == first) ? 0 : 1;
} catch (const repl::ReplicationError& e) {
    std::cerr << "error " << e.code() << ": " << e.what() << "\n";
    return 1;
}
