/*
 * test_progress.c — progress and cancel of sx_update_exits through sx_update_options.progress.
 *
 *   test_progress [REPO_ROOT]   (models/fmnist-resnet18-w16.onnx, Fashion-MNIST test set)
 *
 * Checks, on 400 collected Fashion-MNIST samples:
 *   - a build with a progress callback succeeds; the callback runs on the calling thread with
 *     user_data passed through, struct_size set, fractions in [0, 1] never decreasing, the
 *     first 0 ("prepare"), 1.0 exactly once and last (stage "done"), every stage named
 *     (prepare, activations, search, train, select, done), messages non-empty;
 *   - returning non-zero at the second "train" call makes sx_update_exits return SX_ERR_CANCELLED within
 *     a second of that return, with a message saying so, no further callback, and the engine
 *     keeps the exits of the first build (same num_trained_exits and build report) and still
 *     serves; cancelling at the very first call does the same;
 *   - sx_engine_destroy from inside the progress callback is refused with SX_ERR_BUSY;
 *   - sx_status_string(SX_ERR_CANCELLED) is "cancelled"; sx_struct_size("sx_progress");
 *     an older sx_update_options (struct_size without the progress fields) builds silently.
 * Environment: FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist).
 * Prints "ok"/"FAIL" per check and "N passed, M failed"; exit status 0 when all passed.
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lz -lpthread.
 */
#define _POSIX_C_SOURCE 200809L
#include "selfxit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "check.h"
#include "fmnist.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void ignore_result(const sx_result *r, void *user_data) {
    (void)r;
    (void)user_data;
}

#define MAX_CALLS 100000
#define NUM_STAGES 6
static const char *const STAGES[NUM_STAGES] = {"prepare", "activations", "search", "train", "select", "done"};

typedef struct {
    pthread_t thread;
    sx_engine *engine;
    size_t calls;
    double fraction[MAX_CALLS];
    int stage[MAX_CALLS]; /* index into STAGES, -1: unknown */
    int bad_struct, wrong_thread, empty_message;
    const char *cancel_at;   /* stage name whose call cancels; NULL never; "" the first call */
    int cancel_skip;         /* calls of that stage to let pass first (a later one may come from
                                inside a training loop rather than a stage boundary) */
    double cancelled_time;   /* when the callback returned non-zero */
    size_t calls_after_cancel;
    int try_destroy;         /* call sx_engine_destroy from inside the callback (once) */
    sx_status destroy_status;
} recorder;

static int on_progress(const sx_progress *p, void *user_data) {
    recorder *r = user_data;
    int i, stage = -1;
    if (r->cancelled_time > 0) r->calls_after_cancel++;
    if (p == NULL || p->struct_size < sizeof(sx_progress)) {
        r->bad_struct++;
        return 0;
    }
    if (!pthread_equal(pthread_self(), r->thread)) r->wrong_thread++;
    if (p->message == NULL || p->message[0] == '\0') r->empty_message++;
    for (i = 0; i < NUM_STAGES; i++)
        if (p->stage != NULL && strcmp(p->stage, STAGES[i]) == 0) stage = i;
    if (r->calls < MAX_CALLS) {
        r->fraction[r->calls] = p->fraction;
        r->stage[r->calls] = stage;
    }
    r->calls++;
    if (r->try_destroy) {
        r->try_destroy = 0;
        r->destroy_status = sx_engine_destroy(r->engine);
    }
    if (r->cancel_at != NULL && r->cancelled_time == 0 &&
        (r->cancel_at[0] == '\0' || (p->stage != NULL && strcmp(p->stage, r->cancel_at) == 0)) &&
        r->cancel_skip-- <= 0) {
        r->cancelled_time = now_seconds();
        return 1;
    }
    return 0;
}

static sx_update_options fast_options(recorder *r) {
    sx_update_options u;
    sx_update_options_init(&u);
    u.tolerance = 0.05;
    u.search_budget = 1;
    u.epochs = 3;
    u.progress = r != NULL ? on_progress : NULL;
    u.progress_user_data = r;
    return u;
}

