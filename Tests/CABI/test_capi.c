/*
 * test_capi.c — self-checking test of the C interface of libselfxit (include/selfxit.h).
 *
 * Calls every function of the header, with its error paths, and checks the contract the
 * header states: ownership, struct_size versioning, statuses and messages, callbacks and
 * threading, exit bundles, image ingest.
 *
 *   test_capi [REPO_ROOT]          (default ".": models/ and Tests/Fixtures/ are read from it)
 *
 * Environment: FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist),
 * SX_TEST_TIMEOUT (seconds before the watchdog fails the run; default 1800),
 * SX_TEST_THREADS (kernel threads of the engines; default 0 = all cores).
 *
 * Prints one line per check ("ok   …" or "FAIL …") and, last, "N passed, M failed".
 * Exit status 0 when every check passed. Build and run with Tests/CABI/run.sh.
 *
 * C99, -Wall -Wextra -Werror -pedantic; links -lselfxit -lpng -lturbojpeg -lz -lpthread -lm.
 */
#define _POSIX_C_SOURCE 200809L

#include "selfxit.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

/* ---- Checks --------------------------------------------------------------------------- */

static int g_passed, g_failed;
static pthread_mutex_t g_print_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_last_check[256] = "(none)"; /* for the crash report */

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&g_print_mu);
    if (ok) g_passed++;
    else g_failed++;
    fputs(ok ? "ok   " : "FAIL ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    vsnprintf(g_last_check, sizeof g_last_check, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_print_mu);
}

static void note(const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&g_print_mu);
    fputs("#    ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_print_mu);
}

static void section(const char *name) {
    pthread_mutex_lock(&g_print_mu);
    printf("\n## %s\n", name);
    fflush(stdout);
    pthread_mutex_unlock(&g_print_mu);
}

static const char *status_name(sx_status s) {
    switch (s) {
    case SX_OK: return "SX_OK";
    case SX_ERR_INVALID_ARGUMENT: return "SX_ERR_INVALID_ARGUMENT";
    case SX_ERR_IO: return "SX_ERR_IO";
    case SX_ERR_BAD_MODEL: return "SX_ERR_BAD_MODEL";
    case SX_ERR_UNSUPPORTED_OP: return "SX_ERR_UNSUPPORTED_OP";
    case SX_ERR_SHAPE_MISMATCH: return "SX_ERR_SHAPE_MISMATCH";
    case SX_ERR_WRONG_STATE: return "SX_ERR_WRONG_STATE";
    case SX_ERR_BUSY: return "SX_ERR_BUSY";
    case SX_ERR_OUT_OF_MEMORY: return "SX_ERR_OUT_OF_MEMORY";
    case SX_ERR_TIMEOUT: return "SX_ERR_TIMEOUT";
    case SX_ERR_INTERNAL: return "SX_ERR_INTERNAL";
    case SX_ERR_INVALID_DATA: return "SX_ERR_INVALID_DATA";
    case SX_ERR_CANCELLED: return "SX_ERR_CANCELLED";
    }
    return "(unknown status)";
}

/* The calling thread's last error, copied at once (the library's pointer is valid only
 * until this thread's next call into the library). */
static void copy_last_error(char *dst, size_t cap) {
    const char *e = sx_last_error();
    if (e == NULL) {
        snprintf(dst, cap, "(NULL)");
        return;
    }
    snprintf(dst, cap, "%s", e);
}

/* `got` must be `want` (or `alt`, when alt != want); a failure must leave a non-empty
 * sx_last_error. Evaluated right after the call (the call is the macro's argument). */
static sx_status expect2_(sx_status got, sx_status want, sx_status alt, const char *what) {
    char err[512];
    int ok;
    copy_last_error(err, sizeof err);
    ok = (got == want || got == alt);
    if (ok && got != SX_OK && (strcmp(err, "(NULL)") == 0 || err[0] == '\0')) {
        check(0, "%s -> %s, but sx_last_error() is empty", what, status_name(got));
        return got;
    }
    if (want == alt)
        check(ok, "%s -> %s%s%s%s%s", what, status_name(got), ok ? "" : " (expected ", ok ? "" : status_name(want),
              ok ? "" : ")", "");
    else
        check(ok, "%s -> %s%s%s%s%s%s", what, status_name(got), ok ? "" : " (expected ", ok ? "" : status_name(want),
              ok ? "" : " or ", ok ? "" : status_name(alt), ok ? "" : ")");
    if (got != SX_OK) note("  message: %s", err);
    return got;
}
#define EXPECT(call, want) expect2_((call), (want), (want), #call)
#define EXPECT2(call, want, alt) expect2_((call), (want), (alt), #call)
#define EXPECT_D(call, want, desc) expect2_((call), (want), (want), desc)

/* ---- Small utilities ------------------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "test_capi: out of memory (%lu bytes)\n", (unsigned long)n);
        exit(2);
    }
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "test_capi: out of memory\n");
        exit(2);
    }
    return p;
}

static unsigned char *read_whole_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = xmalloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static int write_whole_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (f == NULL) return 0;
    ok = fwrite(bytes, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static int str_nonempty(const char *s) { return s != NULL && s[0] != '\0'; }

/* ---- Fashion-MNIST (gzip idx via zlib) ------------------------------------------------ */

#define FM_MEAN 0.2860f
#define FM_STD 0.3530f

static unsigned char *read_idx_gz(const char *path, uint32_t *dims, int want_ndim, size_t *count) {
    gzFile f = gzopen(path, "rb");
    unsigned char head[4], d[4];
    unsigned char *data;
    size_t total = 1;
    int i;
    if (f == NULL) return NULL;
    if (gzread(f, head, 4) != 4 || head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != want_ndim) {
        gzclose(f);
        return NULL;
    }
    for (i = 0; i < want_ndim; i++) {
        if (gzread(f, d, 4) != 4) {
            gzclose(f);
            return NULL;
        }
        dims[i] = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
        total *= dims[i];
    }
    data = xmalloc(total);
    {
        size_t got = 0;
        while (got < total) {
            unsigned chunk = (unsigned)((total - got) > (1u << 30) ? (1u << 30) : (total - got));
            int r = gzread(f, data + got, chunk);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != total) {
            gzclose(f);
            free(data);
            return NULL;
        }
    }
    gzclose(f);
    *count = total;
    return data;
}

typedef struct {
    size_t n;          /* images */
    size_t pixels;     /* per image (784) */
    unsigned char *u8; /* n × pixels */
    unsigned char *labels;
    float *x; /* n × pixels, normalised (p/255 − mean)/std */
} dataset;

static int load_fashion_mnist(dataset *ds) {
    const char *dir = getenv("FASHION_MNIST_DIR");
    char path[4096];
    uint32_t idims[3], ldims[1];
    size_t icount, lcount, i;
    if (dir == NULL || dir[0] == '\0') dir = "/usr/share/datasets/fashion-mnist";
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    ds->u8 = read_idx_gz(path, idims, 3, &icount);
    if (ds->u8 == NULL) {
        fprintf(stderr, "test_capi: cannot read %s\n", path);
        return 0;
    }
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    ds->labels = read_idx_gz(path, ldims, 1, &lcount);
    if (ds->labels == NULL || ldims[0] != idims[0]) {
        fprintf(stderr, "test_capi: cannot read %s\n", path);
        return 0;
    }
    ds->n = idims[0];
    ds->pixels = (size_t)idims[1] * idims[2];
    ds->x = xmalloc(icount * sizeof(float));
    for (i = 0; i < icount; i++) ds->x[i] = ((float)ds->u8[i] / 255.0f - FM_MEAN) / FM_STD;
    return 1;
}

/* ---- Result collection ---------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    size_t n;
    size_t num_classes;
    uint64_t backbone_flops;
    int32_t *cls;
    int32_t *exit_index;
    float *conf;
    uint64_t *flops;
    double *latency;
    int *count;
    size_t anomalies;
    char first_anomaly[256];
    uint64_t last_ticket;
    size_t order_violations;
} results;

/* One submission: where its samples go in `r`. */
typedef struct {
    results *r;
    size_t base;
    size_t batch;
    size_t calls;
    uint64_t seen_ticket;
    pthread_t thread;
    int thread_set;
    size_t wrong_thread;
} request;

static void results_init(results *r, size_t n, size_t num_classes, uint64_t backbone_flops) {
    size_t i;
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->n = n;
    r->num_classes = num_classes;
    r->backbone_flops = backbone_flops;
    r->cls = xmalloc(n * sizeof(int32_t));
    r->exit_index = xmalloc(n * sizeof(int32_t));
    r->conf = xmalloc(n * sizeof(float));
    r->flops = xmalloc(n * sizeof(uint64_t));
    r->latency = xmalloc(n * sizeof(double));
    r->count = xcalloc(n, sizeof(int));
    for (i = 0; i < n; i++) r->cls[i] = r->exit_index[i] = -2;
}

static void results_free(results *r) {
    pthread_mutex_destroy(&r->mu);
    free(r->cls);
    free(r->exit_index);
    free(r->conf);
    free(r->flops);
    free(r->latency);
    free(r->count);
}

static void anomaly(results *r, const char *fmt, ...) {
    va_list ap;
    if (r->anomalies++ == 0) {
        va_start(ap, fmt);
        vsnprintf(r->first_anomaly, sizeof r->first_anomaly, fmt, ap);
        va_end(ap);
    }
}

