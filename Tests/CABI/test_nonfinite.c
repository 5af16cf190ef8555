/*
 * test_nonfinite.c — NaN / inf / huge inputs through the C interface (hardening: "defined
 * behaviour for every float").
 *
 *   test_nonfinite [REPO_ROOT]     (reads Tests/Fixtures/models and Tests/Fixtures/reference)
 *
 * Checks, on the SiLU + squeeze-excite fixture (silu_se_net: the model whose SiLU epilogue
 * used to trap the host on NaN) and on resnet18_w4:
 *   - by default (non_finite_inputs = 0) sx_submit and sx_submit_async refuse a NaN/+-inf
 *     input with SX_ERR_INVALID_ARGUMENT and a message naming sample and element, deliver
 *     nothing, and the engine then answers a good batch exactly as ONNX Runtime;
 *   - with non_finite_inputs = 1 the batch runs: the NaN sample comes back with
 *     SX_RESULT_NON_FINITE, class_index -1, confidence 0 and NaN probabilities (as ORT), its
 *     batch-mates unflagged and equal to the reference, nothing non-finite is collected;
 *   - finite inputs scaled by 1e35..1e38 give results (flagged when the output overflowed)
 *     or a clear error, never a crash; option values other than 0/1 and older struct sizes.
 * Prints "ok"/"FAIL" per check and "N passed, M failed"; exit status 0 when all passed.
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lm.
 */
#include "selfxit.h"

#include <math.h>
#include <stdarg.h>
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
    snprintf(path, sizeof path, "%s/Tests/Fixtures/reference/%s", root, file);
    f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *count = (size_t)size / sizeof(float);
    return data;
}

#define MAX_BATCH 8
#define MAX_CLASSES 16

typedef struct {
    int calls;
    int seen[MAX_BATCH];
    uint32_t flags[MAX_BATCH];
    int32_t class_index[MAX_BATCH];
    int32_t exit_index[MAX_BATCH];
    float confidence[MAX_BATCH];
    float probs[MAX_BATCH][MAX_CLASSES];
    size_t num_classes;
    int bad_struct;
} results;

static void on_result(const sx_result *r, void *user) {
    results *out = user;
    size_t i = r->sample_index, c;
    out->calls++;
    if (r->struct_size < sizeof(sx_result) || i >= MAX_BATCH || r->num_classes > MAX_CLASSES) {
        out->bad_struct = 1;
        return;
    }
    out->seen[i]++;
    out->flags[i] = r->flags;
    out->class_index[i] = r->class_index;
    out->exit_index[i] = r->exit_index;
    out->confidence[i] = r->confidence;
    out->num_classes = r->num_classes;
    for (c = 0; c < r->num_classes; c++) out->probs[i][c] = r->probabilities[c];
}

static sx_engine *make_engine(const char *root, const char *model, uint32_t non_finite, uint64_t collect) {
    char path[4096];
    sx_engine_options options;
    sx_engine *engine = NULL;
    sx_status status;
    sx_engine_options_init(&options);
    options.threads = 2;
    options.max_batch = MAX_BATCH;
    options.collection_budget_bytes = collect;
    options.non_finite_inputs = non_finite;
    snprintf(path, sizeof path, "%s/Tests/Fixtures/models/%s", root, model);
    status = sx_engine_create(path, &options, &engine);
    check(status == SX_OK && engine != NULL, "%s: create (non_finite_inputs %u): %s", model, non_finite,
          status == SX_OK ? "" : sx_last_error());
    return engine;
}

/* Every sample answered once, unflagged, with probabilities within 1e-4 of `reference`
 * (the model ends in Softmax) and class_index their argmax. */
