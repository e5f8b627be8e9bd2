/*
 * C API test: a 100,000-record WAL round trip through close and reopen, then the error
 * contract of every function (NULL pointers, invalid UTF-8, closed handles, outputs left
 * untouched on failure). Built with ASan + UBSan by tests/CMakeLists.txt, and run under
 * Valgrind by scripts/test-c-cpp.sh when REPL_VALGRIND=1. The configuration and vector-clock
 * functions are tested by config_vclock.c.
 *
 * Usage: wal_roundtrip [record-count]   (default 100000)
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#define _DEFAULT_SOURCE   /* usleep */

#include "test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Deterministic records: every field derives from the index, so the reader regenerates them. */

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

enum { MAX_PAYLOAD = 600 };

typedef struct {
    char collection[32];
    char doc_id[64];
    uint8_t payload[MAX_PAYLOAD];
    repl_record rec;
} gen_record;

static const uint64_t HLC_BASE = (uint64_t)1732540000000ULL << 16;

static void make_record(uint64_t i, gen_record *g) {
    uint64_t h = mix(i);
    int n = snprintf(g->collection, sizeof g->collection, "coll_%u", (unsigned)(i % 13));
    /* Non-ASCII UTF-8 in ids: "dokument-<i>-\u00e9" */
    int m = snprintf(g->doc_id, sizeof g->doc_id, "dokument-%" PRIu64 "-\xc3\xa9", i);
    size_t plen = (i % 50 == 0) ? 0 : (size_t)(h % MAX_PAYLOAD);
    for (size_t k = 0; k < plen; k++) g->payload[k] = (uint8_t)(mix(h + k) >> 56);

    memset(&g->rec, 0, sizeof g->rec);
    g->rec.term = i / 1000 + 1;
    g->rec.hlc = HLC_BASE + i * 3;
    g->rec.origin = h % 5 + 1;
    /* Mostly the four known operations; sometimes a code from a "newer writer". */
    g->rec.op = (i % 997 == 0) ? (uint8_t)200 : (uint8_t)(REPL_OP_INSERT + i % 4);
    g->rec.collection = (const uint8_t *)g->collection;
    g->rec.collection_len = (size_t)n;
    g->rec.doc_id = (const uint8_t *)g->doc_id;
    g->rec.doc_id_len = (size_t)m;
    g->rec.has_txn_id = (i % 3 == 0);
    g->rec.txn_id = g->rec.has_txn_id ? (h ^ 0x5555) : 0;
    g->rec.payload = plen ? g->payload : NULL; /* NULL with length 0 is allowed */
    g->rec.payload_len = plen;
}

