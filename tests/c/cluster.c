/*
 * C API test of repl_node: a 3-node cluster in one process over mutual TLS (dev materials from
 * repl_dev_cluster_materials, fast timings: heartbeat 50 ms, election 150-300 ms). It elects a
 * leader, checks NOT_LEADER on a follower, appends in SEMI_SYNC and SYNC mode, checks that the
 * apply callback of every node sees every entry in LSN order on a library thread, that a
 * blocking call from the callback is refused, run-time set_mode / set_min_sync_replicas, adds
 * a learner with the built-in store and reads from it, and the error contract: NULL pointers,
 * invalid UTF-8, bad enum values, a missing node key, a shut-down handle. Built with ASan +
 * UBSan by tests/CMakeLists.txt.
 *
 * Ports: the test picks free ports by binding 127.0.0.1:0 and closing the socket, because the
 * peers' addresses must be in every node's configuration before the nodes start.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#define _DEFAULT_SOURCE   /* usleep */

#include "cluster_support.h"

#include <pthread.h>

#define NODES 3
#define WRITES 20
#define MAX_ENTRIES 256

typedef struct {
    uint64_t lsn;
    char doc_id[32];
    char payload[32];
} seen_entry;

/* One node's host state machine: what its apply callback saw. */
typedef struct {
    pthread_mutex_t lock;
    repl_node *node; /* set after start; the callback reads it under the lock */
    seen_entry entries[MAX_ENTRIES];
    size_t count;
    bool out_of_order;
    bool on_main_thread;
    bool reentry_checked;
    repl_result reentry_rc;
    repl_result role_rc;
} replica;

static pthread_t g_main_thread;

static void copy_field(char *dst, size_t cap, const uint8_t *src, size_t len) {
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n > 0) memcpy(dst, src, n);
    dst[n] = '\0';
}

static void on_apply(void *userdata, const repl_applied_entry *e) {
    replica *r = userdata;
    pthread_mutex_lock(&r->lock);
    if (pthread_equal(pthread_self(), g_main_thread)) r->on_main_thread = true;
    if (r->count > 0 && e->lsn <= r->entries[r->count - 1].lsn) r->out_of_order = true;
    if (r->count < MAX_ENTRIES) {
        seen_entry *s = &r->entries[r->count++];
        s->lsn = e->lsn;
        copy_field(s->doc_id, sizeof s->doc_id, e->doc_id, e->doc_id_len);
        copy_field(s->payload, sizeof s->payload, e->payload, e->payload_len);
    }
    if (!r->reentry_checked && r->node != NULL) {
        /* A blocking call from the callback is refused; a non-blocking one works. */
        r->reentry_rc = repl_node_wait_for_lsn(r->node, 1, 0);
        uint32_t role = 0;
        r->role_rc = repl_node_role(r->node, &role);
        r->reentry_checked = true;
    }
    pthread_mutex_unlock(&r->lock);
}

static repl_config *load_config(const char *toml) {
    repl_config *cfg = NULL;
    OK(repl_config_from_toml((const uint8_t *)toml, strlen(toml), &cfg));
    return cfg;
}

static void check_null_and_argument_errors(repl_node *leader, repl_node *follower) {
    g_step = "NULL and argument checks";
    repl_node *none = NULL;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    EXPECT_RC(repl_node_start(NULL, NULL, NULL, &none), REPL_ERR_NULL_ARGUMENT);
    CHECK(none == NULL);
    EXPECT_RC(repl_node_role(NULL, &u32), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_role(leader, NULL), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_leader(NULL, &u64), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_term(NULL, &u64), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_id(NULL, &u64), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_status(leader, NULL), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_wait_for_lsn(NULL, 1, 0), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_shutdown(NULL), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_set_mode(NULL, REPL_MODE_ASYNC), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_start_election(leader, NULL), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_initialize(leader, NULL, 1), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_change_membership(leader, NULL, 1, false, &u64),
              REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_local_addr(leader, NULL, 8, &u64), REPL_ERR_NULL_ARGUMENT);
    repl_node_free(NULL);

    repl_record r = record("d", "p");
    u64 = 77;
    EXPECT_RC(repl_node_append(leader, NULL, REPL_MODE_DEFAULT, &u64), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_append(leader, &r, REPL_MODE_DEFAULT, NULL), REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_append(leader, &r, 7, &u64), REPL_ERR_INVALID_ARGUMENT);
    repl_record bad = r;
    bad.doc_id = (const uint8_t *)"\xff\xfe";
    bad.doc_id_len = 2;
    EXPECT_RC(repl_node_append(leader, &bad, REPL_MODE_DEFAULT, &u64), REPL_ERR_INVALID_UTF8);
    bad = r;
    bad.op = 0;
    EXPECT_RC(repl_node_append(leader, &bad, REPL_MODE_DEFAULT, &u64),
              REPL_ERR_WAL_INVALID_RECORD);
    CHECK(u64 == 77); /* outputs untouched on failure */
    EXPECT_RC(repl_node_set_mode(leader, REPL_MODE_DEFAULT), REPL_ERR_INVALID_ARGUMENT);

    /* A follower refuses writes and names the leader. */
    EXPECT_RC(repl_node_append(follower, &r, REPL_MODE_DEFAULT, &u64),
              REPL_ERR_CLUSTER_NOT_LEADER);
    CHECK(u64 == 77);

    /* Reads need the built-in store. */
    uint8_t buf[16];
    size_t len = 0;
    bool found = false;
    EXPECT_RC(repl_node_read(leader, (const uint8_t *)"users", 5, (const uint8_t *)"d", 1,
                             REPL_READ_LINEARIZABLE, 0, buf, sizeof buf, &len, &found),
              REPL_ERR_INVALID_ARGUMENT);
    char detail[1024];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "built-in store") != NULL);
    EXPECT_RC(repl_node_read(leader, (const uint8_t *)"users", 5, (const uint8_t *)"d", 1, 9, 0,
                             buf, sizeof buf, &len, &found),
              REPL_ERR_INVALID_ARGUMENT);

    /* Dev materials reject id 0. */
    uint64_t zero = 0;
    EXPECT_RC(repl_dev_cluster_materials((const uint8_t *)"/tmp/x", 6, &zero, 1),
              REPL_ERR_INVALID_ARGUMENT);
    EXPECT_RC(repl_dev_cluster_materials(NULL, 0, &zero, 1), REPL_ERR_INVALID_ARGUMENT);
}

