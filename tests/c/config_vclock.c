/*
 * C API test of the configuration and vector-clock functions: every accessor against a full
 * TOML document, the caller-buffer size protocol, each kind of configuration error (a document
 * with several problems lists every one in the detail), opening a WAL from a configuration,
 * vector clock semantics, and the error contract of every function involved: NULL pointers,
 * invalid UTF-8, indexes out of range, outputs untouched on failure. Built with ASan + UBSan by
 * tests/CMakeLists.txt.
 *
 * Configurations and vector clocks own no OS resource and have no close function, so they
 * have no closed state; the WAL opened from a configuration does, and is checked here.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include "test_support.h"

#include <dirent.h>
#include <inttypes.h>

static const char FULL_TOML[] =
    "node_id = 7\n"
    "listen_address = \"0.0.0.0:7500\"\n"
    "mode = \"SEMI_SYNC\"\n"
    "min_sync_replicas = 2\n"
    "heartbeat_interval_ms = 500\n"
    "election_timeout_min_ms = 2000\n"
    "election_timeout_max_ms = 2600\n"
    "replication_timeout_ms = 4000\n"
    "batch_size = 64\n"
    "batch_timeout_ms = 5\n"
    "wal_directory = \"/var/lib/repl/wal\"\n"
    "wal_segment_size_bytes = 16777216\n"
    "wal_sync_on_commit = false\n"
    "wal_sync_interval_ms = 20\n"
    "wal_zero_fill_ahead = false\n"
    "enable_wal_compression = false\n"
    "compression_level = 9\n"
    "allow_plaintext_dev = true\n"
    "\n"
    "[[peers]]\n"
    "node_id = 8\n"
    "address = \"10.0.0.8:7500\"\n"
    "\n"
    "[[peers]]\n"
    "node_id = 9\n"
    "address = \"[fd00::9]:7500\"\n";

static repl_config *load(const char *toml) {
    repl_config *c = NULL;
    OK(repl_config_from_toml((const uint8_t *)toml, strlen(toml), &c));
    CHECK(c != NULL);
    return c;
}

typedef repl_result (*text_fn)(const repl_config *, char *, size_t, size_t *);

/* A text accessor returns `want`, and follows the size protocol: a length query with (NULL, 0),
 * BUFFER_TOO_SMALL without room for the NUL (buffer untouched), then the text. */