static int bytes_eq(const uint8_t *a, size_t alen, const void *b, size_t blen) {
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_view(const repl_record_view *v, uint64_t expected_lsn) {
    gen_record g;
    make_record(expected_lsn, &g);
    if (v->lsn != expected_lsn) FAIL("lsn %" PRIu64 " != %" PRIu64, v->lsn, expected_lsn);
    const repl_record *r = &v->record;
    if (r->term != g.rec.term || r->hlc != g.rec.hlc || r->origin != g.rec.origin ||
        r->op != g.rec.op || r->has_txn_id != g.rec.has_txn_id || r->txn_id != g.rec.txn_id)
        FAIL("fixed fields of record %" PRIu64 " differ", expected_lsn);
    if (!bytes_eq(r->collection, r->collection_len, g.collection, g.rec.collection_len))
        FAIL("collection of record %" PRIu64 " differs", expected_lsn);
    if (!bytes_eq(r->doc_id, r->doc_id_len, g.doc_id, g.rec.doc_id_len))
        FAIL("doc_id of record %" PRIu64 " differs", expected_lsn);
    if (!bytes_eq(r->payload, r->payload_len, g.payload, g.rec.payload_len))
        FAIL("payload of record %" PRIu64 " differs", expected_lsn);
}

/* ---------------------------------------------------------------------------------------- */
/* Helpers. */

static repl_wal_options options_for(const char *dir) {
    repl_wal_options o;
    OK(repl_wal_options_default(&o));
    o.dir = (const uint8_t *)dir;
    o.dir_len = strlen(dir);
    return o;
}

static repl_wal *open_wal(const repl_wal_options *o) {
    repl_wal *w = NULL;
    OK(repl_wal_open(o, &w));
    CHECK(w != NULL);
    return w;
}

static uint64_t lsn_of(repl_result (*f)(const repl_wal *, uint64_t *), const repl_wal *w) {
    uint64_t v = 0;
    OK(f(w, &v));
    return v;
}

/* ---------------------------------------------------------------------------------------- */

static void test_round_trip(uint64_t count) {
    g_step = "round trip: append";
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    o.durability = REPL_DURABILITY_NONE; /* one fdatasync per record would take minutes */
    o.segment_size_bytes = 256 * 1024; /* many segments: exercises rotation */
    o.compression_min_batch_bytes = 512;
    repl_wal *w = open_wal(&o);
    CHECK(lsn_of(repl_wal_last_lsn, w) == 0);
    CHECK(lsn_of(repl_wal_first_lsn, w) == 1);

    /* First half one by one, second half in batches of 250 (a partial last batch). */
    uint64_t half = count / 2, i = 1;
    gen_record g;
    for (; i <= half; i++) {
        make_record(i, &g);
        uint64_t lsn = 0;
        OK(repl_wal_append(w, &g.rec, &lsn));
        if (lsn != i) FAIL("append returned LSN %" PRIu64 ", expected %" PRIu64, lsn, i);
    }
    enum { BATCH = 250 };
    gen_record *batch = malloc(sizeof(gen_record) * BATCH);
    repl_record *recs = malloc(sizeof(repl_record) * BATCH);
    CHECK(batch && recs);
    while (i <= count) {
        size_t n = 0;
        for (; n < BATCH && i + n <= count; n++) {
            make_record(i + n, &batch[n]);
            recs[n] = batch[n].rec;
        }
        uint64_t first = 0, last = 0;
        OK(repl_wal_append_batch(w, recs, n, &first, &last));
        CHECK(first == i && last == i + n - 1);
        i += n;
    }
    free(batch);
    free(recs);
    CHECK(lsn_of(repl_wal_last_lsn, w) == count);
    OK(repl_wal_sync(w));
    CHECK(lsn_of(repl_wal_durable_lsn, w) == count);
    OK(repl_wal_close(w));
    repl_wal_free(w);

    g_step = "round trip: reopen and read";
    o.durability = REPL_DURABILITY_EVERY_COMMIT;
    o.recovery_mode = REPL_RECOVERY_ABSOLUTE_CONSISTENCY; /* a clean close leaves no torn tail */
    w = open_wal(&o);
    CHECK(lsn_of(repl_wal_first_lsn, w) == 1);
    CHECK(lsn_of(repl_wal_last_lsn, w) == count);
    CHECK(lsn_of(repl_wal_durable_lsn, w) == count);

    repl_wal_iter *it = NULL;
    OK(repl_wal_read_from(w, 1, &it));
    uint64_t seen = 0;
    for (;;) {
        repl_record_view v;
        bool has = false;
        OK(repl_wal_iter_next(it, &v, &has));
        if (!has) {
            CHECK(v.lsn == 0 && v.record.collection == NULL && v.record.payload_len == 0);
            break;
        }
        check_view(&v, ++seen);
    }
    CHECK(seen == count);
    { /* An exhausted iterator stays exhausted. */
        repl_record_view v;
        bool has = true;
        OK(repl_wal_iter_next(it, &v, &has));
        CHECK(!has);
    }
    repl_wal_iter_free(it);

    g_step = "round trip: tail read, timestamps, truncate, purge";
    OK(repl_wal_read_from(w, count - 9, &it));
    seen = 0;
    for (bool has = true; has;) {
        repl_record_view v;
        OK(repl_wal_iter_next(it, &v, &has));
        if (has) check_view(&v, count - 9 + seen++);
    }
    CHECK(seen == 10);
    repl_wal_iter_free(it);

    bool found = false;
    uint64_t at = 0;
    OK(repl_wal_find_lsn_by_timestamp(w, HLC_BASE + (half + 7) * 3, &found, &at));
    CHECK(found && at == half + 7);
    OK(repl_wal_find_lsn_by_timestamp(w, HLC_BASE + (half + 7) * 3 - 1, &found, &at));
    CHECK(found && at == half + 7); /* first record at or after the timestamp */
    OK(repl_wal_find_lsn_by_timestamp(w, HLC_BASE + (count + 1) * 3, &found, &at));
    CHECK(!found && at == 0);

    OK(repl_wal_truncate_after(w, count - 1000));
    CHECK(lsn_of(repl_wal_last_lsn, w) == count - 1000);
    size_t removed = 0;
    OK(repl_wal_purge_before(w, half, &removed));
    uint64_t first = lsn_of(repl_wal_first_lsn, w);
    CHECK(removed > 0 && first > 1 && first <= half);
    EXPECT_RC(repl_wal_read_from(w, 1, &it), REPL_ERR_WAL_LSN_OUT_OF_RANGE);

    make_record(count - 999, &g);
    uint64_t lsn = 0;
    OK(repl_wal_append(w, &g.rec, &lsn)); /* durable on return (EVERY_COMMIT) */
    CHECK(lsn == count - 999);
    CHECK(lsn_of(repl_wal_durable_lsn, w) >= lsn);
    OK(repl_wal_close(w));
    repl_wal_free(w);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------- */

static void test_error_text(void) {
    g_step = "error text";
    char buf[256];
    size_t len = 12345;
    OK(repl_error_message(REPL_OK, buf, sizeof buf, &len));
    CHECK(len == strlen("success") && strcmp(buf, "success") == 0);

    /* Size query: NULL buffer with length 0; the length is reported, nothing else written. */
    len = 0;
    EXPECT_RC(repl_error_message(REPL_ERR_WAL_CORRUPT, NULL, 0, &len), REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(len > 0);
    char exact[256];
    memset(exact, 'x', sizeof exact);
    EXPECT_RC(repl_error_message(REPL_ERR_WAL_CORRUPT, exact, len, &len),
              REPL_ERR_BUFFER_TOO_SMALL); /* no room for the NUL */
    CHECK(exact[0] == 'x');
    OK(repl_error_message(REPL_ERR_WAL_CORRUPT, exact, len + 1, &len));
    CHECK(strlen(exact) == len);

    OK(repl_error_message(4242, buf, sizeof buf, &len));
    CHECK(strstr(buf, "4242") != NULL);

    /* A failure records a detail naming the function; asking for it with a too-small buffer
     * does not replace it. */
    EXPECT_RC(repl_wal_options_default(NULL), REPL_ERR_NULL_ARGUMENT);
    char tiny[4];
    EXPECT_RC(repl_last_error_detail(tiny, sizeof tiny, &len), REPL_ERR_BUFFER_TOO_SMALL);
    CHECK(len > sizeof tiny);
    EXPECT_RC(repl_last_error_detail(buf, sizeof buf, NULL), REPL_ERR_NULL_ARGUMENT);
    CHECK(last_detail(buf, sizeof buf) == len);
    CHECK(strncmp(buf, "repl_wal_options_default: ", 26) == 0 && strstr(buf, "`out`"));

    const char *v = repl_version();
    CHECK(v != NULL && strchr(v, '.') != NULL);
}

/* Every pointer argument of every function, one at a time, set to NULL: the documented code,
 * and no output written. */
static void test_null_arguments(void) {
    g_step = "NULL arguments";
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    o.durability = REPL_DURABILITY_NONE;
    repl_wal *w = open_wal(&o);
    repl_hlc *h = NULL;
    OK(repl_hlc_new(500, &h));
    gen_record g;
    make_record(1, &g);
    uint64_t lsn = 0;
    OK(repl_wal_append(w, &g.rec, &lsn));
    repl_wal_iter *it = NULL;
    OK(repl_wal_read_from(w, 1, &it));

    const uint64_t S = 0xdeadbeefULL; /* sentinel: must survive every failing call */
    uint64_t a = S, b = S;
    bool flag = true;
    size_t n = (size_t)S;
    repl_wal *wout = (repl_wal *)&a; /* any non-NULL sentinel pointer value */
    repl_wal *const wsent = wout;
    repl_wal_iter *iout = (repl_wal_iter *)&b;
    repl_wal_iter *const isent = iout;
    repl_hlc *hout = (repl_hlc *)&a;
    repl_hlc *const hsent = hout;
    repl_record_view view;
    memset(&view, 0xab, sizeof view);
    repl_record_view vsent = view;
    char buf[64];

#define NUL_RC(call) EXPECT_RC(call, REPL_ERR_NULL_ARGUMENT)
    NUL_RC(repl_wal_options_default(NULL));

    NUL_RC(repl_wal_open(NULL, &wout));
    NUL_RC(repl_wal_open(&o, NULL));
    repl_wal_options onull = o;
    onull.dir = NULL;
    NUL_RC(repl_wal_open(&onull, &wout));
    CHECK(wout == wsent);

    NUL_RC(repl_wal_append(NULL, &g.rec, &a));
    NUL_RC(repl_wal_append(w, NULL, &a));
    NUL_RC(repl_wal_append(w, &g.rec, NULL));
    repl_record r = g.rec;
    r.collection = NULL;
    NUL_RC(repl_wal_append(w, &r, &a));
    r = g.rec;
    r.doc_id = NULL;
    NUL_RC(repl_wal_append(w, &r, &a));
    r = g.rec;
    r.payload = NULL;
    r.payload_len = 5;
    NUL_RC(repl_wal_append(w, &r, &a));
    CHECK(a == S);

    NUL_RC(repl_wal_append_batch(NULL, &g.rec, 1, &a, &b));
    NUL_RC(repl_wal_append_batch(w, NULL, 1, &a, &b));
    NUL_RC(repl_wal_append_batch(w, &g.rec, 1, NULL, &b));
    NUL_RC(repl_wal_append_batch(w, &g.rec, 1, &a, NULL));
    CHECK(a == S && b == S);

    NUL_RC(repl_wal_read_from(NULL, 1, &iout));
    NUL_RC(repl_wal_read_from(w, 1, NULL));
    CHECK(iout == isent);

    NUL_RC(repl_wal_iter_next(NULL, &view, &flag));
    NUL_RC(repl_wal_iter_next(it, NULL, &flag));
    NUL_RC(repl_wal_iter_next(it, &view, NULL));
    CHECK(flag == true && memcmp(&view, &vsent, sizeof view) == 0);

    NUL_RC(repl_wal_find_lsn_by_timestamp(NULL, 0, &flag, &a));
    NUL_RC(repl_wal_find_lsn_by_timestamp(w, 0, NULL, &a));
    NUL_RC(repl_wal_find_lsn_by_timestamp(w, 0, &flag, NULL));
    CHECK(flag == true && a == S);

    NUL_RC(repl_wal_truncate_after(NULL, 0));
    NUL_RC(repl_wal_purge_before(NULL, 0, &n));
    NUL_RC(repl_wal_purge_before(w, 0, NULL));
    CHECK(n == (size_t)S);

    NUL_RC(repl_wal_first_lsn(NULL, &a));
    NUL_RC(repl_wal_first_lsn(w, NULL));
    NUL_RC(repl_wal_last_lsn(NULL, &a));
    NUL_RC(repl_wal_last_lsn(w, NULL));
    NUL_RC(repl_wal_durable_lsn(NULL, &a));
    NUL_RC(repl_wal_durable_lsn(w, NULL));
    CHECK(a == S);
    NUL_RC(repl_wal_sync(NULL));
    NUL_RC(repl_wal_close(NULL));

    NUL_RC(repl_hlc_new(500, NULL));
    NUL_RC(repl_hlc_now(NULL, &a));
    NUL_RC(repl_hlc_now(h, NULL));
    NUL_RC(repl_hlc_update(NULL, 0, &a));
    NUL_RC(repl_hlc_update(h, 0, NULL));
    CHECK(a == S && hout == hsent);

    NUL_RC(repl_error_message(REPL_OK, NULL, sizeof buf, &n));
    NUL_RC(repl_error_message(REPL_OK, buf, sizeof buf, NULL));
    NUL_RC(repl_last_error_detail(NULL, sizeof buf, &n));
    NUL_RC(repl_last_error_detail(buf, sizeof buf, NULL));
    CHECK(n == (size_t)S);
#undef NUL_RC

    /* The free functions accept NULL. */
    repl_wal_free(NULL);
    repl_wal_iter_free(NULL);
    repl_hlc_free(NULL);

    /* Nothing above changed the WAL. */
    CHECK(lsn_of(repl_wal_last_lsn, w) == 1);
    repl_wal_iter_free(it);
    repl_hlc_free(h);
    OK(repl_wal_close(w));
    repl_wal_free(w);
    remove_tree(dir);
}

static void test_invalid_utf8(void) {
    g_step = "invalid UTF-8";
    static const uint8_t bad[] = {'a', 0xc3, 0x28, 'b'}; /* 0xc3 starts a 2-byte sequence */
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    o.durability = REPL_DURABILITY_NONE;

    repl_wal_options obad = o;
    obad.dir = bad;
    obad.dir_len = sizeof bad;
    repl_wal *wout = NULL;
    EXPECT_RC(repl_wal_open(&obad, &wout), REPL_ERR_INVALID_UTF8);
    CHECK(wout == NULL);
    char detail[512];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "options->dir") != NULL);

    repl_wal *w = open_wal(&o);
    gen_record g;
    make_record(1, &g);
    uint64_t lsn = 77;
    repl_record r = g.rec;
    r.collection = bad;
    r.collection_len = sizeof bad;
    EXPECT_RC(repl_wal_append(w, &r, &lsn), REPL_ERR_INVALID_UTF8);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "record.collection") != NULL);
    r = g.rec;
    r.doc_id = bad;
    r.doc_id_len = sizeof bad;
    EXPECT_RC(repl_wal_append(w, &r, &lsn), REPL_ERR_INVALID_UTF8);
    CHECK(lsn == 77);

    /* In a batch, the detail names the record; nothing of the batch is appended. */
    repl_record two[2] = {g.rec, r};
    uint64_t first = 5, last = 6;
    EXPECT_RC(repl_wal_append_batch(w, two, 2, &first, &last), REPL_ERR_INVALID_UTF8);
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, "records[1].doc_id") != NULL);
    CHECK(first == 5 && last == 6 && lsn_of(repl_wal_last_lsn, w) == 0);

    OK(repl_wal_close(w));
    repl_wal_free(w);
    remove_tree(dir);
}

