/*
 * test_outputs.c — every graph output through the C interface (issue 13, point 3).
 *
 *   test_outputs [REPO_ROOT]     (reads Tests/Fixtures/tensorops)
 *
 * On einsum_two_outputs.onnx (two outputs: [3,5,4] attention values and [3,4] pooled), at batch 3:
 *   - sx_output_count / sx_output_describe give the names, ranks, shapes and sizes;
 *   - sx_infer_outputs fills both caller buffers with ONNX Runtime's values (within 1e-4);
 *   - bad calls (NULL pointers, wrong num_outputs, a capacity one float short, wrong input_len,
 *     index out of range, batch 0) fail with the documented status, write nothing, and the
 *     engine still answers afterwards.
 * Prints "ok"/"FAIL" per check and "N passed, M failed"; exit status 0 when all passed.
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lm.
 */
#include "selfxit.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static float *read_floats(const char *root, const char *file, size_t *count) {
    char path[4096];
    FILE *f;
    long size;
    float *data;
    snprintf(path, sizeof path, "%s/Tests/Fixtures/tensorops/%s", root, file);
    f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    data = malloc((size_t)size + 4);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) { free(data); fclose(f); return NULL; }
    fclose(f);
    *count = (size_t)size / sizeof(float);
    return data;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char path[4096];
    sx_engine *engine = NULL;
    sx_status s;
    size_t count = 0, n_in = 0, n0 = 0, n1 = 0, i;
    sx_output_info info[2];
    float *input, *ref0, *ref1, *out0, *out1;
    float *outputs[2];
    size_t capacities[2];

    snprintf(path, sizeof path, "%s/Tests/Fixtures/tensorops/einsum_two_outputs.onnx", root);
    s = sx_engine_create(path, NULL, &engine);
    check(s == SX_OK, "load einsum_two_outputs.onnx (%s)", s == SX_OK ? "" : sx_last_error());
    if (s != SX_OK) return 1;
    s = sx_output_count(engine, &count);
    check(s == SX_OK && count == 2, "sx_output_count = %zu", count);
    for (i = 0; i < 2; i++) {
        memset(&info[i], 0, sizeof info[i]);
        info[i].struct_size = sizeof info[i];
        s = sx_output_describe(engine, i, &info[i]);
        check(s == SX_OK, "sx_output_describe(%zu)", i);
    }
    check(strcmp(info[0].name, "y") == 0 && info[0].rank == 3 && info[0].shape[0] == 3 && info[0].shape[1] == 5 &&
          info[0].shape[2] == 4 && info[0].size == 60, "output 0 is 'y' [3, 5, 4] (60 floats)");
    check(strcmp(info[1].name, "pooled") == 0 && info[1].rank == 2 && info[1].size == 12, "output 1 is 'pooled' [3, 4]");
    s = sx_output_describe(engine, 2, &info[1]);
    check(s == SX_ERR_INVALID_ARGUMENT, "index 2 is out of range: INVALID_ARGUMENT");

    input = read_floats(root, "einsum_two_outputs.b3.input.f32", &n_in);
    ref0 = read_floats(root, "einsum_two_outputs.b3.output0.f32", &n0);
    ref1 = read_floats(root, "einsum_two_outputs.b3.output1.f32", &n1);
    check(input && ref0 && ref1 && n_in == 180 && n0 == 180 && n1 == 36, "fixtures read");
    if (!input || !ref0 || !ref1) return 1;
    out0 = malloc(180 * sizeof(float));
    out1 = malloc(36 * sizeof(float));
    if (!out0 || !out1) return 1;
    for (i = 0; i < 180; i++) out0[i] = -7.0f;
    for (i = 0; i < 36; i++) out1[i] = -7.0f;
    outputs[0] = out0; outputs[1] = out1;
    capacities[0] = 180; capacities[1] = 35;
    s = sx_infer_outputs(engine, input, n_in, 3, 2, outputs, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT && out0[0] == -7.0f, "a capacity one float short: INVALID_ARGUMENT, nothing written (%s)", sx_last_error());
    capacities[1] = 36;
    s = sx_infer_outputs(engine, input, n_in, 3, 1, outputs, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT, "num_outputs 1 for a 2-output model: INVALID_ARGUMENT");
    s = sx_infer_outputs(engine, input, n_in - 1, 3, 2, outputs, capacities);
    check(s == SX_ERR_SHAPE_MISMATCH, "input_len one short: SHAPE_MISMATCH");
    s = sx_infer_outputs(engine, input, n_in, 0, 2, outputs, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT, "batch 0: INVALID_ARGUMENT");
    s = sx_infer_outputs(engine, NULL, n_in, 3, 2, outputs, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT, "NULL input: INVALID_ARGUMENT");
    s = sx_infer_outputs(engine, input, n_in, 3, 2, NULL, capacities);
    check(s == SX_ERR_INVALID_ARGUMENT, "NULL outputs: INVALID_ARGUMENT");
    s = sx_infer_outputs(engine, input, n_in, 3, 2, outputs, capacities);
    check(s == SX_OK, "sx_infer_outputs at batch 3 (%s)", s == SX_OK ? "" : sx_last_error());
    check(max_diff(out0, ref0, 180) <= 1e-4, "output 'y' matches ONNX Runtime (max diff %.2e)", max_diff(out0, ref0, 180));
    check(max_diff(out1, ref1, 36) <= 1e-4, "output 'pooled' matches ONNX Runtime (max diff %.2e)", max_diff(out1, ref1, 36));
    s = sx_engine_destroy(engine);
    check(s == SX_OK, "sx_engine_destroy");
    s = sx_output_count(NULL, &count);
    check(s == SX_ERR_INVALID_ARGUMENT, "NULL engine: INVALID_ARGUMENT");
    free(input); free(ref0); free(ref1); free(out0); free(out1);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