static void on_result(const sx_result *res, void *user_data) {
    request *q = user_data;
    results *r = q->r;
    pthread_mutex_lock(&r->mu);
    if (q->thread_set && !pthread_equal(q->thread, pthread_self())) q->wrong_thread++;
    if (q->calls++ > 0 && res->ticket != q->seen_ticket) anomaly(r, "ticket changed within a request");
    q->seen_ticket = res->ticket;
    if (res->struct_size < sizeof(sx_result)) anomaly(r, "result struct_size %u", (unsigned)res->struct_size);
    if (res->ticket != 0) {
        if (res->ticket < r->last_ticket) r->order_violations++;
        r->last_ticket = res->ticket;
    }
    if (res->sample_index >= q->batch || q->base + res->sample_index >= r->n) {
        anomaly(r, "sample_index %lu out of range (batch %lu)", (unsigned long)res->sample_index,
                (unsigned long)q->batch);
    } else {
        size_t i = q->base + res->sample_index, c;
        float sum = 0.0f;
        int32_t best = 0;
        r->count[i]++;
        r->cls[i] = res->class_index;
        r->exit_index[i] = res->exit_index;
        r->conf[i] = res->confidence;
        r->flops[i] = res->flops;
        r->latency[i] = res->latency_seconds;
        if (res->num_classes != r->num_classes || res->probabilities == NULL) {
            anomaly(r, "num_classes %lu / probabilities %p", (unsigned long)res->num_classes,
                    (const void *)res->probabilities);
        } else {
            for (c = 0; c < res->num_classes; c++) {
                sum += res->probabilities[c];
                if (res->probabilities[c] > res->probabilities[best]) best = (int32_t)c;
            }
            if (fabsf(sum - 1.0f) > 1e-3f) anomaly(r, "probabilities sum to %g", (double)sum);
            if (res->class_index < 0 || (size_t)res->class_index >= res->num_classes)
                anomaly(r, "class_index %d", res->class_index);
            else if (res->probabilities[res->class_index] < res->probabilities[best])
                anomaly(r, "class_index %d is not the argmax %d", res->class_index, best);
            else if (fabsf(res->confidence - res->probabilities[res->class_index]) > 1e-4f)
                anomaly(r, "confidence %g != probabilities[class] %g", (double)res->confidence,
                        (double)res->probabilities[res->class_index]);
        }
        if (!(res->confidence > 0.0f && res->confidence <= 1.0f + 1e-6f))
            anomaly(r, "confidence %g", (double)res->confidence);
        if (!(res->latency_seconds >= 0.0 && res->latency_seconds < 3600.0))
            anomaly(r, "latency %g", res->latency_seconds);
        if (res->flops == 0) anomaly(r, "flops 0");
        if (res->exit_index < -1) anomaly(r, "exit_index %d", res->exit_index);
        if (res->exit_index == -1 && res->flops < r->backbone_flops)
            anomaly(r, "backbone answer with flops %llu < backbone %llu", (unsigned long long)res->flops,
                    (unsigned long long)r->backbone_flops);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Every sample answered exactly once. */
static size_t count_not_once(const results *r, size_t first, size_t n) {
    size_t i, bad = 0;
    for (i = first; i < first + n; i++)
        if (r->count[i] != 1) bad++;
    return bad;
}

/* Runs the n samples at `x` through sx_submit in batches of `batch`; results land in
 * r[0 … n). Returns the first non-OK status. */
static sx_status run_sync(sx_engine *e, const float *x, size_t input_size, size_t n, size_t batch, results *r) {
    size_t off;
    for (off = 0; off < n; off += batch) {
        size_t b = (n - off < batch) ? n - off : batch;
        request q;
        sx_status s;
        memset(&q, 0, sizeof q);
        q.r = r;
        q.base = off;
        q.batch = b;
        q.thread = pthread_self();
        q.thread_set = 1;
        s = sx_submit(e, x + off * input_size, b * input_size, b, on_result, &q);
        if (s != SX_OK) return s;
        if (q.calls != b) {
            pthread_mutex_lock(&r->mu);
            anomaly(r, "sx_submit returned after %lu of %lu callbacks", (unsigned long)q.calls, (unsigned long)b);
            pthread_mutex_unlock(&r->mu);
        }
        if (q.wrong_thread) {
            pthread_mutex_lock(&r->mu);
            anomaly(r, "sx_submit callback ran on another thread");
            pthread_mutex_unlock(&r->mu);
        }
    }
    return SX_OK;
}

static void null_result_fn(const sx_result *res, void *user_data) {
    size_t *n = user_data;
    (void)res;
    if (n) (*n)++;
}

/* ---- In-memory PNG / JPEG ------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t size, cap;
} membuf;

static void png_mem_write(png_structp png, png_bytep data, png_size_t len) {
    membuf *m = png_get_io_ptr(png);
    if (m->size + len > m->cap) {
        size_t cap = (m->cap ? m->cap * 2 : 1024);
        while (cap < m->size + len) cap *= 2;
        m->data = realloc(m->data, cap);
        if (m->data == NULL) png_error(png, "out of memory");
        m->cap = cap;
    }
    memcpy(m->data + m->size, data, len);
    m->size += len;
}

static void png_mem_flush(png_structp png) { (void)png; }

/* channels 1 (gray) or 3 (RGB); pixels row-major, interleaved. NULL on failure. */
static unsigned char *make_png(const unsigned char *pixels, int width, int height, int channels, size_t *size) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info;
    membuf m;
    png_bytep *volatile rows = NULL;
    int y;
    memset(&m, 0, sizeof m);
    if (png == NULL) return NULL;
    info = png_create_info_struct(png);
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(m.data);
        free(rows);
        return NULL;
    }
    png_set_write_fn(png, &m, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    rows = xmalloc(sizeof(png_bytep) * (size_t)height);
    for (y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * (size_t)width * (size_t)channels);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *size = m.size;
    return m.data;
}

/* channels 1 (gray) or 3 (RGB). Returns malloc'd bytes or NULL. */
static unsigned char *make_jpeg(const unsigned char *pixels, int width, int height, int channels, size_t *size) {
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL, *copy;
    unsigned long jsize = 0;
    int rc;
    if (tj == NULL) return NULL;
    rc = tjCompress2(tj, pixels, width, 0, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, &jpeg, &jsize,
                     channels == 1 ? TJSAMP_GRAY : TJSAMP_444, 95, TJFLAG_ACCURATEDCT);
    tjDestroy(tj);
    if (rc != 0 || jpeg == NULL) {
        if (jpeg) tjFree(jpeg);
        return NULL;
    }
    copy = xmalloc(jsize);
    memcpy(copy, jpeg, jsize);
    tjFree(jpeg);
    *size = jsize;
    return copy;
}

/* ---- Globals of the run --------------------------------------------------------------- */

static char g_root[2048] = ".";
static char g_tmp[2048];
static dataset g_ds;
static unsigned g_threads; /* kernel threads per engine; 0 = all cores */
static int g_got;        /* filled before a check() whose message prints the struct */

static void root_path(char *dst, size_t cap, const char *rel) { snprintf(dst, cap, "%s/%s", g_root, rel); }
static void tmp_path(char *dst, size_t cap, const char *name) { snprintf(dst, cap, "%s/%s", g_tmp, name); }

static sx_engine *create_engine(const char *rel, const sx_engine_options *opt_in, const char *what) {
    char path[4096];
    sx_engine_options opt;
    sx_engine *e = NULL;
    sx_status s;
    if (opt_in) opt = *opt_in;
    else {
        sx_engine_options_init(&opt);
        opt.threads = g_threads;
    }
    root_path(path, sizeof path, rel);
    s = sx_engine_create(path, &opt, &e);
    {
        char err[512];
        copy_last_error(err, sizeof err);
        check(s == SX_OK && e != NULL, "sx_engine_create(%s) [%s] -> %s%s%s", rel, what, status_name(s),
              s == SX_OK ? "" : ": ", s == SX_OK ? "" : err);
    }
    return s == SX_OK ? e : NULL;
}

static int get_info(sx_engine *e, sx_info *info) {
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    return sx_engine_info(e, info) == SX_OK;
}

static int get_stats(sx_engine *e, sx_stats *st) {
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    return sx_get_stats(e, st) == SX_OK;
}

/* A crash inside the library: report it as a failed check with the summary line, then hand
 * the signal to the handler that was installed before (the Swift runtime's backtracer). */
static struct sigaction g_old_actions[32];
static const int g_fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};

static void put_str(const char *s) {
    if (write(STDOUT_FILENO, s, strlen(s)) < 0) { /* nothing to do */
    }
}

static void put_int(int v) {
    char buf[16];
    int i = (int)sizeof buf;
    unsigned u = v < 0 ? 0u : (unsigned)v;
    buf[--i] = '\0';
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u && i > 0);
    put_str(buf + i);
}

static void on_fatal(int sig, siginfo_t *info, void *context) {
    struct sigaction *old = sig < 32 ? &g_old_actions[sig] : NULL;
    put_str("FAIL crashed with signal ");
    put_int(sig);
    put_str(" after the check: ");
    put_str(g_last_check);
    put_str("\n");
    put_int(g_passed);
    put_str(" passed, ");
    put_int(g_failed + 1);
    put_str(" failed\n");
    if (old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        sigaction(sig, old, NULL);
        old->sa_sigaction(sig, info, context);
    } else if (old && old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler != NULL) {
        sigaction(sig, old, NULL);
        old->sa_handler(sig);
    }
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

static void install_crash_report(void) {
    size_t i;
    for (i = 0; i < sizeof g_fatal_signals / sizeof g_fatal_signals[0]; i++) {
        struct sigaction sa;
        int sig = g_fatal_signals[i];
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, &g_old_actions[sig]);
    }
}

static void watchdog(int sig) {
    static const char msg[] = "FAIL watchdog: the test ran past SX_TEST_TIMEOUT (hang?)\n";
    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do */
    }
    _exit(3);
}

/* ---- 1. Library-level functions ------------------------------------------------------- */

static void test_library(void) {
    static const struct {
        const char *name;
        size_t size;
    } structs[] = {
        {"sx_result", sizeof(sx_result)},
        {"sx_stats", sizeof(sx_stats)},
        {"sx_engine_options", sizeof(sx_engine_options)},
        {"sx_update_options", sizeof(sx_update_options)},
        {"sx_info", sizeof(sx_info)},
        {"sx_preprocess", sizeof(sx_preprocess)},
    };
    const char *v;
    const char *names[SX_ERR_INTERNAL + 1];
    char err[512];
    size_t i, j;
    int distinct = 1, all_named = 1;

    section("library");
    copy_last_error(err, sizeof err);
    check(strcmp(err, "") == 0, "sx_last_error() is \"\" before any failure (got \"%s\")", err);
    check(sx_abi_version() == SX_ABI_VERSION, "sx_abi_version() == SX_ABI_VERSION (%u)", (unsigned)sx_abi_version());
    v = sx_version();
    check(str_nonempty(v) && v[0] >= '0' && v[0] <= '9' && strchr(v, '.') != NULL, "sx_version() = \"%s\"",
          v ? v : "(NULL)");

    for (i = 0; i <= SX_ERR_INTERNAL; i++) {
        names[i] = sx_status_string((sx_status)i);
        if (!str_nonempty(names[i])) all_named = 0;
        note("  sx_status_string(%s) = \"%s\"", status_name((sx_status)i), names[i] ? names[i] : "(NULL)");
    }
    check(all_named, "sx_status_string gives a non-empty name for every code 0..10");
    for (i = 0; all_named && i <= SX_ERR_INTERNAL; i++)
        for (j = i + 1; j <= SX_ERR_INTERNAL; j++)
            if (strcmp(names[i], names[j]) == 0) distinct = 0;
    check(all_named && distinct, "sx_status_string names are distinct");
    v = sx_status_string((sx_status)11);
    check(str_nonempty(v), "sx_status_string(11) (out of range) = \"%s\"", v ? v : "(NULL)");
    v = sx_status_string((sx_status)-1);
    check(str_nonempty(v), "sx_status_string(-1) (out of range) = \"%s\"", v ? v : "(NULL)");
    v = sx_status_string((sx_status)100000);
    check(str_nonempty(v), "sx_status_string(100000) (out of range) = \"%s\"", v ? v : "(NULL)");

    for (i = 0; i < sizeof structs / sizeof structs[0]; i++) {
        size_t got = sx_struct_size(structs[i].name);
        check(got == structs[i].size, "sx_struct_size(\"%s\") = %lu (header sizeof %lu)", structs[i].name,
              (unsigned long)got, (unsigned long)structs[i].size);
    }
    check(sx_struct_size("sx_nothing") == 0, "sx_struct_size(\"sx_nothing\") = 0 (unknown name)");
    check(sx_struct_size("") == 0, "sx_struct_size(\"\") = 0");
    check(sx_struct_size(NULL) == 0, "sx_struct_size(NULL) = 0");

    {
        sx_engine_options o;
        memset(&o, 0xAB, sizeof o);
        sx_engine_options_init(&o);
        check(o.struct_size == sizeof o && o.threads == 0 && o.max_batch == 1024 &&
                  o.collection_budget_bytes == 64ull << 20 && o.seed == 0 && o.input_shape == NULL &&
                  o.input_rank == 0 && o.max_pending == 64,
              "sx_engine_options_init: struct_size %u, threads %u, max_batch %u, collection %llu, seed %llu, "
              "input_shape %p, rank %lu, max_pending %u",
              (unsigned)o.struct_size, (unsigned)o.threads, (unsigned)o.max_batch,
              (unsigned long long)o.collection_budget_bytes, (unsigned long long)o.seed,
              (const void *)o.input_shape, (unsigned long)o.input_rank, (unsigned)o.max_pending);
    }
    {
        sx_update_options u;
        memset(&u, 0xAB, sizeof u);
        sx_update_options_init(&u);
        check(u.struct_size == sizeof u && fabs(u.tolerance - 0.01) < 1e-12 && u.search_budget == 4 &&
                  u.memory_budget_bytes == 2ull << 30 && fabs(u.train_fraction - 0.5) < 1e-12 &&
                  fabs(u.validation_fraction - 0.2) < 1e-12 && u.min_samples == 200 && u.epochs == 30,
              "sx_update_options_init: tolerance %g, search_budget %u, seed %llu, memory %llu, train %g, "
              "validation %g, min_samples %u, epochs %u",
              u.tolerance, (unsigned)u.search_budget, (unsigned long long)u.seed,
              (unsigned long long)u.memory_budget_bytes, u.train_fraction, u.validation_fraction,
              (unsigned)u.min_samples, (unsigned)u.epochs);
    }
    {
        sx_preprocess p;
        memset(&p, 0xAB, sizeof p);
        sx_preprocess_init(&p);
        check(p.struct_size == sizeof p && fabsf(p.scale - 1.0f / 255.0f) < 1e-9f && p.mean[0] == 0.0f &&
                  p.mean[1] == 0.0f && p.mean[2] == 0.0f && p.std[0] == 1.0f && p.std[1] == 1.0f && p.std[2] == 1.0f,
              "sx_preprocess_init: scale %g, mean (%g %g %g), std (%g %g %g)", (double)p.scale, (double)p.mean[0],
              (double)p.mean[1], (double)p.mean[2], (double)p.std[0], (double)p.std[1], (double)p.std[2]);
    }
}

