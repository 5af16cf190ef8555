/*
 * pedestrian_warning.c — pedestrian early warning on a real detector (issue 12; paper §3.5,
 * §4.3) through libselfxit's C interface.
 *
 *   pedestrian_warning --model Tests/Fixtures/pedestrian/ssdlite_person.onnx --frames DIR
 *                      [--step 1] [--limit 0] [--collect 0.7] [--train 0.5] [--tolerance 0.01]
 *                      [--miss-budget 0.005] [--warning-budget 0] [--teacher detector] [--threads 2]
 *                      [--search-budget 2] [--epochs 10] [--min-samples 200] [--quiet]
 *                      [--split-times T1,T2 [--steps S1,S2,S3] [--views REGEX]]
 *                      [--save-exits FILE | --load-exits FILE]
 *
 * The frames (JPEG, e.g. .cache/pedestrian/frames from tools/make_pedestrian_detector.py:
 * fNNN_{bl,br,full,tl,tr}.jpg, so name order is time order) are decoded with sx_decode_image
 * into the detector's input (RGB 300×300, p · 2/255 − 1). --step S keeps every S-th time step
 * (all views of it), --limit N the first N frames.
 *
 * --split-times T1,T2 splits by time step instead of by share (frames fTTT_*.jpg, e.g.
 * .cache/pedestrian/crops from tools/make_pedestrian_crops.py, 23 views per time step): time
 * steps < T1 are the training part, < T2 the validation part, the rest are served; --steps keeps
 * every S-th time step of each part (the validation part dense: certifying the miss budget needs
 * many validation pedestrian frames), --views only names matching the POSIX extended regular
 * expression. The build then gets exactly those counts (as bench/pedestrian_experiment.py does).
 * --save-exits writes the built exits to FILE (format 2: watched classes and guards included);
 * --load-exits serves with exits saved before (e.g. by the experiment) instead of collecting
 * and building — the same frames and exits give the same table.
 *
 *   1. The first --collect share of the frames runs with exits off: the full detector answers
 *      every frame and the engine records it, its teacher being the detector's most confident
 *      object turned into one class (person or none; --teacher takes any spec of
 *      sx_engine_options.teacher). Person (class 1) is watched with --miss-budget and
 *      --warning-budget (the false warnings the warning exits may raise on validation, in all;
 *      0: the tolerance; sx_engine_options.warning_budgets).
 *   2. Exits are built in recording order (keep_order: neighbouring frames are near-duplicates),
 *      train = the first --train share of all frames, validation the rest of the collected ones.
 *   3. Each remaining frame runs twice, one at a time: with exits off (the full detector's time
 *      and verdict: the reference), then with exits on. A frame an exit judges to hold a person
 *      gets a warning at once (SX_RESULT_WARNING) and the full detector confirms it
 *      (SX_RESULT_CONFIRMATION); other confident frames leave early.
 *
 * Per frame it prints the time to warning (or to the early answer) beside the full detector's
 * time, then a table: frames, warnings, confirmed, false alarms, hidden pedestrians (the full
 * detector says person, an exit answered "none"), warnings that arrived before the full
 * detector would have finished, mean time to warning, mean latency with exits, FLOPs ratio.
 *
 * Build (C99): cc -O2 -I include examples/pedestrian_warning.c -L .build/release -lselfxit \
 *                 -Wl,-rpath,$PWD/.build/release -o pedestrian_warning
 */
#define _POSIX_C_SOURCE 200809L

#include <selfxit.h>

#include <dirent.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    /* Filled by on_result for the current frame. */
    int warned, final_class, final_exit, final_kind_confirmation, finals;
    double warning_latency, final_latency, first_latency;
    uint64_t flops;
} frame_result;

static void on_result(const sx_result *r, void *user_data) {
    frame_result *f = user_data;
    if (r->flags & SX_RESULT_EXIT_PREDICTION) return;
    if (f->first_latency < 0) f->first_latency = r->latency_seconds;
    if (r->flags & SX_RESULT_WARNING) {
        f->warned = 1;
        f->warning_latency = r->latency_seconds;
        return;
    }
    f->final_class = r->class_index;
    f->final_exit = r->exit_index;
    f->final_latency = r->latency_seconds;
    f->final_kind_confirmation = (r->flags & SX_RESULT_CONFIRMATION) != 0;
    f->flops = r->flops;
    f->finals++;
}

