/*
 * test_serving.c — issue 16 through the C interface: background exit builds
 * (sx_update_exits_async, sx_cancel_exit_build, sx_wait_exit_build), audited serving and the
 * live guard (sx_configure_serving, sx_get_serving_stats_json), and their bad input.
 *
 *   test_serving [REPO_ROOT]   (models/fmnist-resnet18-w16.onnx, Fashion-MNIST test set)
 *
 * Checks:
 *   - bad input gets a clear error and changes nothing: audit_rate outside [0, 1], guard_delta
 *     outside (0, 1), threshold_rule unknown, guarantee_delta outside (0, 1), a cancel with no
 *     build running (WRONG_STATE), a second async build while one runs (BUSY);
 *   - 4 threads submit while an async build runs, is cancelled (sx_wait_exit_build: CANCELLED,
 *     same exits), runs again and swaps (OK, progress ends with "done"): every frame answered
 *     exactly once, sx_get_stats counts them all;
 *   - with every exit answer audited, inverted-contrast frames trip the guard: an event
 *     "guard_tripped" per trip, an exit "out_of_service" in the serving statistics;
 *   - sx_engine_destroy while an async build runs cancels it and returns OK.
 * Environment: FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist).
 * Prints "ok"/"FAIL" per check and "N passed, M failed"; exit status 0 when all passed.
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lz -lpthread.
 */
#define _POSIX_C_SOURCE 200809L
#include "selfxit.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fmnist.h"

#define N_IMAGES 1600
#define BATCH 16

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void ignore_result(const sx_result *r, void *user_data) {
    (void)r;
    (void)user_data;
}

/* ---- progress ---------------------------------------------------------------------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_progress_calls;
static char g_last_stage[32];

static int on_progress(const sx_progress *p, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&g_mu);
    g_progress_calls++;
    snprintf(g_last_stage, sizeof g_last_stage, "%s", p->stage);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

static int progress_calls(void) {
    int n;
    pthread_mutex_lock(&g_mu);
    n = g_progress_calls;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* ---- submitting threads ------------------------------------------------------------------ */

typedef struct {
    sx_engine *engine;
    const float *images;
    int first;
    volatile int *stop;
    long submitted, answered, wrong;
    int counts[BATCH];
} submitter;

static void count_result(const sx_result *r, void *user_data) {
    submitter *s = user_data;
    if (r->sample_index < BATCH) s->counts[r->sample_index]++;
}

static void *submit_loop(void *arg) {
    submitter *s = arg;
    int offset = 0, i;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        if (*s->stop) {
            pthread_mutex_unlock(&g_mu);
            break;
        }
        pthread_mutex_unlock(&g_mu);
        memset(s->counts, 0, sizeof s->counts);
        if (sx_submit(s->engine, s->images + (size_t)(s->first + offset) * 784, (size_t)BATCH * 784, BATCH, count_result, s) != SX_OK) {
            s->wrong++;
        }
        for (i = 0; i < BATCH; i++) {
            s->answered += s->counts[i];
            if (s->counts[i] != 1) s->wrong++;
        }
        s->submitted += BATCH;
        offset = (offset + BATCH) % 192;
    }
    return NULL;
}

/* ---- events -------------------------------------------------------------------------------- */

static int g_trip_events;

static void on_event(const sx_event *e, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&g_mu);
    if (strcmp(e->kind, "guard_tripped") == 0) g_trip_events++;
    pthread_mutex_unlock(&g_mu);
}

static int serving_json(sx_engine *e, char *buf, size_t cap) {
    size_t needed = 0;
    return sx_get_serving_stats_json(e, buf, cap, &needed) == SX_OK;
}