static char *build_report(sx_engine *e) {
    size_t needed = 0;
    char *buf, *at, *end;
    check(sx_get_stats_json(e, NULL, 0, &needed) == SX_ERR_INVALID_ARGUMENT, "sx_get_stats_json sizes the report");
    buf = malloc(needed + 1);
    if (buf == NULL || sx_get_stats_json(e, buf, needed + 1, &needed) != SX_OK) {
        free(buf);
        return NULL;
    }
    at = strstr(buf, "\"last_build\"");
    if (at == NULL) return buf;
    /* "seconds" differs between builds, so compare from last_build to its end: the whole
     * object, timing included, must be that of the first build. */
    end = buf + strlen(buf);
    memmove(buf, at, (size_t)(end - at) + 1);
    return buf;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char model[4096];
    sx_engine_options eo;
    sx_engine *e = NULL;
    sx_update_options u;
    sx_info info;
    recorder *r = calloc(1, sizeof *r);
    size_t i, n = 400;
    float *x = load_fmnist_images(n, "test_progress");
    sx_status rc;
    double t0, t1;
    char *report_before = NULL, *report_after = NULL;

    if (x == NULL || r == NULL) return 2;
    check(strcmp(sx_status_string(SX_ERR_CANCELLED), "cancelled") == 0, "sx_status_string(SX_ERR_CANCELLED) = \"%s\"",
          sx_status_string(SX_ERR_CANCELLED));
    check(sx_struct_size("sx_progress") == sizeof(sx_progress), "sx_struct_size(\"sx_progress\") = %zu (header %zu)",
          sx_struct_size("sx_progress"), sizeof(sx_progress));
    sx_update_options_init(&u);
    check(u.progress == NULL && u.progress_user_data == NULL, "sx_update_options_init: no progress callback");

    snprintf(model, sizeof model, "%s/models/fmnist-resnet18-w16.onnx", root);
    sx_engine_options_init(&eo);
    eo.threads = 2;
    eo.seed = 1;
    if (sx_engine_create(model, &eo, &e) != SX_OK) {
        fprintf(stderr, "test_progress: %s\n", sx_last_error());
        return 2;
    }
    check(sx_set_exits_enabled(e, 0) == SX_OK, "exits off");
    for (i = 0; i < n; i += 100) check(sx_submit(e, x + i * 784, 100 * 784, 100, ignore_result, NULL) == SX_OK, "collecting submit");

    /* 1. A complete build, reported. */
    r->thread = pthread_self();
    r->engine = e;
    u = fast_options(r);
    t0 = now_seconds();
    rc = sx_update_exits(e, &u);
    check(rc == SX_OK, "build with a progress callback: %s (%s) in %.1f s", sx_status_string(rc), rc ? sx_last_error() : "",
          now_seconds() - t0);
    check(r->calls > 6 && r->calls < MAX_CALLS, "  %zu progress calls", r->calls);
    check(!r->bad_struct && !r->wrong_thread && !r->empty_message,
          "  struct_size set, calling thread, messages non-empty (bad %d, other thread %d, empty %d)", r->bad_struct,
          r->wrong_thread, r->empty_message);
    {
        int monotone = 1, in_range = 1, ones = 0, seen[NUM_STAGES] = {0}, all_seen = 1, unknown = 0;
        size_t m = r->calls < MAX_CALLS ? r->calls : MAX_CALLS;
        for (i = 0; i < m; i++) {
            if (i > 0 && r->fraction[i] < r->fraction[i - 1]) monotone = 0;
            if (!(r->fraction[i] >= 0 && r->fraction[i] <= 1)) in_range = 0;
            if (r->fraction[i] == 1.0) ones++;
            if (r->stage[i] < 0) unknown++;
            else seen[r->stage[i]] = 1;
        }
        for (i = 0; i < NUM_STAGES; i++) all_seen &= seen[i];
        check(monotone && in_range, "  fractions in [0, 1], never decreasing");
        check(m > 0 && r->fraction[0] == 0.0 && r->stage[0] == 0, "  first call: 0, \"prepare\"");
        check(m > 0 && ones == 1 && r->fraction[m - 1] == 1.0 && r->stage[m - 1] == NUM_STAGES - 1,
              "  1.0 once, last, with stage \"done\" (%d calls at 1.0)", ones);
        check(all_seen && unknown == 0, "  every stage named: prepare activations search train select done (%d unknown)",
              unknown);
    }
    info.struct_size = sizeof info;
    check(sx_engine_info(e, &info) == SX_OK, "sx_engine_info");
    {
        uint32_t trained = info.num_trained_exits;
        report_before = build_report(e);
        check(trained >= 1 && report_before != NULL, "  %u trained exits", trained);

        /* 2. Cancel during training: CANCELLED quickly, previous exits kept. */
        memset(r, 0, sizeof *r);
        r->thread = pthread_self();
        r->engine = e;
        r->cancel_at = "train";
        r->cancel_skip = 1;
        u = fast_options(r);
        rc = sx_update_exits(e, &u);
        t1 = now_seconds();
        check(rc == SX_ERR_CANCELLED, "cancel from the callback at the 2nd \"train\" call: %s (%s)", sx_status_string(rc),
              sx_last_error());
        check(strstr(sx_last_error(), "cancel") != NULL, "  message says cancelled");
        check(r->cancelled_time > 0 && t1 - r->cancelled_time < 1.0, "  returned %.3f s after the callback cancelled",
              r->cancelled_time > 0 ? t1 - r->cancelled_time : -1.0);
        check(r->calls_after_cancel == 0, "  no callback after the cancel (%zu)", r->calls_after_cancel);
        check(sx_engine_info(e, &info) == SX_OK, "sx_engine_info");
        report_after = build_report(e);
        check(info.num_trained_exits == trained && report_after != NULL && strcmp(report_before, report_after) == 0,
              "  the first build's exits and report stay (%u trained exits)", info.num_trained_exits);
        free(report_after);

        /* 3. Cancel at the first call. */
        memset(r, 0, sizeof *r);
        r->thread = pthread_self();
        r->cancel_at = "";
        u = fast_options(r);
        t0 = now_seconds();
        rc = sx_update_exits(e, &u);
        check(rc == SX_ERR_CANCELLED && r->calls == 1 && now_seconds() - t0 < 1.0,
              "cancel at the first call: %s after %zu call(s)", sx_status_string(rc), r->calls);
        report_after = build_report(e);
        check(report_after != NULL && strcmp(report_before, report_after) == 0, "  exits unchanged");
        free(report_after);

        /* 4. sx_engine_destroy from inside the callback: BUSY, build cancelled, engine alive. */
        memset(r, 0, sizeof *r);
        r->thread = pthread_self();
        r->engine = e;
        r->try_destroy = 1;
        r->cancel_at = "";
        u = fast_options(r);
        rc = sx_update_exits(e, &u);
        check(r->destroy_status == SX_ERR_BUSY && rc == SX_ERR_CANCELLED,
              "sx_engine_destroy inside the progress callback: %s; build %s", sx_status_string(r->destroy_status),
              sx_status_string(rc));
        check(sx_set_exits_enabled(e, 1) == SX_OK, "exits on");
        check(sx_submit(e, x, 100 * 784, 100, ignore_result, NULL) == SX_OK, "  the engine still serves");
        check(sx_set_exits_enabled(e, 0) == SX_OK, "exits off");

        /* 5. An older caller's struct (without the progress fields): builds, no callback. */
        u = fast_options(NULL);
        u.progress = on_progress; /* beyond the declared size: must not be read */
        u.progress_user_data = NULL;
        u.struct_size = (uint32_t)offsetof(sx_update_options, progress);
        rc = sx_update_exits(e, &u);
        check(rc == SX_OK, "older sx_update_options (struct_size %u): %s %s", u.struct_size, sx_status_string(rc),
              rc ? sx_last_error() : "");
    }
    free(report_before);
    check(sx_engine_destroy(e) == SX_OK, "sx_engine_destroy");
    free(x);
    free(r);
    printf("test_progress: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