static void expect_text(text_fn f, const repl_config *c, const char *want) {
    char buf[256];
    size_t n = 999;
    EXPECT_RC(f(c, NULL, 0, &n), REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(n == strlen(want));
    memset(buf, 'x', sizeof buf);
    EXPECT_RC(f(c, buf, n, &n), REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(buf[0] == 'x' && n == strlen(want));
    OK(f(c, buf, n + 1, &n));
    CHECK(n == strlen(want) && strcmp(buf, want) == 0);
}

/* ---------------------------------------------------------------------------------------- */

static void test_accessors(void) {
    g_step = "config accessors";
    repl_config *c = load(FULL_TOML);
    uint64_t u64 = 0;
    uint32_t u32 = 0;
    int32_t i32 = 0;
    bool flag = true;
    size_t n = 0;

    OK(repl_config_node_id(c, &u64));
    CHECK(u64 == 7);
    OK(repl_config_mode(c, &u32));
    CHECK(u32 == REPL_MODE_SEMI_SYNC);
    OK(repl_config_min_sync_replicas(c, &u32));
    CHECK(u32 == 2);
    OK(repl_config_heartbeat_interval_ms(c, &u64));
    CHECK(u64 == 500);
    OK(repl_config_election_timeout_min_ms(c, &u64));
    CHECK(u64 == 2000);
    OK(repl_config_election_timeout_max_ms(c, &u64));
    CHECK(u64 == 2600);
    OK(repl_config_replication_timeout_ms(c, &u64));
    CHECK(u64 == 4000);
    OK(repl_config_batch_size(c, &u64));
    CHECK(u64 == 64);
    OK(repl_config_batch_timeout_ms(c, &u64));
    CHECK(u64 == 5);
    OK(repl_config_wal_segment_size_bytes(c, &u64));
    CHECK(u64 == 16777216);
    OK(repl_config_wal_sync_on_commit(c, &flag));
    CHECK(flag == false);
    OK(repl_config_wal_sync_interval_ms(c, &u64));
    CHECK(u64 == 20);
    flag = true;
    OK(repl_config_wal_zero_fill_ahead(c, &flag));
    CHECK(flag == false);
    flag = true;
    OK(repl_config_enable_wal_compression(c, &flag));
    CHECK(flag == false);
    OK(repl_config_compression_level(c, &i32));
    CHECK(i32 == 9);
    expect_text(repl_config_listen_address, c, "0.0.0.0:7500");
    expect_text(repl_config_wal_directory, c, "/var/lib/repl/wal");

    g_step = "config peers";
    OK(repl_config_peer_count(c, &n));
    CHECK(n == 2);
    static const uint64_t ids[] = {8, 9};
    static const char *const addrs[] = {"10.0.0.8:7500", "[fd00::9]:7500"};
    for (size_t i = 0; i < 2; i++) {
        char buf[64];
        OK(repl_config_peer_id(c, i, &u64));
        CHECK(u64 == ids[i]);
        OK(repl_config_peer_address(c, i, buf, sizeof buf, &n));
        CHECK(n == strlen(addrs[i]) && strcmp(buf, addrs[i]) == 0);
    }
    /* Index out of range: INVALID_ARGUMENT naming the count; outputs untouched. */
    u64 = 42;
    n = 42;
    char buf[64] = "untouched";
    EXPECT_RC(repl_config_peer_id(c, 2, &u64), REPL_ERR_INVALID_ARGUMENT);
    char detail[512];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "repl_config_peer_id: index 2 is out of range") == detail);
    CHECK(strstr(detail, "2 peers") != NULL);
    EXPECT_RC(repl_config_peer_address(c, SIZE_MAX, buf, sizeof buf, &n),
              REPL_ERR_INVALID_ARGUMENT);
    CHECK(u64 == 42 && n == 42 && strcmp(buf, "untouched") == 0);

    g_step = "config warnings";
    OK(repl_config_warnings_count(c, &n));
    CHECK(n == 1);
    char text[512];
    OK(repl_config_warning(c, 0, text, sizeof text, &n));
    CHECK(n == strlen(text) && strncmp(text, "allow_plaintext_dev = true:", 27) == 0);
    n = 42;
    EXPECT_RC(repl_config_warning(c, 1, text, sizeof text, &n), REPL_ERR_INVALID_ARGUMENT);
    CHECK(n == 42);
    repl_config_free(c);

    /* Defaults: a minimal document, and its one warning (SYNC without peers). */
    c = load("node_id = 1\nmode = \"SYNC\"\n");
    OK(repl_config_mode(c, &u32));
    CHECK(u32 == REPL_MODE_SYNC);
    OK(repl_config_heartbeat_interval_ms(c, &u64));
    CHECK(u64 == 1000);
    OK(repl_config_wal_sync_on_commit(c, &flag));
    CHECK(flag == true);
    OK(repl_config_peer_count(c, &n));
    CHECK(n == 0);
    EXPECT_RC(repl_config_peer_id(c, 0, &u64), REPL_ERR_INVALID_ARGUMENT);
    OK(repl_config_warnings_count(c, &n));
    CHECK(n == 1);
    expect_text(repl_config_wal_directory, c, "./wal");
    repl_config_free(c);
    c = load("node_id = 1\n");
    OK(repl_config_mode(c, &u32));
    CHECK(u32 == REPL_MODE_ASYNC);
    OK(repl_config_warnings_count(c, &n));
    CHECK(n == 0);
    repl_config_free(c);
}

