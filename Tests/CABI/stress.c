/*
 * stress.c — concurrency stress of the C interface on ONE engine, for the sanitizer builds
 * (make sanitize: ASan and TSan) and as a plain test.
 *
 *   stress [REPO_ROOT]     (default "."; reads Tests/Fixtures/models/resnet18_w4.onnx)
 *
 * 8 threads for SX_STRESS_SECONDS (default 20) or SX_STRESS_ROUNDS rounds each (default 400),
 * whichever ends first, each doing in turn: sx_submit (batches 1–4), sx_submit_async +
 * sx_wait, sx_set_exits_enabled, sx_save_exits + sx_load_exits (own file), sx_get_stats,
 * sx_get_stats_json, sx_reset_stats; thread 0 also rebuilds the exits (sx_update_exits with
 * min_samples 50, one epoch) every 40 rounds while the others carry on.
 * Checks: every status is one the call may return; every frame of every request answered
 * exactly once (a count per frame) with a well-formed result; a snapshot of the statistics
 * adds up (samples = backbone + each exit's); the JSON is one NUL-terminated object of the
 * size `needed` announced; a load of a bundle just saved succeeds; the engine is destroyed
 * cleanly at the end. Prints a summary; exit status 0 when every check held.
 *
 * C99; links -lselfxit -lpthread -lm.
 */
#define _POSIX_C_SOURCE 200809L
#include "selfxit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define MAX_BATCH 4

static sx_engine *g_engine;
static size_t g_input_size, g_classes;
static double g_deadline;
static int g_rounds = 400;
static const char *g_root = ".";
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long g_failures, g_frames, g_requests, g_builds, g_builds_refused, g_loads, g_busy;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fail(const char *fmt, const char *what, int code, const char *message) {
    pthread_mutex_lock(&g_mu);
    g_failures++;
    if (g_failures <= 20) {
        fprintf(stderr, "FAIL ");
        fprintf(stderr, fmt, what, code, message);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&g_mu);
}

/* A status the call may return: OK or one of `allowed` (a bit per sx_status). */
static int expect(sx_status s, unsigned allowed, const char *what) {
    if (s == SX_OK || (s > 0 && s <= SX_ERR_INTERNAL && s != SX_ERR_INTERNAL && ((allowed >> s) & 1u))) return 1;
    fail("%s -> %d: %s", what, (int)s, sx_last_error());
    return 0;
}
#define BIT(s) (1u << (s))

typedef struct request {
    size_t batch;
    int count[MAX_BATCH];
    int malformed;
} request;

static void on_result(const sx_result *r, void *user) {
    request *q = (request *)user;
    if (r->sample_index >= q->batch || r->num_classes != g_classes || r->class_index < 0 ||
        (size_t)r->class_index >= g_classes || r->probabilities == NULL || !(r->confidence >= 0.0f && r->confidence <= 1.0f)) {
        q->malformed++;
        return;
    }
    q->count[r->sample_index]++;
}

static void check_request(const request *q, const char *what) {
    size_t i;
    for (i = 0; i < q->batch; i++)
        if (q->count[i] != 1) {
            char message[128];
            snprintf(message, sizeof message, "frame %zu of %zu answered %d times", i, q->batch, q->count[i]);
            fail("%s (%d): %s", what, 0, message);
            return;
        }
    if (q->malformed) fail("%s (%d): %s", what, q->malformed, "malformed results");
    pthread_mutex_lock(&g_mu);
    g_frames += q->batch;
    g_requests++;
    pthread_mutex_unlock(&g_mu);
}

static void fill(float *x, size_t n, unsigned *seed) {
    size_t i;
    for (i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        x[i] = (float)((*seed >> 16) % 2000) / 1000.0f - 1.0f + (float)((i / g_input_size) % 4) * 0.5f;
    }
}

static void check_stats(void) {
    sx_stats st;
    uint64_t sum;
    uint32_t i;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    if (!expect(sx_get_stats(g_engine, &st), 0, "sx_get_stats")) return;
    sum = st.backbone_samples;
    for (i = 0; i < st.num_exits && i < SX_MAX_EXITS; i++) sum += st.exit_samples[i];
    if (sum != st.samples || st.num_exits > SX_MAX_EXITS) {
        char message[128];
        snprintf(message, sizeof message, "samples %llu but backbone + exits %llu", (unsigned long long)st.samples,
                 (unsigned long long)sum);
        fail("%s (%d): %s", "sx_get_stats snapshot", 0, message);
    }
    if (!(st.latency_p50 <= st.latency_p95 && st.latency_p95 <= st.latency_p99))
        fail("%s (%d): %s", "sx_get_stats", 0, "latency percentiles out of order");
}