/* ---- 2. Creation and its errors ------------------------------------------------------- */

static void *fresh_thread_last_error(void *arg) {
    copy_last_error((char *)arg, 512);
    return NULL;
}

static void test_create_errors(void) {
    char path[4096], err[512];
    sx_engine *e;
    sx_engine_options opt;
    int dummy;
    unsigned char *model;
    size_t model_size = 0;

    section("engine creation errors");
    e = (sx_engine *)(void *)&dummy;
    EXPECT(sx_engine_create(NULL, NULL, &e), SX_ERR_INVALID_ARGUMENT);
    check(e == NULL, "failed sx_engine_create sets *engine to NULL");
    root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
    EXPECT_D(sx_engine_create(path, NULL, NULL), SX_ERR_INVALID_ARGUMENT, "sx_engine_create(model, NULL, NULL engine out)");

    e = (sx_engine *)(void *)&dummy;
    tmp_path(path, sizeof path, "does-not-exist.onnx");
    EXPECT_D(sx_engine_create(path, NULL, &e), SX_ERR_IO, "sx_engine_create(missing file)");
    check(e == NULL, "  … and *engine is NULL");

    /* A thread that has made no failing call sees "". */
    {
        pthread_t t;
        char other[512] = "unset";
        pthread_create(&t, NULL, fresh_thread_last_error, other);
        pthread_join(t, NULL);
        check(strcmp(other, "") == 0, "sx_last_error() is per thread: a fresh thread sees \"\" (got \"%s\")", other);
    }

    {
        unsigned char garbage[4096];
        size_t i;
        uint32_t x = 12345u;
        for (i = 0; i < sizeof garbage; i++) {
            x = x * 1103515245u + 12345u;
            garbage[i] = (unsigned char)(x >> 16);
        }
        tmp_path(path, sizeof path, "garbage.onnx");
        write_whole_file(path, garbage, sizeof garbage);
        e = (sx_engine *)(void *)&dummy;
        EXPECT_D(sx_engine_create(path, NULL, &e), SX_ERR_BAD_MODEL, "sx_engine_create(garbage file)");
        check(e == NULL, "  … and *engine is NULL");
        e = (sx_engine *)(void *)&dummy;
        EXPECT_D(sx_engine_create_from_memory(garbage, sizeof garbage, NULL, &e), SX_ERR_BAD_MODEL,
                 "sx_engine_create_from_memory(garbage)");
        check(e == NULL, "  … and *engine is NULL");
        tmp_path(path, sizeof path, "empty.onnx");
        write_whole_file(path, garbage, 0);
        e = NULL;
        EXPECT_D(sx_engine_create(path, NULL, &e), SX_ERR_BAD_MODEL, "sx_engine_create(empty file)");
    }
    tmp_path(path, sizeof path, "");
    EXPECT_D(sx_engine_create(path, NULL, &e), SX_ERR_IO, "sx_engine_create(a directory)");

    e = NULL;
    EXPECT_D(sx_engine_create_from_memory(NULL, 100, NULL, &e), SX_ERR_INVALID_ARGUMENT,
             "sx_engine_create_from_memory(NULL bytes)");
    EXPECT_D(sx_engine_create_from_memory(&dummy, 0, NULL, &e), SX_ERR_INVALID_ARGUMENT,
             "sx_engine_create_from_memory(size 0)");

    root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
    model = read_whole_file(path, &model_size);
    check(model != NULL, "read %s (%lu bytes)", path, (unsigned long)model_size);
    if (model) {
        EXPECT_D(sx_engine_create_from_memory(model, model_size, NULL, NULL), SX_ERR_INVALID_ARGUMENT,
                 "sx_engine_create_from_memory(model, NULL engine out)");
        e = NULL;
        EXPECT_D(sx_engine_create_from_memory(model, model_size / 2, NULL, &e), SX_ERR_BAD_MODEL,
                 "sx_engine_create_from_memory(truncated model)");

        /* The bytes are copied: the engine works after the caller frees them. */
        sx_engine_options_init(&opt);
        opt.threads = g_threads;
        e = NULL;
        if (EXPECT_D(sx_engine_create_from_memory(model, model_size, &opt, &e), SX_OK,
                     "sx_engine_create_from_memory(model)") == SX_OK) {
            results r;
            sx_info info;
            memset(model, 0, model_size);
            free(model);
            model = NULL;
            get_info(e, &info);
            results_init(&r, 64, 10, info.backbone_flops);
            EXPECT_D(run_sync(e, g_ds.x, g_ds.pixels, 64, 64, &r), SX_OK,
                     "inference on an engine made from memory, after freeing the bytes");
            check(count_not_once(&r, 0, 64) == 0 && r.anomalies == 0, "  … 64 results, each once (%s)",
                  r.anomalies ? r.first_anomaly : "no anomaly");
            results_free(&r);
            EXPECT(sx_engine_destroy(e), SX_OK);
        }
        free(model);
    }

    root_path(path, sizeof path, "Tests/Fixtures/models/resnet18_w4_unsupported_op.onnx");
    e = (sx_engine *)(void *)&dummy;
    EXPECT_D(sx_engine_create(path, NULL, &e), SX_ERR_UNSUPPORTED_OP, "sx_engine_create(model with an unsupported op)");
    check(e == NULL, "  … and *engine is NULL");

    root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
    sx_engine_options_init(&opt);
    opt.struct_size = 0;
    e = (sx_engine *)(void *)&dummy;
    EXPECT_D(sx_engine_create(path, &opt, &e), SX_ERR_INVALID_ARGUMENT, "sx_engine_create(options.struct_size 0)");
    check(e == NULL, "  … and *engine is NULL");
    sx_engine_options_init(&opt);
    opt.max_batch = 0;
    e = NULL;
    EXPECT_D(sx_engine_create(path, &opt, &e), SX_ERR_INVALID_ARGUMENT, "sx_engine_create(max_batch 0)");
    {
        static const int64_t wrong_shape[3] = {3, 32, 32};
        sx_engine_options_init(&opt);
        opt.input_shape = wrong_shape;
        opt.input_rank = 3;
        e = NULL;
        EXPECT_D(sx_engine_create(path, &opt, &e), SX_ERR_SHAPE_MISMATCH,
                 "sx_engine_create(input_shape 3x32x32 on a 1x28x28 model)");
        if (e) check(sx_engine_destroy(e) == SX_OK, "  … sx_engine_destroy");
    }
    {
        int64_t shape[3] = {1, 28, 28};
        sx_engine_options_init(&opt);
        opt.threads = g_threads;
        opt.input_shape = shape;
        opt.input_rank = 3;
        e = NULL;
        if (EXPECT_D(sx_engine_create(path, &opt, &e), SX_OK, "sx_engine_create(input_shape 1x28x28, matching)") ==
            SX_OK) {
            sx_info info;
            shape[0] = shape[1] = shape[2] = 99; /* borrowed during creation only */
            g_got = get_info(e, &info);
            check(g_got && info.input_rank == 3 && info.input_shape[0] == 1 &&
                      info.input_shape[1] == 28 && info.input_shape[2] == 28,
                  "  … input shape 1x28x28 kept after the caller's array changed");
            check(sx_engine_destroy(e) == SX_OK, "  … sx_engine_destroy");
        }
    }
    copy_last_error(err, sizeof err);
    check(err[0] != '\0', "sx_last_error() still holds the last failure's message after later successes");
    EXPECT(sx_engine_destroy(NULL), SX_OK);
}

/* ---- 3. An older caller's shorter options struct -------------------------------------- */

static void test_old_options(void) {
    char path[4096];
    sx_engine_options opt;
    sx_engine *e = NULL;
    static const int64_t bogus_shape[3] = {3, 5, 5};
    sx_info info;

    section("older caller: sx_engine_options with struct_size = offsetof(seed)");
    sx_engine_options_init(&opt);
    opt.struct_size = (uint32_t)offsetof(sx_engine_options, seed);
    opt.threads = 1;
    opt.max_batch = 16;
    opt.collection_budget_bytes = 1 << 20;
    /* Beyond struct_size: values that would break the engine if read. */
    opt.seed = 0xDEADBEEFull;
    opt.input_shape = bogus_shape;
    opt.input_rank = 3;
    opt.max_pending = 1;
    root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
    if (EXPECT_D(sx_engine_create(path, &opt, &e), SX_OK, "sx_engine_create(old options)") != SX_OK) return;
    g_got = get_info(e, &info);
    check(g_got && info.input_rank == 3 && info.input_shape[0] == 1 && info.input_shape[1] == 28 &&
              info.input_shape[2] == 28 && info.input_size == 784,
          "  … input_shape/input_rank beyond struct_size ignored: shape %ldx%ldx%ld", (long)info.input_shape[0],
          (long)info.input_shape[1], (long)info.input_shape[2]);
    {
        float *x = g_ds.x;
        size_t n = 0;
        EXPECT_D(sx_submit(e, x, 17 * 784, 17, null_result_fn, &n), SX_ERR_INVALID_ARGUMENT,
                 "  … max_batch 16 (inside struct_size) is read: batch 17 refused");
        EXPECT_D(sx_submit(e, x, 16 * 784, 16, null_result_fn, &n), SX_OK, "  … batch 16 accepted");
        check(n == 16, "  … 16 callbacks (%lu)", (unsigned long)n);
    }
    {
        /* max_pending beyond struct_size: the default 64, not 1. Eight quick requests of 16
         * samples on one kernel thread would overflow a queue of 1. */
        results r;
        request q[8];
        uint64_t t[8];
        int i, busy = 0, okc = 0;
        results_init(&r, 8 * 16, 10, info.backbone_flops);
        for (i = 0; i < 8; i++) {
            sx_status s;
            memset(&q[i], 0, sizeof q[i]);
            q[i].r = &r;
            q[i].base = (size_t)i * 16;
            q[i].batch = 16;
            t[i] = 0;
            s = sx_submit_async(e, g_ds.x + (size_t)i * 16 * 784, 16 * 784, 16, on_result, &q[i], &t[i]);
            if (s == SX_ERR_BUSY) busy++;
            else if (s == SX_OK) okc++;
        }
        check(busy == 0 && okc == 8, "  … max_pending beyond struct_size is the default: 8 quick async requests, "
                                     "%d accepted, %d BUSY",
              okc, busy);
        for (i = 0; i < 8; i++)
            if (t[i]) check(sx_wait(e, t[i], -1) == SX_OK, "  … sx_wait(ticket %llu)", (unsigned long long)t[i]);
        check(count_not_once(&r, 0, (size_t)okc * 16) == 0, "  … every sample answered once");
        results_free(&r);
    }
    EXPECT(sx_engine_destroy(e), SX_OK);
}

/* ---- 4. Engine info, stats and inference errors --------------------------------------- */