/* Every problem of a document is reported at once, in the detail; the code says which kind. */
static void test_config_errors(void) {
    g_step = "config errors";
    static const char many[] = "node_id = 0\n"
                               "mode = \"SYNC\"\n"
                               "min_sync_replicas = 0\n"
                               "heartbeat_interval = 5\n"
                               "election_timeout_min_ms = \"soon\"\n";
    repl_config *const sentinel = (repl_config *)&g_step;
    repl_config *c = sentinel;
    EXPECT_RC(repl_config_from_toml((const uint8_t *)many, strlen(many), &c),
              REPL_ERR_CONFIG_INVALID);
    CHECK(c == sentinel);
    /* The detail is longer than a small buffer: ask for its length first. */
    size_t n = 0;
    EXPECT_RC(repl_last_error_detail(NULL, 0, &n), REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(n > 300);
    char *detail = malloc(n + 1);
    CHECK(detail != NULL);
    CHECK(last_detail(detail, n + 1) == n);
    static const char *const expected[] = {
        "repl_config_from_toml: replication config has 4 problems:",
        "\n  node_id (line 1): node_id must not be 0",
        "\n  min_sync_replicas (line 3): min_sync_replicas = 0 is not allowed in SYNC mode",
        "\n  heartbeat_interval (line 4): unknown key `heartbeat_interval`",
        "did you mean `heartbeat_interval_ms`?",
        "\n  election_timeout_min_ms (line 5): expected a non-negative integer, found string",
    };
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        if (!strstr(detail, expected[i])) FAIL("detail lacks \"%s\":\n%s", expected[i], detail);
    }
    free(detail);

    char text[1024];
    static const char syntax[] = "node_id = 1\n[peers\n";
    EXPECT_RC(repl_config_from_toml((const uint8_t *)syntax, strlen(syntax), &c),
              REPL_ERR_CONFIG_PARSE);
    last_detail(text, sizeof text);
    CHECK(strstr(text, "not valid TOML (line 2, column 7)") != NULL);

    /* An empty document (NULL with length 0 is allowed): node_id is required. */
    EXPECT_RC(repl_config_from_toml(NULL, 0, &c), REPL_ERR_CONFIG_INVALID);
    last_detail(text, sizeof text);
    CHECK(strstr(text, "node_id is required") != NULL);

    static const uint8_t bad_utf8[] = {'n', 0xc3, 0x28, '=', '1'};
    EXPECT_RC(repl_config_from_toml(bad_utf8, sizeof bad_utf8, &c), REPL_ERR_INVALID_UTF8);
    last_detail(text, sizeof text);
    CHECK(strstr(text, "`toml`") != NULL);
    CHECK(c == sentinel);

    /* The same messages through repl_error_message. */
    OK(repl_error_message(REPL_ERR_CONFIG_INVALID, text, sizeof text, &n));
    CHECK(strstr(text, "invalid values") != NULL);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static void test_config_files(void) {
    g_step = "config files";
    char *dir = make_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/node.toml", dir);
    write_file(path, FULL_TOML, strlen(FULL_TOML));
    repl_config *c = NULL;
    OK(repl_config_from_file((const uint8_t *)path, strlen(path), &c));
    uint64_t id = 0;
    OK(repl_config_node_id(c, &id));
    CHECK(id == 7);
    repl_config_free(c);

    /* Problems in a file are reported like problems in a string. */
    static const char invalid[] = "node_id = 1\nmode = \"FAST\"\n";
    write_file(path, invalid, strlen(invalid));
    repl_config *const sentinel = (repl_config *)&g_step;
    c = sentinel;
    EXPECT_RC(repl_config_from_file((const uint8_t *)path, strlen(path), &c),
              REPL_ERR_CONFIG_INVALID);
    char detail[8192];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "repl_config_from_file: ") == detail);
    CHECK(strstr(detail, "mode (line 2)") != NULL && strstr(detail, "\"SEMI_SYNC\"") != NULL);

    /* A file that is not UTF-8, and one that does not exist: CONFIG_IO naming the file. */
    static const uint8_t latin1[] = {'n', 'o', 'd', 'e', '_', 'i', 'd', '=', '1', '#', 0xe9};
    write_file(path, latin1, sizeof latin1);
    EXPECT_RC(repl_config_from_file((const uint8_t *)path, strlen(path), &c),
              REPL_ERR_CONFIG_IO);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, path) != NULL);
    remove(path);
    EXPECT_RC(repl_config_from_file((const uint8_t *)path, strlen(path), &c),
              REPL_ERR_CONFIG_IO);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, path) != NULL);

    static const uint8_t bad_path[] = {'/', 't', 'm', 'p', '/', 0xff};
    EXPECT_RC(repl_config_from_file(bad_path, sizeof bad_path, &c), REPL_ERR_INVALID_UTF8);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "`path`") != NULL);
    EXPECT_RC(repl_config_from_file(NULL, 0, &c), REPL_ERR_CONFIG_IO); /* empty path */
    CHECK(c == sentinel);
    remove_tree(dir);
}

