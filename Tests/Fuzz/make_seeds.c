/*
 * make_seeds.c — writes the committed fuzz seeds that cannot be copied from the fixtures:
 *   seeds/bundle/resnet18_w4.sxe   exits built on Tests/Fixtures/models/resnet18_w4.onnx
 *                                  (pseudo-random traffic, quick settings) and saved;
 *   seeds/bundle/resnet18_w4.json  its JSON payload (the harness's wrapped shape);
 *   seeds/bundle/resnet18_w4_watched.{sxe,json}  the same with class 1 watched (format 2's
 *                                  watched classes and guards);
 *   seeds/image/...                 small JPEGs and PNGs in the formats the decoders branch on;
 *   seeds/input/...                 inputs of fuzz_input.c's layout.
 *
 *   make_seeds REPO_ROOT           (run by `make fuzz-seeds`)
 *
 * The images and inputs are the same on every run; the bundle's payload is not byte-identical
 * (the report holds the build's duration, and JSON key order varies).
 */
#define _POSIX_C_SOURCE 200809L
#include "selfxit.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

static const char *g_root;

static void die(const char *what, sx_status s) {
    fprintf(stderr, "make_seeds: %s -> %s: %s\n", what, sx_status_string(s), sx_last_error());
    exit(1);
}

static void write_bytes(const char *relative, const void *bytes, size_t n) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/Tests/Fuzz/seeds/%s", g_root, relative);
    f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        exit(1);
    }
    printf("make_seeds: %s (%zu bytes)\n", path, n);
}

static uint32_t g_rng = 12345u;
static float uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return (float)((double)g_rng / 4294967296.0);
}

static void on_result(const sx_result *r, void *user) {
    (void)r;
    (void)user;
}

/* watched: 0 — a plain classifier bundle (the harness's baseline); 1 — class 1 watched (miss
 * budget 0.3, warning budget 0.2), so the payload holds watched classes and guards (format 2). */
static void bundle(int watched) {
    const char *name = watched ? "resnet18_w4_watched" : "resnet18_w4";
    const int32_t watched_class[1] = {1};
    const double miss_budget[1] = {0.3}, warning_budget[1] = {0.2};
    char path[4096];
    sx_engine_options o;
    sx_update_options u;
    sx_engine *e = NULL;
    sx_info info;
    sx_status s;
    float *x;
    size_t i, n = 64;
    int round;
    FILE *f;
    long size;
    unsigned char *bytes;

    snprintf(path, sizeof path, "%s/Tests/Fixtures/models/resnet18_w4.onnx", g_root);
    sx_engine_options_init(&o);
    o.threads = 1;
    o.max_batch = 64;
    if (watched) {
        o.watched_classes = watched_class;
        o.miss_budgets = miss_budget;
        o.warning_budgets = warning_budget;
        o.num_watched = 1;
    }
    if ((s = sx_engine_create(path, &o, &e)) != SX_OK) die("sx_engine_create", s);
    info.struct_size = sizeof info;
    if ((s = sx_engine_info(e, &info)) != SX_OK) die("sx_engine_info", s);
    x = (float *)malloc(n * info.input_size * sizeof(float));
    /* Blobs of different brightness per "class", so the heads have something to learn. */
    if ((s = sx_set_exits_enabled(e, 0)) != SX_OK) die("sx_set_exits_enabled", s);
    for (round = 0; round < 4; round++) {
        for (i = 0; i < n * info.input_size; i++) {
            size_t sample = i / info.input_size;
            x[i] = (float)(sample % 4) - 1.5f + uniform();
        }
        if ((s = sx_submit(e, x, n * info.input_size, n, on_result, NULL)) != SX_OK) die("sx_submit", s);
    }
    sx_update_options_init(&u);
    u.min_samples = 100;
    u.epochs = 2;
    u.search_budget = 1;
    u.tolerance = 0.2;
    if ((s = sx_update_exits(e, &u)) != SX_OK) die("sx_update_exits", s);
    snprintf(path, sizeof path, "%s/Tests/Fuzz/seeds/bundle/%s.sxe", g_root, name);
    if ((s = sx_save_exits(e, path)) != SX_OK) die("sx_save_exits", s);
    printf("make_seeds: %s\n", path);
    f = fopen(path, "rb");
    if (!f) die("reopen the bundle", SX_ERR_IO);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    bytes = (unsigned char *)malloc((size_t)size);
    if (fread(bytes, 1, (size_t)size, f) != (size_t)size) die("read the bundle", SX_ERR_IO);
    fclose(f);
    /* Payload: after magic (8), version (4), fingerprint (8), length (8); before the checksum (8). */
    snprintf(path, sizeof path, "bundle/%s.json", name);
    write_bytes(path, bytes + 28, (size_t)size - 36);
    free(bytes);
    free(x);
    if (sx_engine_destroy(e) != SX_OK) fprintf(stderr, "make_seeds: %s\n", sx_last_error());
}

