/*
 * fuzz_common.h — shared by the libFuzzer harnesses in Tests/Fuzz (fuzz_*.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize where it needs state
 * built once). The same sources link two ways:
 *   - with -fsanitize=fuzzer,address against the instrumented library (make fuzz), and
 *   - with replay_main.c against the normal release library (make fuzz-regress), which feeds
 *     every committed reproducer once.
 *
 * Fixtures are read from the repository root: $SX_FUZZ_ROOT if set, else SX_FUZZ_ROOT_DEFAULT
 * (the Makefile passes the checkout's absolute path).
 *
 * A harness never calls abort() for a refused input: every refusal is a status and is fine.
 * It aborts only for a broken contract the header states (a status outside the enum, a
 * callback count that does not match the batch, an engine left unusable), so that libFuzzer
 * reports it as a crash.
 */
#ifndef SX_FUZZ_COMMON_H
#define SX_FUZZ_COMMON_H

#include "selfxit.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SX_FUZZ_ROOT_DEFAULT
#define SX_FUZZ_ROOT_DEFAULT "."
#endif

/* The fixture every stateful harness runs on: 1×28×28 input, 10 classes, 200 KB. */
#define SX_FUZZ_MODEL "Tests/Fixtures/models/resnet18_w4.onnx"
/* An RGB fixture (3×32×32) for the image harness's colour path. */
#define SX_FUZZ_MODEL_RGB "Tests/Fixtures/models/mobilenet_v3ish.onnx"
/* The committed exit bundle for SX_FUZZ_MODEL (seed of the bundle harness, exits of the input
 * harness). Regenerate with `make fuzz-seeds` when the bundle format changes. */
#define SX_FUZZ_BUNDLE "Tests/Fuzz/seeds/bundle/resnet18_w4.sxe"

static inline const char *sx_fuzz_root(void) {
    const char *root = getenv("SX_FUZZ_ROOT");
    return (root && *root) ? root : SX_FUZZ_ROOT_DEFAULT;
}

static inline void sx_fuzz_path(char *out, size_t cap, const char *relative) {
    snprintf(out, cap, "%s/%s", sx_fuzz_root(), relative);
}

/* Reads a whole file (relative to the root); NULL on failure. Caller frees. */
static inline unsigned char *sx_fuzz_read(const char *relative, size_t *size) {
    char path[4096];
    FILE *f;
    long n;
    unsigned char *bytes;
    sx_fuzz_path(path, sizeof path, relative);
    f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    bytes = (unsigned char *)malloc((size_t)n + 1);
    if (bytes && fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        free(bytes);
        bytes = NULL;
    }
    fclose(f);
    if (bytes) *size = (size_t)n;
    return bytes;
}

static inline void sx_fuzz_die(const char *what, sx_status s) {
    fprintf(stderr, "fuzz harness: %s -> %d (%s): %s\n", what, (int)s, sx_status_string(s), sx_last_error());
    abort();
}

/* A status must be one the header defines, and a failure must come with a message. */
static inline void sx_fuzz_check_status(const char *what, sx_status s) {
    /* sx_status_string names every status the header defines, and only those. */
    if ((int)s < (int)SX_OK || strcmp(sx_status_string(s), "unknown status") == 0) sx_fuzz_die(what, s);
    if (s != SX_OK && sx_last_error()[0] == '\0') sx_fuzz_die("a failure without a message from sx_last_error", s);
    /* INTERNAL is the library admitting a bug: count it as a finding. */
    if (s == SX_ERR_INTERNAL) sx_fuzz_die(what, s);
}

/* Engine options for fuzzing: one kernel thread (deterministic, and no pool threads to
 * start per input), a small max_batch so activations stay small. */
static inline void sx_fuzz_options(sx_engine_options *o, uint32_t max_batch) {
    sx_engine_options_init(o);
    o->threads = 1;
    o->max_batch = max_batch;
    o->collection_budget_bytes = 1u << 20;
}

/* Opens a fixture model; aborts if it cannot (the harness is misconfigured). */
static inline sx_engine *sx_fuzz_open(const char *relative, uint32_t max_batch) {
    char path[4096];
    sx_engine_options o;
    sx_engine *e = NULL;
    sx_status s;
    sx_fuzz_path(path, sizeof path, relative);
    sx_fuzz_options(&o, max_batch);
    s = sx_engine_create(path, &o, &e);
    if (s != SX_OK) {
        fprintf(stderr, "fuzz harness: cannot open %s (set SX_FUZZ_ROOT to the repository root)\n", path);
        sx_fuzz_die("sx_engine_create", s);
    }
    return e;
}

/* The exit bundle's checksum and fingerprint function (Engine+ExitBundle.swift). */
static inline uint64_t sx_fuzz_fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x00000100000001B3ull;
    return h;
}

/* Counts callbacks and checks each result against the header's contract. */
typedef struct sx_fuzz_tally {
    size_t calls;
    size_t batch;
    size_t num_classes;
    unsigned char seen[64];
} sx_fuzz_tally;

static inline void sx_fuzz_on_result(const sx_result *r, void *user) {
    sx_fuzz_tally *t = (sx_fuzz_tally *)user;
    t->calls++;
    if (r == NULL || r->sample_index >= t->batch || r->num_classes != t->num_classes || r->probabilities == NULL ||
        r->class_index < -1 || (r->class_index >= 0 && (size_t)r->class_index >= r->num_classes) ||
        r->exit_index < -1 ||
        /* No class (-1) only for a non-finite result: flagged, confidence 0, from the full model. */
        (r->class_index == -1 && !((r->flags & SX_RESULT_NON_FINITE) && r->confidence == 0 && r->exit_index == -1)) ||
        ((r->flags & SX_RESULT_NON_FINITE) && r->class_index != -1)) {
        fprintf(stderr, "fuzz harness: malformed sx_result (sample %zu of %zu, class %d of %zu, exit %d)\n",
                r ? r->sample_index : 0, t->batch, r ? r->class_index : -1, r ? r->num_classes : 0,
                r ? r->exit_index : -2);
        abort();
    }
    if (r->sample_index < sizeof t->seen) {
        if (t->seen[r->sample_index]) {
            fprintf(stderr, "fuzz harness: sample %zu answered twice\n", r->sample_index);
            abort();
        }
        t->seen[r->sample_index] = 1;
    }
}

/* After SX_OK every sample must have been answered exactly once. */
static inline void sx_fuzz_check_answered(const char *what, const sx_fuzz_tally *t) {
    if (t->calls != t->batch) {
        fprintf(stderr, "fuzz harness: %s returned SX_OK with %zu callbacks for a batch of %zu\n", what, t->calls,
                t->batch);
        abort();
    }
}

#endif