static size_t count_segments(const char *dir) {
    size_t n = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".wal") == 0) n++;
    }
    closedir(d);
    return n;
}

static repl_record record_for(uint64_t i, const char *doc) {
    repl_record r;
    memset(&r, 0, sizeof r);
    r.term = 1;
    r.hlc = 1000 + i;
    r.origin = 7;
    r.op = REPL_OP_INSERT;
    r.collection = (const uint8_t *)"users";
    r.collection_len = 5;
    r.doc_id = (const uint8_t *)doc;
    r.doc_id_len = strlen(doc);
    r.payload = (const uint8_t *)doc;
    r.payload_len = strlen(doc);
    return r;
}

/* The WAL opened from a configuration uses its directory, segment size and durability. */
static void test_wal_from_config(void) {
    g_step = "WAL from config";
    char *dir = make_temp_dir();
    char toml[8192];
    /* No fsync at all (sync_on_commit false, interval 0), tiny segments. */
    snprintf(toml, sizeof toml,
             "node_id = 1\nwal_directory = \"%s/wal\"\nwal_segment_size_bytes = 4096\n"
             "wal_sync_on_commit = false\nwal_sync_interval_ms = 0\n",
             dir);
    repl_config *c = load(toml);
    repl_wal *w = NULL;
    OK(repl_wal_open_from_config(c, &w));
    CHECK(w != NULL);
    repl_wal *const sentinel = (repl_wal *)&g_step;
    repl_wal *second = sentinel;
    EXPECT_RC(repl_wal_open_from_config(c, &second), REPL_ERR_WAL_DIR_LOCKED);
    CHECK(second == sentinel);
    repl_config_free(c); /* the WAL does not depend on the config */

    char doc[32];
    uint64_t lsn = 0, durable = 99;
    for (uint64_t i = 1; i <= 200; i++) {
        snprintf(doc, sizeof doc, "doc-%" PRIu64 "-padding-padding", i);
        repl_record r = record_for(i, doc);
        OK(repl_wal_append(w, &r, &lsn));
        CHECK(lsn == i);
    }
    OK(repl_wal_durable_lsn(w, &durable));
    CHECK(durable == 0); /* REPL_DURABILITY_NONE: nothing fsynced yet */
    OK(repl_wal_sync(w));
    OK(repl_wal_durable_lsn(w, &durable));
    CHECK(durable == 200);
    OK(repl_wal_close(w));
    EXPECT_RC(repl_wal_append(w, &(repl_record){0}, &lsn), REPL_ERR_HANDLE_CLOSED);
    repl_wal_free(w);
    char wal_dir[4200];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    CHECK(count_segments(wal_dir) > 1); /* 4096-byte segments */

    /* Reopen with the defaults (fsync on every commit) and read everything back. */
    snprintf(toml, sizeof toml, "node_id = 1\nwal_directory = \"%s/wal\"\n", dir);
    c = load(toml);
    OK(repl_wal_open_from_config(c, &w));
    repl_config_free(c);
    repl_wal_iter *it = NULL;
    OK(repl_wal_read_from(w, 1, &it));
    uint64_t seen = 0;
    for (;;) {
        repl_record_view v;
        bool has = false;
        OK(repl_wal_iter_next(it, &v, &has));
        if (!has) break;
        seen++;
        snprintf(doc, sizeof doc, "doc-%" PRIu64 "-padding-padding", seen);
        CHECK(v.lsn == seen && v.record.hlc == 1000 + seen);
        CHECK(v.record.doc_id_len == strlen(doc) && memcmp(v.record.doc_id, doc, strlen(doc)) == 0);
    }
    CHECK(seen == 200);
    repl_wal_iter_free(it);
    repl_record r = record_for(201, "last");
    OK(repl_wal_append(w, &r, &lsn));
    OK(repl_wal_durable_lsn(w, &durable));
    CHECK(lsn == 201 && durable == 201); /* REPL_DURABILITY_EVERY_COMMIT */
    repl_wal_free(w);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------- */

static repl_vclock *vclock(void) {
    repl_vclock *v = NULL;
    OK(repl_vclock_new(&v));
    CHECK(v != NULL);
    return v;
}

static uint32_t compare(const repl_vclock *a, const repl_vclock *b) {
    uint32_t o = 99;
    OK(repl_vclock_compare(a, b, &o));
    return o;
}

static uint64_t get(const repl_vclock *v, uint64_t node) {
    uint64_t c = 99;
    OK(repl_vclock_get(v, node, &c));
    return c;
}

static void test_vclock(void) {
    g_step = "vector clock";
    repl_vclock *a = vclock(), *b = vclock();
    uint64_t c = 0;
    CHECK(get(a, 1) == 0);
    CHECK(compare(a, b) == REPL_VCLOCK_EQUAL);
    OK(repl_vclock_increment(a, 1, &c));
    CHECK(c == 1);
    OK(repl_vclock_increment(a, 1, &c));
    CHECK(c == 2);
    OK(repl_vclock_increment(a, 5, &c));
    CHECK(c == 1 && get(a, 1) == 2 && get(a, 5) == 1 && get(a, 3) == 0);

    CHECK(compare(a, a) == REPL_VCLOCK_EQUAL);
    CHECK(compare(b, a) == REPL_VCLOCK_BEFORE);
    CHECK(compare(a, b) == REPL_VCLOCK_AFTER);
    OK(repl_vclock_increment(b, 9, &c));
    CHECK(compare(a, b) == REPL_VCLOCK_CONCURRENT);
    CHECK(compare(b, a) == REPL_VCLOCK_CONCURRENT);

    /* Merge: pointwise maximum; the merged clock is after both. */
    OK(repl_vclock_merge(b, a));
    CHECK(get(b, 1) == 2 && get(b, 5) == 1 && get(b, 9) == 1);
    CHECK(compare(a, b) == REPL_VCLOCK_BEFORE);
    CHECK(get(a, 9) == 0); /* `other` unchanged */

    /* Merging a clock into itself is allowed and changes nothing. */
    repl_vclock *copy = NULL;
    OK(repl_vclock_clone(b, &copy));
    OK(repl_vclock_merge(b, b));
    CHECK(compare(b, copy) == REPL_VCLOCK_EQUAL);
    /* A clone is independent. */
    OK(repl_vclock_increment(copy, 1, &c));
    CHECK(c == 3 && get(b, 1) == 2 && compare(copy, b) == REPL_VCLOCK_AFTER);

    /* Listing: entries in node order, non-zero counters only. */
    size_t n = 0;
    OK(repl_vclock_len(b, &n));
    CHECK(n == 3);
    static const uint64_t nodes[] = {1, 5, 9}, counters[] = {2, 1, 1};
    for (size_t i = 0; i < n; i++) {
        uint64_t node = 0, counter = 0;
        OK(repl_vclock_entry(b, i, &node, &counter));
        CHECK(node == nodes[i] && counter == counters[i]);
    }
    uint64_t node = 42, counter = 42;
    EXPECT_RC(repl_vclock_entry(b, 3, &node, &counter), REPL_ERR_INVALID_ARGUMENT);
    CHECK(node == 42 && counter == 42);
    char detail[512];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "the clock has 3 entries") != NULL);

    /* Rebuilding from entries, in any order, zero counters dropped. */
    static const uint64_t rn[] = {9, 4, 1, 5}, rc[] = {1, 0, 2, 1};
    repl_vclock *rebuilt = NULL;
    OK(repl_vclock_from_entries(rn, rc, 4, &rebuilt));
    CHECK(compare(rebuilt, b) == REPL_VCLOCK_EQUAL);
    OK(repl_vclock_len(rebuilt, &n));
    CHECK(n == 3);
    repl_vclock *empty = NULL;
    OK(repl_vclock_from_entries(NULL, NULL, 0, &empty));
    CHECK(compare(empty, a) == REPL_VCLOCK_BEFORE);

    /* A node listed twice is an error; nothing is stored. */
    static const uint64_t dn[] = {3, 2, 3}, dc[] = {1, 1, 2};
    repl_vclock *const sentinel = (repl_vclock *)&g_step;
    repl_vclock *dup = sentinel;
    EXPECT_RC(repl_vclock_from_entries(dn, dc, 3, &dup), REPL_ERR_CLOCK_DUPLICATE_NODE);
    CHECK(dup == sentinel);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "repl_vclock_from_entries: ") == detail && strstr(detail, "node 3"));

    /* Counters saturate instead of wrapping (which would reverse causality). */
    static const uint64_t mn[] = {1}, mc[] = {UINT64_MAX};
    repl_vclock *max = NULL;
    OK(repl_vclock_from_entries(mn, mc, 1, &max));
    OK(repl_vclock_increment(max, 1, &c));
    CHECK(c == UINT64_MAX);

    repl_vclock_free(a);
    repl_vclock_free(b);
    repl_vclock_free(copy);
    repl_vclock_free(rebuilt);
    repl_vclock_free(empty);
    repl_vclock_free(max);
}

