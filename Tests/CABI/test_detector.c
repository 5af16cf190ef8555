/*
 * test_detector.c — a detector through the C interface (issue 13): one image without a batch
 * axis in, outputs whose shapes the image decides out.
 *
 *   test_detector [REPO_ROOT]     (reads Tests/Fixtures/detector)
 *
 * On tiny_fasterrcnn.onnx (torchvision's FasterRCNN with a tiny backbone, input [3, 96, 128]):
 *   - sx_engine_info says the input has no batch axis and part of the model has run-time shapes;
 *   - sx_output_describe gives boxes with a run-time first dimension (-1, size 0);
 *   - sx_infer_outputs_shaped with too small buffers fails (INVALID_ARGUMENT), writes no output
 *     but reports the shapes; with buffers sized from them it returns [n, 4] boxes, [n] labels
 *     and [n] scores (n as many as ONNX Runtime finds, read from reference.json's length);
 *   - sx_infer_outputs with the described (0) sizes fails instead of overrunning the buffers.
 * Prints "ok"/"FAIL" per check and "N passed, M failed"; exit status 0 when all passed.
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit.
 */
#include "selfxit.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static float *read_floats(const char *path, size_t *count) {
    FILE *f = fopen(path, "rb");
    long size;
    float *data;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    data = malloc((size_t)size + 4);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) { free(data); fclose(f); return NULL; }
    fclose(f);
    *count = (size_t)size / sizeof(float);
    return data;
}

/* Detections in reference.json: the number of entries of its "scores" list. */
static long reference_count(const char *path) {
    FILE *f = fopen(path, "rb");
    static char text[1 << 16];
    size_t n;
    const char *p, *end;
    long count = 0;
    if (!f) return -1;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    p = strstr(text, "\"scores\": [");
    if (!p) return -1;
    p += strlen("\"scores\": [");
    end = strchr(p, ']');
    if (!end) return -1;
    if (end == p) return 0;
    for (count = 1; p < end; p++) if (*p == ',') count++;
    return count;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char path[4096];
    sx_engine *engine = NULL;
    sx_status s;
    sx_info info;
    sx_output_info out_info;
    size_t count = 0, n_in = 0, i, ranks[3];
    int64_t shapes[3 * SX_MAX_RANK];
    float *input, *buffers[3];
    size_t capacities[3];
    long expected;

    snprintf(path, sizeof path, "%s/Tests/Fixtures/detector/tiny_fasterrcnn.onnx", root);
    s = sx_engine_create(path, NULL, &engine);
    check(s == SX_OK, "load tiny_fasterrcnn.onnx (%s)", s == SX_OK ? "" : sx_last_error());
    if (s != SX_OK) return 1;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    s = sx_engine_info(engine, &info);
    check(s == SX_OK && info.input_has_batch_axis == 0 && info.has_runtime_shapes == 1 && info.input_rank == 3 &&
          info.input_shape[0] == 3 && info.input_shape[1] == 96 && info.input_shape[2] == 128 && info.num_classes == 0,
          "sx_engine_info: [3, 96, 128] without batch axis, run-time shapes, no class vector (num_classes 0)");
    s = sx_output_count(engine, &count);
    check(s == SX_OK && count == 3, "three outputs");
    memset(&out_info, 0, sizeof out_info);
    out_info.struct_size = sizeof out_info;
    s = sx_output_describe(engine, 0, &out_info);
    check(s == SX_OK && strcmp(out_info.name, "boxes") == 0 && out_info.rank == 2 && out_info.shape[0] == -1 &&
          out_info.shape[1] == 4 && out_info.size == 0, "boxes: [-1, 4], size 0 (known at run time)");

    snprintf(path, sizeof path, "%s/Tests/Fixtures/detector/input.f32", root);
    input = read_floats(path, &n_in);
    check(input && n_in == 3 * 96 * 128, "input read");
    if (!input) return 1;
    snprintf(path, sizeof path, "%s/Tests/Fixtures/detector/reference.json", root);
    expected = reference_count(path);
    check(expected >= 1, "reference.json lists %ld detections", expected);
    for (i = 0; i < 3; i++) {
        buffers[i] = malloc(4096 * sizeof(float));
        if (!buffers[i]) return 1;
        buffers[i][0] = -7.0f;
        capacities[i] = 1;
    }
    s = sx_infer_outputs_shaped(engine, input, n_in, 3, buffers, capacities, ranks, shapes);
    check(s == SX_ERR_INVALID_ARGUMENT && buffers[0][0] == -7.0f, "capacity 1: INVALID_ARGUMENT, no output written");
    check(ranks[0] == 2 && shapes[0] == expected && shapes[1] == 4 && ranks[1] == 1 && shapes[SX_MAX_RANK] == expected,
          "... but the shapes are reported: boxes [%lld, %lld]", (long long)shapes[0], (long long)shapes[1]);
    capacities[0] = (size_t)shapes[0] * 4;
    capacities[1] = capacities[2] = (size_t)shapes[0];
    s = sx_infer_outputs_shaped(engine, input, n_in, 3, buffers, capacities, ranks, shapes);
    check(s == SX_OK, "sized from the shapes: OK (%s)", s == SX_OK ? "" : sx_last_error());
    for (i = 0; s == SX_OK && i < (size_t)expected; i++) {
        if (!(buffers[2][i] > 0.05f && buffers[2][i] <= 1.0f && buffers[0][4 * i + 2] >= buffers[0][4 * i])) break;
    }
    check(s == SX_OK && i == (size_t)expected, "every detection has a score in (0.05, 1] and x2 >= x1");
    capacities[0] = capacities[1] = capacities[2] = 0;
    s = sx_infer_outputs(engine, input, n_in, 1, 3, buffers, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT, "sx_infer_outputs with the described size 0: INVALID_ARGUMENT, no overrun");
    s = sx_infer_outputs_shaped(engine, input, n_in - 1, 3, buffers, capacities, ranks, shapes);
    check(s == SX_ERR_SHAPE_MISMATCH, "input_len one short: SHAPE_MISMATCH");
    s = sx_infer_outputs_shaped(engine, input, n_in, 3, NULL, capacities, ranks, shapes);
    check(s == SX_ERR_INVALID_ARGUMENT, "NULL outputs: INVALID_ARGUMENT");
    s = sx_engine_destroy(engine);
    check(s == SX_OK, "sx_engine_destroy");
    for (i = 0; i < 3; i++) free(buffers[i]);
    free(input);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
