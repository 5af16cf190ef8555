/*
 * replay_main.c — runs a libFuzzer harness without libFuzzer: every file named on the command
 * line (or found in a named directory, one level) is fed once to LLVMFuzzerTestOneInput.
 * Linked with one fuzz_*.c against the normal release library by `make fuzz-regress`, it
 * replays the committed reproducers (Tests/Fuzz/regressions/<harness>/); a reproducer that
 * still crashes the library crashes this program, naming the file first.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path) {
    FILE *f = fopen(path, "rb");
    long n;
    uint8_t *bytes;
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* An exact-size heap copy, as libFuzzer passes it: a read past the end is caught by ASan. */
    bytes = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        fclose(f);
        free(bytes);
        return 1;
    }
    fclose(f);
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(bytes, (size_t)n);
    free(bytes);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    int i, failures = 0, count = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *entry;
            char **names = NULL;
            size_t n = 0, k;
            while (d && (entry = readdir(d)) != NULL) {
                if (entry->d_name[0] == '.') continue; /* also .gitkeep */
                names = (char **)realloc(names, (n + 1) * sizeof *names);
                names[n] = (char *)malloc(strlen(argv[i]) + strlen(entry->d_name) + 2);
                sprintf(names[n], "%s/%s", argv[i], entry->d_name);
                n++;
            }
            if (d) closedir(d);
            if (n) qsort(names, n, sizeof *names, cmp);
            for (k = 0; k < n; k++) {
                failures += replay(names[k]);
                count++;
                free(names[k]);
            }
            free(names);
        } else {
            failures += replay(argv[i]);
            count++;
        }
    }
    fprintf(stderr, "replay: %d inputs, %d unreadable\n", count, failures);
    return failures ? 1 : 0;
}
