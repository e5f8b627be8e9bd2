/*
 * C API test of the snapshot callbacks (repl_node_start_with_snapshots, repl_snapshot_write,
 * repl_node_trigger_snapshot): a 3-node cluster in one process over mutual TLS, whose host
 * state machines are documents in memory. A follower is shut down, the leader takes more
 * writes, snapshots through its host callback and purges its log past everything the follower
 * has; the follower restarts with an empty host state and must catch up by restoring the
 * leader's snapshot, after which its documents equal the leader's and later writes still
 * reach it. Also: on which thread the callbacks run, that blocking calls are refused inside
 * them, and NULL arguments. Built with ASan + UBSan by tests/CMakeLists.txt.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#define _DEFAULT_SOURCE   /* usleep */

#include "cluster_support.h"

#include <pthread.h>
#include <stdatomic.h>

#define NODES 3
#define MAX_DOCS 64
#define FIELD 32

typedef struct {
    char id[FIELD];
    char payload[FIELD];
} doc;

/* One node's host state: its documents (doc id -> payload), and what its callbacks saw. */
typedef struct {
    pthread_mutex_t lock;
    repl_node *node; /* set after start */
    doc docs[MAX_DOCS];
    size_t count;
    size_t snapshots, restores;
    bool bad_snapshot_input;
    bool callback_on_main_thread; /* outside repl_node_start_with_snapshots */
    repl_result reentry_rc; /* a blocking call from inside the snapshot callback */
    bool reentry_checked;
} host;

static pthread_t g_main_thread;
/* Set while the main thread is inside repl_node_start_with_snapshots, where a restarted node
 * re-applies its committed entries (and restores a snapshot on disk) on the calling thread. */
static atomic_bool g_starting;