int main(void) {
    g_main_thread = pthread_self();
    char *tmp = make_temp_dir();
    char tls[4096];
    snprintf(tls, sizeof tls, "%s/tls", tmp);

    g_step = "dev materials";
    uint64_t ids[NODES + 1] = {1, 2, 3, 4};
    uint16_t ports[NODES + 1];
    char keys[NODES + 1][80];
    cluster_materials(tls, ids, NODES + 1, ports, keys);

    static char toml[8192];
    g_step = "start without node_key_path";
    node_toml(toml, sizeof toml, tmp, tls, 1, ports, keys, NODES, false);
    repl_config *cfg = load_config(toml);
    repl_node *none = NULL;
    EXPECT_RC(repl_node_start(cfg, NULL, NULL, &none), REPL_ERR_CONFIG_INVALID);
    CHECK(none == NULL);
    repl_config_free(cfg);

    g_step = "start 3 nodes";
    static replica replicas[NODES];
    repl_node *nodes[NODES] = {NULL, NULL, NULL};
    for (size_t i = 0; i < NODES; i++) {
        pthread_mutex_init(&replicas[i].lock, NULL);
        node_toml(toml, sizeof toml, tmp, tls, ids[i], ports, keys, NODES, true);
        cfg = load_config(toml);
        OK(repl_node_start(cfg, on_apply, &replicas[i], &nodes[i]));
        repl_config_free(cfg); /* the node keeps its own copy */
        pthread_mutex_lock(&replicas[i].lock);
        replicas[i].node = nodes[i];
        pthread_mutex_unlock(&replicas[i].lock);

        char addr[64], want[64];
        size_t len = 0;
        OK(repl_node_local_addr(nodes[i], addr, sizeof addr, &len));
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)ports[i]);
        CHECK(strcmp(addr, want) == 0);
        uint64_t id = 0;
        OK(repl_node_id(nodes[i], &id));
        CHECK(id == ids[i]);
    }

    g_step = "initialize and elect";
    uint64_t leader_id = form_cluster(nodes, ids, ports, NODES);
    repl_node *leader = nodes[leader_id - 1];
    repl_node *follower = nodes[leader_id % NODES];
    uint64_t term = 0;
    OK(repl_node_term(leader, &term));
    CHECK(term >= 1);

    check_null_and_argument_errors(leader, follower);

    g_step = "append SEMI_SYNC";
    uint64_t last = 0;
    for (int i = 0; i < WRITES; i++) {
        char doc[32], payload[32];
        snprintf(doc, sizeof doc, "doc-%d", i);
        snprintf(payload, sizeof payload, "value-%d", i);
        repl_record r = record(doc, payload);
        uint64_t lsn = 0;
        OK(repl_node_append(leader, &r, REPL_MODE_SEMI_SYNC, &lsn));
        CHECK(lsn > last);
        last = lsn;
    }

    g_step = "every node applies every entry";
    for (size_t i = 0; i < NODES; i++) OK(repl_node_wait_for_lsn(nodes[i], last, 5000));
    for (size_t i = 0; i < NODES; i++) {
        replica *r = &replicas[i];
        pthread_mutex_lock(&r->lock);
        CHECK(!r->out_of_order);
        CHECK(!r->on_main_thread);
        CHECK(r->count == WRITES);
        for (int w = 0; w < WRITES; w++) {
            char doc[32], payload[32];
            snprintf(doc, sizeof doc, "doc-%d", w);
            snprintf(payload, sizeof payload, "value-%d", w);
            CHECK(strcmp(r->entries[w].doc_id, doc) == 0);
            CHECK(strcmp(r->entries[w].payload, payload) == 0);
        }
        CHECK(r->entries[WRITES - 1].lsn == last);
        CHECK(r->reentry_checked);
        CHECK(r->reentry_rc == REPL_ERR_CLUSTER_REENTRANT_CALL);
        CHECK(r->role_rc == REPL_OK);
        pthread_mutex_unlock(&r->lock);
    }
    EXPECT_RC(repl_node_wait_for_lsn(follower, last + 1000, 50), REPL_ERR_CLUSTER_TIMEOUT);

    g_step = "set_mode and min_sync_replicas at run time";
    OK(repl_node_set_mode(leader, REPL_MODE_SYNC));
    EXPECT_RC(repl_node_set_min_sync_replicas(leader, 0), REPL_ERR_CLUSTER_INVALID_REQUEST);
    OK(repl_node_set_min_sync_replicas(leader, 2));
    repl_node_info info;
    OK(repl_node_status(leader, &info));
    CHECK(info.mode == REPL_MODE_SYNC && info.min_sync_replicas == 2);
    CHECK(info.role == REPL_ROLE_LEADER && info.node_id == leader_id);
    CHECK(info.voter_count == NODES && info.commit_lsn >= last);
    repl_record sync_rec = record("sync-doc", "sync-value");
    OK(repl_node_append(leader, &sync_rec, REPL_MODE_DEFAULT, &last));
    for (size_t i = 0; i < NODES; i++) OK(repl_node_wait_for_lsn(nodes[i], last, 5000));
    OK(repl_node_set_mode(leader, REPL_MODE_ASYNC));
    OK(repl_node_set_min_sync_replicas(leader, 1));

    g_step = "learner with the built-in store, bounded read";
    node_toml(toml, sizeof toml, tmp, tls, 4, ports, keys, NODES, true);
    cfg = load_config(toml);
    repl_node *learner = NULL;
    OK(repl_node_start(cfg, NULL, NULL, &learner));
    repl_config_free(cfg);
    char addr4[64];
    snprintf(addr4, sizeof addr4, "127.0.0.1:%u", (unsigned)ports[3]);
    uint64_t mlsn = 0;
    OK(repl_node_add_learner(leader, 4, (const uint8_t *)addr4, strlen(addr4), true, &mlsn));
    CHECK(mlsn > last);
    OK(repl_node_wait_for_lsn(learner, last, 5000));
    uint8_t buf[64];
    size_t len = 0;
    bool found = false;
    OK(repl_node_read(learner, (const uint8_t *)"users", 5, (const uint8_t *)"doc-3", 5,
                      REPL_READ_FOLLOWER_BOUNDED, 5000, buf, sizeof buf, &len, &found));
    CHECK(found && len == 7 && memcmp(buf, "value-3", 7) == 0);
    EXPECT_RC(repl_node_read(learner, (const uint8_t *)"users", 5, (const uint8_t *)"doc-3", 5,
                             REPL_READ_FOLLOWER_BOUNDED, 5000, buf, 3, &len, &found),
              REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 7);
    OK(repl_node_read(learner, (const uint8_t *)"users", 5, (const uint8_t *)"nope", 4,
                      REPL_READ_FOLLOWER_BOUNDED, 5000, buf, sizeof buf, &len, &found));
    CHECK(!found && len == 0);
    uint32_t role = 0;
    OK(repl_node_role(learner, &role));
    CHECK(role == REPL_ROLE_LEARNER);
    /* A learner is not the leader. */
    EXPECT_RC(repl_node_read(learner, (const uint8_t *)"users", 5, (const uint8_t *)"doc-3", 5,
                             REPL_READ_LINEARIZABLE, 0, buf, sizeof buf, &len, &found),
              REPL_ERR_CLUSTER_NOT_LEADER);

    g_step = "shutdown";
    OK(repl_node_shutdown(learner));
    EXPECT_RC(repl_node_shutdown(learner), REPL_ERR_HANDLE_CLOSED);
    OK(repl_node_role(learner, &role));
    CHECK(role == REPL_ROLE_SHUTDOWN);
    repl_record r = record("late", "x");
    uint64_t lsn = 0;
    EXPECT_RC(repl_node_append(learner, &r, REPL_MODE_DEFAULT, &lsn), REPL_ERR_HANDLE_CLOSED);
    EXPECT_RC(repl_node_wait_for_lsn(learner, 1, 0), REPL_ERR_HANDLE_CLOSED);
    repl_node_free(learner);
    for (size_t i = 0; i < NODES; i++) OK(repl_node_shutdown(nodes[i]));
    for (size_t i = 0; i < NODES; i++) {
        repl_node_free(nodes[i]);
        pthread_mutex_destroy(&replicas[i].lock);
    }
    remove_tree(tmp);
    printf("cluster: OK (leader %" PRIu64 ", %d writes on %d nodes)\n", leader_id, WRITES + 1,
           NODES);
    return 0;
}
