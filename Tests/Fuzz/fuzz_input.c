/*
 * fuzz_input.c — the inference input path: sx_submit / sx_submit_async + sx_wait with the
 * fuzzer's bytes reinterpreted as float32 samples (NaN, ±inf, subnormals, huge values) and
 * fuzzed batch and input_len arguments, on the resnet18_w4 fixture with the committed exits
 * loaded (so exit heads, their standardisation, softmax and thresholds see the values too).
 *
 * Input layout:
 *   byte 0   flags: bit 0 submit_async + wait instead of submit; bit 1 exits on (else off,
 *            which also records the samples for an exit build); bits 2–3 input_len:
 *            0 = batch × input_size, 1 = one more, 2 = one less, 3 = the 8 bytes after byte 1
 *   byte 1   batch: 0–5 as is (max_batch is 4), 0xFF SIZE_MAX, 0xFE the least batch whose
 *            batch × input_size overflows size_t, 0xFD 2^40, otherwise batch % 6
 *   then     (bits 2–3 = 3) input_len, 8 bytes little-endian
 *   rest     float32 little-endian, repeated to fill the batch (zeros if fewer than 4 bytes)
 * The harness's buffer holds max_batch × input_size + 1 floats; an input_len claiming more must
 * be refused before it is read (ASan reports a read past it).
 * After every call the statistics must add up (samples = backbone + each exit's).
 */
#include "fuzz_common.h"

#define MAX_BATCH 4

static sx_engine *g_engine;
static sx_info g_info;
static float *g_buffer;
static size_t g_capacity;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char path[4096];
    sx_status s;
    (void)argc;
    (void)argv;
    g_engine = sx_fuzz_open(SX_FUZZ_MODEL, MAX_BATCH);
    sx_fuzz_path(path, sizeof path, SX_FUZZ_BUNDLE);
    s = sx_load_exits(g_engine, path);
    if (s != SX_OK)
        fprintf(stderr, "fuzz_input: warning: %s does not load (%s); fuzzing without exits\n", path, sx_last_error());
    memset(&g_info, 0, sizeof g_info);
    g_info.struct_size = sizeof g_info;
    s = sx_engine_info(g_engine, &g_info);
    if (s != SX_OK) sx_fuzz_die("sx_engine_info", s);
    g_capacity = MAX_BATCH * g_info.input_size + 1;
    g_buffer = (float *)malloc(g_capacity * sizeof(float));
    return 0;
}

static void check_stats(void) {
    sx_stats st;
    uint64_t sum;
    uint32_t i;
    sx_status s;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    s = sx_get_stats(g_engine, &st);
    if (s != SX_OK) sx_fuzz_die("sx_get_stats", s);
    sum = st.backbone_samples;
    for (i = 0; i < st.num_exits && i < SX_MAX_EXITS; i++) sum += st.exit_samples[i];
    if (sum != st.samples || st.num_exits > SX_MAX_EXITS) {
        fprintf(stderr, "fuzz_input: stats do not add up: samples %llu, backbone + exits %llu\n",
                (unsigned long long)st.samples, (unsigned long long)sum);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sx_fuzz_tally t;
    sx_status s;
    size_t batch, len, exact, i, nfloats;
    const uint8_t *floats;
    unsigned flags;

    if (g_engine == NULL) LLVMFuzzerInitialize(NULL, NULL);
    if (size < 2) return 0;
    flags = data[0];
    switch (data[1]) {
    case 0xFF: batch = SIZE_MAX; break;
    case 0xFE: batch = SIZE_MAX / g_info.input_size + 1; break;
    case 0xFD: batch = (size_t)1 << 40; break;
    default: batch = data[1] % 6; break;
    }
    exact = batch * g_info.input_size; /* wraps for the overflow cases, on purpose */
    floats = data + 2;
    nfloats = size - 2;
    switch ((flags >> 2) & 3) {
    case 0: len = exact; break;
    case 1: len = exact + 1; break;
    case 2: len = exact - 1; break;
    default:
        if (size < 10) return 0;
        len = 0;
        for (i = 0; i < 8; i++) len |= (size_t)data[2 + i] << (8 * i);
        floats += 8;
        nfloats -= 8;
        break;
    }
    nfloats /= 4;
    for (i = 0; i < g_capacity; i++) {
        if (nfloats == 0) {
            g_buffer[i] = 0.0f;
        } else {
            size_t k = i % nfloats;
            uint32_t bits = (uint32_t)floats[4 * k] | (uint32_t)floats[4 * k + 1] << 8 |
                            (uint32_t)floats[4 * k + 2] << 16 | (uint32_t)floats[4 * k + 3] << 24;
            memcpy(&g_buffer[i], &bits, sizeof bits);
        }
    }
    s = sx_set_exits_enabled(g_engine, (flags >> 1) & 1);
    if (s != SX_OK) sx_fuzz_die("sx_set_exits_enabled", s);

    memset(&t, 0, sizeof t);
    t.batch = batch;
    t.num_classes = g_info.num_classes;
    if (flags & 1) {
        uint64_t ticket = 0;
        s = sx_submit_async(g_engine, g_buffer, len, batch, sx_fuzz_on_result, &t, &ticket);
        sx_fuzz_check_status("sx_submit_async", s);
        if (s == SX_OK) {
            s = sx_wait(g_engine, ticket, -1);
            sx_fuzz_check_status("sx_wait", s);
            if (s == SX_OK) sx_fuzz_check_answered("sx_submit_async + sx_wait", &t);
        }
    } else {
        s = sx_submit(g_engine, g_buffer, len, batch, sx_fuzz_on_result, &t);
        sx_fuzz_check_status("sx_submit", s);
        if (s == SX_OK) sx_fuzz_check_answered("sx_submit", &t);
    }
    if (s == SX_OK && len > g_capacity) {
        fprintf(stderr, "fuzz_input: input_len %zu (batch %zu) accepted beyond max_batch x input_size\n", len, batch);
        abort();
    }
    check_stats();
    return 0;
}
