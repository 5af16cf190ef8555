/* The engine leaves its host's process-wide state alone: a host that links OpenBLAS itself
 * (as a perception process may, for its own linear algebra) finds OpenBLAS's thread count,
 * its core and the environment exactly as it set them — before, during (inside result
 * callbacks on the calling thread and on the engine's worker thread, and while an exit build
 * runs) and after an engine's whole life: create, inference (a batch of 32: the classifier runs
 * as a packed product), exit build, destroy.
 *
 * An earlier version set OpenBLAS to one thread on every engine creation (and left it so), and on
 * CPUs OpenBLAS did not know it wrote OPENBLAS_CORETYPE with setenv and re-initialised OpenBLAS.
 *
 *   test_host_state [REPO_ROOT]   (reads Tests/Fixtures/models/resnet18_w4.onnx; exit 0 = pass)
 */
#define _POSIX_C_SOURCE 200809L
#include "selfxit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS's own extensions, declared here as a host not including cblas.h would. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

extern char **environ;

static int g_failures, g_checks;

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        g_checks++;                                                                                            \
        if (!(cond)) {                                                                                         \
            g_failures++;                                                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            printf(__VA_ARGS__);                                                                               \
            printf("\n");                                                                                      \
        }                                                                                                      \
    } while (0)

/* What the host set: OpenBLAS's threads and core, and a copy of every environment entry. */
typedef struct host_state {
    int threads;
    char core[128];
    char *coretype; /* getenv("OPENBLAS_CORETYPE"), copied; NULL when unset */
    char **env;     /* copies of environ's entries, in order */
    size_t env_count;
} host_state;

static char *dup_or_null(const char *s) {
    char *d;
    if (s == NULL) return NULL;
    d = malloc(strlen(s) + 1);
    if (d == NULL) { printf("out of memory\n"); exit(2); }
    strcpy(d, s);
    return d;
}

static void capture(host_state *s) {
    size_t i, n = 0;
    const char *core = openblas_get_corename();
    s->threads = openblas_get_num_threads();
    snprintf(s->core, sizeof s->core, "%s", core ? core : "(null)");
    s->coretype = dup_or_null(getenv("OPENBLAS_CORETYPE"));
    while (environ[n] != NULL) n++;
    s->env = malloc((n + 1) * sizeof(char *));
    if (s->env == NULL) { printf("out of memory\n"); exit(2); }
    for (i = 0; i < n; i++) s->env[i] = dup_or_null(environ[i]);
    s->env_count = n;
}

static void release(host_state *s) {
    size_t i;
    for (i = 0; i < s->env_count; i++) free(s->env[i]);
    free(s->env);
    free(s->coretype);
}

/* The host's state, recorded before the engine exists. */
static host_state g_before;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* Mismatches seen off the main thread (callbacks on the worker, the watcher), with the first. */
static int g_async_mismatches, g_async_checks;
static char g_async_first[1024];

/* Empty when `now` equals `g_before`, else what differs (into `why`). */
static int differs(const host_state *now, char *why, size_t cap) {
    size_t i;
    if (now->threads != g_before.threads) {
        snprintf(why, cap, "openblas_get_num_threads() %d, was %d", now->threads, g_before.threads);
        return 1;
    }
    if (strcmp(now->core, g_before.core) != 0) {
        snprintf(why, cap, "openblas_get_corename() \"%s\", was \"%s\"", now->core, g_before.core);
        return 1;
    }
    if ((now->coretype == NULL) != (g_before.coretype == NULL) ||
        (now->coretype && strcmp(now->coretype, g_before.coretype) != 0)) {
        snprintf(why, cap, "OPENBLAS_CORETYPE \"%s\", was \"%s\"", now->coretype ? now->coretype : "(unset)",
                 g_before.coretype ? g_before.coretype : "(unset)");
        return 1;
    }
    if (now->env_count != g_before.env_count) {
        snprintf(why, cap, "environment has %lu entries, had %lu", (unsigned long)now->env_count,
                 (unsigned long)g_before.env_count);
        return 1;
    }
    for (i = 0; i < now->env_count; i++)
        if (strcmp(now->env[i], g_before.env[i]) != 0) {
            snprintf(why, cap, "environment entry %lu is \"%.100s\", was \"%.100s\"", (unsigned long)i, now->env[i],
                     g_before.env[i]);
            return 1;
        }
    return 0;
}

/* Checks the state now against `g_before`; `where` names the moment in the failure message. */
static void check_now(const char *where) {
    host_state now;
    char why[512];
    capture(&now);
    if (differs(&now, why, sizeof why)) {
        CHECK(0, "host state changed %s: %s", where, why);
    } else {
        CHECK(1, "unused");
    }
    release(&now);
}

/* The same from another thread: counted under a lock, reported by the main thread. */
static void check_async(const char *where) {
    host_state now;
    char why[512];
    capture(&now);
    pthread_mutex_lock(&g_lock);
    g_async_checks++;
    if (differs(&now, why, sizeof why)) {
        if (g_async_mismatches++ == 0) snprintf(g_async_first, sizeof g_async_first, "%s: %.400s", where, why);
    }
    pthread_mutex_unlock(&g_lock);
    release(&now);
}

typedef struct callback_count {
    size_t answered;
    int async; /* callbacks on the engine's worker thread (sx_submit_async) */
} callback_count;

