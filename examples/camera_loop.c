/*
 * camera_loop.c — a camera loop over libselfxit, simulated with a folder of image files.
 *
 *   camera_loop --model models/fmnist-resnet18-w16.onnx --frames DIR
 *               [--fps 500] [--collect 3000] [--tolerance 0.01] [--quiet]
 *               [--threads 0] [--search-budget 4] [--epochs 30] [--save-exits PATH]
 *               [--mean 0.286] [--std 0.353] [--scale 0.00392157]
 *
 * The frames (PNG or JPEG, e.g. from tools/write_frames.py) are read in name order, decoded
 * with sx_decode_image — pixel p of channel c becomes (p · scale − mean[c]) / std[c]; the
 * defaults are Fashion-MNIST's; --mean/--std take one value for every channel or three,
 * comma-separated (ImageNet: --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225) — and submitted one by one with
 * sx_submit_async at --fps frames per second. Results are printed as they arrive.
 *
 *   1. The first --collect frames run with exits off: every frame runs the full model and is
 *      recorded (unlabelled) for the exit build.
 *   2. Then the loop waits for them, builds exits (sx_update_exits, --tolerance), switches
 *      exits on and carries on with the rest of the frames.
 *   3. At the end it waits for every ticket and prints, for the frames after the update: the
 *      hit rate of each exit, mean FLOPs against the full model, latency p50/p99, and the
 *      accuracy before and after the update when the file names carry labels
 *      ("…_label3.png").
 *
 * Build (C99 or later):
 *   cc -O2 examples/camera_loop.c $(pkg-config --cflags --libs selfxit) -o camera_loop
 *   cc -O2 -I include examples/camera_loop.c -L .build/release -lselfxit \
 *      -Wl,-rpath,.build/release -o camera_loop
 */
#define _POSIX_C_SOURCE 200809L

#include <selfxit.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const fashion_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct {
    const char *name; /* file name (in the folder) */
    size_t index;     /* position in name order */
    int label;        /* from the name, or -1 */
    int phase;        /* 0: collecting (exits off), 1: after the update */
    uint64_t ticket;  /* 0 if not submitted */
    /* Written by the callback (the engine's worker thread), read after sx_wait. */
    int done;
    int32_t class_index, exit_index;
    float confidence;
    double latency;
} frame;

static int g_quiet;
static size_t g_num_classes;