static void test_info_and_errors(sx_engine *e, const sx_info *info) {
    float *x = g_ds.x;
    size_t n = 0;
    uint64_t ticket = 777;
    sx_info old;
    sx_stats st;
    unsigned char *raw;

    section("engine info, inference and statistics: argument errors");
    check(info->input_rank == 3 && info->input_shape[0] == 1 && info->input_shape[1] == 28 &&
              info->input_shape[2] == 28 && info->input_size == 784 && info->num_classes == 10,
          "sx_engine_info: input %ldx%ldx%ld (%lu floats), %lu classes", (long)info->input_shape[0],
          (long)info->input_shape[1], (long)info->input_shape[2], (unsigned long)info->input_size,
          (unsigned long)info->num_classes);
    check(info->backbone_flops > 1000000 && info->num_candidates >= 1 && info->num_candidates <= SX_MAX_EXITS &&
              info->num_trained_exits == 0 && info->num_active_exits == 0 && info->collected_samples == 0,
          "sx_engine_info: backbone %llu FLOPs, %u candidates, %u trained, %u active, %llu collected, exits_enabled "
          "%u",
          (unsigned long long)info->backbone_flops, (unsigned)info->num_candidates,
          (unsigned)info->num_trained_exits, (unsigned)info->num_active_exits,
          (unsigned long long)info->collected_samples, (unsigned)info->exits_enabled);

    EXPECT(sx_engine_info(NULL, &old), SX_ERR_INVALID_ARGUMENT);
    EXPECT(sx_engine_info(e, NULL), SX_ERR_INVALID_ARGUMENT);
    /* An older, shorter sx_info: only its bytes are written. */
    raw = (unsigned char *)&old;
    memset(&old, 0xCD, sizeof old);
    old.struct_size = (uint32_t)offsetof(sx_info, num_classes);
    if (EXPECT_D(sx_engine_info(e, &old), SX_OK, "sx_engine_info(struct_size = offsetof(sx_info, num_classes))") ==
        SX_OK) {
        size_t i, touched = 0;
        for (i = offsetof(sx_info, num_classes); i < sizeof old; i++)
            if (raw[i] != 0xCD) touched++;
        check(touched == 0 && old.input_size == 784, "  … bytes beyond struct_size untouched (%lu changed), "
                                                     "input_size %lu",
              (unsigned long)touched, (unsigned long)old.input_size);
    }
    memset(&old, 0xCD, sizeof old);
    old.struct_size = 0;
    {
        sx_status s = sx_engine_info(e, &old);
        size_t i, touched = 0;
        for (i = sizeof(uint32_t); i < sizeof old; i++)
            if (raw[i] != 0xCD) touched++;
        check((s == SX_ERR_INVALID_ARGUMENT || s == SX_OK) && touched == 0,
              "sx_engine_info(struct_size 0) -> %s, writes nothing beyond struct_size (%lu bytes changed)",
              status_name(s), (unsigned long)touched);
    }

    /* sx_submit */
    EXPECT_D(sx_submit(NULL, x, 784, 1, null_result_fn, &n), SX_ERR_INVALID_ARGUMENT, "sx_submit(NULL engine)");
    EXPECT_D(sx_submit(e, NULL, 784, 1, null_result_fn, &n), SX_ERR_INVALID_ARGUMENT, "sx_submit(NULL input)");
    EXPECT_D(sx_submit(e, x, 784, 1, NULL, &n), SX_ERR_INVALID_ARGUMENT, "sx_submit(NULL callback)");
    EXPECT_D(sx_submit(e, x, 0, 0, null_result_fn, &n), SX_ERR_INVALID_ARGUMENT, "sx_submit(batch 0)");
    {
        size_t big = 1025;
        float *xb = xmalloc(big * 784 * sizeof(float));
        memcpy(xb, x, big * 784 * sizeof(float));
        EXPECT_D(sx_submit(e, xb, big * 784, big, null_result_fn, &n), SX_ERR_INVALID_ARGUMENT,
                 "sx_submit(batch 1025 > max_batch 1024)");
        EXPECT_D(sx_submit_async(e, xb, big * 784, big, null_result_fn, &n, &ticket), SX_ERR_INVALID_ARGUMENT,
                 "sx_submit_async(batch 1025 > max_batch 1024)");
        free(xb);
    }
    EXPECT_D(sx_submit(e, x, 2 * 784 - 1, 2, null_result_fn, &n), SX_ERR_SHAPE_MISMATCH,
             "sx_submit(input_len 2*784-1 for batch 2)");
    EXPECT_D(sx_submit(e, x, 3 * 784, 2, null_result_fn, &n), SX_ERR_SHAPE_MISMATCH,
             "sx_submit(input_len 3*784 for batch 2)");
    check(n == 0, "no callback ran for refused sx_submit calls (%lu)", (unsigned long)n);

    /* sx_submit_async */
    EXPECT_D(sx_submit_async(NULL, x, 784, 1, null_result_fn, &n, &ticket), SX_ERR_INVALID_ARGUMENT,
             "sx_submit_async(NULL engine)");
    EXPECT_D(sx_submit_async(e, NULL, 784, 1, null_result_fn, &n, &ticket), SX_ERR_INVALID_ARGUMENT,
             "sx_submit_async(NULL input)");
    EXPECT_D(sx_submit_async(e, x, 784, 1, NULL, &n, &ticket), SX_ERR_INVALID_ARGUMENT,
             "sx_submit_async(NULL callback)");
    EXPECT_D(sx_submit_async(e, x, 784, 1, null_result_fn, &n, NULL), SX_ERR_INVALID_ARGUMENT,
             "sx_submit_async(NULL ticket out)");
    EXPECT_D(sx_submit_async(e, x, 0, 0, null_result_fn, &n, &ticket), SX_ERR_INVALID_ARGUMENT,
             "sx_submit_async(batch 0)");
    EXPECT_D(sx_submit_async(e, x, 785, 1, null_result_fn, &n, &ticket), SX_ERR_SHAPE_MISMATCH,
             "sx_submit_async(input_len 785 for batch 1)");
    check(n == 0, "no callback ran for refused sx_submit_async calls (%lu)", (unsigned long)n);

    /* sx_wait */
    EXPECT_D(sx_wait(NULL, 1, 0), SX_ERR_INVALID_ARGUMENT, "sx_wait(NULL engine)");
    EXPECT_D(sx_wait(e, 0, 0), SX_ERR_INVALID_ARGUMENT, "sx_wait(ticket 0, never issued)");
    EXPECT_D(sx_wait(e, 123456789, -1), SX_ERR_INVALID_ARGUMENT, "sx_wait(unknown ticket 123456789, forever)");

    /* Exits and statistics on NULL */
    EXPECT_D(sx_update_exits(NULL, NULL), SX_ERR_INVALID_ARGUMENT, "sx_update_exits(NULL engine)");
    EXPECT_D(sx_set_exits_enabled(NULL, 1), SX_ERR_INVALID_ARGUMENT, "sx_set_exits_enabled(NULL engine)");
    EXPECT_D(sx_save_exits(NULL, "x.sxe"), SX_ERR_INVALID_ARGUMENT, "sx_save_exits(NULL engine)");
    EXPECT_D(sx_save_exits(e, NULL), SX_ERR_INVALID_ARGUMENT, "sx_save_exits(NULL path)");
    EXPECT_D(sx_load_exits(NULL, "x.sxe"), SX_ERR_INVALID_ARGUMENT, "sx_load_exits(NULL engine)");
    EXPECT_D(sx_load_exits(e, NULL), SX_ERR_INVALID_ARGUMENT, "sx_load_exits(NULL path)");
    EXPECT_D(sx_get_stats(NULL, &st), SX_ERR_INVALID_ARGUMENT, "sx_get_stats(NULL engine)");
    EXPECT_D(sx_get_stats(e, NULL), SX_ERR_INVALID_ARGUMENT, "sx_get_stats(NULL stats)");
    {
        size_t needed = 0;
        char buf[16];
        EXPECT_D(sx_get_stats_json(NULL, buf, sizeof buf, &needed), SX_ERR_INVALID_ARGUMENT,
                 "sx_get_stats_json(NULL engine)");
        EXPECT_D(sx_get_stats_json(e, NULL, 100, &needed), SX_ERR_INVALID_ARGUMENT,
                 "sx_get_stats_json(NULL buffer, capacity 100)");
        EXPECT_D(sx_get_stats_json(e, NULL, 0, NULL), SX_ERR_INVALID_ARGUMENT,
                 "sx_get_stats_json(NULL buffer, 0, NULL needed)");
    }
    EXPECT_D(sx_reset_stats(NULL), SX_ERR_INVALID_ARGUMENT, "sx_reset_stats(NULL engine)");
    {
        float out[784];
        unsigned char b[8] = {0};
        EXPECT_D(sx_decode_image(NULL, b, sizeof b, NULL, out, 784), SX_ERR_INVALID_ARGUMENT,
                 "sx_decode_image(NULL engine)");
    }
    {
        sx_update_options u;
        sx_update_options_init(&u);
        u.tolerance = 0.0;
        EXPECT_D(sx_update_exits(e, &u), SX_ERR_INVALID_ARGUMENT, "sx_update_exits(tolerance 0)");
        u.tolerance = 1.0;
        EXPECT_D(sx_update_exits(e, &u), SX_ERR_INVALID_ARGUMENT, "sx_update_exits(tolerance 1)");
        sx_update_options_init(&u);
        u.search_budget = 0;
        EXPECT_D(sx_update_exits(e, &u), SX_ERR_INVALID_ARGUMENT, "sx_update_exits(search_budget 0)");
        sx_update_options_init(&u);
        u.struct_size = 0;
        EXPECT_D(sx_update_exits(e, &u), SX_ERR_INVALID_ARGUMENT, "sx_update_exits(options.struct_size 0)");
        sx_update_options_init(&u);
        EXPECT_D(sx_update_exits(e, &u), SX_ERR_WRONG_STATE, "sx_update_exits before any sample is collected");
        EXPECT_D(sx_update_exits(e, NULL), SX_ERR_WRONG_STATE, "sx_update_exits(NULL options) before any sample");
    }
    {
        char path[4096];
        tmp_path(path, sizeof path, "early.sxe");
        EXPECT_D(sx_save_exits(e, path), SX_ERR_WRONG_STATE, "sx_save_exits before any exits are built");
        tmp_path(path, sizeof path, "missing.sxe");
        EXPECT_D(sx_load_exits(e, path), SX_ERR_IO, "sx_load_exits(missing file)");
    }
    {
        sx_info after;
        g_got = get_info(e, &after);
        check(g_got && after.collected_samples == 0 && after.num_trained_exits == 0,
              "the engine is unchanged by the refused calls");
    }
}

/* ---- 5. Backbone pass (collection), statistics, JSON ---------------------------------- */

#define COLLECT_N 1500