static void copy_field(char *dst, const uint8_t *src, size_t len) {
    size_t n = len < FIELD - 1 ? len : FIELD - 1;
    if (n > 0) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Inserts or replaces document `id`. Caller holds the lock. */
static void put(host *h, const char *id, const char *payload) {
    for (size_t i = 0; i < h->count; i++) {
        if (strcmp(h->docs[i].id, id) == 0) {
            snprintf(h->docs[i].payload, FIELD, "%s", payload);
            return;
        }
    }
    CHECK(h->count < MAX_DOCS);
    snprintf(h->docs[h->count].id, FIELD, "%s", id);
    snprintf(h->docs[h->count].payload, FIELD, "%s", payload);
    h->count++;
}

static void note_thread(host *h) {
    if (pthread_equal(pthread_self(), g_main_thread) && !atomic_load(&g_starting)) {
        h->callback_on_main_thread = true;
    }
}

static void on_apply(void *userdata, const repl_applied_entry *e) {
    host *h = userdata;
    char id[FIELD], payload[FIELD];
    copy_field(id, e->doc_id, e->doc_id_len);
    copy_field(payload, e->payload, e->payload_len);
    pthread_mutex_lock(&h->lock);
    note_thread(h);
    put(h, id, payload);
    pthread_mutex_unlock(&h->lock);
}

/* Snapshot format of this host: "id\tpayload\n" per document, one repl_snapshot_write each. */
static int32_t on_snapshot(void *userdata, repl_snapshot_writer *writer) {
    host *h = userdata;
    pthread_mutex_lock(&h->lock);
    note_thread(h);
    h->snapshots++;
    if (!h->reentry_checked && h->node != NULL) {
        uint64_t lsn = 0;
        h->reentry_rc = repl_node_trigger_snapshot(h->node, 0, &lsn);
        h->reentry_checked = true;
    }
    int32_t rc = 0;
    for (size_t i = 0; i < h->count && rc == 0; i++) {
        char line[2 * FIELD + 2];
        int n = snprintf(line, sizeof line, "%s\t%s\n", h->docs[i].id, h->docs[i].payload);
        if (repl_snapshot_write(writer, (const uint8_t *)line, (size_t)n) != REPL_OK) rc = 1;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

static int32_t on_restore(void *userdata, const uint8_t *data, size_t len) {
    host *h = userdata;
    pthread_mutex_lock(&h->lock);
    note_thread(h);
    h->restores++;
    h->count = 0; /* the snapshot replaces the whole state */
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *tab = memchr(data + pos, '\t', len - pos);
        const uint8_t *nl = tab ? memchr(tab, '\n', len - (size_t)(tab - data)) : NULL;
        if (nl == NULL) {
            h->bad_snapshot_input = true;
            pthread_mutex_unlock(&h->lock);
            return 2;
        }
        char id[FIELD], payload[FIELD];
        copy_field(id, data + pos, (size_t)(tab - (data + pos)));
        copy_field(payload, tab + 1, (size_t)(nl - (tab + 1)));
        put(h, id, payload);
        pos = (size_t)(nl - data) + 1;
    }
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static uint64_t append(repl_node *leader, const char *id, const char *payload) {
    repl_record r = record(id, payload);
    uint64_t lsn = 0;
    OK(repl_node_append(leader, &r, REPL_MODE_SEMI_SYNC, &lsn));
    return lsn;
}

static repl_node *start(const char *toml, host *h) {
    repl_config *cfg = NULL;
    OK(repl_config_from_toml((const uint8_t *)toml, strlen(toml), &cfg));
    repl_node *node = NULL;
    atomic_store(&g_starting, true);
    OK(repl_node_start_with_snapshots(cfg, on_apply, on_snapshot, on_restore, h, &node));
    atomic_store(&g_starting, false);
    repl_config_free(cfg);
    pthread_mutex_lock(&h->lock);
    h->node = node;
    pthread_mutex_unlock(&h->lock);
    return node;
}

/* Whether two hosts hold the same documents (in any order). */
static bool same_docs(host *a, host *b) {
    if (a == b) return true;
    pthread_mutex_lock(&a->lock);
    pthread_mutex_lock(&b->lock);
    bool same = a->count == b->count;
    for (size_t i = 0; same && i < a->count; i++) {
        bool found = false;
        for (size_t j = 0; j < b->count && !found; j++) {
            found = strcmp(a->docs[i].id, b->docs[j].id) == 0 &&
                    strcmp(a->docs[i].payload, b->docs[j].payload) == 0;
        }
        same = found;
    }
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&a->lock);
    return same;
}

static void check_null_arguments(const char *toml, host *h) {
    g_step = "NULL arguments";
    repl_config *cfg = NULL;
    OK(repl_config_from_toml((const uint8_t *)toml, strlen(toml), &cfg));
    repl_node *none = NULL;
    EXPECT_RC(repl_node_start_with_snapshots(NULL, on_apply, on_snapshot, on_restore, h, &none),
              REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_start_with_snapshots(cfg, NULL, on_snapshot, on_restore, h, &none),
              REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_start_with_snapshots(cfg, on_apply, NULL, on_restore, h, &none),
              REPL_ERR_NULL_ARGUMENT);
    EXPECT_RC(repl_node_start_with_snapshots(cfg, on_apply, on_snapshot, NULL, h, &none),
              REPL_ERR_NULL_ARGUMENT);
    char detail[1024];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "on_restore") != NULL);
    EXPECT_RC(repl_node_start_with_snapshots(cfg, on_apply, on_snapshot, on_restore, h, NULL),
              REPL_ERR_NULL_ARGUMENT);
    CHECK(none == NULL);
    repl_config_free(cfg);
    uint64_t lsn = 5;
    EXPECT_RC(repl_node_trigger_snapshot(NULL, 1000, &lsn), REPL_ERR_NULL_ARGUMENT);
    CHECK(lsn == 5);
    EXPECT_RC(repl_snapshot_write(NULL, (const uint8_t *)"x", 1), REPL_ERR_NULL_ARGUMENT);
}

