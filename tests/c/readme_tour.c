/* README tour (C): load a config, open its WAL, append, read back, search by time. */
#include <replication.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *call) { /* prints the detail of this thread's last failure */
    char detail[1024];
    size_t len;
    repl_last_error_detail(detail, sizeof detail, &len);
    fprintf(stderr, "%s failed: %s\n", call, detail);
    return 1;
}
#define TRY(call) do { if ((call) != REPL_OK) return fail(#call); } while (0)

static repl_record record(uint64_t hlc, uint8_t op, const char *doc_id, const char *json) {
    return (repl_record){.hlc = hlc, .op = op, .collection = (const uint8_t *)"users",
                         .collection_len = 5, .doc_id = (const uint8_t *)doc_id,
                         .doc_id_len = strlen(doc_id), .payload = (const uint8_t *)json,
                         .payload_len = strlen(json)};
}

int main(void) {
    const char *toml = "node_id = 1\nwal_directory = \"tour-wal\"\n";
    repl_config *cfg = NULL;
    repl_wal *wal = NULL;
    TRY(repl_config_from_toml((const uint8_t *)toml, strlen(toml), &cfg));
    TRY(repl_wal_open_from_config(cfg, &wal)); /* ./tour-wal, fdatasync on every commit */
    repl_config_free(cfg);

    repl_hlc *clock = NULL;
    uint64_t now, lsn, first, last;
    TRY(repl_hlc_new(500, &clock)); /* rejects remote timestamps > 500 ms ahead */
    TRY(repl_hlc_now(clock, &now));
    repl_record ada = record(now, REPL_OP_INSERT, "u1", "{\"name\":\"Ada\"}");
    TRY(repl_wal_append(wal, &ada, &lsn));
    TRY(repl_hlc_now(clock, &now));
    repl_record batch[] = {record(now, REPL_OP_UPDATE, "u1", "{\"name\":\"Ada L.\"}"),
                           record(now, REPL_OP_DELETE, "u2", "")};
    TRY(repl_wal_append_batch(wal, batch, 2, &first, &last)); /* atomic: all or nothing */

    repl_wal_iter *it = NULL;
    repl_record_view v;
    TRY(repl_wal_read_from(wal, lsn, &it));
    for (bool has = true; has;) {
        TRY(repl_wal_iter_next(it, &v, &has)); /* v points into `it` until the next call */
        if (has) printf("lsn %" PRIu64 ": %.*s\n", v.lsn, (int)v.record.doc_id_len,
                        (const char *)v.record.doc_id);
    }
    repl_wal_iter_free(it);

    bool found;
    uint64_t at;
    TRY(repl_wal_find_lsn_by_timestamp(wal, now, &found, &at)); /* first record >= now */
    repl_hlc_free(clock);
    TRY(repl_wal_close(wal));
    repl_wal_free(wal);
    return (first == lsn + 1 && last == lsn + 2 && found && at == first) ? 0 : 1;
}
