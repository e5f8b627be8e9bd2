/*
 * Shared by the C tests: failure reporting that prints the library's last-error detail, and
 * temporary directories. Define _XOPEN_SOURCE 700 before including it (mkdtemp, nftw).
 */
#ifndef REPL_TEST_SUPPORT_H
#define REPL_TEST_SUPPORT_H

#include <replication.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What the test is doing, printed with every failure. */
static const char *g_step = "start";

static inline void print_detail(void) {
    char buf[1024];
    size_t len = 0;
    if (repl_last_error_detail(buf, sizeof buf, &len) == REPL_OK && len > 0) {
        fprintf(stderr, "  last error detail: %s\n", buf);
    }
}

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "%s:%d [%s]: ", __FILE__, __LINE__, g_step);                       \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fputc('\n', stderr);                                                               \
        print_detail();                                                                    \
        exit(1);                                                                           \
    } while (0)

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) FAIL("check failed: %s", #cond);                                      \
    } while (0)

#define EXPECT_RC(call, expected)                                                          \
    do {                                                                                   \
        repl_result rc_ = (call);                                                          \
        if (rc_ != (expected))                                                             \
            FAIL("%s returned %u, expected %s (%u)", #call, (unsigned)rc_, #expected,      \
                 (unsigned)(expected));                                                    \
    } while (0)

#define OK(call) EXPECT_RC(call, REPL_OK)

/* The calling thread's last-error detail, copied into buf; returns its length. */
static inline size_t last_detail(char *buf, size_t len) {
    size_t n = 0;
    OK(repl_last_error_detail(buf, len, &n));
    return n;
}

/* A new empty directory under $TMPDIR (or /tmp); free it with remove_tree. */
static inline char *make_temp_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/repl-c-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    char *copy = malloc(strlen(dir) + 1);
    CHECK(copy != NULL);
    strcpy(copy, dir);
    return copy;
}

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes `dir` and everything in it, then frees the string. */
static inline void remove_tree(char *dir) {
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

#endif /* REPL_TEST_SUPPORT_H */
