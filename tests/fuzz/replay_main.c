/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * A main() for compilers without libFuzzer: runs LLVMFuzzerTestOneInput
 * over every file named on the command line or found in a folder named
 * there (one level), each from an exact-size heap copy so that sanitizers
 * see any read past the end. Exits non-zero if nothing was run or a file
 * could not be read; an invariant failure aborts.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;
    int rc = -1;

    if (!f) goto cleanup;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto cleanup;
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) goto cleanup;
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    rc = 0;
cleanup:
    if (rc) fprintf(stderr, "cannot read %s\n", path);
    free(buf);
    if (f) fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    int runs = 0, failures = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d;
        struct dirent *de;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "cannot stat %s\n", argv[i]);
            failures++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failures += run_file(argv[i]) != 0;
            runs++;
            continue;
        }
        d = opendir(argv[i]);
        if (!d) {
            failures++;
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            char path[8192];

            if (de->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            failures += run_file(path) != 0;
            runs++;
        }
        closedir(d);
    }
    fprintf(stderr, "replayed %d inputs, %d unreadable\n", runs, failures);
    return (runs == 0 || failures) ? 1 : 0;
}