static int matches(const results *r, const float *reference, size_t classes, int only_sample) {
    int i;
    size_t c;
    for (i = 0; i < MAX_BATCH; i++) {
        int best = 0;
        if (only_sample >= 0 && i != only_sample) continue;
        if (r->seen[i] != 1 || r->flags[i] != 0) return 0;
        for (c = 0; c < classes; c++) {
            if (!(fabsf(r->probs[i][c] - reference[(size_t)i * classes + c]) <= 1e-4f)) return 0;
            if (reference[(size_t)i * classes + c] > reference[(size_t)i * classes + (size_t)best]) best = (int)c;
        }
        if (r->class_index[i] != best) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    size_t n_in = 0, n_out = 0, n, classes;
    float *input = read_floats(root, "silu_se_net.b8.input.f32", &n_in);
    float *reference = read_floats(root, "silu_se_net.b8.output.f32", &n_out);
    float *bad;
    sx_engine *engine, *propagate;
    results r;
    sx_status status;
    uint64_t ticket = 0;
    sx_info info;
    int i;
    size_t c;
    const float scales[] = {1e35f, 1e36f, 1e37f, 1e38f};

    if (!input || !reference) {
        printf("FAIL silu_se_net references missing under %s/Tests/Fixtures/reference\n", root);
        return 1;
    }
    n = n_in / MAX_BATCH;
    classes = n_out / MAX_BATCH;
    bad = malloc(n_in * sizeof(float));

    check(sx_struct_size("sx_result") == sizeof(sx_result), "sx_struct_size(sx_result) = %lu, sizeof %lu",
          (unsigned long)sx_struct_size("sx_result"), (unsigned long)sizeof(sx_result));
    check(sx_struct_size("sx_engine_options") == sizeof(sx_engine_options), "sx_struct_size(sx_engine_options)");

    /* ---- refused by default ---- */
    engine = make_engine(root, "silu_se_net.onnx", 0, 64u << 20);
    if (!engine) return 1;
    memcpy(bad, input, n_in * sizeof(float));
    bad[3 * n + 127] = NAN;
    memset(&r, 0, sizeof r);
    status = sx_submit(engine, bad, n_in, MAX_BATCH, on_result, &r);
    check(status == SX_ERR_INVALID_ARGUMENT, "sx_submit with a NaN: INVALID_ARGUMENT (got %d)", (int)status);
    check(strstr(sx_last_error(), "input sample 3, element 127 is NaN") != NULL, "message names it: %s", sx_last_error());
    check(r.calls == 0, "no callback for a refused batch (%d)", r.calls);

    memcpy(bad, input, n_in * sizeof(float));
    bad[6 * n + 5] = -INFINITY;
    status = sx_submit_async(engine, bad, n_in, MAX_BATCH, on_result, &r, &ticket);
    check(status == SX_ERR_INVALID_ARGUMENT, "sx_submit_async with -inf: refused at once (got %d)", (int)status);
    check(strstr(sx_last_error(), "input sample 6, element 5 is -inf") != NULL, "message names it: %s", sx_last_error());
    bad[6 * n + 5] = INFINITY;
    status = sx_submit(engine, bad, n_in, MAX_BATCH, on_result, &r);
    check(status == SX_ERR_INVALID_ARGUMENT && strstr(sx_last_error(), "is +inf") != NULL, "+inf refused: %s", sx_last_error());
    check(r.calls == 0, "still no callback (%d)", r.calls);

    memset(&r, 0, sizeof r);
    status = sx_submit(engine, input, n_in, MAX_BATCH, on_result, &r);
    check(status == SX_OK && !r.bad_struct && matches(&r, reference, classes, -1),
          "after refusals, a good batch gives ONNX Runtime's probabilities");
    memset(&r, 0, sizeof r);
    status = sx_submit_async(engine, input, n_in, MAX_BATCH, on_result, &r, &ticket);
    if (status == SX_OK) status = sx_wait(engine, ticket, -1);
    check(status == SX_OK && matches(&r, reference, classes, -1), "and so does sx_submit_async");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    status = sx_engine_info(engine, &info);
    check(status == SX_OK && info.collected_samples == 2 * MAX_BATCH,
          "only the good batches were collected (%lu)", (unsigned long)info.collected_samples);

    /* ---- huge finite inputs: a result or a clear error, never a crash ---- */
    for (i = 0; i < 4; i++) {
        int consistent = 1, flagged = 0, s;
        for (c = 0; c < n_in; c++) bad[c] = input[c] * scales[i];
        memset(&r, 0, sizeof r);
        status = sx_submit(engine, bad, n_in, MAX_BATCH, on_result, &r);
        if (status == SX_OK) {
            for (s = 0; s < MAX_BATCH; s++) {
                if (r.seen[s] != 1) consistent = 0;
                if (r.flags[s] & SX_RESULT_NON_FINITE) {
                    flagged++;
                    if (r.class_index[s] != -1 || r.confidence[s] != 0.0f) consistent = 0;
                } else if (r.class_index[s] < 0 || (size_t)r.class_index[s] >= classes) {
                    consistent = 0;
                }
            }
            check(consistent, "x%g: %d results, %d flagged non-finite, the rest with a class", (double)scales[i], r.calls, flagged);
        } else {
            check(status == SX_ERR_INVALID_ARGUMENT && strstr(sx_last_error(), "inf") != NULL,
                  "x%g: refused (overflowed to inf in the caller): %s", (double)scales[i], sx_last_error());
        }
    }
    memset(&r, 0, sizeof r);
    check(sx_submit(engine, input, n_in, MAX_BATCH, on_result, &r) == SX_OK && matches(&r, reference, classes, -1),
          "after huge inputs, still ONNX Runtime's answer");
    check(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy");

    /* ---- propagated and flagged on request ---- */
    propagate = make_engine(root, "silu_se_net.onnx", 1, 64u << 20);
    if (!propagate) return 1;
    memcpy(bad, input, n_in * sizeof(float));
    bad[3 * n + 127] = NAN;
    bad[5 * n] = INFINITY;
    memset(&r, 0, sizeof r);
    status = sx_submit(propagate, bad, n_in, MAX_BATCH, on_result, &r);
    check(status == SX_OK && r.calls == MAX_BATCH, "non_finite_inputs = 1: the batch runs (%d, %d results)", (int)status, r.calls);
    check((r.flags[3] & SX_RESULT_NON_FINITE) && r.class_index[3] == -1 && r.confidence[3] == 0.0f && r.exit_index[3] == -1,
          "NaN sample: SX_RESULT_NON_FINITE, class -1, confidence 0 (flags %u class %d conf %g)", r.flags[3],
          r.class_index[3], (double)r.confidence[3]);
    {
        int all_nan = 1;
        for (c = 0; c < classes; c++) all_nan &= isnan(r.probs[3][c]) != 0;
        check(all_nan, "NaN sample: NaN probabilities, as ONNX Runtime");
    }
    check((r.flags[5] & SX_RESULT_NON_FINITE) && r.class_index[5] == -1, "+inf sample: flagged, class -1");
    {
        int mates = 1;
        for (i = 0; i < MAX_BATCH; i++)
            if (i != 3 && i != 5) mates &= matches(&r, reference, classes, i);
        check(mates, "batch-mates unflagged and equal to the reference");
    }
    memset(&r, 0, sizeof r);
    status = sx_submit_async(propagate, bad, n_in, MAX_BATCH, on_result, &r, &ticket);
    if (status == SX_OK) status = sx_wait(propagate, ticket, -1);
    check(status == SX_OK && (r.flags[3] & SX_RESULT_NON_FINITE) && r.class_index[3] == -1 && matches(&r, reference, classes, 0),
          "sx_submit_async: the same");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    status = sx_engine_info(propagate, &info);
    check(status == SX_OK && info.collected_samples == 2 * (MAX_BATCH - 2),
          "flagged samples are not collected (%lu collected of 16)", (unsigned long)info.collected_samples);
    check(sx_engine_destroy(propagate) == SX_OK, "sx_engine_destroy");

    /* ---- the option's own checks ---- */
    {
        sx_engine_options options;
        char path[4096];
        sx_engine *e = NULL;
        snprintf(path, sizeof path, "%s/Tests/Fixtures/models/silu_se_net.onnx", root);
        sx_engine_options_init(&options);
        check(options.non_finite_inputs == 0, "default non_finite_inputs is 0 (refuse)");
        options.non_finite_inputs = 2;
        status = sx_engine_create(path, &options, &e);
        check(status == SX_ERR_INVALID_ARGUMENT && e == NULL && strstr(sx_last_error(), "non_finite_inputs") != NULL,
              "non_finite_inputs = 2 is refused: %s", sx_last_error());
        /* A caller built before the field existed: its struct ends at max_pending. */
        sx_engine_options_init(&options);
        options.non_finite_inputs = 1; /* beyond the old struct: must be ignored */
        options.struct_size = (uint32_t)offsetof(sx_engine_options, non_finite_inputs);
        status = sx_engine_create(path, &options, &e);
        check(status == SX_OK, "an older sx_engine_options (struct_size %u) loads", options.struct_size);
        if (status == SX_OK) {
            memset(&r, 0, sizeof r);
            status = sx_submit(e, bad, n_in, MAX_BATCH, on_result, &r);
            check(status == SX_ERR_INVALID_ARGUMENT, "and refuses non-finite inputs (the default)");
            check(sx_engine_destroy(e) == SX_OK, "sx_engine_destroy");
        }
    }

    /* ---- a ReLU network too: NaN is not silently turned into a class ---- */
    engine = make_engine(root, "resnet18_w4.onnx", 1, 0);
    if (engine) {
        size_t rn_in = 0;
        float *rin = read_floats(root, "resnet18_w4.b8.input.f32", &rn_in);
        if (rin) {
            size_t rn = rn_in / MAX_BATCH;
            int all_nan = 1;
            rin[3 * rn + 127] = NAN;
            memset(&r, 0, sizeof r);
            status = sx_submit(engine, rin, rn_in, MAX_BATCH, on_result, &r);
            for (c = 0; c < r.num_classes; c++) all_nan &= isnan(r.probs[3][c]) != 0;
            check(status == SX_OK && (r.flags[3] & SX_RESULT_NON_FINITE) && r.class_index[3] == -1 && all_nan,
                  "resnet18_w4: a NaN pixel gives NaN probabilities and no class (ReLU keeps NaN, as ORT)");
            free(rin);
        }
        check(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy");
    }

    free(bad);
    free(input);
    free(reference);
    printf("\n%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