int main(void) {
    g_main_thread = pthread_self();
    char *tmp = make_temp_dir();
    char tls[4096];
    snprintf(tls, sizeof tls, "%s/tls", tmp);

    g_step = "dev materials";
    uint64_t ids[NODES] = {1, 2, 3};
    uint16_t ports[NODES];
    char keys[NODES][80];
    cluster_materials(tls, ids, NODES, ports, keys);
    static char tomls[NODES][8192];
    for (size_t i = 0; i < NODES; i++) {
        node_toml(tomls[i], sizeof tomls[i], tmp, tls, ids[i], ports, keys, NODES, true);
    }

    static host hosts[NODES];
    for (size_t i = 0; i < NODES; i++) pthread_mutex_init(&hosts[i].lock, NULL);
    check_null_arguments(tomls[0], &hosts[0]);

    g_step = "start 3 nodes with snapshot callbacks";
    repl_node *nodes[NODES];
    for (size_t i = 0; i < NODES; i++) nodes[i] = start(tomls[i], &hosts[i]);
    uint64_t leader_id = form_cluster(nodes, ids, ports, NODES);
    size_t li = (size_t)(leader_id - 1);
    size_t fi = (li + 1) % NODES; /* the follower that falls behind */
    repl_node *leader = nodes[li];

    g_step = "writes every node applies";
    uint64_t last = 0;
    for (int i = 0; i < 10; i++) {
        char id[FIELD], payload[FIELD];
        snprintf(id, sizeof id, "doc-%d", i);
        snprintf(payload, sizeof payload, "v1-%d", i);
        last = append(leader, id, payload);
    }
    for (size_t i = 0; i < NODES; i++) OK(repl_node_wait_for_lsn(nodes[i], last, 5000));
    uint64_t follower_had = last;

    g_step = "follower down; more writes; leader snapshots and purges";
    OK(repl_node_shutdown(nodes[fi]));
    repl_node_free(nodes[fi]);
    nodes[fi] = NULL;
    for (int i = 5; i < 25; i++) { /* overwrites doc-5..9, adds doc-10..24 */
        char id[FIELD], payload[FIELD];
        snprintf(id, sizeof id, "doc-%d", i);
        snprintf(payload, sizeof payload, "v2-%d", i);
        last = append(leader, id, payload);
    }
    OK(repl_node_wait_for_lsn(leader, last, 5000));
    uint64_t snap_lsn = 0;
    OK(repl_node_trigger_snapshot(leader, 20000, &snap_lsn));
    CHECK(snap_lsn >= last && snap_lsn > follower_had);
    pthread_mutex_lock(&hosts[li].lock);
    CHECK(hosts[li].snapshots >= 1);
    CHECK(hosts[li].reentry_checked);
    CHECK(hosts[li].reentry_rc == REPL_ERR_CLUSTER_REENTRANT_CALL);
    pthread_mutex_unlock(&hosts[li].lock);

    g_step = "follower restarts empty and catches up through the snapshot";
    pthread_mutex_lock(&hosts[fi].lock);
    hosts[fi].count = 0; /* a restarted process: its in-memory state is gone */
    hosts[fi].restores = 0;
    hosts[fi].node = NULL;
    pthread_mutex_unlock(&hosts[fi].lock);
    nodes[fi] = start(tomls[fi], &hosts[fi]);
    OK(repl_node_wait_for_lsn(nodes[fi], last, 20000));
    pthread_mutex_lock(&hosts[fi].lock);
    CHECK(hosts[fi].restores >= 1);
    CHECK(!hosts[fi].bad_snapshot_input);
    CHECK(hosts[fi].count == 25);
    pthread_mutex_unlock(&hosts[fi].lock);
    CHECK(same_docs(&hosts[fi], &hosts[li]));

    g_step = "writes after the snapshot still reach the follower";
    last = append(leader, "doc-3", "v3-after");
    last = append(leader, "after", "x");
    for (size_t i = 0; i < NODES; i++) OK(repl_node_wait_for_lsn(nodes[i], last, 5000));
    for (size_t i = 0; i < NODES; i++) CHECK(same_docs(&hosts[i], &hosts[li]));
    for (size_t i = 0; i < NODES; i++) {
        pthread_mutex_lock(&hosts[i].lock);
        CHECK(!hosts[i].callback_on_main_thread);
        pthread_mutex_unlock(&hosts[i].lock);
    }

    g_step = "shutdown";
    for (size_t i = 0; i < NODES; i++) OK(repl_node_shutdown(nodes[i]));
    for (size_t i = 0; i < NODES; i++) {
        repl_node_free(nodes[i]);
        pthread_mutex_destroy(&hosts[i].lock);
    }
    remove_tree(tmp);
    printf("snapshot: OK (leader %" PRIu64 ", follower %zu restored a snapshot at LSN %" PRIu64
           ")\n",
           leader_id, fi + 1, snap_lsn);
    return 0;
}