int main(int argc, char **argv) {
    char path[4096], json[16384];
    const char *root = argc > 1 ? argv[1] : ".";
    sx_engine *e = NULL;
    sx_engine_options eo;
    sx_update_options u, bad;
    sx_serving_options so, so_bad;
    sx_stats st;
    float *images, *inverted;
    submitter subs[4];
    pthread_t threads[4];
    volatile int stop = 0;
    long submitted = 0, answered = 0, wrong = 0;
    int i, trips;
    sx_status status;
    double deadline;
    struct timespec ts;

    images = load_fmnist_images(N_IMAGES, "test_serving");
    if (images == NULL) return 1;
    snprintf(path, sizeof path, "%s/models/fmnist-resnet18-w16.onnx", root);
    sx_engine_options_init(&eo);
    eo.threads = 2;
    eo.seed = 1;
    if (sx_engine_create(path, &eo, &e) != SX_OK) {
        fprintf(stderr, "test_serving: %s\n", sx_last_error());
        return 1;
    }
    check(sx_set_exits_enabled(e, 0) == SX_OK, "exits off to collect");
    check(sx_submit(e, images, (size_t)400 * 784, 400, ignore_result, NULL) == SX_OK, "400 frames collected");
    sx_update_options_init(&u);
    u.tolerance = 0.05;
    u.search_budget = 1;
    u.epochs = 2;
    check(sx_update_exits(e, &u) == SX_OK, "blocking build (the call stays): %s", sx_last_error());
    check(sx_set_exits_enabled(e, 1) == SX_OK, "exits on");
    check(sx_struct_size("sx_serving_options") == sizeof(sx_serving_options) && sx_struct_size("sx_event") == sizeof(sx_event),
          "sx_struct_size knows sx_serving_options and sx_event");

    /* Bad input. */
    sx_serving_options_init(&so);
    check(so.audit_rate > 0 && so.audit_rate < 0.1 && so.guard_enabled == 0 && so.guard_delta == 0.05,
          "serving defaults: audit %.3f, guard %u, delta %.2f", so.audit_rate, so.guard_enabled, so.guard_delta);
    so_bad = so;
    so_bad.audit_rate = 1.5;
    status = sx_configure_serving(e, &so_bad);
    check(status == SX_ERR_INVALID_ARGUMENT && strstr(sx_last_error(), "audit rate") != NULL, "audit_rate 1.5: %s", sx_last_error());
    so_bad.audit_rate = -0.01;
    check(sx_configure_serving(e, &so_bad) == SX_ERR_INVALID_ARGUMENT, "audit_rate -0.01: %s", sx_last_error());
    so_bad = so;
    so_bad.guard_delta = 1.0;
    check(sx_configure_serving(e, &so_bad) == SX_ERR_INVALID_ARGUMENT, "guard_delta 1: %s", sx_last_error());
    so_bad.guard_delta = 0.0;
    check(sx_configure_serving(e, &so_bad) == SX_ERR_INVALID_ARGUMENT, "guard_delta 0: %s", sx_last_error());
    status = sx_cancel_exit_build(e);
    check(status == SX_ERR_WRONG_STATE, "cancel with no build running: %s (%s)", sx_status_string(status), sx_last_error());
    bad = u;
    bad.threshold_rule = 7;
    check(sx_update_exits_async(e, &bad) == SX_ERR_INVALID_ARGUMENT, "threshold_rule 7: %s", sx_last_error());
    bad.threshold_rule = SX_THRESHOLD_GUARANTEED;
    bad.guarantee_delta = 0.0;
    status = sx_update_exits_async(e, &bad);
    check(status == SX_ERR_INVALID_ARGUMENT && strstr(sx_last_error(), "delta") != NULL, "guarantee_delta 0: %s", sx_last_error());
    check(sx_wait_exit_build(e, 0) == SX_OK, "no build ran: sx_wait_exit_build is OK at once");
    check(sx_reset_stats(e) == SX_OK, "stats reset");

    /* 4 threads submit while a build runs, is cancelled, runs again and swaps. */
    memset(subs, 0, sizeof subs);
    for (i = 0; i < 4; i++) {
        subs[i].engine = e;
        subs[i].images = images;
        subs[i].first = 400 + i * 200;
        subs[i].stop = &stop;
        if (pthread_create(&threads[i], NULL, submit_loop, &subs[i]) != 0) return 1;
    }
    u.progress = on_progress;
    check(sx_update_exits_async(e, &u) == SX_OK, "sx_update_exits_async returns at once: %s", sx_last_error());
    status = sx_update_exits_async(e, &u);
    check(status == SX_ERR_BUSY, "a second async build while one runs: %s (%s)", sx_status_string(status), sx_last_error());
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (double)ts.tv_sec + 120;
    while (progress_calls() < 2) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec > deadline) break;
        sleep_ms(10);
    }
    check(sx_cancel_exit_build(e) == SX_OK, "sx_cancel_exit_build while it runs");
    status = sx_wait_exit_build(e, -1);
    check(status == SX_ERR_CANCELLED, "sx_wait_exit_build after the cancel: %s (%s)", sx_status_string(status), sx_last_error());
    check(sx_update_exits_async(e, &u) == SX_OK, "async build again");
    status = sx_wait_exit_build(e, -1);
    check(status == SX_OK, "it completes and swaps its exits in: %s", sx_last_error());
    pthread_mutex_lock(&g_mu);
    check(strcmp(g_last_stage, "done") == 0, "its last progress report is \"done\" (%s)", g_last_stage);
    stop = 1;
    pthread_mutex_unlock(&g_mu);
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        submitted += subs[i].submitted;
        answered += subs[i].answered;
        wrong += subs[i].wrong;
    }
    check(wrong == 0 && answered == submitted, "4 threads: %ld frames submitted, %ld answered, %ld not exactly once", submitted, answered, wrong);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    check(sx_get_stats(e, &st) == SX_OK && (long)st.samples == submitted, "sx_get_stats counts every frame once (%llu)",
          (unsigned long long)st.samples);
    check(serving_json(e, json, sizeof json) && strstr(json, "\"builds_cancelled\":1") != NULL && strstr(json, "\"builds_succeeded\":1") != NULL,
          "serving stats count one cancelled and one completed build");

    /* The guard trips on inverted-contrast frames with every exit answer audited. */
    so.audit_rate = 1.0;
    so.guard_enabled = 1;
    so.on_event = on_event;
    check(sx_configure_serving(e, &so) == SX_OK, "audit every exit answer, events on");
    inverted = malloc((size_t)600 * 784 * sizeof(float));
    if (inverted == NULL) return 1;
    for (i = 0; i < 600 * 784; i++) inverted[i] = (1.0f - 2.0f * 0.2860f) / 0.3530f - images[(size_t)1000 * 784 + (size_t)i];
    for (i = 0; i < 600; i += 50) {
        check(sx_submit(e, inverted + (size_t)i * 784, (size_t)50 * 784, 50, ignore_result, NULL) == SX_OK, "inverted frames %d..%d", i, i + 49);
        pthread_mutex_lock(&g_mu);
        trips = g_trip_events;
        pthread_mutex_unlock(&g_mu);
        if (trips > 0) break;
    }
    check(trips > 0, "the guard tripped (%d events)", trips);
    check(serving_json(e, json, sizeof json) && strstr(json, "\"out_of_service\"") != NULL && strstr(json, "\"rebuild_requested\":true") != NULL,
          "serving stats: an exit out of service, a rebuild requested");

    /* Destroy while a background build runs: cancelled and waited for. */
    u.progress = NULL;
    check(sx_update_exits_async(e, &u) == SX_OK, "one more async build");
    check(sx_engine_destroy(e) == SX_OK, "sx_engine_destroy while it runs");
    free(images);
    free(inverted);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
