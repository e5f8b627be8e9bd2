/* Built only from `pkg-config --cflags --libs replication`: proves the .pc file is usable.
 * Usage: pkgconfig_smoke <version the .pc file declares> */
#include <replication.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *v = repl_version();
    if (argc < 2 || strcmp(v, argv[1]) != 0) {
        fprintf(stderr, "library version %s != pkg-config version %s\n", v, argc > 1 ? argv[1] : "?");
        return 1;
    }
    repl_hlc *h = NULL;
    uint64_t a = 0, b = 0;
    if (repl_hlc_new(500, &h) != REPL_OK || repl_hlc_now(h, &a) != REPL_OK ||
        repl_hlc_now(h, &b) != REPL_OK || !(b > a)) {
        fprintf(stderr, "HLC readings are not increasing\n");
        return 1;
    }
    repl_hlc_free(h);
    printf("pkgconfig_smoke: replication %s OK\n", v);
    return 0;
}