static void test_backbone_and_stats(sx_engine *e, const sx_info *info, results *base) {
    sx_stats st;
    sx_info after;
    size_t i, correct = 0, wrong_flops = 0;
    double t0;

    section("backbone pass with exits off (collection), statistics");
    EXPECT(sx_set_exits_enabled(e, 0), SX_OK);
    g_got = get_info(e, &after);
    check(g_got && after.exits_enabled == 0, "sx_engine_info: exits_enabled 0 after switching off");
    EXPECT(sx_reset_stats(e), SX_OK);
    t0 = now_seconds();
    EXPECT_D(run_sync(e, g_ds.x, g_ds.pixels, COLLECT_N, 100, base), SX_OK,
             "sx_submit: 1500 Fashion-MNIST test images in batches of 100, exits off");
    note("  %.2f s, %.0f images/s", now_seconds() - t0, COLLECT_N / (now_seconds() - t0));
    check(count_not_once(base, 0, COLLECT_N) == 0, "  … every sample answered exactly once");
    check(base->anomalies == 0, "  … every result well-formed (%s)", base->anomalies ? base->first_anomaly : "ok");
    for (i = 0; i < COLLECT_N; i++) {
        if (base->cls[i] == (int32_t)g_ds.labels[i]) correct++;
        if (base->exit_index[i] != -1 || base->flops[i] != info->backbone_flops) wrong_flops++;
    }
    check(correct >= (size_t)(0.88 * COLLECT_N), "  … accuracy %.4f (model card: 0.9184)",
          (double)correct / COLLECT_N);
    check(wrong_flops == 0, "  … all answered by the backbone (exit -1) with flops == backbone_flops (%lu not)",
          (unsigned long)wrong_flops);

    g_got = get_info(e, &after);

    check(g_got && after.collected_samples >= 200 && after.collected_samples <= COLLECT_N,
          "sx_engine_info: %llu samples collected", (unsigned long long)after.collected_samples);

    if (get_stats(e, &st)) {
        uint64_t sum = st.backbone_samples;
        for (i = 0; i < st.num_exits && i < SX_MAX_EXITS; i++) sum += st.exit_samples[i];
        check(st.samples == COLLECT_N && st.backbone_samples == COLLECT_N && sum == st.samples,
              "sx_get_stats: samples %llu, backbone %llu", (unsigned long long)st.samples,
              (unsigned long long)st.backbone_samples);
        check(st.num_exits == info->num_candidates && st.num_exits <= SX_MAX_EXITS,
              "sx_get_stats: num_exits %u == candidates %u", (unsigned)st.num_exits, (unsigned)info->num_candidates);
        check(fabs(st.backbone_flops - (double)info->backbone_flops) < 0.5 &&
                  fabs(st.mean_flops - st.backbone_flops) < 1e-6 * st.backbone_flops,
              "sx_get_stats: mean_flops %.0f == backbone_flops %.0f", st.mean_flops, st.backbone_flops);
        check(st.latency_p50 > 0 && st.latency_p50 <= st.latency_p95 && st.latency_p95 <= st.latency_p99,
              "sx_get_stats: latency p50 %.2f ms <= p95 %.2f ms <= p99 %.2f ms", st.latency_p50 * 1e3,
              st.latency_p95 * 1e3, st.latency_p99 * 1e3);
    } else {
        check(0, "sx_get_stats");
    }
    {
        /* A shorter sx_stats: only its bytes are written. */
        sx_stats old;
        unsigned char *raw = (unsigned char *)&old;
        size_t touched = 0;
        memset(&old, 0xCD, sizeof old);
        old.struct_size = (uint32_t)offsetof(sx_stats, exit_samples);
        EXPECT_D(sx_get_stats(e, &old), SX_OK, "sx_get_stats(struct_size = offsetof(sx_stats, exit_samples))");
        for (i = offsetof(sx_stats, exit_samples); i < sizeof old; i++)
            if (raw[i] != 0xCD) touched++;
        check(touched == 0 && old.samples == COLLECT_N, "  … samples %llu, bytes beyond struct_size untouched (%lu)",
              (unsigned long long)old.samples, (unsigned long)touched);
    }

    /* JSON: size query, too small, exact. */
    {
        size_t needed = 0, needed2 = 0;
        char *buf;
        EXPECT_D(sx_get_stats_json(e, NULL, 0, &needed), SX_ERR_INVALID_ARGUMENT,
                 "sx_get_stats_json(NULL, 0, &needed): size query");
        check(needed > 2, "  … needed = %lu", (unsigned long)needed);
        if (needed > 2 && needed < (64u << 20)) {
            buf = xmalloc(needed + 1);
            memset(buf, 'X', needed + 1);
            EXPECT_D(sx_get_stats_json(e, buf, needed - 1, &needed2), SX_ERR_INVALID_ARGUMENT,
                     "sx_get_stats_json(capacity needed-1)");
            for (i = 0; i < needed + 1 && buf[i] == 'X'; i++) {
            }
            check(i == needed + 1 && needed2 == needed, "  … nothing written, needed %lu again", (unsigned long)needed2);
            needed2 = 0;
            EXPECT_D(sx_get_stats_json(e, buf, needed, &needed2), SX_OK, "sx_get_stats_json(capacity needed)");
            check(buf[needed - 1] == '\0' && strlen(buf) + 1 == needed && needed2 == needed && buf[0] == '{' &&
                      buf[needed - 2] == '}',
                  "  … a NUL-terminated object of exactly needed bytes");
            check(strstr(buf, "\"samples\"") != NULL, "  … contains \"samples\"");
            note("  %.*s%s", 300, buf, strlen(buf) > 300 ? " …" : "");
            EXPECT_D(sx_get_stats_json(e, buf, needed, NULL), SX_OK, "sx_get_stats_json(…, NULL needed)");
            free(buf);
        }
    }
    EXPECT(sx_reset_stats(e), SX_OK);
    g_got = get_stats(e, &st);
    check(g_got && st.samples == 0 && st.backbone_samples == 0, "after sx_reset_stats: samples %llu",
          (unsigned long long)st.samples);
    g_got = get_info(e, &after);
    check(g_got && after.collected_samples >= 200,
          "sx_reset_stats keeps the collected samples (%llu)", (unsigned long long)after.collected_samples);
}

/* ---- 6. Exits: build, save, load, damaged, foreign ------------------------------------ */

static int flip_middle(const char *src, const char *dst) {
    size_t n = 0, i;
    unsigned char *b = read_whole_file(src, &n);
    int ok;
    if (b == NULL || n < 64) {
        free(b);
        return 0;
    }
    for (i = n / 2; i < n / 2 + 8; i++) b[i] ^= 0xFF;
    ok = write_whole_file(dst, b, n);
    free(b);
    return ok;
}

static int truncate_copy(const char *src, const char *dst, size_t keep_num, size_t keep_den) {
    size_t n = 0;
    unsigned char *b = read_whole_file(src, &n);
    int ok;
    if (b == NULL) return 0;
    ok = write_whole_file(dst, b, n * keep_num / keep_den);
    free(b);
    return ok;
}

/* Inference still works: 32 samples, each answered once. */
/* (class, exit) of 64 samples with exits on, just after the build: a refused bundle must
 * leave the engine answering exactly so. */
static results g_exit_ref;
static int g_exit_ref_set;

static size_t answers_differ(sx_engine *e, const results *ref) {
    results r;
    size_t i, diff = 0;
    results_init(&r, ref->n, ref->num_classes, ref->backbone_flops);
    if (run_sync(e, g_ds.x + (size_t)5000 * g_ds.pixels, g_ds.pixels, ref->n, 16, &r) != SX_OK) diff = ref->n;
    for (i = 0; i < ref->n && diff < ref->n; i++)
        if (r.cls[i] != ref->cls[i] || r.exit_index[i] != ref->exit_index[i] || r.count[i] != 1) diff++;
    results_free(&r);
    return diff;
}

static int still_works(sx_engine *e, uint64_t backbone_flops) {
    results r;
    int ok;
    results_init(&r, 32, 10, backbone_flops);
    ok = run_sync(e, g_ds.x + (size_t)5000 * g_ds.pixels, g_ds.pixels, 32, 32, &r) == SX_OK &&
         count_not_once(&r, 0, 32) == 0 && r.anomalies == 0;
    results_free(&r);
    return ok;
}

/* 0: no exits built; 1: built but not saved; 2: built and saved to `bundle`. */
static int test_exits(sx_engine *e, const sx_info *info0, const char *bundle) {
    char path[4096], damaged[4096], truncated[4096];
    sx_update_options u;
    sx_info info;
    double t0;
    int built = 0;

    section("exit build, save, load");
    sx_update_options_init(&u);
    u.tolerance = 0.02;
    u.search_budget = 1;
    u.epochs = 5;
    u.seed = 7;
    t0 = now_seconds();
    if (EXPECT_D(sx_update_exits(e, &u), SX_OK,
                 "sx_update_exits(tolerance 0.02, search_budget 1, epochs 5) on ~1500 collected samples") == SX_OK)
        built = 1;
    note("  build took %.1f s", now_seconds() - t0);
    g_got = get_info(e, &info);
    check(g_got && info.num_trained_exits >= 1 && info.num_active_exits >= 1 &&
              info.num_active_exits <= info.num_trained_exits && info.num_trained_exits <= info.num_candidates,
          "sx_engine_info after the build: %u candidates, %u trained, %u active", (unsigned)info.num_candidates,
          (unsigned)info.num_trained_exits, (unsigned)info.num_active_exits);
    {
        size_t needed = 0;
        char *buf;
        check(sx_get_stats_json(e, NULL, 0, &needed) == SX_ERR_INVALID_ARGUMENT, "sx_get_stats_json(NULL, 0): INVALID_ARGUMENT, with the size needed");
        if (needed > 0 && needed < (64u << 20)) {
            buf = xmalloc(needed);
            if (sx_get_stats_json(e, buf, needed, NULL) == SX_OK) note("  stats JSON after the build: %.600s%s", buf,
                                                                     strlen(buf) > 600 ? " …" : "");
            free(buf);
        }
    }
    if (!built) return 0;

    if (EXPECT(sx_save_exits(e, bundle), SX_OK) != SX_OK) {
        check(0, "the bundle checks (load back, damaged, truncated, fresh engine, other model) cannot run "
                 "without a saved bundle");
        return 1;
    }
    tmp_path(path, sizeof path, "no-such-dir/exits.sxe");
    EXPECT_D(sx_save_exits(e, path), SX_ERR_IO, "sx_save_exits(path in a missing directory)");
    EXPECT(sx_load_exits(e, bundle), SX_OK);
    EXPECT(sx_set_exits_enabled(e, 1), SX_OK);
    results_init(&g_exit_ref, 64, 10, info0->backbone_flops);
    g_exit_ref_set = run_sync(e, g_ds.x + (size_t)5000 * g_ds.pixels, g_ds.pixels, 64, 16, &g_exit_ref) == SX_OK;
    {
        size_t k, early = 0;
        for (k = 0; k < 64; k++)
            if (g_exit_ref.exit_index[k] >= 0) early++;
        note("  reference answers: 64 samples, %lu by an early exit", (unsigned long)early);
    }
    g_got = get_info(e, &info);
    check(g_got && info.num_active_exits >= 1, "  … %u active exits after reloading the bundle",
          (unsigned)info.num_active_exits);

    tmp_path(damaged, sizeof damaged, "damaged.sxe");
    check(flip_middle(bundle, damaged), "made a copy of the bundle with 8 bytes in the middle flipped");
    {
        sx_info before, afterwards;
        get_info(e, &before);
        EXPECT_D(sx_load_exits(e, damaged), SX_ERR_INVALID_DATA, "sx_load_exits(damaged copy)");
        g_got = get_info(e, &afterwards);
        check(g_got && afterwards.num_active_exits == before.num_active_exits &&
                  afterwards.num_trained_exits == before.num_trained_exits,
              "  … the engine keeps its exits (%u active, %u trained)", (unsigned)afterwards.num_active_exits,
              (unsigned)afterwards.num_trained_exits);
        check(g_exit_ref_set && answers_differ(e, &g_exit_ref) == 0,
              "  … and answers 64 samples exactly as before (class and exit)");
        tmp_path(truncated, sizeof truncated, "truncated.sxe");
        truncate_copy(bundle, truncated, 2, 3);
        EXPECT_D(sx_load_exits(e, truncated), SX_ERR_INVALID_DATA, "sx_load_exits(truncated copy)");
        truncate_copy(bundle, truncated, 0, 1);
        EXPECT_D(sx_load_exits(e, truncated), SX_ERR_INVALID_DATA, "sx_load_exits(empty file)");
        g_got = get_info(e, &afterwards);
        check(g_got && afterwards.num_active_exits == before.num_active_exits,
              "  … exits still in service (%u active)", (unsigned)afterwards.num_active_exits);
        check(g_exit_ref_set && answers_differ(e, &g_exit_ref) == 0, "  … answering exactly as before");
        root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
        EXPECT_D(sx_load_exits(e, path), SX_ERR_INVALID_DATA, "sx_load_exits(an ONNX file, not a bundle)");
    }
    return 2;
}

/* The same model in a fresh engine: the bundle loads, and the exits answer exactly as on the
 * engine that built them. */
