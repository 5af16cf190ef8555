/*
 * test_resources.c — resource failures and cross-engine waits at the C interface of libselfxit.
 *
 *   test_resources [REPO_ROOT]      (default "."; models/ is read from it)
 *
 * Checks that
 *   - running out of memory or threads is reported as SX_ERR_OUT_OF_MEMORY, never a signal:
 *     engine creation with 256 threads and batches far larger than memory, under an address
 *     space limit (setrlimit(RLIMIT_AS)), leave the engine usable and no thread behind;
 *   - too many threads and an arena beyond the limit are INVALID_ARGUMENT with a message that
 *     names the sizes;
 *   - two engines whose sx_submit_async callbacks destroy or wait on each other never
 *     deadlock: the later call is refused with SX_ERR_BUSY and the earlier completes; a
 *     cross-engine wait or destroy that cannot deadlock is not refused.
 *
 * Every case runs in a forked child (the parent never calls the library, so it forks with no
 * engine threads about), with alarm() as watchdog: a deadlock or crash ends that child with
 * a signal, which the parent reports as a failure instead of hanging. SX_TEST_TIMEOUT
 * (seconds a case may take; default 300) sets the watchdog.
 *
 * Prints "ok   …" / "FAIL …" per check and "N passed, M failed" last; exit status 0 when all
 * passed. C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lpthread. Run by run.sh.
 */
#define _POSIX_C_SOURCE 200809L

#include "selfxit.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_root = ".";

#include "check.h"

static void note(const char *fmt, ...) {
    va_list ap;
    fputs("#    ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static const char *model_path(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/models/fmnist-resnet18-w16.onnx", g_root);
    return path;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sx_engine *make_engine(uint32_t threads, uint32_t max_batch, sx_status *status) {
    sx_engine_options options;
    sx_engine *engine = NULL;
    sx_engine_options_init(&options);
    options.threads = threads;
    options.max_batch = max_batch;
    options.collection_budget_bytes = 0;
    *status = sx_engine_create(model_path(), &options, &engine);
    return engine;
}

/* Threads of this process, from /proc/self/task (-1 if unreadable). */
static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    struct dirent *entry;
    int count = 0;
    if (!dir) return -1;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') count++;
    closedir(dir);
    return count;
}

/* This process's address space in bytes (VmSize), or 0 if unreadable. */
static uint64_t address_space_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &kib) == 1) break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

/* Sets the soft address-space limit to the current size plus `headroom` bytes (the hard
 * limit stays, so it can be raised again). */
static int limit_address_space(uint64_t headroom) {
    struct rlimit limit;
    uint64_t size = address_space_bytes();
    if (size == 0 || getrlimit(RLIMIT_AS, &limit) != 0) return -1;
    limit.rlim_cur = (rlim_t)(size + headroom);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    return setrlimit(RLIMIT_AS, &limit);
}

static void unlimit_address_space(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_AS, &limit);
    }
}

/* ---- Callbacks that count answers ----------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    int answers;
    int bad; /* answers with a class outside [0, num_classes) */
} tally;

static void count_answer(const sx_result *result, void *user_data) {
    tally *t = user_data;
    pthread_mutex_lock(&t->mu);
    t->answers++;
    if (result->class_index < 0 || (size_t)result->class_index >= result->num_classes) t->bad++;
    pthread_mutex_unlock(&t->mu);
}

/* ---- Case: out of memory ---------------------------------------------------------------- */

#define INPUT_SIZE 784 /* Fashion-MNIST: 1 × 28 × 28 */
#define HUGE_BATCH 65536 /* 205 MB of input; its activations need ~6 GB */