static void on_result(const sx_result *r, void *user_data) {
    frame *f = user_data;
    f->class_index = r->class_index;
    f->exit_index = r->exit_index;
    f->confidence = r->confidence;
    f->latency = r->latency_seconds;
    f->done = 1;
    if (!g_quiet || f->index % 500 == 0) {
        char where[32];
        if (r->exit_index >= 0) snprintf(where, sizeof where, "exit %d", (int)r->exit_index);
        else snprintf(where, sizeof where, "backbone");
        printf("frame %5lu  %-9s  class %d %-12s  conf %.3f  latency %7.2f ms\n", (unsigned long)f->index, where,
               (int)r->class_index,
               (g_num_classes == 10 && r->class_index >= 0 && r->class_index < 10) ? fashion_classes[r->class_index]
                                                                                 : "",
               (double)r->confidence, r->latency_seconds * 1e3);
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    for (;;) {
        double left = t - now_seconds();
        struct timespec ts;
        if (left <= 0) return;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        if (nanosleep(&ts, NULL) == 0) return;
        if (errno != EINTR) return;
    }
}

static int has_image_suffix(const char *name) {
    const char *dot = strrchr(name, '.');
    char ext[8];
    size_t i;
    if (dot == NULL || strlen(dot) >= sizeof ext) return 0;
    for (i = 0; dot[i]; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
    ext[i] = '\0';
    return strcmp(ext, ".png") == 0 || strcmp(ext, ".jpg") == 0 || strcmp(ext, ".jpeg") == 0;
}

/* "…label<digits>…" → the number, else -1. */
static int label_of(const char *name) {
    const char *p = strstr(name, "label");
    if (p == NULL || !isdigit((unsigned char)p[5])) return -1;
    return atoi(p + 5);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted image file names in `dir`; NULL on error. */
static char **list_frames(const char *dir, size_t *count) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (d == NULL) return NULL;
    while ((ent = readdir(d)) != NULL) {
        if (!has_image_suffix(ent->d_name)) continue;
        if (n == cap) {
            char **grown;
            cap = cap ? cap * 2 : 1024;
            grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) break;
            names = grown;
        }
        names[n] = malloc(strlen(ent->d_name) + 1);
        if (names[n] == NULL) break;
        strcpy(names[n], ent->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, compare_names);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) return NULL;
    for (;;) {
        size_t got;
        if (n == cap) {
            unsigned char *grown;
            cap = cap ? cap * 2 : 4096;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *size = n;
    return buf;
}

static int fail(const char *what, sx_status s) {
    fprintf(stderr, "camera_loop: %s: %s: %s\n", what, sx_status_string(s), sx_last_error());
    return 1;
}

static void usage(FILE *to) {
    fprintf(to, "usage: camera_loop --model MODEL.onnx --frames DIR [--fps 500] [--collect 3000]\n"
                "                   [--tolerance 0.01] [--quiet] [--threads 0] [--search-budget 4]\n"
                "                   [--epochs 30] [--save-exits PATH]\n"
                "                   [--mean M[,M,M]] [--std S[,S,S]] [--scale SCALE]\n"
                "  --mean/--std: per-channel normalisation after --scale (defaults: Fashion-MNIST's\n"
                "  0.286 and 0.353, scale 1/255); one value applies to every channel.\n");
}

/* One finite number filling all of `v` ("0.5"); 0 when it is not a number. */
static int parse_number(const char *v, double *out) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !(x == x) || x > 1e30 || x < -1e30) return 0;
    *out = x;
    return 1;
}

/* "m" (every channel) or "m1,m2,m3" into out[3]; 0 when malformed. */
static int parse_channels(const char *v, float out[3]) {
    double x[3];
    int count = 0;
    const char *p = v;
    while (count < 3) {
        char *end = NULL;
        x[count] = strtod(p, &end);
        if (end == p || !(x[count] == x[count]) || x[count] > 1e30 || x[count] < -1e30) return 0;
        count++;
        if (*end == '\0') break;
        if (*end != ',') return 0;
        p = end + 1;
    }
    if (*p == '\0' || (count == 3 && strchr(p, ',') != NULL)) return 0;
    if (count == 1) x[1] = x[2] = x[0];
    else if (count != 3) return 0;
    out[0] = (float)x[0];
    out[1] = (float)x[1];
    out[2] = (float)x[2];
    return 1;
}

/* Waits for every submitted frame in [from, to). */
static sx_status wait_frames(sx_engine *e, frame *frames, size_t from, size_t to) {
    size_t i;
    for (i = from; i < to; i++) {
        if (frames[i].ticket) {
            sx_status s = sx_wait(e, frames[i].ticket, -1);
            if (s != SX_OK) return s;
        }
    }
    return SX_OK;
}

static void print_stats(const char *title, const sx_stats *st) {
    uint32_t k;
    printf("\n%s: %llu frames\n", title, (unsigned long long)st->samples);
    if (st->samples == 0) return;
    printf("  %-10s %8s %8s\n", "answered by", "frames", "rate");
    for (k = 0; k < st->num_exits && k < SX_MAX_EXITS; k++) {
        char name[32];
        if (st->exit_samples[k] == 0) continue;
        snprintf(name, sizeof name, "exit %u", (unsigned)k);
        printf("  %-10s %8llu %7.1f%%\n", name, (unsigned long long)st->exit_samples[k],
               100.0 * (double)st->exit_samples[k] / (double)st->samples);
    }
    printf("  %-10s %8llu %7.1f%%\n", "backbone", (unsigned long long)st->backbone_samples,
           100.0 * (double)st->backbone_samples / (double)st->samples);
    printf("  mean FLOPs %.2f M of %.2f M per frame: %.3f x the full model\n", st->mean_flops / 1e6,
           st->backbone_flops / 1e6, st->backbone_flops > 0 ? st->mean_flops / st->backbone_flops : 0.0);
    printf("  latency p50 %.2f ms, p99 %.2f ms\n", st->latency_p50 * 1e3, st->latency_p99 * 1e3);
}

int main(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *save_path = NULL;
    double fps = 500, tolerance = 0.01;
    long collect = 3000;
    unsigned threads = 0, search_budget = 4, epochs = 30;
    char **names;
    size_t n = 0, i, submitted = 0, skipped = 0, busy_waits = 0, oldest = 0, phase_start = 0;
    frame *frames;
    sx_engine_options opt;
    sx_engine *e = NULL;
    sx_info info;
    sx_stats stats_collect, stats_after;
    sx_preprocess pp;
    sx_status s;
    float *input;
    int updated = 0, status = 0;
    double period, t_start, t_phase;
    /* Fashion-MNIST normalisation unless --mean/--std/--scale say otherwise. */
    float mean[3] = {0.2860f, 0.2860f, 0.2860f}, stdev[3] = {0.3530f, 0.3530f, 0.3530f};
    double scale = 1.0 / 255.0;

    for (i = 1; i < (size_t)argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < (size_t)argc) ? argv[i + 1] : NULL;
        if (strcmp(a, "--quiet") == 0) {
            g_quiet = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--frames") == 0) dir = v;
        else if (strcmp(a, "--fps") == 0 || strcmp(a, "--tolerance") == 0) {
            /* Numbers are parsed strictly: "--fps abc" is an error, not 0 (as fast as possible). */
            double *target = strcmp(a, "--fps") == 0 ? &fps : &tolerance;
            if (!parse_number(v, target) || *target < 0) {
                fprintf(stderr, "camera_loop: %s needs a number >= 0, got '%s'\n", a, v);
                return 2;
            }
        } else if (strcmp(a, "--collect") == 0 || strcmp(a, "--threads") == 0 || strcmp(a, "--search-budget") == 0 ||
                   strcmp(a, "--epochs") == 0) {
            double x = 0;
            if (!parse_number(v, &x) || x < 0 || x > 1e9 || x != (double)(long)x) {
                fprintf(stderr, "camera_loop: %s needs a whole number >= 0, got '%s'\n", a, v);
                return 2;
            }
            if (strcmp(a, "--collect") == 0) collect = (long)x;
            else if (strcmp(a, "--threads") == 0) threads = (unsigned)x;
            else if (strcmp(a, "--search-budget") == 0) search_budget = (unsigned)x;
            else epochs = (unsigned)x;
        } else if (strcmp(a, "--save-exits") == 0) save_path = v;
        else if (strcmp(a, "--mean") == 0 || strcmp(a, "--std") == 0) {
            float *target = strcmp(a, "--mean") == 0 ? mean : stdev;
            if (!parse_channels(v, target) || (target == stdev && (stdev[0] == 0 || stdev[1] == 0 || stdev[2] == 0))) {
                fprintf(stderr, "camera_loop: %s needs one number or three separated by commas%s, got '%s'\n", a,
                        target == stdev ? " (non-zero)" : "", v);
                return 2;
            }
        } else if (strcmp(a, "--scale") == 0) {
            if (!parse_number(v, &scale) || scale == 0) {
                fprintf(stderr, "camera_loop: --scale needs a non-zero number, got '%s'\n", v);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (model == NULL || dir == NULL || fps < 0 || collect < 0) {
        usage(stderr);
        return 2;
    }
    if (sx_abi_version() != SX_ABI_VERSION) {
        fprintf(stderr, "camera_loop: library ABI %u, header ABI %d\n", (unsigned)sx_abi_version(), SX_ABI_VERSION);
        return 1;
    }

    setvbuf(stdout, NULL, _IOLBF, 0); /* results appear as they arrive, also through a pipe */
    names = list_frames(dir, &n);
    if (names == NULL) {
        fprintf(stderr, "camera_loop: cannot list %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "camera_loop: no .png/.jpg frames in %s (make some: python3 tools/write_frames.py --out %s "
                        "--count 10000)\n",
                dir, dir);
        return 1;
    }

    sx_engine_options_init(&opt);
    opt.threads = threads;
    opt.max_pending = 256;
    s = sx_engine_create(model, &opt, &e);
    if (s != SX_OK) return fail(model, s);
    info.struct_size = sizeof info;
    s = sx_engine_info(e, &info);
    if (s != SX_OK) return fail("sx_engine_info", s);
    g_num_classes = info.num_classes;
    printf("libselfxit %s; %s: input %lu floats, %lu classes, %.2f MFLOPs per frame, %u exit candidates\n",
           sx_version(), model, (unsigned long)info.input_size, (unsigned long)info.num_classes,
           (double)info.backbone_flops / 1e6, (unsigned)info.num_candidates);
    if (fps > 0) printf("%lu frames in %s at %g fps", (unsigned long)n, dir, fps);
    else printf("%lu frames in %s, unpaced", (unsigned long)n, dir);
    printf("; the first %ld with exits off (collecting)\n", collect < (long)n ? collect : (long)n);

    frames = calloc(n, sizeof *frames);
    input = malloc(info.input_size * sizeof *input);
    if (frames == NULL || input == NULL) {
        fprintf(stderr, "camera_loop: out of memory\n");
        return 1;
    }
    sx_preprocess_init(&pp);
    pp.scale = (float)scale;
    for (i = 0; i < 3; i++) {
        pp.mean[i] = mean[i];
        pp.std[i] = stdev[i];
    }

    s = sx_set_exits_enabled(e, 0);
    if (s != SX_OK) return fail("sx_set_exits_enabled", s);
    memset(&stats_collect, 0, sizeof stats_collect);
    period = fps > 0 ? 1.0 / fps : 0.0;
    t_start = t_phase = now_seconds();

    for (i = 0; i < n; i++) {
        char path[4096];
        unsigned char *bytes;
        size_t size = 0;
        frame *f = &frames[i];

        if ((long)i == collect && collect > 0) {
            sx_update_options u;
            double t0;
            printf("-- %ld frames collected; waiting for them, then building exits (tolerance %g)\n", collect,
                   tolerance);
            s = wait_frames(e, frames, 0, i);
            if (s != SX_OK) return fail("sx_wait", s);
            stats_collect.struct_size = sizeof stats_collect;
            s = sx_get_stats(e, &stats_collect);
            if (s != SX_OK) return fail("sx_get_stats", s);
            sx_update_options_init(&u);
            u.tolerance = tolerance;
            u.search_budget = search_budget;
            u.epochs = epochs;
            t0 = now_seconds();
            s = sx_update_exits(e, &u);
            if (s == SX_OK) {
                if ((s = sx_engine_info(e, &info)) != SX_OK) return fail("sx_engine_info", s);
                printf("-- sx_update_exits: %.2f s; %u exits trained, %u in service\n", now_seconds() - t0,
                       (unsigned)info.num_trained_exits, (unsigned)info.num_active_exits);
                updated = 1;
                if (save_path) {
                    s = sx_save_exits(e, save_path);
                    if (s != SX_OK) status = fail("sx_save_exits", s);
                    else printf("-- exits saved to %s\n", save_path);
                }
            } else {
                fprintf(stderr, "camera_loop: sx_update_exits after %.2f s: %s: %s (carrying on without exits)\n",
                        now_seconds() - t0, sx_status_string(s), sx_last_error());
                status = 1;
            }
            if ((s = sx_set_exits_enabled(e, 1)) != SX_OK) return fail("sx_set_exits_enabled", s);
            if ((s = sx_reset_stats(e)) != SX_OK) return fail("sx_reset_stats", s);
            t_phase = now_seconds();
            phase_start = i;
        }

        f->name = names[i];
        f->index = i;
        f->label = label_of(names[i]);
        f->phase = (collect > 0 && (long)i < collect) ? 0 : 1;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        bytes = read_file(path, &size);
        if (bytes == NULL) {
            fprintf(stderr, "camera_loop: cannot read %s\n", path);
            skipped++;
            continue;
        }
        s = sx_decode_image(e, bytes, size, &pp, input, info.input_size);
        free(bytes);
        if (s != SX_OK) {
            fprintf(stderr, "camera_loop: %s: %s: %s (skipped)\n", names[i], sx_status_string(s), sx_last_error());
            skipped++;
            continue;
        }

        /* The camera's clock: frame k of this phase is due at t_phase + k / fps. */
        if (period > 0) sleep_until(t_phase + (double)(i - phase_start) * period);

        for (;;) {
            s = sx_submit_async(e, input, info.input_size, 1, on_result, f, &f->ticket);
            if (s != SX_ERR_BUSY) break;
            /* The queue is full: the engine is slower than the camera. Wait for the oldest frame. */
            busy_waits++;
            while (oldest < i && frames[oldest].ticket == 0) oldest++;
            if (oldest < i) {
                /* Only frees a queue slot: a frame that failed is reported by wait_frames at the end. */
                sx_status waited = sx_wait(e, frames[oldest++].ticket, -1);
                (void)waited;
            }
        }
        if (s != SX_OK) {
            f->ticket = 0;
            status = fail("sx_submit_async", s);
            break;
        }
        submitted++;
    }

    s = wait_frames(e, frames, 0, n);
    if (s != SX_OK) return fail("sx_wait", s);
    memset(&stats_after, 0, sizeof stats_after);
    stats_after.struct_size = sizeof stats_after;
    s = sx_get_stats(e, &stats_after);
    if (s != SX_OK) return fail("sx_get_stats", s);

    printf("\n== %lu frames submitted in %.2f s (%lu skipped, %lu waits on a full queue) ==\n",
           (unsigned long)submitted, now_seconds() - t_start, (unsigned long)skipped, (unsigned long)busy_waits);
    if (collect > 0 && updated) {
        print_stats("Collecting (exits off)", &stats_collect);
        print_stats("After the exit update (exits on)", &stats_after);
    } else if (collect > 0 && (size_t)collect >= n) {
        print_stats("Collecting (exits off; no frames left for the update)", &stats_after);
    } else {
        print_stats(collect > 0 ? "After a failed update (no exits)" : "Exits on (none built: --collect 0)",
                    &stats_after);
    }
    {
        size_t labelled[2] = {0, 0}, correct[2] = {0, 0};
        int p;
        for (i = 0; i < n; i++) {
            if (!frames[i].done || frames[i].label < 0) continue;
            labelled[frames[i].phase]++;
            if (frames[i].class_index == frames[i].label) correct[frames[i].phase]++;
        }
        if (labelled[0] + labelled[1] > 0) {
            printf("\nAccuracy (labels from the file names):\n");
            for (p = 0; p < 2; p++)
                if (labelled[p])
                    printf("  %-34s %.4f  (%lu of %lu)\n",
                           p == 0 ? "collecting (exits off)"
                                  : (updated ? "after the update (exits on)" : "no exits built"),
                           (double)correct[p] / (double)labelled[p], (unsigned long)correct[p],
                           (unsigned long)labelled[p]);
        }
    }

    s = sx_engine_destroy(e);
    if (s != SX_OK) status = fail("sx_engine_destroy", s);
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    free(frames);
    free(input);
    return status;
}