static void test_bundle_on_fresh_engine(sx_engine *e, const char *bundle) {
    sx_engine *f;
    sx_info info_e, info_f;
    results ra, rb;
    size_t i, diff = 0;

    section("bundle on a fresh engine of the same model");
    f = create_engine("models/fmnist-resnet18-w16.onnx", NULL, "fresh");
    if (!f) return;
    if (EXPECT_D(sx_load_exits(f, bundle), SX_OK, "sx_load_exits(bundle) on a fresh engine") != SX_OK) {
        check(sx_engine_destroy(f) == SX_OK, "  … sx_engine_destroy");
        return;
    }
    get_info(e, &info_e);
    g_got = get_info(f, &info_f);
    check(g_got && info_f.num_active_exits == info_e.num_active_exits &&
              info_f.num_trained_exits == info_e.num_trained_exits,
          "  … %u active / %u trained exits, as on the building engine", (unsigned)info_f.num_active_exits,
          (unsigned)info_f.num_trained_exits);
    EXPECT(sx_set_exits_enabled(e, 1), SX_OK);
    EXPECT(sx_set_exits_enabled(f, 1), SX_OK);
    results_init(&ra, 200, 10, info_e.backbone_flops);
    results_init(&rb, 200, 10, info_e.backbone_flops);
    run_sync(e, g_ds.x, g_ds.pixels, 200, 50, &ra);
    run_sync(f, g_ds.x, g_ds.pixels, 200, 50, &rb);
    for (i = 0; i < 200; i++)
        if (ra.cls[i] != rb.cls[i] || ra.exit_index[i] != rb.exit_index[i]) diff++;
    check(diff == 0 && ra.anomalies == 0 && rb.anomalies == 0,
          "  … identical (class, exit) on 200 samples as the building engine (%lu differ)", (unsigned long)diff);
    results_free(&ra);
    results_free(&rb);
    EXPECT(sx_engine_destroy(f), SX_OK);
}

/* A bundle from another model is refused, both ways. */
static void test_foreign_bundle(sx_engine *e, const char *bundle, uint64_t backbone_flops) {
    sx_engine *w;
    sx_info before, afterwards, winfo;
    char wbundle[4096];
    results r;
    sx_update_options u;
    int have_wbundle = 0;

    section("bundles from a different model");
    w = create_engine("Tests/Fixtures/models/resnet18_w4.onnx", NULL, "second model");
    if (!w) return;
    get_info(w, &winfo);
    check(winfo.input_size == 784, "second model takes 1x28x28 too (%lu floats)", (unsigned long)winfo.input_size);
    EXPECT_D(sx_load_exits(w, bundle), SX_ERR_INVALID_DATA, "sx_load_exits(fmnist bundle) on resnet18_w4");
    g_got = get_info(w, &afterwards);
    check(g_got && afterwards.num_trained_exits == 0 && afterwards.num_active_exits == 0,
          "  … resnet18_w4 still has no exits");

    /* Build exits on the second model, save them, and offer them to the first. */
    EXPECT(sx_set_exits_enabled(w, 0), SX_OK);
    results_init(&r, 600, winfo.num_classes, winfo.backbone_flops);
    EXPECT_D(run_sync(w, g_ds.x + (size_t)2000 * g_ds.pixels, g_ds.pixels, 600, 100, &r), SX_OK,
             "collect 600 samples on resnet18_w4");
    sx_update_options_init(&u);
    u.tolerance = 0.05;
    u.search_budget = 1;
    u.epochs = 3;
    if (EXPECT_D(sx_update_exits(w, &u), SX_OK, "sx_update_exits on resnet18_w4") == SX_OK) {
        tmp_path(wbundle, sizeof wbundle, "resnet18_w4.sxe");
        if (EXPECT_D(sx_save_exits(w, wbundle), SX_OK, "sx_save_exits(resnet18_w4 bundle)") == SX_OK)
            have_wbundle = 1;
    }
    results_free(&r);
    if (have_wbundle) {
        get_info(e, &before);
        EXPECT_D(sx_load_exits(e, wbundle), SX_ERR_INVALID_DATA, "sx_load_exits(resnet18_w4 bundle) on the fmnist engine");
        g_got = get_info(e, &afterwards);
        check(g_got && afterwards.num_active_exits == before.num_active_exits &&
                  afterwards.num_trained_exits == before.num_trained_exits,
              "  … the fmnist engine keeps its exits (%u active)", (unsigned)afterwards.num_active_exits);
        check(g_exit_ref_set && answers_differ(e, &g_exit_ref) == 0,
              "  … and answers 64 samples exactly as before (class and exit)");
        (void)backbone_flops;
    }
    EXPECT(sx_engine_destroy(w), SX_OK);
}

/* ---- 7. Inference with exits ---------------------------------------------------------- */

#define EVAL_FIRST 1500
#define EVAL_N 1000

static void test_exit_inference(sx_engine *e, const sx_info *info0) {
    results off, on;
    sx_stats st;
    sx_info info;
    size_t i, agree = 0, correct_on = 0, correct_off = 0, early = 0;

    section("inference with exits");
    results_init(&off, EVAL_N, 10, info0->backbone_flops);
    results_init(&on, EVAL_N, 10, info0->backbone_flops);
    EXPECT(sx_set_exits_enabled(e, 0), SX_OK);
    EXPECT_D(run_sync(e, g_ds.x + (size_t)EVAL_FIRST * g_ds.pixels, g_ds.pixels, EVAL_N, 100, &off), SX_OK,
             "1000 unseen images, exits off");
    EXPECT(sx_set_exits_enabled(e, 1), SX_OK);
    g_got = get_info(e, &info);
    check(g_got && info.exits_enabled == 1, "sx_engine_info: exits_enabled 1");
    EXPECT(sx_reset_stats(e), SX_OK);
    EXPECT_D(run_sync(e, g_ds.x + (size_t)EVAL_FIRST * g_ds.pixels, g_ds.pixels, EVAL_N, 100, &on), SX_OK,
             "the same 1000 images, exits on");
    check(on.anomalies == 0 && off.anomalies == 0 && count_not_once(&on, 0, EVAL_N) == 0,
          "  … results well-formed, each once (%s)", on.anomalies ? on.first_anomaly : "ok");
    for (i = 0; i < EVAL_N; i++) {
        if (on.cls[i] == off.cls[i]) agree++;
        if (on.cls[i] == (int32_t)g_ds.labels[EVAL_FIRST + i]) correct_on++;
        if (off.cls[i] == (int32_t)g_ds.labels[EVAL_FIRST + i]) correct_off++;
        if (on.exit_index[i] >= 0) {
            early++;
            if (on.exit_index[i] >= (int32_t)info.num_candidates) on.anomalies++;
        }
    }
    check(early > 0, "  … %lu of %d answered by an early exit", (unsigned long)early, EVAL_N);
    check(on.anomalies == 0, "  … exit indices below num_candidates");
    check(agree >= (size_t)(0.94 * EVAL_N), "  … agreement with the full model %.3f (tolerance 0.02)",
          (double)agree / EVAL_N);
    note("  accuracy: exits off %.3f, exits on %.3f", (double)correct_off / EVAL_N, (double)correct_on / EVAL_N);
    if (get_stats(e, &st)) {
        uint64_t sum = st.backbone_samples, hit[SX_MAX_EXITS];
        double flops = 0;
        size_t k, match = 1;
        memset(hit, 0, sizeof hit);
        for (i = 0; i < EVAL_N; i++) {
            flops += (double)on.flops[i];
            if (on.exit_index[i] >= 0 && on.exit_index[i] < SX_MAX_EXITS) hit[on.exit_index[i]]++;
        }
        for (k = 0; k < st.num_exits && k < SX_MAX_EXITS; k++) {
            sum += st.exit_samples[k];
            if (st.exit_samples[k] != hit[k]) match = 0;
            if (st.exit_samples[k]) note("  exit %lu: %llu samples", (unsigned long)k, (unsigned long long)st.exit_samples[k]);
        }
        check(st.samples == EVAL_N && sum == st.samples && match && st.backbone_samples == EVAL_N - early,
              "sx_get_stats: %llu samples = %llu backbone + exits, per-exit counts match the callbacks",
              (unsigned long long)st.samples, (unsigned long long)st.backbone_samples);
        check(st.mean_flops < st.backbone_flops && fabs(st.mean_flops - flops / EVAL_N) <= 1e-6 * st.mean_flops + 1,
              "sx_get_stats: mean FLOPs %.0f = %.3f x backbone, equal to the callbacks' mean %.0f", st.mean_flops,
              st.mean_flops / st.backbone_flops, flops / EVAL_N);
    }
    results_free(&off);
    results_free(&on);
}

/* ---- 8. Four threads on one engine ---------------------------------------------------- */

#define MT_N 256

typedef struct {
    sx_engine *engine;
    size_t batch;
    results r;
    sx_status status;
    int rounds;
} mt_job;

static void *mt_thread(void *arg) {
    mt_job *j = arg;
    int k;
    j->status = SX_OK;
    for (k = 0; k < j->rounds && j->status == SX_OK; k++) {
        if (k > 0) memset(j->r.count, 0, MT_N * sizeof(int));
        j->status = run_sync(j->engine, g_ds.x + (size_t)3000 * g_ds.pixels, g_ds.pixels, MT_N, j->batch, &j->r);
    }
    return NULL;
}

