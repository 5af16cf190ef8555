/*
 * fuzz_image.c — image ingest: sx_decode_image on the fuzzer's bytes (JPEG via libturbojpeg,
 * PNG via libpng, anything else refused), into a grayscale model (resnet18_w4, 1×28×28) and an
 * RGB model (mobilenet_v3ish, 3×32×32). With the default preprocessing every output value must
 * lie in [0, 1] (pixel / 255): checked on success.
 *
 * Seeds (Tests/Fuzz/seeds/image, written by make_seeds): small JPEGs (baseline, progressive,
 * gray, 4:2:0) and PNGs (gray, gray+alpha, RGB, RGBA, 16-bit, palette).
 * Bound: the harness sets sx_preprocess.max_pixels to 2^20 (a 1280×800 camera's budget) as a
 * host would: a 250-byte JPEG claiming the library's ceiling of 2^26 pixels otherwise costs
 * seconds to decode under ASan, and the run spends its time there (78 exec/s) instead of in new
 * code. Every decoding path is the same code at either budget; the ceiling itself (refused before
 * allocating, 192 MiB as RGB at most) is tested by ImageResizeTests, and the 181 615 runs at
 * that budget are in docs/HARDENING.md. Run with -malloc_limit_mb=1024.
 */
#include "fuzz_common.h"

static sx_engine *g_gray, *g_rgb;
static size_t g_gray_size, g_rgb_size;
static float *g_out;

static size_t input_size(sx_engine *e) {
    sx_info info;
    sx_status s;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    s = sx_engine_info(e, &info);
    if (s != SX_OK) sx_fuzz_die("sx_engine_info", s);
    return info.input_size;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_gray = sx_fuzz_open(SX_FUZZ_MODEL, 1);
    g_rgb = sx_fuzz_open(SX_FUZZ_MODEL_RGB, 1);
    g_gray_size = input_size(g_gray);
    g_rgb_size = input_size(g_rgb);
    g_out = (float *)malloc(sizeof(float) * (g_gray_size > g_rgb_size ? g_gray_size : g_rgb_size));
    return 0;
}

static void decode(sx_engine *e, size_t n, const uint8_t *data, size_t size) {
    size_t i;
    sx_preprocess pre;
    sx_status s;
    sx_preprocess_init(&pre);
    pre.max_pixels = (uint64_t)1 << 20;
    s = sx_decode_image(e, data, size, &pre, g_out, n);
    sx_fuzz_check_status("sx_decode_image", s);
    if (s != SX_OK) return;
    for (i = 0; i < n; i++) {
        if (!(g_out[i] >= 0.0f && g_out[i] <= 1.0f)) {
            fprintf(stderr, "fuzz_image: output[%zu] = %g outside [0, 1] with the default preprocessing\n", i,
                    (double)g_out[i]);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_gray == NULL) LLVMFuzzerInitialize(NULL, NULL);
    decode(g_gray, g_gray_size, data, size);
    decode(g_rgb, g_rgb_size, data, size);
    return 0;
}
