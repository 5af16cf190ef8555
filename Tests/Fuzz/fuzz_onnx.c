/*
 * fuzz_onnx.c — ONNX model import: sx_engine_create_from_memory on the fuzzer's bytes, then, on
 * what loads, sx_engine_info and one sx_submit of a batch of 1 (zeros, then a deterministic
 * pseudo-random sample in [-1, 1]): shape inference, constant folding and planning run at load,
 * but many kernels first meet a graph's real shapes on the first call.
 *
 * Seeds: Tests/Fixtures/models/ (every .onnx) (the Makefile passes them as a read-only corpus).
 * Bounds: a model whose per-sample input exceeds SX_FUZZ_MAX_INPUT floats is loaded and
 * inspected but not run (the harness would have to allocate it); the library itself must refuse
 * any size claim it cannot meet — libFuzzer's -malloc_limit_mb reports one it does not.
 */
#include "fuzz_common.h"

#define SX_FUZZ_MAX_INPUT (1u << 22) /* 16 MiB of floats */

static float *g_input;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_input = (float *)malloc(sizeof(float) * SX_FUZZ_MAX_INPUT);
    return 0;
}

static void run_once(sx_engine *e, const sx_info *info, int random) {
    sx_fuzz_tally t;
    sx_status s;
    size_t i;
    uint32_t x = 2463534242u;
    for (i = 0; i < info->input_size; i++) {
        if (random) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            g_input[i] = (float)((double)x / 2147483648.0 - 1.0);
        } else {
            g_input[i] = 0.0f;
        }
    }
    memset(&t, 0, sizeof t);
    t.batch = 1;
    t.num_classes = info->num_classes;
    s = sx_submit(e, g_input, info->input_size, 1, sx_fuzz_on_result, &t);
    sx_fuzz_check_status("sx_submit", s);
    if (s == SX_OK) sx_fuzz_check_answered("sx_submit", &t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sx_engine_options o;
    sx_engine *e = NULL;
    sx_info info;
    sx_status s;

    if (g_input == NULL) LLVMFuzzerInitialize(NULL, NULL);
    sx_fuzz_options(&o, 4);
    s = sx_engine_create_from_memory(data, size, &o, &e);
    sx_fuzz_check_status("sx_engine_create_from_memory", s);
    if (s != SX_OK) {
        if (e != NULL) sx_fuzz_die("failed sx_engine_create_from_memory left *engine set", s);
        return 0;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    s = sx_engine_info(e, &info);
    if (s != SX_OK) sx_fuzz_die("sx_engine_info on a loaded engine", s);
    if (info.input_size >= 1 && info.input_size <= SX_FUZZ_MAX_INPUT) {
        run_once(e, &info, 0);
        run_once(e, &info, 1);
    }
    s = sx_engine_destroy(e);
    if (s != SX_OK) sx_fuzz_die("sx_engine_destroy", s);
    return 0;
}