static void test_threads(sx_engine *e, const sx_info *info) {
    static const size_t batches[4] = {1, 7, 64, 256};
    mt_job jobs[4];
    pthread_t th[4];
    results ref;
    int t;
    sx_stats st;

    section("four threads calling sx_submit on one engine");
    results_init(&ref, MT_N, 10, info->backbone_flops);
    EXPECT_D(run_sync(e, g_ds.x + (size_t)3000 * g_ds.pixels, g_ds.pixels, MT_N, 32, &ref), SX_OK,
             "reference: 256 images from one thread, batches of 32, exits on");
    {
        size_t i, early = 0;
        for (i = 0; i < MT_N; i++)
            if (ref.exit_index[i] >= 0) early++;
        note("  reference: %lu of 256 answered early", (unsigned long)early);
    }
    check(sx_reset_stats(e) == SX_OK, "sx_reset_stats");
    for (t = 0; t < 4; t++) {
        jobs[t].engine = e;
        jobs[t].batch = batches[t];
        jobs[t].rounds = batches[t] == 1 ? 1 : 2;
        results_init(&jobs[t].r, MT_N, 10, info->backbone_flops);
        pthread_create(&th[t], NULL, mt_thread, &jobs[t]);
    }
    for (t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (t = 0; t < 4; t++) {
        size_t i, diff = 0;
        for (i = 0; i < MT_N; i++)
            if (jobs[t].r.cls[i] != ref.cls[i] || jobs[t].r.exit_index[i] != ref.exit_index[i]) diff++;
        check(jobs[t].status == SX_OK && count_not_once(&jobs[t].r, 0, MT_N) == 0 && jobs[t].r.anomalies == 0,
              "thread %d (batch %lu): %s, every sample exactly once%s%s", t, (unsigned long)batches[t],
              status_name(jobs[t].status), jobs[t].r.anomalies ? ", " : "",
              jobs[t].r.anomalies ? jobs[t].r.first_anomaly : "");
        check(diff == 0, "thread %d (batch %lu): same (class, exit) per sample as one thread (%lu differ)", t,
              (unsigned long)batches[t], (unsigned long)diff);
        results_free(&jobs[t].r);
    }
    {
        uint64_t want = 0;
        for (t = 0; t < 4; t++) want += (uint64_t)MT_N * (uint64_t)(batches[t] == 1 ? 1 : 2);
        g_got = get_stats(e, &st);
        check(g_got && st.samples == want, "sx_get_stats counts every sample of the four threads (%llu "
                                                       "of %llu)",
              (unsigned long long)st.samples, (unsigned long long)want);
    }
    results_free(&ref);
}

/* ---- 9. Asynchronous requests --------------------------------------------------------- */

static void test_async(sx_engine *e, const sx_info *info) {
    results r;
    request q[6];
    uint64_t t[6];
    size_t i;
    int ok = 1, distinct = 1, k;
    sx_status s0;

    section("asynchronous requests");
    results_init(&r, 6 * 100, 10, info->backbone_flops);
    for (k = 0; k < 6; k++) {
        memset(&q[k], 0, sizeof q[k]);
        q[k].r = &r;
        q[k].base = (size_t)k * 100;
        q[k].batch = 100;
        t[k] = 0;
        if (sx_submit_async(e, g_ds.x + (size_t)k * 100 * 784, 100 * 784, 100, on_result, &q[k], &t[k]) != SX_OK)
            ok = 0;
    }
    for (k = 0; k < 6; k++) {
        int j;
        for (j = 0; j < k; j++)
            if (t[j] == t[k]) distinct = 0;
    }
    check(ok && t[0] > 0 && distinct, "sx_submit_async x6: tickets %llu..%llu, > 0 and distinct",
          (unsigned long long)t[0], (unsigned long long)t[5]);
    for (k = 5; k >= 0; k--)
        if (t[k]) EXPECT_D(sx_wait(e, t[k], -1), SX_OK, "sx_wait(ticket, forever)");
    for (k = 0; k < 6; k++)
        if (q[k].calls != 100 || q[k].seen_ticket != t[k]) ok = 0;
    check(ok && count_not_once(&r, 0, 600) == 0 && r.anomalies == 0,
          "  … 100 callbacks per ticket, result.ticket = the ticket, user_data passed through (%s)",
          r.anomalies ? r.first_anomaly : "ok");
    check(r.order_violations == 0, "  … callbacks in submission order (%lu out of order)",
          (unsigned long)r.order_violations);
    EXPECT_D(sx_wait(e, t[0], 0), SX_OK, "sx_wait(finished ticket, 0): a finished ticket stays finished");
    EXPECT_D(sx_wait(e, t[5] + 1000000, 0), SX_ERR_INVALID_ARGUMENT, "sx_wait(ticket never issued)");

    /* Async results equal sync ones. */
    {
        results sr;
        size_t diff = 0;
        results_init(&sr, 600, 10, info->backbone_flops);
        run_sync(e, g_ds.x, g_ds.pixels, 600, 100, &sr);
        for (i = 0; i < 600; i++)
            if (sr.cls[i] != r.cls[i] || sr.exit_index[i] != r.exit_index[i]) diff++;
        check(diff == 0, "  … async (class, exit) equal sync ones (%lu differ)", (unsigned long)diff);
        results_free(&sr);
    }
    results_free(&r);

    /* A long request: polling with timeout 0 may say TIMEOUT; the work goes on. */
    {
        results lr;
        request lq;
        uint64_t lt = 0;
        size_t nb = 1000;
        results_init(&lr, nb, 10, info->backbone_flops);
        memset(&lq, 0, sizeof lq);
        lq.r = &lr;
        lq.batch = nb;
        EXPECT(sx_set_exits_enabled(e, 0), SX_OK); /* the full model: long */
        if (EXPECT_D(sx_submit_async(e, g_ds.x, nb * 784, nb, on_result, &lq, &lt), SX_OK,
                     "sx_submit_async(1000 samples, exits off)") == SX_OK) {
            s0 = sx_wait(e, lt, 0);
            {
                char err[512];
                copy_last_error(err, sizeof err);
                check(s0 == SX_ERR_TIMEOUT || s0 == SX_OK, "sx_wait(long ticket, 0) -> %s", status_name(s0));
                if (s0 == SX_ERR_TIMEOUT) check(err[0] != '\0', "  … TIMEOUT leaves a message: %s", err);
            }
            s0 = sx_wait(e, lt, 5);
            check(s0 == SX_ERR_TIMEOUT || s0 == SX_OK, "sx_wait(long ticket, 5 ms) -> %s", status_name(s0));
            EXPECT_D(sx_wait(e, lt, INT64_MAX), SX_OK, "sx_wait(long ticket, INT64_MAX ms)");
            EXPECT_D(sx_wait(e, lt, -1), SX_OK, "sx_wait(long ticket, forever)");
            check(lq.calls == nb && count_not_once(&lr, 0, nb) == 0, "  … all %lu callbacks ran, each once",
                  (unsigned long)nb);
        }
        EXPECT(sx_set_exits_enabled(e, 1), SX_OK);
        results_free(&lr);
    }
}

/* max_pending: beyond it, BUSY. */
static void test_max_pending(void) {
    char path[4096];
    sx_engine_options opt;
    sx_engine *e = NULL;
    results r;
    request q[4];
    uint64_t t[4];
    int k, busy = 0;
    sx_status s[4];

    section("max_pending");
    sx_engine_options_init(&opt);
    opt.threads = 1;
    opt.max_pending = 1;
    root_path(path, sizeof path, "models/fmnist-resnet18-w16.onnx");
    if (EXPECT_D(sx_engine_create(path, &opt, &e), SX_OK, "sx_engine_create(max_pending 1, threads 1)") != SX_OK)
        return;
    results_init(&r, 256 + 3, 10, 0);
    for (k = 0; k < 4; k++) {
        size_t b = k == 0 ? 256 : 1;
        memset(&q[k], 0, sizeof q[k]);
        q[k].r = &r;
        q[k].base = k == 0 ? 0 : 255 + (size_t)k;
        q[k].batch = b;
        t[k] = 0;
        s[k] = sx_submit_async(e, g_ds.x, b * 784, b, on_result, &q[k], &t[k]);
        if (s[k] == SX_ERR_BUSY) {
            char err[512];
            copy_last_error(err, sizeof err);
            if (busy++ == 0) check(err[0] != '\0', "BUSY leaves a message: %s", err);
        }
    }
    check(s[0] == SX_OK && busy >= 1, "a 256-sample request then 3 quick ones with max_pending 1: %d BUSY (%s %s %s "
                                      "%s)",
          busy, status_name(s[0]), status_name(s[1]), status_name(s[2]), status_name(s[3]));
    for (k = 0; k < 4; k++)
        if (s[k] == SX_OK) check(sx_wait(e, t[k], -1) == SX_OK, "  … sx_wait(ticket %llu)", (unsigned long long)t[k]);
    for (k = 0; k < 4; k++)
        if (s[k] == SX_OK && q[k].calls != q[k].batch) busy = -100;
    check(busy >= 0, "  … the accepted requests completed");
    EXPECT(sx_engine_destroy(e), SX_OK);
    results_free(&r);
}

/* ---- 10. Re-entrancy: destroy / wait from inside a callback --------------------------- */

typedef struct {
    sx_engine *engine;
    uint64_t other_ticket;
    int calls;
    sx_status destroy_status, wait_own_status, wait_other_status;
    char destroy_err[256], wait_err[256];
    int use_own_ticket;
} reentry;

static void reentrant_cb(const sx_result *res, void *user_data) {
    reentry *z = user_data;
    if (z->calls++ != 0) return;
    z->destroy_status = sx_engine_destroy(z->engine);
    copy_last_error(z->destroy_err, sizeof z->destroy_err);
    if (z->use_own_ticket) z->wait_own_status = sx_wait(z->engine, res->ticket, 2000);
    z->wait_other_status = sx_wait(z->engine, z->other_ticket, 2000);
    copy_last_error(z->wait_err, sizeof z->wait_err);
}

static void test_reentrancy(const sx_info *info) {
    sx_engine *e;
    reentry z;
    uint64_t t0 = 0, t1 = 0;
    size_t n = 0;

    section("callbacks calling back into their engine");
    e = create_engine("models/fmnist-resnet18-w16.onnx", NULL, "re-entrancy");
    if (!e) return;
    EXPECT_D(sx_submit_async(e, g_ds.x, 784, 1, null_result_fn, &n, &t0), SX_OK, "sx_submit_async(1 sample)");
    EXPECT(sx_wait(e, t0, -1), SX_OK);

    /* Asynchronous callback (engine's worker thread). */
    memset(&z, 0, sizeof z);
    z.engine = e;
    z.other_ticket = t0;
    z.use_own_ticket = 1;
    EXPECT_D(sx_submit_async(e, g_ds.x, 4 * 784, 4, reentrant_cb, &z, &t1), SX_OK,
             "sx_submit_async(4 samples, a callback that destroys the engine and waits)");
    EXPECT(sx_wait(e, t1, 30000), SX_OK);
    check(z.calls == 4, "  … 4 callbacks (%d)", z.calls);
    check(z.destroy_status == SX_ERR_BUSY && z.destroy_err[0] != '\0',
          "  sx_engine_destroy from its own async callback -> %s (%s)", status_name(z.destroy_status), z.destroy_err);
    check(z.wait_own_status == SX_ERR_BUSY, "  sx_wait(own ticket) from an async callback -> %s",
          status_name(z.wait_own_status));
    check(z.wait_other_status == SX_ERR_BUSY && z.wait_err[0] != '\0',
          "  sx_wait(finished ticket) from an async callback -> %s (%s)", status_name(z.wait_other_status),
          z.wait_err);
    check(still_works(e, info->backbone_flops), "  … the engine still works afterwards");

    /* Synchronous callback (the caller's thread). */
    memset(&z, 0, sizeof z);
    z.engine = e;
    z.other_ticket = t0;
    EXPECT_D(sx_submit(e, g_ds.x, 3 * 784, 3, reentrant_cb, &z), SX_OK,
             "sx_submit(3 samples, a callback that destroys the engine and waits)");
    check(z.calls == 3, "  … 3 callbacks (%d)", z.calls);
    check(z.destroy_status == SX_ERR_BUSY && z.destroy_err[0] != '\0',
          "  sx_engine_destroy from its own sync callback -> %s (%s)", status_name(z.destroy_status), z.destroy_err);
    check(z.wait_other_status == SX_ERR_BUSY, "  sx_wait from a sync callback -> %s",
          status_name(z.wait_other_status));
    check(still_works(e, info->backbone_flops), "  … the engine still works afterwards");
    EXPECT(sx_engine_destroy(e), SX_OK);
}

/* ---- 11. Destroy while asynchronous work is in flight --------------------------------- */

static void test_destroy_in_flight(const sx_info *info) {
    sx_engine *e;
    results r;
    request q[6];
    uint64_t t[6];
    int k, submitted = 0;
    size_t calls_ok = 1;

    section("sx_engine_destroy with asynchronous work in flight");
    e = create_engine("models/fmnist-resnet18-w16.onnx", NULL, "destroy in flight");
    if (!e) return;
    results_init(&r, 6 * 128, 10, info->backbone_flops);
    for (k = 0; k < 6; k++) {
        memset(&q[k], 0, sizeof q[k]);
        q[k].r = &r;
        q[k].base = (size_t)k * 128;
        q[k].batch = 128;
        if (sx_submit_async(e, g_ds.x + (size_t)k * 128 * 784, 128 * 784, 128, on_result, &q[k], &t[k]) == SX_OK)
            submitted++;
    }
    check(submitted == 6, "6 async requests of 128 samples submitted");
    {
        size_t before = 0;
        pthread_mutex_lock(&r.mu);
        for (k = 0; k < 6; k++) before += q[k].calls;
        pthread_mutex_unlock(&r.mu);
        note("  %lu of 768 callbacks had run when sx_engine_destroy was called", (unsigned long)before);
    }
    EXPECT_D(sx_engine_destroy(e), SX_OK, "sx_engine_destroy at once");
    for (k = 0; k < 6; k++)
        if (q[k].calls != 128) calls_ok = 0;
    check(calls_ok && count_not_once(&r, 0, 6 * 128) == 0 && r.anomalies == 0,
          "  … it waited: every callback of every request ran exactly once (%lu samples not once)",
          (unsigned long)count_not_once(&r, 0, 6 * 128));
    results_free(&r);
}

/* ---- 12. Image ingest ----------------------------------------------------------------- */

static double max_abs_diff(const float *a, const float *b, size_t n, double *mean) {
    size_t i;
    double m = 0, s = 0;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
        s += d;
    }
    if (mean) *mean = s / (double)n;
    return m;
}