/* The smallest double above x (x >= 0, finite): no libm needed. */
static double next_up(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits++;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static double next_down(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits--;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int fail(const char *what, sx_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, sx_status_string(s), sx_last_error());
    return 1;
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = NULL;
    size_t capacity = 0, used = 0, got;
    do {
        if (used == capacity) {
            capacity = capacity ? capacity * 2 : 1 << 16;
            unsigned char *grown = realloc(data, capacity);
            if (!grown) { free(data); fclose(f); return NULL; }
            data = grown;
        }
        got = fread(data + used, 1, capacity - used, f);
        used += got;
    } while (got > 0);
    fclose(f);
    *size = used;
    return data;
}

int main(int argc, char **argv) {
    const char *model = "Tests/Fixtures/pedestrian/ssdlite_person.onnx", *dir = NULL, *teacher = "detector";
    double collect = 0.7, train = 0.5, tolerance = 0.01, miss_budget = 0.005, warning_budget = 0;
    unsigned threads = 2, search_budget = 2, epochs = 10, min_samples = 200;
    size_t step = 1, limit = 0;
    int quiet = 0;
    const char *split_times = NULL, *steps_arg = "1,1,1", *views = NULL, *save_exits = NULL, *load_exits = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--frames")) dir = v;
        else if (!strcmp(a, "--teacher")) teacher = v;
        else if (!strcmp(a, "--collect")) collect = atof(v);
        else if (!strcmp(a, "--train")) train = atof(v);
        else if (!strcmp(a, "--tolerance")) tolerance = atof(v);
        else if (!strcmp(a, "--miss-budget")) miss_budget = atof(v);
        else if (!strcmp(a, "--warning-budget")) warning_budget = atof(v);
        else if (!strcmp(a, "--threads")) threads = (unsigned)atoi(v);
        else if (!strcmp(a, "--search-budget")) search_budget = (unsigned)atoi(v);
        else if (!strcmp(a, "--epochs")) epochs = (unsigned)atoi(v);
        else if (!strcmp(a, "--min-samples")) min_samples = (unsigned)atoi(v);
        else if (!strcmp(a, "--step")) step = (size_t)atol(v);
        else if (!strcmp(a, "--limit")) limit = (size_t)atol(v);
        else if (!strcmp(a, "--split-times")) split_times = v;
        else if (!strcmp(a, "--steps")) steps_arg = v;
        else if (!strcmp(a, "--views")) views = v;
        else if (!strcmp(a, "--save-exits")) save_exits = v;
        else if (!strcmp(a, "--load-exits")) load_exits = v;
        else { fprintf(stderr, "unknown flag %s\n", a); return 2; }
        i++;
    }
    if (!dir || step == 0 || !(collect > train && collect < 1 && train > 0)) {
        fprintf(stderr, "usage: pedestrian_warning --frames DIR [--model M] [--step S] [--limit N] [--collect 0.7] [--train 0.5] ...\n");
        return 2;
    }

    /* --split-times: the parts by time step, and each part's step. */
    long t1 = 0, t2 = 0;
    size_t steps[3] = {1, 1, 1};
    regex_t view_pattern;
    if (split_times) {
        if (sscanf(split_times, "%ld,%ld", &t1, &t2) != 2 || t1 <= 0 || t2 <= t1 ||
            sscanf(steps_arg, "%zu,%zu,%zu", &steps[0], &steps[1], &steps[2]) != 3 || !steps[0] || !steps[1] || !steps[2]) {
            fprintf(stderr, "--split-times needs T1,T2 with 0 < T1 < T2 and --steps three positive counts\n");
            return 2;
        }
    }
    if (views && regcomp(&view_pattern, views, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "--views: '%s' is not a regular expression\n", views);
        return 2;
    }

    /* Frame names in name (= time) order; every step-th time step ("fNNN_"). */
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return 1; }
    size_t count = 0, capacity = 0;
    char **names = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".jpg")) continue;
        if (split_times) {
            if (e->d_name[0] != 'f') continue;
            if (views && regexec(&view_pattern, e->d_name, 0, NULL, 0) != 0) continue;
            long t = atol(e->d_name + 1);
            if ((size_t)t % steps[t < t1 ? 0 : t < t2 ? 1 : 2] != 0) continue;
        } else if (e->d_name[0] == 'f' && (size_t)atol(e->d_name + 1) % step != 0) continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            char **grown = realloc(names, capacity * sizeof *names);
            if (!grown) { closedir(d); return 1; }
            names = grown;
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    if (views) regfree(&view_pattern);
    qsort(names, count, sizeof *names, by_name);
    if (limit && limit < count) count = limit;
    size_t collected = (size_t)(collect * (double)count), n_train = 0, n_validation = 0;
    if (split_times) {
        for (size_t i = 0; i < count; i++) {
            long t = atol(names[i] + 1);
            n_train += t < t1;
            n_validation += t >= t1 && t < t2;
        }
        collected = n_train + n_validation;
    }
    if (collected < 10 || collected >= count) { fprintf(stderr, "%zu frames: too few to collect and test\n", count); return 1; }

    /* The engine: detector teacher, person watched. */
    sx_engine_options options;
    sx_engine_options_init(&options);
    options.threads = threads;
    options.max_batch = 1;
    /* Room for the collected frames (none when the exits are loaded). */
    options.collection_budget_bytes = load_exits ? 0 : (uint64_t)(collected + 8) * (3 * 300 * 300 + 16) * sizeof(float);
    options.teacher = teacher;
    const int32_t watched[1] = {1};
    const double budgets[1] = {miss_budget};
    options.watched_classes = watched;
    options.miss_budgets = budgets;
    const double warning_budgets[1] = {warning_budget};
    options.warning_budgets = warning_budgets;
    options.num_watched = 1;
    sx_engine *engine = NULL;
    sx_status s = sx_engine_create(model, &options, &engine);
    if (s != SX_OK) return fail("sx_engine_create", s);
    sx_info info;
    info.struct_size = sizeof info;
    if ((s = sx_engine_info(engine, &info)) != SX_OK) return fail("sx_engine_info", s);
    printf("detector %s: input [%lld,%lld,%lld], %zu teacher classes (0 none, 1 person), %.2f GFLOPs, %u exit candidates\n", model,
           (long long)info.input_shape[0], (long long)info.input_shape[1], (long long)info.input_shape[2], info.num_classes,
           (double)info.backbone_flops / 1e9, info.num_candidates);
    if (split_times)
        printf("%zu frames (time steps < %ld train, < %ld validation, the rest served; every %zu/%zu/%zu-th): %zu + %zu collected (exits off), %zu served\n",
               count, t1, t2, steps[0], steps[1], steps[2], n_train, n_validation, count - collected);
    else
        printf("%zu frames (every %zu-th time step): %zu collected (exits off), %zu served\n", count, step, collected, count - collected);

    sx_preprocess pre;
    sx_preprocess_init(&pre);
    pre.scale = 2.0f / 255.0f;
    for (int c = 0; c < 3; c++) { pre.mean[c] = 1.0f; pre.std[c] = 1.0f; }
    float *input = malloc(info.input_size * sizeof(float));
    if (!input) return 1;
    char path[4096];
    #define DECODE(i)                                                                                             \
        do {                                                                                                      \
            size_t size = 0;                                                                                      \
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);                                                  \
            unsigned char *bytes = read_file(path, &size);                                                        \
            if (!bytes) { perror(path); return 1; }                                                               \
            s = sx_decode_image(engine, bytes, size, &pre, input, info.input_size);                               \
            free(bytes);                                                                                          \
            if (s != SX_OK) return fail(names[i], s);                                                             \
        } while (0)

    if (load_exits) {
        /* Exits saved before (their watched classes and guards come with them). */
        if ((s = sx_load_exits(engine, load_exits)) != SX_OK) return fail("sx_load_exits", s);
        if ((s = sx_engine_info(engine, &info)) != SX_OK) return fail("sx_engine_info", s);
        printf("exits loaded from %s: %u trained, %u active\n", load_exits, info.num_trained_exits, info.num_active_exits);
        goto serve;
    }

    /* 1. Collect with exits off. */
    if ((s = sx_set_exits_enabled(engine, 0)) != SX_OK) return fail("sx_set_exits_enabled", s);
    size_t persons_collected = 0;
    for (size_t i = 0; i < collected; i++) {
        frame_result f = {0, -1, -1, 0, 0, 0, 0, -1, 0};
        DECODE(i);
        if ((s = sx_submit(engine, input, info.input_size, 1, on_result, &f)) != SX_OK) return fail("sx_submit", s);
        persons_collected += f.final_class == 1;
    }
    printf("collected %zu frames, %zu with a person per the detector\n", collected, persons_collected);

    /* 2. Build exits, recording order, train / validation shares of the collected frames. */
    sx_update_options update;
    sx_update_options_init(&update);
    update.tolerance = tolerance;
    update.search_budget = search_budget;
    update.epochs = epochs;
    update.min_samples = min_samples;
    update.keep_order = 1;
    update.train_fraction = train / collect;
    update.validation_fraction = 1.0 - update.train_fraction;
    if (split_times) {
        /* Exactly n_train and n_validation of the collected frames: the engine takes
         * (size_t)(collected * fraction) of each, and the two fractions may not exceed 1. */
        double c = (double)collected;
        update.train_fraction = (double)n_train / c;
        update.validation_fraction = (double)n_validation / c;
        while ((size_t)(c * update.train_fraction) < n_train) update.train_fraction = next_up(update.train_fraction);
        while ((size_t)(c * update.validation_fraction) < n_validation) update.validation_fraction = next_up(update.validation_fraction);
        while (update.train_fraction + update.validation_fraction > 1.0) update.validation_fraction = next_down(update.validation_fraction);
        update.memory_budget_bytes = (uint64_t)1 << 40; /* a cap: all collected frames take part */
    }
    if ((s = sx_update_exits(engine, &update)) != SX_OK) return fail("sx_update_exits", s);
    if ((s = sx_engine_info(engine, &info)) != SX_OK) return fail("sx_engine_info", s);
    printf("exits built: %u trained, %u active (tolerance %.3g, miss budget %.3g)\n", info.num_trained_exits, info.num_active_exits,
           tolerance, miss_budget);
    if (save_exits) {
        if ((s = sx_save_exits(engine, save_exits)) != SX_OK) return fail("sx_save_exits", s);
        printf("exits saved to %s\n", save_exits);
    }

    /* 3. Serve: each frame with exits off (reference), then on. */