static void check_json(void) {
    size_t needed = 0, len;
    char *buffer;
    sx_status s = sx_get_stats_json(g_engine, NULL, 0, &needed);
    if (s != SX_ERR_INVALID_ARGUMENT || needed < 3) {
        fail("%s -> %d: %s", "sx_get_stats_json(NULL, 0) to size", (int)s, sx_last_error());
        return;
    }
    /* Statistics may grow between the two calls: leave room, as a host would. */
    needed += 4096;
    buffer = (char *)malloc(needed);
    if (!expect(sx_get_stats_json(g_engine, buffer, needed, &len), 0, "sx_get_stats_json")) {
        free(buffer);
        return;
    }
    if (len == 0 || len > needed || strlen(buffer) + 1 != len || buffer[0] != '{' || buffer[len - 2] != '}')
        fail("%s (%d): %s", "sx_get_stats_json", (int)len, "not one NUL-terminated object of the announced size");
    free(buffer);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg, round;
    unsigned seed = 977u * (unsigned)id + 1u;
    float *x = (float *)malloc(MAX_BATCH * g_input_size * sizeof(float));
    char bundle[4096];
    int saved = 0;
    snprintf(bundle, sizeof bundle, "/tmp/sx-stress-%d-%d.sxe", (int)getpid(), id);
    for (round = 0; round < g_rounds && now() < g_deadline; round++) {
        int op = (id + round) % 8;
        request q;
        memset(&q, 0, sizeof q);
        q.batch = 1 + (size_t)((round + id) % MAX_BATCH);
        fill(x, q.batch * g_input_size, &seed);
        switch (op) {
        case 0:
        case 1:
            if (expect(sx_submit(g_engine, x, q.batch * g_input_size, q.batch, on_result, &q), 0, "sx_submit"))
                check_request(&q, "sx_submit");
            break;
        case 2:
        case 3: {
            uint64_t ticket = 0;
            sx_status s = sx_submit_async(g_engine, x, q.batch * g_input_size, q.batch, on_result, &q, &ticket);
            if (s == SX_ERR_BUSY) {
                pthread_mutex_lock(&g_mu);
                g_busy++;
                pthread_mutex_unlock(&g_mu);
                break;
            }
            if (expect(s, 0, "sx_submit_async") && expect(sx_wait(g_engine, ticket, -1), 0, "sx_wait"))
                check_request(&q, "sx_submit_async + sx_wait");
            break;
        }
        case 4:
            expect(sx_set_exits_enabled(g_engine, (round / 8) % 3 != 0), 0, "sx_set_exits_enabled");
            break;
        case 5: {
            sx_status s = sx_save_exits(g_engine, bundle);
            if (s == SX_OK) saved = 1;
            else expect(s, BIT(SX_ERR_WRONG_STATE), "sx_save_exits");
            if (saved && expect(sx_load_exits(g_engine, bundle), 0, "sx_load_exits of a bundle just saved")) {
                pthread_mutex_lock(&g_mu);
                g_loads++;
                pthread_mutex_unlock(&g_mu);
            }
            break;
        }
        case 6:
            check_stats();
            check_json();
            break;
        default:
            if (round % 5 == 0) expect(sx_reset_stats(g_engine), 0, "sx_reset_stats");
            else check_stats();
            break;
        }
        if (id == 0 && round % 40 == 20) {
            sx_update_options u;
            sx_status s;
            sx_update_options_init(&u);
            u.min_samples = 50;
            u.epochs = 1;
            u.search_budget = 1;
            u.tolerance = 0.2;
            u.seed = (uint64_t)round;
            s = sx_update_exits(g_engine, &u);
            pthread_mutex_lock(&g_mu);
            if (s == SX_OK) g_builds++;
            else g_builds_refused++;
            pthread_mutex_unlock(&g_mu);
            expect(s, BIT(SX_ERR_WRONG_STATE), "sx_update_exits");
        }
    }
    remove(bundle);
    free(x);
    return NULL;
}

int main(int argc, char **argv) {
    char path[4096];
    sx_engine_options o;
    sx_info info;
    pthread_t threads[THREADS];
    const char *env;
    double seconds = 20, t0;
    int i;
    if (argc > 1) g_root = argv[1];
    if ((env = getenv("SX_STRESS_SECONDS")) != NULL) seconds = atof(env);
    if ((env = getenv("SX_STRESS_ROUNDS")) != NULL) g_rounds = atoi(env);
    snprintf(path, sizeof path, "%s/Tests/Fixtures/models/resnet18_w4.onnx", g_root);
    sx_engine_options_init(&o);
    o.threads = 2;
    o.max_batch = MAX_BATCH;
    o.max_pending = 16;
    if (sx_engine_create(path, &o, &g_engine) != SX_OK) {
        fprintf(stderr, "stress: cannot open %s: %s\n", path, sx_last_error());
        return 2;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (sx_engine_info(g_engine, &info) != SX_OK) return 2;
    g_input_size = info.input_size;
    g_classes = info.num_classes;
    t0 = now();
    g_deadline = t0 + seconds;
    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i);
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    check_stats();
    expect(sx_engine_destroy(g_engine), 0, "sx_engine_destroy");
    printf("stress: %d threads, %.1f s: %lu requests, %lu frames each answered once, %lu exit builds (%lu refused), "
           "%lu bundle loads, %lu async BUSY; %lu failures\n",
           THREADS, now() - t0, g_requests, g_frames, g_builds, g_builds_refused, g_loads, g_busy, g_failures);
    return g_failures ? 1 : 0;
}