static void test_decode(sx_engine *e, const sx_info *info) {
    const unsigned char *img = g_ds.u8; /* test image 0 */
    const float *want = g_ds.x;
    float out[784], plain[784];
    sx_preprocess pp, old;
    unsigned char *png, *rgbpng, *bigpng, *jpg, *rgbjpg;
    size_t png_size = 0, rgb_size = 0, big_size = 0, jpg_size = 0, rgbjpg_size = 0, i;
    unsigned char rgb[784 * 3], big[56 * 56];
    double mean;

    section("sx_decode_image");
    sx_preprocess_init(&pp);
    pp.mean[0] = FM_MEAN;
    pp.std[0] = FM_STD;
    for (i = 0; i < 784; i++) {
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = img[i];
        plain[i] = (float)img[i] / 255.0f;
    }
    for (i = 0; i < 56 * 56; i++) big[i] = img[(i / 56 / 2) * 28 + (i % 56) / 2];
    png = make_png(img, 28, 28, 1, &png_size);
    rgbpng = make_png(rgb, 28, 28, 3, &rgb_size);
    bigpng = make_png(big, 56, 56, 1, &big_size);
    jpg = make_jpeg(img, 28, 28, 1, &jpg_size);
    rgbjpg = make_jpeg(rgb, 28, 28, 3, &rgbjpg_size);
    check(png && rgbpng && bigpng && jpg && rgbjpg,
          "encoded test image 0 in memory: PNG gray %lu B, PNG RGB %lu B, PNG 56x56 %lu B, JPEG gray %lu B, JPEG "
          "RGB %lu B",
          (unsigned long)png_size, (unsigned long)rgb_size, (unsigned long)big_size, (unsigned long)jpg_size,
          (unsigned long)rgbjpg_size);
    if (!(png && rgbpng && bigpng && jpg && rgbjpg)) goto done;

    if (EXPECT_D(sx_decode_image(e, png, png_size, &pp, out, 784), SX_OK, "sx_decode_image(gray PNG 28x28)") ==
        SX_OK) {
        double m = max_abs_diff(out, want, 784, NULL);
        check(m < 1e-4, "  … equals (p/255 - 0.2860)/0.3530 (max diff %.2g)", m);
        {
            results a, b;
            results_init(&a, 1, 10, info->backbone_flops);
            results_init(&b, 1, 10, info->backbone_flops);
            run_sync(e, out, 784, 1, 1, &a);
            run_sync(e, want, 784, 1, 1, &b);
            check(a.cls[0] == b.cls[0] && a.cls[0] >= 0, "  … classified as the raw tensor is (class %d, label %d)",
                  a.cls[0], g_ds.labels[0]);
            results_free(&a);
            results_free(&b);
        }
    }
    if (EXPECT_D(sx_decode_image(e, rgbpng, rgb_size, &pp, out, 784), SX_OK, "sx_decode_image(RGB PNG, R=G=B)") ==
        SX_OK) {
        double m = max_abs_diff(out, want, 784, NULL);
        check(m < 1.5 / 255.0 / FM_STD, "  … converted to gray: max diff %.3g", m);
    }
    if (EXPECT_D(sx_decode_image(e, bigpng, big_size, &pp, out, 784), SX_OK,
                 "sx_decode_image(gray PNG 56x56, resized to 28x28)") == SX_OK) {
        double m = max_abs_diff(out, want, 784, &mean);
        check(mean < 0.25, "  … close to the 28x28 original: mean diff %.3g, max %.3g", mean, m);
    }
    if (EXPECT_D(sx_decode_image(e, jpg, jpg_size, &pp, out, 784), SX_OK, "sx_decode_image(gray JPEG, q95)") ==
        SX_OK) {
        double m = max_abs_diff(out, want, 784, &mean);
        check(mean < 0.06, "  … close to the original: mean diff %.3g, max %.3g", mean, m);
    }
    if (EXPECT_D(sx_decode_image(e, rgbjpg, rgbjpg_size, &pp, out, 784), SX_OK,
                 "sx_decode_image(RGB JPEG 4:4:4, q95)") == SX_OK) {
        double m = max_abs_diff(out, want, 784, &mean);
        check(mean < 0.06, "  … close to the original: mean diff %.3g, max %.3g", mean, m);
    }
    if (EXPECT_D(sx_decode_image(e, png, png_size, NULL, out, 784), SX_OK, "sx_decode_image(PNG, NULL preprocess)") ==
        SX_OK)
        check(max_abs_diff(out, plain, 784, NULL) < 1e-6, "  … defaults: p/255");
    /* An older, shorter sx_preprocess: scale read, mean/std beyond struct_size are defaults. */
    memset(&old, 0, sizeof old);
    old.struct_size = (uint32_t)offsetof(sx_preprocess, mean);
    old.scale = 2.0f / 255.0f;
    old.mean[0] = 100.0f;
    old.std[0] = 1e-3f;
    if (EXPECT_D(sx_decode_image(e, png, png_size, &old, out, 784), SX_OK,
                 "sx_decode_image(preprocess.struct_size = offsetof(mean), scale 2/255)") == SX_OK) {
        for (i = 0; i < 784; i++) plain[i] *= 2.0f;
        check(max_abs_diff(out, plain, 784, NULL) < 1e-5, "  … scale read, mean/std defaults (0, 1)");
    }

    /* Errors */
    {
        unsigned char garbage[300];
        for (i = 0; i < sizeof garbage; i++) garbage[i] = (unsigned char)(i * 37 + 11);
        EXPECT_D(sx_decode_image(e, garbage, sizeof garbage, &pp, out, 784), SX_ERR_INVALID_DATA,
                 "sx_decode_image(garbage bytes)");
        EXPECT_D(sx_decode_image(e, png, png_size / 2, &pp, out, 784), SX_ERR_INVALID_DATA,
                 "sx_decode_image(truncated PNG)");
        EXPECT_D(sx_decode_image(e, jpg, 20, &pp, out, 784), SX_ERR_INVALID_DATA, "sx_decode_image(truncated JPEG)");
        EXPECT2(sx_decode_image(e, garbage, 0, &pp, out, 784), SX_ERR_INVALID_ARGUMENT, SX_ERR_INVALID_DATA);
    }
    EXPECT_D(sx_decode_image(e, NULL, png_size, &pp, out, 784), SX_ERR_INVALID_ARGUMENT, "sx_decode_image(NULL bytes)");
    EXPECT_D(sx_decode_image(e, png, png_size, &pp, NULL, 784), SX_ERR_INVALID_ARGUMENT, "sx_decode_image(NULL out)");
    EXPECT_D(sx_decode_image(e, png, png_size, &pp, out, 783), SX_ERR_SHAPE_MISMATCH, "sx_decode_image(out_len 783)");
    EXPECT_D(sx_decode_image(e, png, png_size, &pp, out, 785), SX_ERR_SHAPE_MISMATCH, "sx_decode_image(out_len 785)");
    old = pp;
    old.struct_size = 0;
    EXPECT_D(sx_decode_image(e, png, png_size, &old, out, 784), SX_ERR_INVALID_ARGUMENT,
             "sx_decode_image(preprocess.struct_size 0)");
    old = pp;
    old.std[0] = 0.0f;
    EXPECT_D(sx_decode_image(e, png, png_size, &old, out, 784), SX_ERR_INVALID_ARGUMENT,
             "sx_decode_image(preprocess.std[0] = 0)");
done:
    free(png);
    free(rgbpng);
    free(bigpng);
    free(jpg);
    free(rgbjpg);
}

/* ---- 13. No exits collected when the budget is 0 -------------------------------------- */

static void test_no_collection(const sx_info *info) {
    sx_engine_options opt;
    sx_engine *e;
    sx_info after;
    results r;

    section("collection_budget_bytes 0");
    sx_engine_options_init(&opt);
    opt.threads = g_threads;
    opt.collection_budget_bytes = 0;
    e = create_engine("models/fmnist-resnet18-w16.onnx", &opt, "no collection");
    if (!e) return;
    check(sx_set_exits_enabled(e, 0) == SX_OK, "sx_set_exits_enabled(0)");
    results_init(&r, 300, 10, info->backbone_flops);
    EXPECT_D(run_sync(e, g_ds.x, g_ds.pixels, 300, 100, &r), SX_OK, "300 samples, exits off");
    g_got = get_info(e, &after);
    check(g_got && after.collected_samples == 0, "  … none collected (%llu)",
          (unsigned long long)after.collected_samples);
    EXPECT_D(sx_update_exits(e, NULL), SX_ERR_WRONG_STATE, "sx_update_exits with nothing collected");
    results_free(&r);
    EXPECT(sx_engine_destroy(e), SX_OK);
}

/* ---- main ----------------------------------------------------------------------------- */

static void remove_tmp(void) {
    static const char *names[] = {"garbage.onnx", "empty.onnx",    "exits.sxe", "damaged.sxe",
                                  "truncated.sxe", "resnet18_w4.sxe", "early.sxe"};
    char path[4096];
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        tmp_path(path, sizeof path, names[i]);
        remove(path);
    }
    rmdir(g_tmp);
}

int main(int argc, char **argv) {
    sx_engine *e;
    sx_info info;
    results base;
    char bundle[4096];
    const char *tmo = getenv("SX_TEST_TIMEOUT"), *thr = getenv("SX_TEST_THREADS"), *tmpdir = getenv("TMPDIR");
    unsigned timeout = tmo ? (unsigned)strtoul(tmo, NULL, 10) : 1800u;
    double t_start = now_seconds();

    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: %s [REPO_ROOT]\n", argv[0]);
        return 2;
    }
    if (argc == 2) snprintf(g_root, sizeof g_root, "%s", argv[1]);
    g_threads = thr ? (unsigned)strtoul(thr, NULL, 10) : 0u;
    setvbuf(stdout, NULL, _IOLBF, 0);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = watchdog;
        sigaction(SIGALRM, &sa, NULL);
        if (timeout) alarm(timeout);
    }
    snprintf(g_tmp, sizeof g_tmp, "%s/selfxit-capi-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (mkdtemp(g_tmp) == NULL) {
        fprintf(stderr, "test_capi: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    if (!load_fashion_mnist(&g_ds)) return 2;
    printf("# libselfxit %s (ABI %u), header ABI %d; Fashion-MNIST test set: %lu images; temp %s\n", sx_version(),
           (unsigned)sx_abi_version(), SX_ABI_VERSION, (unsigned long)g_ds.n, g_tmp);
    install_crash_report(); /* after the library (and the Swift runtime's handlers) loaded */

    test_library();
    test_create_errors();
    test_old_options();

    section("main engine");
    e = create_engine("models/fmnist-resnet18-w16.onnx", NULL, "main");
    if (e == NULL || !get_info(e, &info)) {
        check(0, "cannot continue without the main engine");
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    test_info_and_errors(e, &info);
    results_init(&base, COLLECT_N, 10, info.backbone_flops);
    test_backbone_and_stats(e, &info, &base);
    results_free(&base);
    tmp_path(bundle, sizeof bundle, "exits.sxe");
    {
        int exits = test_exits(e, &info, bundle);
        if (exits == 2) {
            test_bundle_on_fresh_engine(e, bundle);
            test_foreign_bundle(e, bundle, info.backbone_flops);
        }
        if (exits >= 1) test_exit_inference(e, &info);
    }
    EXPECT(sx_set_exits_enabled(e, 1), SX_OK);
    test_threads(e, &info);
    test_async(e, &info);
    test_max_pending();
    test_reentrancy(&info);
    test_destroy_in_flight(&info);
    test_decode(e, &info);
    test_no_collection(&info);

    section("teardown");
    EXPECT_D(sx_engine_destroy(e), SX_OK, "sx_engine_destroy(main engine)");
    if (g_exit_ref.cls) results_free(&g_exit_ref);
    remove_tmp();
    printf("# %.1f s\n", now_seconds() - t_start);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
