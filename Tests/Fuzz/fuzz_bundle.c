/*
 * fuzz_bundle.c — exit bundles: sx_load_exits on a file holding the fuzzer's bytes, against an
 * engine on the resnet18_w4 fixture.
 *
 * Two shapes of input reach two layers of the loader (Engine+ExitBundle.swift):
 *   - bytes starting with the magic "SXEXITS\0" are written as they are: the header checks
 *     (magic, version, fingerprint, length, FNV-1a checksum) and what lies behind them when the
 *     fuzzer gets them right;
 *   - any other bytes are the JSON payload: the harness wraps them in a valid header (this
 *     model's fingerprint, the length) and appends their checksum, so the JSON decoder and the
 *     checks of each exit head against the model are reached on every such input.
 * Seeds (Tests/Fuzz/seeds/bundle): bundles saved by make_seeds (raw shape; one with a watched
 * class, so format 2's watched classes and guards are present) and their payloads (wrapped
 * shape, format 2), and the format-1 bundle of before (resnet18_w4_v1.sxe, raw shape: the old
 * format's path).
 *
 * On SX_OK the loaded exits are put to work: exits on, one sample and a batch of 2 submitted
 * (a head that decodes but does not fit its plan must fail here, not trap). Then the committed
 * bundle is loaded again, so that every input starts from the same exits (reproducible). On a
 * refusal the engine must keep its exits (checked with sx_engine_info).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static sx_engine *g_engine;
static sx_info g_info;
static uint64_t g_fingerprint;
static char g_file[64];
static int g_fd = -1;
static float *g_sample; /* 2 samples */

static void write_file(const unsigned char *a, size_t an, const unsigned char *b, size_t bn, const unsigned char *c,
                       size_t cn) {
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, a, an, 0) != (ssize_t)an ||
        (bn && pwrite(g_fd, b, bn, (off_t)an) != (ssize_t)bn) ||
        (cn && pwrite(g_fd, c, cn, (off_t)(an + bn)) != (ssize_t)cn)) {
        perror("fuzz_bundle: writing the bundle file");
        abort();
    }
}

static void load_baseline(void) {
    char path[4096];
    sx_status s;
    sx_fuzz_path(path, sizeof path, SX_FUZZ_BUNDLE);
    s = sx_load_exits(g_engine, path);
    if (s != SX_OK) {
        fprintf(stderr, "fuzz_bundle: the committed bundle %s does not load (regenerate it: make fuzz-seeds)\n", path);
        sx_fuzz_die("sx_load_exits(baseline)", s);
    }
}

static void get_info(sx_info *info) {
    sx_status s;
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    s = sx_engine_info(g_engine, info);
    if (s != SX_OK) sx_fuzz_die("sx_engine_info", s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    size_t model_size = 0, i;
    unsigned char *model;
    (void)argc;
    (void)argv;
    model = sx_fuzz_read(SX_FUZZ_MODEL, &model_size);
    if (!model) {
        fprintf(stderr, "fuzz_bundle: cannot read %s/%s\n", sx_fuzz_root(), SX_FUZZ_MODEL);
        abort();
    }
    g_fingerprint = sx_fuzz_fnv1a64(model, model_size);
    free(model);
    g_engine = sx_fuzz_open(SX_FUZZ_MODEL, 2);
    get_info(&g_info);
    g_sample = (float *)malloc(2 * g_info.input_size * sizeof(float));
    for (i = 0; i < 2 * g_info.input_size; i++) g_sample[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    /* A file only this process sees, gone when it exits: a memfd, named by /proc/self/fd. */
    g_fd = memfd_create("sx-fuzz-bundle", 0);
    if (g_fd < 0) {
        char tmpl[] = "/tmp/sx-fuzz-bundle-XXXXXX";
        g_fd = mkstemp(tmpl);
        if (g_fd < 0) {
            perror("fuzz_bundle: mkstemp");
            abort();
        }
        unlink(tmpl);
    }
    snprintf(g_file, sizeof g_file, "/proc/self/fd/%d", g_fd);
    load_baseline();
    get_info(&g_info);
    return 0;
}

static void submit(size_t batch) {
    sx_fuzz_tally t;
    sx_status s;
    memset(&t, 0, sizeof t);
    t.batch = batch;
    t.num_classes = g_info.num_classes;
    s = sx_submit(g_engine, g_sample, batch * g_info.input_size, batch, sx_fuzz_on_result, &t);
    sx_fuzz_check_status("sx_submit after sx_load_exits", s);
    if (s == SX_OK) sx_fuzz_check_answered("sx_submit after sx_load_exits", &t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const unsigned char magic[8] = {'S', 'X', 'E', 'X', 'I', 'T', 'S', 0};
    sx_info before, after;
    sx_status s;

    if (g_engine == NULL) LLVMFuzzerInitialize(NULL, NULL);
    if (size >= sizeof magic && memcmp(data, magic, sizeof magic) == 0) {
        write_file(data, size, NULL, 0, NULL, 0);
    } else {
        unsigned char header[28], trailer[8];
        uint32_t version = 2; /* the format the library writes (Engine.bundleVersion) */
        uint64_t length = size, sum = sx_fuzz_fnv1a64(data, size);
        int k;
        memcpy(header, magic, 8);
        for (k = 0; k < 4; k++) header[8 + k] = (unsigned char)(version >> (8 * k));
        for (k = 0; k < 8; k++) header[12 + k] = (unsigned char)(g_fingerprint >> (8 * k));
        for (k = 0; k < 8; k++) header[20 + k] = (unsigned char)(length >> (8 * k));
        for (k = 0; k < 8; k++) trailer[k] = (unsigned char)(sum >> (8 * k));
        write_file(header, sizeof header, data, size, trailer, sizeof trailer);
    }
    get_info(&before);
    s = sx_load_exits(g_engine, g_file);
    sx_fuzz_check_status("sx_load_exits", s);
    get_info(&after);
    if (s != SX_OK) {
        if (after.num_trained_exits != before.num_trained_exits || after.num_active_exits != before.num_active_exits) {
            fprintf(stderr, "fuzz_bundle: a refused bundle changed the exits (%u/%u trained/active -> %u/%u)\n",
                    before.num_trained_exits, before.num_active_exits, after.num_trained_exits, after.num_active_exits);
            abort();
        }
        return 0;
    }
    s = sx_set_exits_enabled(g_engine, 1);
    if (s != SX_OK) sx_fuzz_die("sx_set_exits_enabled", s);
    submit(1);
    submit(2);
    load_baseline();
    return 0;
}