/* ---------------------------------------------------------------------------------------- */

/* Every pointer argument of every configuration and vector-clock function, one at a time, set
 * to NULL: REPL_ERR_NULL_ARGUMENT, and no output written. */
static void test_null_arguments(void) {
    g_step = "NULL arguments";
    repl_config *c = load(FULL_TOML);
    repl_vclock *v = vclock();

    const uint64_t S = 0xdeadbeefULL; /* sentinel: must survive every failing call */
    uint64_t u64 = S, u64b = S;
    uint32_t u32 = (uint32_t)S;
    int32_t i32 = (int32_t)0x5eed;
    bool flag = true;
    size_t n = (size_t)S;
    char buf[64];
    repl_config *cout = (repl_config *)&u64b;
    repl_config *const csent = cout;
    repl_vclock *vout = (repl_vclock *)&u64b;
    repl_vclock *const vsent = vout;
    repl_wal *wout = (repl_wal *)&u64b;
    repl_wal *const wsent = wout;
    const uint8_t *toml = (const uint8_t *)FULL_TOML;
    const size_t toml_len = strlen(FULL_TOML);

#define NUL_RC(call) EXPECT_RC(call, REPL_ERR_NULL_ARGUMENT)
    NUL_RC(repl_config_from_toml(NULL, toml_len, &cout));
    NUL_RC(repl_config_from_toml(toml, toml_len, NULL));
    NUL_RC(repl_config_from_file(NULL, 5, &cout));
    NUL_RC(repl_config_from_file((const uint8_t *)"x.toml", 6, NULL));
    CHECK(cout == csent);

    NUL_RC(repl_config_node_id(NULL, &u64));
    NUL_RC(repl_config_node_id(c, NULL));
    NUL_RC(repl_config_mode(NULL, &u32));
    NUL_RC(repl_config_mode(c, NULL));
    NUL_RC(repl_config_min_sync_replicas(NULL, &u32));
    NUL_RC(repl_config_min_sync_replicas(c, NULL));
    NUL_RC(repl_config_heartbeat_interval_ms(NULL, &u64));
    NUL_RC(repl_config_heartbeat_interval_ms(c, NULL));
    NUL_RC(repl_config_election_timeout_min_ms(NULL, &u64));
    NUL_RC(repl_config_election_timeout_min_ms(c, NULL));
    NUL_RC(repl_config_election_timeout_max_ms(NULL, &u64));
    NUL_RC(repl_config_election_timeout_max_ms(c, NULL));
    NUL_RC(repl_config_replication_timeout_ms(NULL, &u64));
    NUL_RC(repl_config_replication_timeout_ms(c, NULL));
    NUL_RC(repl_config_batch_size(NULL, &u64));
    NUL_RC(repl_config_batch_size(c, NULL));
    NUL_RC(repl_config_batch_timeout_ms(NULL, &u64));
    NUL_RC(repl_config_batch_timeout_ms(c, NULL));
    NUL_RC(repl_config_wal_segment_size_bytes(NULL, &u64));
    NUL_RC(repl_config_wal_segment_size_bytes(c, NULL));
    NUL_RC(repl_config_wal_sync_on_commit(NULL, &flag));
    NUL_RC(repl_config_wal_sync_on_commit(c, NULL));
    NUL_RC(repl_config_wal_sync_interval_ms(NULL, &u64));
    NUL_RC(repl_config_wal_sync_interval_ms(c, NULL));
    NUL_RC(repl_config_wal_zero_fill_ahead(NULL, &flag));
    NUL_RC(repl_config_wal_zero_fill_ahead(c, NULL));
    NUL_RC(repl_config_enable_wal_compression(NULL, &flag));
    NUL_RC(repl_config_enable_wal_compression(c, NULL));
    NUL_RC(repl_config_compression_level(NULL, &i32));
    NUL_RC(repl_config_compression_level(c, NULL));
    NUL_RC(repl_config_peer_count(NULL, &n));
    NUL_RC(repl_config_peer_count(c, NULL));
    NUL_RC(repl_config_peer_id(NULL, 0, &u64));
    NUL_RC(repl_config_peer_id(c, 0, NULL));
    NUL_RC(repl_config_warnings_count(NULL, &n));
    NUL_RC(repl_config_warnings_count(c, NULL));
    CHECK(u64 == S && u32 == (uint32_t)S && i32 == 0x5eed && flag && n == (size_t)S);

    text_fn texts[] = {repl_config_listen_address, repl_config_wal_directory};
    for (size_t i = 0; i < 2; i++) {
        NUL_RC(texts[i](NULL, buf, sizeof buf, &n));
        NUL_RC(texts[i](c, NULL, sizeof buf, &n)); /* NULL buffer with a non-zero length */
        NUL_RC(texts[i](c, buf, sizeof buf, NULL));
    }
    NUL_RC(repl_config_peer_address(NULL, 0, buf, sizeof buf, &n));
    NUL_RC(repl_config_peer_address(c, 0, NULL, sizeof buf, &n));
    NUL_RC(repl_config_peer_address(c, 0, buf, sizeof buf, NULL));
    NUL_RC(repl_config_warning(NULL, 0, buf, sizeof buf, &n));
    NUL_RC(repl_config_warning(c, 0, NULL, sizeof buf, &n));
    NUL_RC(repl_config_warning(c, 0, buf, sizeof buf, NULL));
    CHECK(n == (size_t)S);

    NUL_RC(repl_wal_open_from_config(NULL, &wout));
    NUL_RC(repl_wal_open_from_config(c, NULL));
    CHECK(wout == wsent);

    const uint64_t one = 1;
    NUL_RC(repl_vclock_new(NULL));
    NUL_RC(repl_vclock_from_entries(NULL, &one, 1, &vout));
    NUL_RC(repl_vclock_from_entries(&one, NULL, 1, &vout));
    NUL_RC(repl_vclock_from_entries(&one, &one, 1, NULL));
    NUL_RC(repl_vclock_clone(NULL, &vout));
    NUL_RC(repl_vclock_clone(v, NULL));
    CHECK(vout == vsent);
    NUL_RC(repl_vclock_increment(NULL, 1, &u64));
    NUL_RC(repl_vclock_increment(v, 1, NULL));
    NUL_RC(repl_vclock_get(NULL, 1, &u64));
    NUL_RC(repl_vclock_get(v, 1, NULL));
    NUL_RC(repl_vclock_merge(NULL, v));
    NUL_RC(repl_vclock_merge(v, NULL));
    NUL_RC(repl_vclock_merge(NULL, NULL)); /* the "same clock twice" path checks NULL too */
    NUL_RC(repl_vclock_compare(NULL, v, &u32));
    NUL_RC(repl_vclock_compare(v, NULL, &u32));
    NUL_RC(repl_vclock_compare(v, v, NULL));
    NUL_RC(repl_vclock_len(NULL, &n));
    NUL_RC(repl_vclock_len(v, NULL));
    NUL_RC(repl_vclock_entry(NULL, 0, &u64, &u64b));
    NUL_RC(repl_vclock_entry(v, 0, NULL, &u64b));
    NUL_RC(repl_vclock_entry(v, 0, &u64, NULL));
    CHECK(u64 == S && u32 == (uint32_t)S && n == (size_t)S);
#undef NUL_RC
    char detail[256];
    last_detail(detail, sizeof detail);
    CHECK(strcmp(detail, "repl_vclock_entry: argument `out_counter` is NULL") == 0);

    /* Nothing above changed the clock; the free functions accept NULL. */
    OK(repl_vclock_len(v, &n));
    CHECK(n == 0);
    repl_config_free(NULL);
    repl_vclock_free(NULL);
    repl_config_free(c);
    repl_vclock_free(v);
}

int main(void) {
    test_accessors();
    test_config_errors();
    test_config_files();
    test_wal_from_config();
    test_vclock();
    test_null_arguments();
    printf("config_vclock: all checks passed\n");
    return 0;
}