static void on_result(const sx_result *r, void *user) {
    callback_count *c = user;
    (void)r;
    /* Once per batch is enough: the state is process-wide. */
    if (c->answered++ == 0) {
        if (c->async) check_async("inside a result callback on the engine's worker thread");
        else check_now("inside a result callback on the calling thread");
    }
}

/* Polls the state while an exit build runs on the main thread (until `g_build_done`, under g_lock). */
static int g_build_done;
static int build_done(void) {
    int done;
    pthread_mutex_lock(&g_lock);
    done = g_build_done;
    pthread_mutex_unlock(&g_lock);
    return done;
}
static void *watch(void *arg) {
    struct timespec pause = {0, 2000000};
    (void)arg;
    while (!build_done()) {
        check_async("while sx_update_exits ran");
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static uint64_t g_rng = 88172645463325252ull;
static float noise(void) {
    /* xorshift64, then a sum of uniforms: roughly N(0, 1) inputs like the fixtures'. */
    float s = 0;
    int i;
    for (i = 0; i < 4; i++) {
        g_rng ^= g_rng << 13;
        g_rng ^= g_rng >> 7;
        g_rng ^= g_rng << 17;
        s += (float)((g_rng >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
    }
    return s * 1.7f;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char path[4096];
    sx_engine_options options;
    sx_engine *engine = NULL;
    sx_info info;
    sx_update_options update;
    float *input;
    size_t batch = 32, i;
    int b;
    pthread_t watcher;
    sx_status status;

    /* The host configures OpenBLAS its own way first. */
    openblas_set_num_threads(2);
    capture(&g_before);
    printf("test_host_state: OpenBLAS %d thread(s), core %s, OPENBLAS_CORETYPE %s, %lu environment entries\n",
           g_before.threads, g_before.core, g_before.coretype ? g_before.coretype : "(unset)",
           (unsigned long)g_before.env_count);

    snprintf(path, sizeof path, "%s/Tests/Fixtures/models/resnet18_w4.onnx", root);
    sx_engine_options_init(&options);
    options.threads = 2;
    status = sx_engine_create(path, &options, &engine);
    CHECK(status == SX_OK, "sx_engine_create(%s): %s", path, sx_last_error());
    if (status != SX_OK) return 1;
    check_now("after sx_engine_create");

    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(sx_engine_info(engine, &info) == SX_OK, "sx_engine_info: %s", sx_last_error());
    input = malloc(batch * info.input_size * sizeof(float));
    if (input == NULL) return 2;

    /* Inference on the calling thread, then on the worker: 8 batches of 32, all collected. */
    for (b = 0; b < 8; b++) {
        callback_count count = {0, b % 2};
        for (i = 0; i < batch * info.input_size; i++) input[i] = noise();
        if (b % 2 == 0) {
            status = sx_submit(engine, input, batch * info.input_size, batch, on_result, &count);
            CHECK(status == SX_OK, "sx_submit (batch %d): %s", b, sx_last_error());
        } else {
            uint64_t ticket = 0;
            status = sx_submit_async(engine, input, batch * info.input_size, batch, on_result, &count, &ticket);
            CHECK(status == SX_OK, "sx_submit_async (batch %d): %s", b, sx_last_error());
            if (status == SX_OK) CHECK(sx_wait(engine, ticket, -1) == SX_OK, "sx_wait: %s", sx_last_error());
        }
        CHECK(count.answered == batch, "batch %d: %lu of %lu samples answered", b, (unsigned long)count.answered,
              (unsigned long)batch);
    }
    check_now("after inference");

    /* An exit build (exit-head training runs its products on the engine's own SGEMM). */
    sx_update_options_init(&update);
    update.min_samples = 200;
    update.search_budget = 1;
    update.epochs = 2;
    update.tolerance = 0.05;
    g_build_done = 0;
    CHECK(pthread_create(&watcher, NULL, watch, NULL) == 0, "pthread_create");
    status = sx_update_exits(engine, &update);
    pthread_mutex_lock(&g_lock);
    g_build_done = 1;
    pthread_mutex_unlock(&g_lock);
    pthread_join(watcher, NULL);
    CHECK(status == SX_OK, "sx_update_exits on 256 collected samples: %s", sx_last_error());
    check_now("after sx_update_exits");
    CHECK(sx_engine_info(engine, &info) == SX_OK && info.num_trained_exits >= 1,
          "the build trained no exit head (%u candidates): the training products went unchecked",
          (unsigned)info.num_candidates);
    printf("test_host_state: exit build trained %u head(s) of %u candidates\n", (unsigned)info.num_trained_exits,
           (unsigned)info.num_candidates);
    {
        callback_count count = {0, 0};
        CHECK(sx_submit(engine, input, batch * info.input_size, batch, on_result, &count) == SX_OK,
              "sx_submit after the build: %s", sx_last_error());
    }

    CHECK(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy: %s", sx_last_error());
    check_now("after sx_engine_destroy");

    pthread_mutex_lock(&g_lock);
    CHECK(g_async_checks > 0, "no check ran off the main thread");
    CHECK(g_async_mismatches == 0, "host state changed on another thread (%d of %d checks), first %s",
          g_async_mismatches, g_async_checks, g_async_first);
    pthread_mutex_unlock(&g_lock);

    free(input);
    release(&g_before);
    printf("test_host_state: %d checks (+%d off the main thread), %d failed\n", g_checks, g_async_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