serve:;
    size_t served = 0, warnings = 0, confirmed = 0, false_alarms = 0, hidden = 0, persons = 0, warned_in_time = 0, early = 0;
    double sum_warning = 0, sum_full = 0, sum_first = 0, sum_final = 0, sum_flops = 0;
    for (size_t i = collected; i < count; i++) {
        DECODE(i);
        frame_result full = {0, -1, -1, 0, 0, 0, 0, -1, 0}, ex = {0, -1, -1, 0, 0, 0, 0, -1, 0};
        if ((s = sx_set_exits_enabled(engine, 0)) != SX_OK) return fail("sx_set_exits_enabled", s);
        if ((s = sx_submit(engine, input, info.input_size, 1, on_result, &full)) != SX_OK) return fail("sx_submit", s);
        if ((s = sx_set_exits_enabled(engine, 1)) != SX_OK) return fail("sx_set_exits_enabled", s);
        if ((s = sx_submit(engine, input, info.input_size, 1, on_result, &ex)) != SX_OK) return fail("sx_submit", s);
        /* The contract: one final result per frame; a warned frame's final is its confirmation. */
        if (ex.finals != 1 || full.finals != 1 || ex.warned != ex.final_kind_confirmation) {
            fprintf(stderr, "%s: %d final results (warned %d, confirmation %d)\n", names[i], ex.finals, ex.warned, ex.final_kind_confirmation);
            return 1;
        }
        served++;
        int person = full.final_class == 1;
        persons += (size_t)person;
        sum_full += full.final_latency;
        sum_first += ex.first_latency;
        sum_final += ex.final_latency;
        sum_flops += (double)ex.flops;
        if (ex.final_exit >= 0) early++;
        if (ex.warned) {
            warnings++;
            sum_warning += ex.warning_latency;
            if (person) confirmed++; else false_alarms++;
            if (person && ex.warning_latency < full.final_latency) warned_in_time++;
        }
        if (person && ex.final_exit >= 0 && ex.final_class != 1) hidden++;
        if (!quiet)
            printf("%-14s detector: %-6s %7.2f ms | exits: %s %7.2f ms%s\n", names[i], person ? "person" : "none",
                   full.final_latency * 1e3,
                   ex.warned ? "WARNING " : ex.final_exit >= 0 ? "early   " : "full    ",
                   (ex.warned ? ex.warning_latency : ex.final_latency) * 1e3,
                   ex.warned ? (person ? " (confirmed)" : " (false alarm)") : (person && ex.final_exit >= 0 ? " HIDDEN PEDESTRIAN" : ""));
    }
    printf("\n| frames | warnings | confirmed | false alarms | hidden pedestrians | pedestrian frames | warned before full finished | "
           "early answers | mean time to warning ms | mean full detector ms | mean time to first answer ms | mean latency with exits ms | FLOPs ratio |\n");
    printf("| %zu | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %.2f | %.2f | %.2f | %.2f | %.3f |\n", served, warnings, confirmed, false_alarms,
           hidden, persons, warned_in_time, early, warnings ? sum_warning / (double)warnings * 1e3 : 0, sum_full / (double)served * 1e3,
           sum_first / (double)served * 1e3, sum_final / (double)served * 1e3, sum_flops / (double)served / (double)info.backbone_flops);
    printf("RESULT frames=%zu warnings=%zu confirmed=%zu false_alarms=%zu hidden=%zu persons=%zu warned_in_time=%zu early=%zu\n", served,
           warnings, confirmed, false_alarms, hidden, persons, warned_in_time, early);

    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    free(input);
    if ((s = sx_engine_destroy(engine)) != SX_OK) return fail("sx_engine_destroy", s);
    return 0;
}
