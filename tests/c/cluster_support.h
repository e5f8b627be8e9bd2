/*
 * Shared by the C cluster tests (cluster.c, snapshot.c): free ports, dev materials and public
 * keys, node configuration TOML with fast timings (heartbeat 50 ms, election 150-300 ms),
 * forming the cluster and waiting for a leader, and records. Define _XOPEN_SOURCE 700 and
 * _DEFAULT_SOURCE (usleep) before including it.
 *
 * Ports: free_port binds 127.0.0.1:0 and closes the socket, because the peers' addresses must
 * be in every node's configuration before the nodes start.
 */
#ifndef REPL_CLUSTER_SUPPORT_H
#define REPL_CLUSTER_SUPPORT_H

#include "test_support.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The most nodes form_cluster takes. */
#define CLUSTER_MAX_NODES 8

static inline uint16_t free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void read_public_key(const char *dir, uint64_t id, char *out, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/node-%" PRIu64 ".pub", dir, id);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    CHECK(fgets(out, (int)cap, f) != NULL);
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    CHECK(strlen(out) == 64);
}

/* Dev materials for nodes ids[0..n) under `tls`; a free port and the public key of each. */
static inline void cluster_materials(const char *tls, const uint64_t *ids, size_t n,
                                     uint16_t *ports, char keys[][80]) {
    OK(repl_dev_cluster_materials((const uint8_t *)tls, strlen(tls), ids, n));
    for (size_t i = 0; i < n; i++) {
        ports[i] = free_port();
        read_public_key(tls, ids[i], keys[i], sizeof keys[i]);
    }
}

/* The TOML of node `id` (1-based index into ports/keys), its peers voters 1..`voters`;
 * `with_key` false omits node_key_path. */
static inline void node_toml(char *out, size_t cap, const char *tmp, const char *tls,
                             uint64_t id, const uint16_t *ports, char keys[][80], size_t voters,
                             bool with_key) {
    int n = snprintf(out, cap,
                     "node_id = %" PRIu64 "\n"
                     "listen_address = \"127.0.0.1:%u\"\n"
                     "mode = \"SEMI_SYNC\"\n"
                     "min_sync_replicas = 1\n"
                     "heartbeat_interval_ms = 50\n"
                     "election_timeout_min_ms = 150\n"
                     "election_timeout_max_ms = 300\n"
                     "replication_timeout_ms = 5000\n"
                     "wal_directory = \"%s/wal-%" PRIu64 "\"\n"
                     "cert_path = \"%s/node-%" PRIu64 ".pem\"\n"
                     "key_path = \"%s/node-%" PRIu64 ".key\"\n"
                     "ca_path = \"%s/ca.pem\"\n",
                     id, (unsigned)ports[id - 1], tmp, id, tls, id, tls, id, tls);
    CHECK(n > 0 && (size_t)n < cap);
    if (with_key) {
        n += snprintf(out + n, cap - (size_t)n, "node_key_path = \"%s/node-%" PRIu64 ".ed25519\"\n",
                      tls, id);
    }
    for (uint64_t p = 1; p <= voters; p++) {
        if (p == id) continue;
        n += snprintf(out + n, cap - (size_t)n,
                      "[[peers]]\nnode_id = %" PRIu64 "\naddress = \"127.0.0.1:%u\"\n"
                      "public_key = \"%s\"\n",
                      p, (unsigned)ports[p - 1], keys[p - 1]);
        CHECK((size_t)n < cap);
    }
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The id of the single leader all running nodes agree on, or 0. */
static inline uint64_t agreed_leader(repl_node **nodes, size_t n) {
    uint64_t leader = 0;
    size_t leaders = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t role = 0;
        OK(repl_node_role(nodes[i], &role));
        if (role == REPL_ROLE_LEADER) {
            leaders++;
            OK(repl_node_id(nodes[i], &leader));
        }
    }
    if (leaders != 1) return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = 0;
        OK(repl_node_leader(nodes[i], &l));
        if (l != leader) return 0;
    }
    return leader;
}

/* Initializes the cluster of nodes[0..n) (ids, ports) through nodes[0] and returns the id of
 * the leader they all agree on; fails the test if there is none within 10 s. */
static inline uint64_t form_cluster(repl_node **nodes, const uint64_t *ids,
                                    const uint16_t *ports, size_t n) {
    CHECK(n <= CLUSTER_MAX_NODES);
    char addrs[CLUSTER_MAX_NODES][64];
    repl_member members[CLUSTER_MAX_NODES];
    for (size_t i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%u", (unsigned)ports[i]);
        members[i].node_id = ids[i];
        members[i].address = (const uint8_t *)addrs[i];
        members[i].address_len = strlen(addrs[i]);
    }
    OK(repl_node_initialize(nodes[0], members, n));
    uint64_t leader_id = 0;
    double deadline = now_s() + 10.0;
    while ((leader_id = agreed_leader(nodes, n)) == 0) {
        if (now_s() > deadline) FAIL("no leader within 10 s");
        usleep(20000);
    }
    return leader_id;
}

/* An insert of doc_id = payload into collection "users"; it borrows both strings. */
static inline repl_record record(const char *doc_id, const char *payload) {
    repl_record r;
    memset(&r, 0, sizeof r);
    r.op = REPL_OP_INSERT;
    r.collection = (const uint8_t *)"users";
    r.collection_len = 5;
    r.doc_id = (const uint8_t *)doc_id;
    r.doc_id_len = strlen(doc_id);
    r.payload = (const uint8_t *)payload;
    r.payload_len = strlen(payload);
    return r;
}

#endif /* REPL_CLUSTER_SUPPORT_H */