static void case_out_of_memory(void) {
    sx_status status;
    sx_engine *engine;
    tally t = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    uint64_t ticket = 0;
    float *huge, *one;
    int threads_before, threads_after;
    size_t i;

    /* The huge input is allocated before the limit, so the limit bites on the engine's
     * allocations and not on the test's own. */
    huge = calloc((size_t)HUGE_BATCH * INPUT_SIZE, sizeof *huge);
    one = calloc(INPUT_SIZE, sizeof *one);
    if (!huge || !one) {
        check(0, "oom: allocate the test's input");
        return;
    }
    for (i = 0; i < (size_t)HUGE_BATCH * INPUT_SIZE; i += 4096) huge[i] = 0.5f;
    for (i = 0; i < INPUT_SIZE; i++) one[i] = (float)(i % 7) / 7.0f;

    /* 255 workers need 255 thread stacks (≥ 2 MiB each): 256 MiB of headroom cannot hold them,
     * but holds the model. */
    threads_before = thread_count();
    if (limit_address_space((uint64_t)256 << 20) != 0) {
        check(0, "oom: setrlimit(RLIMIT_AS): %s", strerror(errno));
        return;
    }
    engine = make_engine(256, 1024, &status);
    threads_after = thread_count();
    check(status == SX_ERR_OUT_OF_MEMORY && engine == NULL,
          "oom: 256 threads under a 256 MiB limit -> OUT_OF_MEMORY, engine NULL (got %s: %s)", sx_status_string(status),
          sx_last_error());
    check(strstr(sx_last_error(), "pthread_create") != NULL, "oom: the message names pthread_create: %s", sx_last_error());
    check(threads_after == threads_before, "oom: the threads already started were joined (%d threads before, %d after)",
          threads_before, threads_after);
    if (engine) check(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy");

    /* A batch whose activations are far beyond the limit. */
    unlimit_address_space();
    if (limit_address_space((uint64_t)768 << 20) != 0) {
        check(0, "oom: setrlimit(RLIMIT_AS): %s", strerror(errno));
        return;
    }
    engine = make_engine(2, HUGE_BATCH, &status);
    check(status == SX_OK && engine != NULL, "oom: an engine of 2 threads and max_batch %d under the limit (%s: %s)",
          HUGE_BATCH, sx_status_string(status), sx_last_error());
    if (!engine) return;

    status = sx_submit(engine, huge, (size_t)HUGE_BATCH * INPUT_SIZE, HUGE_BATCH, count_answer, &t);
    check(status == SX_ERR_OUT_OF_MEMORY, "oom: sx_submit of batch %d -> OUT_OF_MEMORY (got %s: %s)", HUGE_BATCH,
          sx_status_string(status), sx_last_error());
    check(strstr(sx_last_error(), "GiB") != NULL && strstr(sx_last_error(), "arena") != NULL,
          "oom: the message names the arena and its size: %s", sx_last_error());
    check(t.answers == 0, "oom: no callback ran for the refused batch (%d)", t.answers);

    status = sx_submit(engine, one, INPUT_SIZE, 1, count_answer, &t);
    check(status == SX_OK && t.answers == 1 && t.bad == 0, "oom: the engine still answers a batch of 1 (%s, %d answers)",
          sx_status_string(status), t.answers);

    /* The same batch asynchronously: queued (the copy fits), fails while running, and
     * sx_wait reports it; the worker goes on serving. */
    t.answers = 0;
    status = sx_submit_async(engine, huge, (size_t)HUGE_BATCH * INPUT_SIZE, HUGE_BATCH, count_answer, &t, &ticket);
    check(status == SX_OK, "oom: sx_submit_async of batch %d is queued (%s: %s)", HUGE_BATCH, sx_status_string(status),
          sx_last_error());
    if (status == SX_OK) {
        status = sx_wait(engine, ticket, -1);
        check(status == SX_ERR_OUT_OF_MEMORY, "oom: sx_wait reports the request's OUT_OF_MEMORY (got %s: %s)",
              sx_status_string(status), sx_last_error());
    }
    status = sx_submit_async(engine, one, INPUT_SIZE, 1, count_answer, &t, &ticket);
    if (status == SX_OK) status = sx_wait(engine, ticket, -1);
    check(status == SX_OK && t.answers == 1, "oom: the worker still answers a batch of 1 (%s, %d answers)",
          sx_status_string(status), t.answers);

    check(sx_engine_destroy(engine) == SX_OK, "oom: destroy");
    unlimit_address_space();
    free(huge);
    free(one);
}

/* ---- Case: limits refused as INVALID_ARGUMENT --------------------------------------------- */

static void case_limits(void) {
    sx_status status;
    sx_engine *engine;
    const char *message;

    engine = make_engine(257, 1024, &status);
    check(status == SX_ERR_INVALID_ARGUMENT && engine == NULL, "limits: threads 257 -> INVALID_ARGUMENT (got %s)",
          sx_status_string(status));
    check(strstr(sx_last_error(), "256") != NULL, "limits: the message names the cap: %s", sx_last_error());

    engine = make_engine(1, 1u << 20, &status);
    message = sx_last_error();
    check(status == SX_ERR_INVALID_ARGUMENT && engine == NULL, "limits: max_batch 1048576 (a 98 GiB arena) -> INVALID_ARGUMENT (got %s)",
          sx_status_string(status));
    check(strstr(message, "98.0 GiB") != NULL && strstr(message, "16.0 GiB") != NULL && strstr(message, " 0 GiB") == NULL,
          "limits: the message names the size asked and the limit: %s", message);
    if (engine) check(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy");

    engine = make_engine(256, 8, &status);
    check(status == SX_OK, "limits: threads 256 is accepted without a memory limit (%s: %s)", sx_status_string(status),
          sx_last_error());
    if (engine) check(sx_engine_destroy(engine) == SX_OK, "sx_engine_destroy");
}

/* ---- Cases: engines whose callbacks destroy or wait on each other --------------------------- */

typedef enum { CROSS_DESTROY, CROSS_WAIT, CROSS_WAIT_FINITE } cross_kind;

typedef struct pair pair;

typedef struct {
    pair *pair;
    int self, other;       /* indices into pair->engines */
    int calls_other;       /* 0: the callback only returns (after `delay_ms`) */
    unsigned delay_ms;
    sx_status status;      /* of its call on the other engine */
    double seconds;        /* that call took */
    int done;
} side;

struct pair {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sx_engine *engines[2];
    uint64_t tickets[2];
    int go;       /* both requests are queued and their tickets stored */
    int arrived;  /* callbacks that have started */
    int rendezvous; /* callbacks wait for each other before calling across */
    cross_kind kind;
    side sides[2];
};

/* Waits (at most 20 s) until `ready(p)`; 0 on time-out. Call with p->mu held. */
static int wait_until(pair *p, int (*ready)(const pair *)) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    while (!ready(p))
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) return 0;
    return 1;
}