static void test_closed_handle(void) {
    g_step = "closed handle";
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    o.durability = REPL_DURABILITY_NONE;
    repl_wal *w = open_wal(&o);
    gen_record g;
    make_record(1, &g);
    uint64_t a = 9, b = 9;
    OK(repl_wal_append(w, &g.rec, &a));
    repl_wal_iter *it = NULL;
    OK(repl_wal_read_from(w, 1, &it));
    OK(repl_wal_close(w));

    a = b = 9;
    bool flag = true;
    size_t n = 9;
    repl_wal_iter *iout = NULL;
    repl_record_view view;
#define CLOSED_RC(call) EXPECT_RC(call, REPL_ERR_HANDLE_CLOSED)
    CLOSED_RC(repl_wal_append(w, &g.rec, &a));
    CLOSED_RC(repl_wal_append_batch(w, &g.rec, 1, &a, &b));
    CLOSED_RC(repl_wal_read_from(w, 1, &iout));
    CLOSED_RC(repl_wal_find_lsn_by_timestamp(w, 0, &flag, &a));
    CLOSED_RC(repl_wal_truncate_after(w, 0));
    CLOSED_RC(repl_wal_purge_before(w, 1, &n));
    CLOSED_RC(repl_wal_first_lsn(w, &a));
    CLOSED_RC(repl_wal_last_lsn(w, &a));
    CLOSED_RC(repl_wal_durable_lsn(w, &a));
    CLOSED_RC(repl_wal_sync(w));
    CLOSED_RC(repl_wal_close(w));
    CLOSED_RC(repl_wal_iter_next(it, &view, &flag)); /* iterators of a closed WAL, too */
#undef CLOSED_RC
    CHECK(a == 9 && b == 9 && n == 9 && flag && iout == NULL);

    /* The directory lock goes away once the handle is closed and its iterators are freed, even
     * though the closed handle itself is not freed yet. */
    repl_wal_iter_free(it);
    repl_wal *again = open_wal(&o);
    CHECK(lsn_of(repl_wal_last_lsn, again) == 1);
    repl_wal *third = NULL;
    EXPECT_RC(repl_wal_open(&o, &third), REPL_ERR_WAL_DIR_LOCKED);
    CHECK(third == NULL);
    repl_wal_free(again); /* free closes an open WAL */
    repl_wal_free(w);
    remove_tree(dir);
}