/* A w×h test pattern with `channels` interleaved 8-bit channels. */
static unsigned char *pattern(int w, int h, int channels) {
    unsigned char *p = (unsigned char *)malloc((size_t)w * h * channels);
    int x, y, c;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++)
            for (c = 0; c < channels; c++) p[((size_t)y * w + x) * channels + c] = (unsigned char)((x * 7 + y * 13 + c * 61) & 255);
    return p;
}

static void jpeg(const char *name, int w, int h, int pixel_format, int subsampling, int flags) {
    tjhandle t = tjInitCompress();
    int channels = tjPixelSize[pixel_format];
    unsigned char *p = pattern(w, h, channels), *out = NULL;
    unsigned long n = 0;
    char rel[256];
    if (tjCompress2(t, p, w, 0, h, pixel_format, &out, &n, subsampling, 75, flags) != 0) {
        fprintf(stderr, "make_seeds: tjCompress2 %s: %s\n", name, tjGetErrorStr2(t));
        exit(1);
    }
    snprintf(rel, sizeof rel, "image/%s", name);
    write_bytes(rel, out, n);
    tjFree(out);
    tjDestroy(t);
    free(p);
}

static void png(const char *name, int w, int h, png_uint_32 format) {
    png_image image;
    unsigned char *p, *out;
    png_alloc_size_t n = 0;
    char rel[256];
    unsigned char colormap[256 * 3];
    int i;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)w;
    image.height = (png_uint_32)h;
    image.format = format;
    if (format & PNG_FORMAT_FLAG_COLORMAP) image.colormap_entries = 256;
    for (i = 0; i < 256 * 3; i++) colormap[i] = (unsigned char)(i * 5);
    p = pattern(w, h, (int)PNG_IMAGE_PIXEL_SIZE(format)); /* bytes per pixel */
    if (!png_image_write_get_memory_size(image, n, 0, p, 0, colormap)) {
        fprintf(stderr, "make_seeds: png size %s: %s\n", name, image.message);
        exit(1);
    }
    out = (unsigned char *)malloc(n);
    if (!png_image_write_to_memory(&image, out, &n, 0, p, 0, colormap)) {
        fprintf(stderr, "make_seeds: png %s: %s\n", name, image.message);
        exit(1);
    }
    snprintf(rel, sizeof rel, "image/%s", name);
    write_bytes(rel, out, n);
    free(out);
    free(p);
}

static void input_seed(const char *name, unsigned flags, unsigned batch, const float *values, size_t n) {
    unsigned char buf[2 + 64 * 4];
    size_t i;
    buf[0] = (unsigned char)flags;
    buf[1] = (unsigned char)batch;
    for (i = 0; i < n && i < 64; i++) memcpy(buf + 2 + 4 * i, &values[i], 4);
    {
        char rel[256];
        snprintf(rel, sizeof rel, "input/%s", name);
        write_bytes(rel, buf, 2 + 4 * (n < 64 ? n : 64));
    }
}

int main(int argc, char **argv) {
    float normal[16], special[8];
    int i;
    g_root = argc > 1 ? argv[1] : ".";

    bundle(0);
    bundle(1);

    jpeg("gray_28x28.jpg", 28, 28, TJPF_GRAY, TJSAMP_GRAY, 0);
    jpeg("rgb_32x32_420.jpg", 32, 32, TJPF_RGB, TJSAMP_420, 0);
    jpeg("rgb_17x9_444_progressive.jpg", 17, 9, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE);
    jpeg("rgb_1x1.jpg", 1, 1, TJPF_RGB, TJSAMP_422, 0);
    png("gray_28x28.png", 28, 28, PNG_FORMAT_GRAY);
    png("gray_alpha_5x40.png", 5, 40, PNG_FORMAT_GA);
    png("rgb_32x32.png", 32, 32, PNG_FORMAT_RGB);
    png("rgba_3x3.png", 3, 3, PNG_FORMAT_RGBA);
    png("rgb16_8x8.png", 8, 8, PNG_FORMAT_LINEAR_RGB);
    png("palette_12x12.png", 12, 12, PNG_FORMAT_RGB_COLORMAP);
    png("gray_1x1.png", 1, 1, PNG_FORMAT_GRAY);

    for (i = 0; i < 16; i++) normal[i] = (float)i / 8.0f - 1.0f;
    special[0] = NAN;
    special[1] = INFINITY;
    special[2] = -INFINITY;
    special[3] = 3.0e38f;
    special[4] = -3.0e38f;
    special[5] = 1.0e-45f;
    special[6] = -0.0f;
    special[7] = 1.0f;
    input_seed("sync_exits_off_batch1", 0x0, 1, normal, 16);
    input_seed("sync_exits_on_batch4", 0x2, 4, normal, 16);
    input_seed("async_exits_on_batch2", 0x3, 2, normal, 16);
    input_seed("sync_exits_on_special_floats", 0x2, 1, special, 8);
    input_seed("async_exits_off_special_floats", 0x1, 3, special, 8);
    input_seed("len_plus_one", 0x6, 1, normal, 4);
    input_seed("overflowing_batch", 0x2, 0xFE, normal, 4);
    return 0;
}