static int is_go(const pair *p) { return p->go; }
static int all_arrived(const pair *p) { return p->go && p->arrived == (p->rendezvous ? 2 : 1); }
static int both_done(const pair *p) { return p->sides[0].done && p->sides[1].done; }

static void cross_callback(const sx_result *result, void *user_data) {
    side *s = user_data;
    pair *p = s->pair;
    double start;
    (void)result;
    pthread_mutex_lock(&p->mu);
    wait_until(p, is_go);
    p->arrived++;
    pthread_cond_broadcast(&p->cv);
    /* Both callbacks in flight at once, so each call finds the other engine busy. */
    if (p->rendezvous) wait_until(p, all_arrived);
    pthread_mutex_unlock(&p->mu);

    start = now_seconds();
    if (!s->calls_other) {
        struct timespec delay = {0, (long)s->delay_ms * 1000000L};
        nanosleep(&delay, NULL);
        s->status = SX_OK;
    } else if (p->kind == CROSS_DESTROY) {
        s->status = sx_engine_destroy(p->engines[s->other]);
    } else {
        s->status = sx_wait(p->engines[s->other], p->tickets[s->other], p->kind == CROSS_WAIT ? -1 : 60000);
    }
    s->seconds = now_seconds() - start;

    pthread_mutex_lock(&p->mu);
    s->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Runs one request on each of two engines; side i's callback calls across if calls[i].
 * Returns 0 if the setup failed. On return, engines that a callback destroyed are NULL. */
static int run_pair(pair *p, cross_kind kind, const int calls[2], int rendezvous, const char *name) {
    static float input[INPUT_SIZE];
    sx_status status;
    int i;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->kind = kind;
    p->rendezvous = rendezvous;
    for (i = 0; i < 2; i++) {
        p->sides[i].pair = p;
        p->sides[i].self = i;
        p->sides[i].other = 1 - i;
        p->sides[i].calls_other = calls[i];
        p->sides[i].delay_ms = 50;
        p->engines[i] = make_engine(1, 4, &status);
        if (!p->engines[i]) {
            check(0, "%s: create engine %d (%s: %s)", name, i, sx_status_string(status), sx_last_error());
            return 0;
        }
    }
    pthread_mutex_lock(&p->mu);
    for (i = 0; i < 2; i++) {
        status = sx_submit_async(p->engines[i], input, INPUT_SIZE, 1, cross_callback, &p->sides[i], &p->tickets[i]);
        if (status != SX_OK) {
            pthread_mutex_unlock(&p->mu);
            check(0, "%s: submit to engine %d (%s: %s)", name, i, sx_status_string(status), sx_last_error());
            return 0;
        }
    }
    p->go = 1;
    pthread_cond_broadcast(&p->cv);
    if (!wait_until(p, both_done)) {
        pthread_mutex_unlock(&p->mu);
        check(0, "%s: both callbacks return within 20 s (they did not: a deadlock; the watchdog ends this case)", name);
        pause();
        return 0;
    }
    pthread_mutex_unlock(&p->mu);
    if (kind == CROSS_DESTROY)
        for (i = 0; i < 2; i++)
            if (p->sides[i].calls_other && p->sides[i].status == SX_OK) p->engines[p->sides[i].other] = NULL;
    return 1;
}

static void destroy_pair(pair *p, const char *name) {
    int i;
    for (i = 0; i < 2; i++)
        if (p->engines[i])
            check(sx_engine_destroy(p->engines[i]) == SX_OK, "%s: destroy engine %d from the main thread (%s)", name, i,
                  sx_last_error());
}

static void case_cross_destroy(void) {
    pair p;
    const int both[2] = {1, 1}, first_only[2] = {1, 0};
    if (run_pair(&p, CROSS_DESTROY, both, 1, "cross destroy")) {
        sx_status a = p.sides[0].status, b = p.sides[1].status;
        check((a == SX_OK && b == SX_ERR_BUSY) || (a == SX_ERR_BUSY && b == SX_OK),
              "cross destroy: A's callback destroys B while B's destroys A -> one OK, the other BUSY (got %s, %s)",
              sx_status_string(a), sx_status_string(b));
        destroy_pair(&p, "cross destroy");
    }
    /* Only A's callback destroys B; B's callback just takes 50 ms: nothing to refuse. */
    if (run_pair(&p, CROSS_DESTROY, first_only, 1, "one-way destroy")) {
        check(p.sides[0].status == SX_OK, "one-way destroy: A's callback destroys busy B -> OK after B's work (%s)",
              sx_status_string(p.sides[0].status));
        destroy_pair(&p, "one-way destroy");
    }
}

static void case_cross_wait(void) {
    pair p;
    const int both[2] = {1, 1}, first_only[2] = {1, 0};
    if (run_pair(&p, CROSS_WAIT, both, 1, "cross wait")) {
        sx_status a = p.sides[0].status, b = p.sides[1].status;
        check((a == SX_OK && b == SX_ERR_BUSY) || (a == SX_ERR_BUSY && b == SX_OK),
              "cross wait: A's callback waits forever on B's ticket while B's waits on A's -> one OK, the other BUSY (got %s, %s)",
              sx_status_string(a), sx_status_string(b));
        destroy_pair(&p, "cross wait");
    }
    if (run_pair(&p, CROSS_WAIT_FINITE, both, 1, "cross wait 60 s")) {
        sx_status a = p.sides[0].status, b = p.sides[1].status;
        int refused = a == SX_ERR_BUSY ? 0 : 1;
        check((a == SX_OK && b == SX_ERR_BUSY) || (a == SX_ERR_BUSY && b == SX_OK),
              "cross wait 60 s: with a finite timeout too -> one OK, the other BUSY (got %s, %s)", sx_status_string(a),
              sx_status_string(b));
        check(p.sides[refused].seconds < 5, "cross wait 60 s: the refusal is immediate, not after the timeout (%.3f s)",
              p.sides[refused].seconds);
        destroy_pair(&p, "cross wait 60 s");
    }
    if (run_pair(&p, CROSS_WAIT, first_only, 0, "one-way wait")) {
        check(p.sides[0].status == SX_OK, "one-way wait: A's callback waits forever on busy B's ticket -> OK (%s)",
              sx_status_string(p.sides[0].status));
        destroy_pair(&p, "one-way wait");
    }
}

/* ---- Driver ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    void (*run)(void);
} test_case;

int main(int argc, char **argv) {
    static const test_case cases[] = {
        {"out of memory", case_out_of_memory},
        {"limits", case_limits},
        {"cross-engine destroy", case_cross_destroy},
        {"cross-engine wait", case_cross_wait},
    };
    unsigned timeout = 300;
    const char *env = getenv("SX_TEST_TIMEOUT");
    size_t i;
    int failed_cases = 0, passed = 0, failed = 0;
    if (argc > 1) g_root = argv[1];
    if (env && atoi(env) > 0) timeout = (unsigned)atoi(env);

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t child;
        int wstatus = 0, counts[2] = {0, 0}, channel[2];
        printf("\n## %s\n", cases[i].name);
        fflush(stdout);
        /* A sanitizer reserves terabytes of shadow address space and runs threads of its own:
         * an RLIMIT_AS limit and a thread count mean nothing under it (make sanitize sets this). */
        if (cases[i].run == case_out_of_memory && getenv("SX_TEST_UNDER_SANITIZER")) {
            printf("skipped: %s under a sanitizer (SX_TEST_UNDER_SANITIZER=%s): RLIMIT_AS cannot bound a sanitized process\n",
                   cases[i].name, getenv("SX_TEST_UNDER_SANITIZER"));
            continue;
        }
        if (pipe(channel) != 0 || (child = fork()) < 0) {
            check(0, "%s: pipe or fork: %s", cases[i].name, strerror(errno));
            failed_cases++;
            continue;
        }
        if (child == 0) {
            close(channel[0]);
            g_passed = g_failed = 0;
            alarm(timeout); /* the watchdog: SIGALRM ends a deadlocked case */
            cases[i].run();
            counts[0] = g_passed;
            counts[1] = g_failed;
            if (write(channel[1], counts, sizeof counts) != (ssize_t)sizeof counts) _exit(2);
            _exit(g_failed == 0 ? 0 : 1);
        }
        close(channel[1]);
        if (read(channel[0], counts, sizeof counts) == (ssize_t)sizeof counts) {
            passed += counts[0];
            failed += counts[1];
        }
        close(channel[0]);
        while (waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(wstatus)) {
            check(0, "%s: the case ended by signal %d%s", cases[i].name, WTERMSIG(wstatus),
                  WTERMSIG(wstatus) == SIGALRM ? " (watchdog: a deadlock or hang)" : " (a crash)");
            failed_cases++;
        } else if (WEXITSTATUS(wstatus) != 0) {
            check(0, "%s: the case had failures (see above)", cases[i].name);
            failed_cases++;
        } else {
            check(1, "%s: the case passed", cases[i].name);
        }
    }
    note("%d of %d cases failed", failed_cases, (int)(sizeof cases / sizeof cases[0]));
    printf("%d passed, %d failed\n", passed + g_passed, failed + g_failed);
    return failed_cases == 0 && failed + g_failed == 0 ? 0 : 1;
}