static void test_wal_errors(void) {
    g_step = "WAL errors";
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    o.durability = REPL_DURABILITY_NONE;
    repl_wal *w = NULL;

    repl_wal_options bad = o;
    bad.segment_size_bytes = 10;
    EXPECT_RC(repl_wal_open(&bad, &w), REPL_ERR_WAL_INVALID_OPTIONS);
    bad = o;
    bad.durability = 7;
    EXPECT_RC(repl_wal_open(&bad, &w), REPL_ERR_WAL_INVALID_OPTIONS);
    bad = o;
    bad.recovery_mode = 7;
    EXPECT_RC(repl_wal_open(&bad, &w), REPL_ERR_WAL_INVALID_OPTIONS);
    bad = o;
    bad.durability = REPL_DURABILITY_INTERVAL;
    bad.sync_interval_ms = 0;
    EXPECT_RC(repl_wal_open(&bad, &w), REPL_ERR_WAL_INVALID_OPTIONS);
    CHECK(w == NULL);

    /* Interval durability works and its background thread stops on close. */
    bad.sync_interval_ms = 5;
    w = open_wal(&bad);
    gen_record g;
    make_record(1, &g);
    uint64_t lsn = 0;
    OK(repl_wal_append(w, &g.rec, &lsn));
    OK(repl_wal_close(w));
    repl_wal_free(w);

    o.segment_size_bytes = 4096;
    w = open_wal(&o);
    repl_record r = g.rec;
    r.op = 0;
    EXPECT_RC(repl_wal_append(w, &r, &lsn), REPL_ERR_WAL_INVALID_RECORD);
    uint64_t first = 3, last = 3;
    EXPECT_RC(repl_wal_append_batch(w, &g.rec, 0, &first, &last), REPL_ERR_WAL_INVALID_RECORD);
    EXPECT_RC(repl_wal_append_batch(w, NULL, 0, &first, &last), REPL_ERR_WAL_INVALID_RECORD);
    CHECK(first == 3 && last == 3);
    repl_wal_iter *it = NULL;
    EXPECT_RC(repl_wal_read_from(w, 3, &it), REPL_ERR_WAL_LSN_OUT_OF_RANGE);
    CHECK(it == NULL);
    OK(repl_wal_read_from(w, 2, &it)); /* last_lsn + 1: empty */
    repl_record_view v;
    bool has = true;
    OK(repl_wal_iter_next(it, &v, &has));
    CHECK(!has);
    repl_wal_iter_free(it);

    /* Several segments, then a flipped byte in the first one: reopening fails and the detail
     * names the file and the offset. */
    for (uint64_t i = 2; i <= 300; i++) {
        make_record(i, &g);
        OK(repl_wal_append(w, &g.rec, &lsn));
    }
    OK(repl_wal_close(w));
    repl_wal_free(w);

    char first_seg[4352] = "";
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".wal") == 0 &&
            (!first_seg[0] || strcmp(e->d_name, strrchr(first_seg, '/') + 1) < 0))
            snprintf(first_seg, sizeof first_seg, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    CHECK(first_seg[0] != '\0');
    int fd = open(first_seg, O_RDWR);
    CHECK(fd >= 0);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, 100) == 1);
    byte ^= 0x40;
    CHECK(pwrite(fd, &byte, 1, 100) == 1);
    close(fd);
    w = NULL;
    EXPECT_RC(repl_wal_open(&o, &w), REPL_ERR_WAL_CORRUPT);
    CHECK(w == NULL);
    char detail[8192];
    last_detail(detail, sizeof detail);
    CHECK(strstr(detail, first_seg) != NULL && strstr(detail, "offset") != NULL);
    remove_tree(dir);
}

