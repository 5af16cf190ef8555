/* Runs against an INSTALLED libselfxit (tools/test_install.sh builds it with pkg-config and with
 * CMake's find_package, and runs it with the Swift toolchain hidden): loads a fixture model,
 * submits the ONNX Runtime reference batch and checks every answer against the reference logits.
 *
 *   install_check MODEL.onnx INPUT.f32 LOGITS.f32 BATCH
 *
 * Exits 0 when every sample's class is the reference's argmax and its probabilities are the
 * softmax of the reference logits (within 1e-4); prints one line per check. */
#include <selfxit.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const float *logits; /* batch × classes, ONNX Runtime */
    size_t classes;
    size_t answered;
    int failures;
} expected;

static void on_result(const sx_result *r, void *user_data) {
    expected *e = (expected *)user_data;
    const float *ref = e->logits + r->sample_index * e->classes;
    size_t c, best = 0;
    double max = ref[0], sum = 0, worst = 0;
    e->answered++;
    if (r->num_classes != e->classes || r->probabilities == NULL) {
        printf("FAIL sample %zu: %zu classes, expected %zu\n", r->sample_index, r->num_classes, e->classes);
        e->failures++;
        return;
    }
    for (c = 0; c < e->classes; c++) {
        if (ref[c] > ref[best]) best = c;
        if (ref[c] > max) max = ref[c];
    }
    for (c = 0; c < e->classes; c++) sum += exp(ref[c] - max);
    for (c = 0; c < e->classes; c++) {
        double p = exp(ref[c] - max) / sum, d = fabs(p - r->probabilities[c]);
        if (d > worst) worst = d;
    }
    if (r->class_index != (int32_t)best || worst > 1e-4) {
        printf("FAIL sample %zu: class %d (reference %zu), probabilities off by %g\n", r->sample_index,
               (int)r->class_index, best, worst);
        e->failures++;
    } else {
        printf("ok   sample %zu: class %d, as ONNX Runtime (probabilities within %.1e)\n", r->sample_index,
               (int)r->class_index, worst);
    }
}

static float *read_floats(const char *path, size_t count) {
    FILE *f = fopen(path, "rb");
    float *data = malloc(count * sizeof(float));
    size_t got = 0;
    if (f != NULL && data != NULL) got = fread(data, sizeof(float), count, f);
    if (f != NULL) fclose(f);
    if (got != count) {
        fprintf(stderr, "install_check: %s: read %zu of %zu floats\n", path, got, count);
        free(data);
        return NULL;
    }
    return data;
}

int main(int argc, char **argv) {
    sx_engine *engine = NULL;
    sx_info info;
    sx_status s;
    expected e = {NULL, 0, 0, 0};
    float *input;
    size_t batch;
    if (argc != 5) {
        fprintf(stderr, "usage: install_check MODEL.onnx INPUT.f32 LOGITS.f32 BATCH\n");
        return 2;
    }
    batch = (size_t)strtoul(argv[4], NULL, 10);
    printf("libselfxit %s, ABI %u (header %d)\n", sx_version(), (unsigned)sx_abi_version(), SX_ABI_VERSION);
    if (sx_abi_version() != SX_ABI_VERSION) return 1;
    if ((s = sx_engine_create(argv[1], NULL, &engine)) != SX_OK) {
        fprintf(stderr, "install_check: sx_engine_create: %s\n", sx_last_error());
        return 1;
    }
    info.struct_size = sizeof info;
    if ((s = sx_engine_info(engine, &info)) != SX_OK) {
        fprintf(stderr, "install_check: sx_engine_info: %s\n", sx_last_error());
        return 1;
    }
    e.classes = info.num_classes;
    input = read_floats(argv[2], batch * info.input_size);
    e.logits = read_floats(argv[3], batch * info.num_classes);
    if (input == NULL || e.logits == NULL) return 1;
    if ((s = sx_submit(engine, input, batch * info.input_size, batch, on_result, &e)) != SX_OK) {
        fprintf(stderr, "install_check: sx_submit: %s\n", sx_last_error());
        return 1;
    }
    if (e.answered != batch) {
        printf("FAIL %zu answers for a batch of %zu\n", e.answered, batch);
        e.failures++;
    }
    if ((s = sx_engine_destroy(engine)) != SX_OK) {
        fprintf(stderr, "install_check: sx_engine_destroy: %s\n", sx_last_error());
        return 1;
    }
    free(input);
    free((void *)e.logits);
    printf("%s: %zu samples, %d failed\n", e.failures ? "FAIL" : "ok", e.answered, e.failures);
    return e.failures ? 1 : 0;
}