static void test_hlc(void) {
    g_step = "HLC";
    repl_hlc *h = NULL;
    OK(repl_hlc_new(1000, &h));
    uint64_t prev = 0, t = 0;
    for (int i = 0; i < 10000; i++) {
        OK(repl_hlc_now(h, &t));
        CHECK(t > prev);
        prev = t;
    }
    /* A remote slightly ahead: the result passes it. */
    uint64_t remote = prev + ((uint64_t)200 << 16), out = 0;
    OK(repl_hlc_update(h, remote, &out));
    CHECK(out > remote);
    OK(repl_hlc_now(h, &t));
    CHECK(t > out);
    /* A remote an hour ahead: rejected, output untouched, clock unchanged. */
    uint64_t far = t + ((uint64_t)3600 * 1000 << 16);
    out = 1;
    EXPECT_RC(repl_hlc_update(h, far, &out), REPL_ERR_CLOCK_DRIFT_EXCEEDED);
    CHECK(out == 1);
    char detail[1024];
    last_detail(detail, sizeof detail);
    CHECK(strncmp(detail, "repl_hlc_update: ", 17) == 0 && strstr(detail, "drift"));
    OK(repl_hlc_now(h, &out));
    CHECK(out > t && out < far);
    repl_hlc_free(h);
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Zero fill ahead (on by default): the open segment runs past its data with zeros, closing
 * trims them, and the records read back with the option off as well. */
static void test_zero_fill_ahead(void) {
    g_step = "zero fill ahead";
    char *dir = make_temp_dir();
    repl_wal_options o = options_for(dir);
    CHECK(o.zero_fill_ahead == true);
    repl_wal *w = open_wal(&o);
    gen_record g;
    for (uint64_t i = 1; i <= 10; i++) {
        make_record(i, &g);
        uint64_t lsn = 0;
        OK(repl_wal_append(w, &g.rec, &lsn));
    }
    char seg[4096];
    snprintf(seg, sizeof seg, "%s/00000000000000000001.wal", dir);
    for (int i = 0; i < 2000 && file_size(seg) < (1 << 20); i++) usleep(5000);
    CHECK(file_size(seg) >= (1 << 20));
    OK(repl_wal_close(w));
    repl_wal_free(w);
    CHECK(file_size(seg) > 0 && file_size(seg) < (1 << 16));
    o.zero_fill_ahead = false;
    w = open_wal(&o);
    CHECK(lsn_of(repl_wal_last_lsn, w) == 10);
    OK(repl_wal_close(w));
    repl_wal_free(w);
    CHECK(file_size(seg) < (1 << 16));
    remove_tree(dir);
}

int main(int argc, char **argv) {
    uint64_t count = 100000;
    if (argc > 1) count = strtoull(argv[1], NULL, 10);
    CHECK(count >= 2000);
    test_error_text();
    test_null_arguments();
    test_invalid_utf8();
    test_closed_handle();
    test_wal_errors();
    test_hlc();
    test_zero_fill_ahead();
    test_round_trip(count);
    printf("wal_roundtrip: all checks passed (%" PRIu64 " records)\n", count);
    return 0;
}
