/*
 * selfxit.h — the C interface of libselfxit: ONNX classifiers with unsupervised early exits.
 *
 * Conventions
 *   - Every name starts with `sx_` (types, functions) or `SX_` (constants).
 *   - `sx_engine` is opaque; create it with sx_engine_create*, free it with sx_engine_destroy.
 *   - Every fallible call returns an `sx_status`; SX_OK is 0. On failure, sx_last_error()
 *     returns a message for the calling thread's most recent failure.
 *   - Options, info and stats structs begin with `uint32_t struct_size`. Fill them with their
 *     `_init` function (which sets struct_size and the defaults), then change fields. A caller
 *     built against an older, shorter struct keeps working: the library reads and writes only
 *     the first struct_size bytes and uses defaults for fields beyond them.
 *   - Callbacks receive the caller's `void *user_data` unchanged.
 *   - No function traps on bad arguments: they are reported as SX_ERR_INVALID_ARGUMENT (or the
 *     code named below) and the engine stays usable.
 *   - Each function's "Errors:" line lists every status it returns (without the SX_ERR_
 *     prefix); INVALID_ARGUMENT includes a NULL or destroyed engine. Any function may also
 *     return SX_ERR_INTERNAL (a bug). tools/check_error_docs.py checks these lines against the
 *     code.
 *
 * Files
 *   - Paths name regular files (symbolic links to them are followed when reading). A FIFO, a
 *     device, a socket or a directory is refused with SX_ERR_IO without blocking; reading
 *     is capped (a model at 16 GiB, an exit bundle at 1 GiB).
 *
 * Threading
 *   - An engine may be used from any number of threads at once unless a function says
 *     otherwise. Callbacks run on the thread named beside each function; a callback must not
 *     destroy the engine that called it (refused with SX_ERR_BUSY).
 *   - A callback may call into another engine, including sx_wait and sx_engine_destroy. On an
 *     engine's worker (sx_submit_async callbacks) a call that would wait for a worker that is
 *     itself waiting, directly or through other engines, for this one is refused with
 *     SX_ERR_BUSY instead of deadlocking both (see sx_wait).
 */
#ifndef SELFXIT_H
#define SELFXIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SX_API marks every function of the library (exported with default visibility; on Windows a
 * DLL import, or an export when SX_BUILDING_DLL is defined). SX_NODISCARD marks every function
 * returning sx_status: ignoring the status is a compiler warning ([[nodiscard]] in C++17 and
 * C23, warn_unused_result on GCC/Clang otherwise; GCC warns even through a (void) cast, so
 * test the status). Define SX_NODISCARD empty before including this header to opt out. */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(SX_BUILDING_DLL)
#    define SX_API __declspec(dllexport)
#  else
#    define SX_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define SX_API __attribute__((visibility("default")))
#else
#  define SX_API
#endif
#ifndef SX_NODISCARD
#  if defined(__cplusplus) && __cplusplus >= 201703L
#    define SX_NODISCARD [[nodiscard]]
#  elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L
#    define SX_NODISCARD [[nodiscard]]
#  elif defined(__GNUC__) || defined(__clang__)
#    define SX_NODISCARD __attribute__((warn_unused_result))
#  else
#    define SX_NODISCARD
#  endif
#endif

/* Bumped when a struct layout or a function's meaning changes incompatibly. */
#define SX_ABI_VERSION 1

/* The most exits an engine reports statistics for (sx_stats.exit_samples). */
#define SX_MAX_EXITS 32
/* The highest input rank sx_engine_info reports (batch excluded). */
#define SX_MAX_RANK 8

typedef enum sx_status {
    SX_OK = 0,
    SX_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a size out of range, a bad option */
    SX_ERR_IO = 2,               /* a file could not be read or written */
    SX_ERR_BAD_MODEL = 3,        /* damaged, truncated or invalid model (not images or bundles:
                                    those are SX_ERR_INVALID_DATA) */
    SX_ERR_UNSUPPORTED_OP = 4,   /* the model uses an operator (or a feature: external tensor
                                    data, sparse initializers …) the engine does not implement */
    SX_ERR_SHAPE_MISMATCH = 5,   /* input length or shapes do not fit the model */
    SX_ERR_WRONG_STATE = 6,      /* e.g. saving exits before any are built */
    SX_ERR_BUSY = 7,             /* e.g. destroying an engine from inside its own callback */
    SX_ERR_OUT_OF_MEMORY = 8,    /* memory, or a thread, could not be had; the engine stays usable */
    SX_ERR_TIMEOUT = 9,          /* sx_wait ran out of time; the work goes on */
    SX_ERR_INTERNAL = 10,        /* a bug in the library; please report the message */
    SX_ERR_INVALID_DATA = 11,    /* data that is not a model is unusable: an undecodable or
                                    oversized image, a damaged, forged or foreign exit bundle */
    SX_ERR_CANCELLED = 12        /* the caller cancelled the call (an exit build's progress
                                    callback returned non-zero); nothing was changed */
} sx_status;

typedef struct sx_engine sx_engine;

/* ---- Library ---------------------------------------------------------------------------- */

/* SX_ABI_VERSION of the loaded library; compare with the header's to detect a mismatch.
 * Thread-safe. */
SX_API uint32_t sx_abi_version(void);

/* The library version, e.g. "0.1.0". Static storage; never free it. Thread-safe. */
SX_API const char *sx_version(void);

/* A short English name for a status code. Static storage; never NULL. Thread-safe. */
SX_API const char *sx_status_string(sx_status status);

/* The message of the calling thread's most recent failed call ("" if none). Owned by the
 * library; valid until the calling thread's next call into the library. Thread-safe. */
SX_API const char *sx_last_error(void);

/* sizeof() of a public struct as this library sees it, by name ("sx_result", "sx_stats",
 * "sx_engine_options", "sx_update_options", "sx_info", "sx_preprocess", "sx_progress",
 * "sx_output_info", "sx_event", "sx_serving_options"); 0 for an
 * unknown name. Lets bindings check their layouts at load time. Thread-safe. */
SX_API size_t sx_struct_size(const char *struct_name);

/* ---- Engine ----------------------------------------------------------------------------- */

typedef struct sx_engine_options {
    uint32_t struct_size;
    /* Kernel threads, the calling thread included. 0 = all cores (capped at 256). More than
     * 256 is INVALID_ARGUMENT. */
    uint32_t threads;
    /* Largest batch one call may submit (bounds the activation memory). Default 1024. */
    uint32_t max_batch;
    /* Bytes for recording unlabeled traffic to build exits from; 0 = no collection.
     * Default 64 MiB. */
    uint64_t collection_budget_bytes;
    /* Seed of every random choice (collection reservoir). Default 0. */
    uint64_t seed;
    /* Per-sample input shape (batch excluded), for models that leave dimensions symbolic;
     * NULL = take it from the model. Borrowed during sx_engine_create* only. */
    const int64_t *input_shape;
    size_t input_rank;
    /* Queued asynchronous requests at most (sx_submit_async); beyond it, SX_ERR_BUSY.
     * Default 64. */
    uint32_t max_pending;
    /* NaN / +-inf in a submitted input. 0 (default): the call fails with INVALID_ARGUMENT,
     * naming the sample and element ("input sample 3, element 127 is NaN"), before anything
     * runs. 1: the sample runs; NaN propagates as in ONNX Runtime and its result has
     * SX_RESULT_NON_FINITE set (see sx_result). Other values: INVALID_ARGUMENT. */
    uint32_t non_finite_inputs;
    /* What exits learn from the full model (paper §3.5). NULL or "classifier" (default): the
     * first output's softmax. "detector[:key=value,...]": a detector whose output of per-sample
     * shape [anchors, classes] holds class logits; the frame's class is that of its most
     * confident object, the background class (index `background`) meaning "none" — keys: mode
     * (most_confident_object | most_confident_of (with class=<i>) | all_objects), scores (the
     * output's name; default: the one [anchors, classes] output that is not 4 wide), activation
     * (sigmoid | softmax), background (index or none: then "none" is an extra last class),
     * threshold (score in (0,1) below which a frame is "none"; 0.5). "host:<classes>": labels come
     * from the host with each frame (sx_submit_labeled). num_classes (sx_info, sx_result) is then
     * the teacher's class count. A spec naming a missing output, a class out of range or an
     * unknown key: INVALID_ARGUMENT. Borrowed during sx_engine_create* only. */
    const char *teacher;
    /* Watched classes (e.g. person), `num_watched` entries; NULL/0: none. An exit may answer a
     * frame as a class that is not watched only where, on validation, the share of a watched
     * class's frames it would hide stays within miss_budgets[i] (in (0,1); NULL: 0.005 each);
     * a prediction of a watched class at or above warn_thresholds[i] (NULL or a value <= 0:
     * chosen per exit at build time) sends an SX_RESULT_WARNING result at once, and the full
     * model's answer follows with SX_RESULT_CONFIRMATION. A class out of range, the "none"
     * class, a duplicate or a budget outside (0,1): INVALID_ARGUMENT. The budget is certified,
     * not estimated: one-sided exact binomial test at 95 % on the validation frames (budget/2^n
     * at the n-th exit), so with too few frames of the class no exit answers "not watched".
     * Exits saved with sx_save_exits keep their watched classes and guards (bundle format 2);
     * loaded into an engine that watches no class, they bring them along (see sx_load_exits).
     * Borrowed during sx_engine_create* only. */
    const int32_t *watched_classes;
    const double *miss_budgets;
    const float *warn_thresholds;
    size_t num_watched;
    /* Per watched class (num_watched entries; NULL or a value <= 0: the build's tolerance T),
     * the warning budget W: without a warn threshold, any exit that finishes before the full
     * model may warn, the n-th warning exit (depth order) at the lowest confidence whose false
     * warnings stay within W/2^n of the validation frames (Eq. 3's split: W in all), chosen to
     * warn of the most validation frames of the class. A value >= 1 or not finite:
     * INVALID_ARGUMENT. Borrowed during sx_engine_create* only. */
    const double *warning_budgets;
} sx_engine_options;

/* Sets struct_size and the defaults. `options` may not be NULL. */
SX_API void sx_engine_options_init(sx_engine_options *options);

/* Loads an ONNX model from a file. `options` may be NULL (defaults). On success *engine owns
 * a new engine (free with sx_engine_destroy); on failure *engine is set to NULL.
 * Errors: INVALID_ARGUMENT, IO (unreadable; not a regular file; over 16 GiB), BAD_MODEL,
 * UNSUPPORTED_OP (an operator or ONNX feature the engine does not implement), SHAPE_MISMATCH,
 * OUT_OF_MEMORY (the OS refused a kernel thread — those already started are stopped — or
 * memory ran out). */
SX_NODISCARD SX_API sx_status sx_engine_create(const char *path, const sx_engine_options *options, sx_engine **engine);

/* As sx_engine_create, from `size` bytes of a serialized model (copied; the caller keeps
 * ownership of `bytes`). Errors: INVALID_ARGUMENT, BAD_MODEL, UNSUPPORTED_OP, SHAPE_MISMATCH,
 * OUT_OF_MEMORY. */
SX_NODISCARD SX_API sx_status sx_engine_create_from_memory(const void *bytes, size_t size, const sx_engine_options *options,
                                       sx_engine **engine);

/* Waits for the engine's queued and running asynchronous work, then frees it. NULL is fine.
 * Returns SX_ERR_BUSY (and frees nothing) when called from one of this engine's callbacks, or
 * from a callback of another engine B's sx_submit_async (on B's worker) while this engine's
 * worker is blocked, directly or through other engines' workers, waiting for B's worker — in
 * sx_wait(B, …) or sx_engine_destroy(B): that wait would never end. Of two async callbacks
 * that destroy each other's engines, the later is refused and the earlier completes once the
 * later's callback returns. No other thread may use the engine during or after this call.
 * Errors: INVALID_ARGUMENT, BUSY. */
SX_NODISCARD SX_API sx_status sx_engine_destroy(sx_engine *engine);

typedef struct sx_info {
    uint32_t struct_size;
    /* Per-sample input shape (batch excluded) and its number of floats. */
    size_t input_rank;
    int64_t input_shape[SX_MAX_RANK];
    size_t input_size;
    /* Classes of the answers: the classifier's outputs per sample, or the teacher's classes
     * (sx_engine_options.teacher; a detector's classes, its background meaning "none"). 0 for a
     * model with run-time shapes (has_runtime_shapes) served with the classifier teacher: it has
     * no class vector, its outputs are read with sx_infer_outputs_shaped. */
    size_t num_classes;
    /* FLOPs per sample of the full model (a multiply-add counts 2). */
    uint64_t backbone_flops;
    /* Exit candidates found in the graph, exits with trained heads, exits in service. */
    uint32_t num_candidates;
    uint32_t num_trained_exits;
    uint32_t num_active_exits;
    /* 1 when exits are switched on (sx_set_exits_enabled). */
    uint32_t exits_enabled;
    /* Samples recorded for the next exit build. */
    uint64_t collected_samples;
    /* 0 when the model's input has no batch axis (one image a call: torchvision's detectors
     * take [3, H, W]); input_shape is then the file's whole input shape and batch is 1. */
    uint32_t input_has_batch_axis;
    /* 1 when part of the model runs with shapes computed at run time (a detector after its
     * NMS): its outputs are read with sx_infer_outputs_shaped, one input a call. */
    uint32_t has_runtime_shapes;
} sx_info;

/* Fills `info` (set its struct_size first, e.g. sizeof(sx_info)). Errors: INVALID_ARGUMENT.
 * Thread-safe. */
SX_NODISCARD SX_API sx_status sx_engine_info(sx_engine *engine, sx_info *info);

/* ---- Inference -------------------------------------------------------------------------- */

typedef struct sx_result {
    uint32_t struct_size;
    /* The request: 0 for sx_submit, the ticket for sx_submit_async. */
    uint64_t ticket;
    /* Index of the sample in its batch. */
    size_t sample_index;
    /* The exit that answered (index among the engine's candidates, depth order), or -1 for
     * the backbone's own classifier. */
    int32_t exit_index;
    int32_t class_index;
    /* Calibrated probability of class_index. */
    float confidence;
    /* num_classes probabilities. Borrowed: valid only during the callback. */
    const float *probabilities;
    size_t num_classes;
    /* FLOPs spent on this sample (backbone up to its exit plus the heads it passed). */
    uint64_t flops;
    /* Seconds from submission to this callback. */
    double latency_seconds;
    /* SX_RESULT_* bits. SX_RESULT_NON_FINITE: the sample's input held NaN/+-inf (accepted only
     * with non_finite_inputs = 1) or its output is not finite (a finite input so large the
     * activations overflowed). Then class_index is -1, confidence is 0, exit_index is -1 (such
     * a sample never leaves early and is never recorded for exit building) and probabilities
     * hold what the model computed (NaN where ONNX Runtime gives NaN). */
    uint32_t flags;
} sx_result;

#define SX_RESULT_NON_FINITE 1u
/* Watched classes (sx_engine_options.watched_classes): SX_RESULT_WARNING — an exit judged the
 * sample to hold watched class class_index; sent at once, not final: the full model runs on and
 * a result with SX_RESULT_CONFIRMATION (the final answer of a warned sample; a false alarm when
 * its class_index differs) follows. SX_RESULT_EXIT_PREDICTION — all-exits mode
 * (sx_set_all_exits): one exit's prediction, not final. A result with neither WARNING nor
 * EXIT_PREDICTION is the sample's one final answer. */
#define SX_RESULT_WARNING 2u
#define SX_RESULT_CONFIRMATION 4u
#define SX_RESULT_EXIT_PREDICTION 8u

/* Called once per sample. `result` is borrowed: valid only during the call. */
typedef void (*sx_result_fn)(const sx_result *result, void *user_data);

/* Runs `batch` samples (`input` holds batch × input_size floats, row-major, batch first)
 * and blocks until all are answered. `callback` runs on the calling thread once per sample,
 * as soon as that sample is resolved — an early exit answers it before the batch finishes.
 * `input` is borrowed for the call. Samples that run the full model are recorded for exit
 * building. Errors: INVALID_ARGUMENT (NULL, batch 0 or > max_batch, or a NaN/+-inf input
 * value unless non_finite_inputs = 1; or a model with run-time-shaped outputs — a whole
 * detector, sx_info.has_runtime_shapes — served with the classifier teacher: it has no class
 * vector, read it with sx_infer_outputs_shaped or give it a detector teacher; no callback runs
 * then), SHAPE_MISMATCH
 * (input_len != batch × input_size), OUT_OF_MEMORY (memory for this batch could not be
 * allocated — its activations, checked before any callback, or exit-head and collection
 * buffers later, after which the samples not yet answered get no callback; the engine stays
 * usable and a smaller batch may fit). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_submit(sx_engine *engine, const float *input, size_t input_len, size_t batch, sx_result_fn callback,
                    void *user_data);

/* Like sx_submit, but copies `input` and returns at once with a ticket (> 0) in *ticket.
 * Callbacks run later on the engine's worker thread, in submission order; `user_data` must
 * stay valid until the ticket completes (sx_wait). Errors as sx_submit (a NaN/+-inf input is
 * refused here, not later at sx_wait), plus BUSY when max_pending requests are queued,
 * WRONG_STATE while the engine is being destroyed, OUT_OF_MEMORY when the input cannot be
 * copied or the OS refuses the worker thread (started with the first request); nothing is
 * queued then. A request that runs out of memory while running reports OUT_OF_MEMORY through
 * sx_wait. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_submit_async(sx_engine *engine, const float *input, size_t input_len, size_t batch,
                          sx_result_fn callback, void *user_data, uint64_t *ticket);

/* Waits until request `ticket` has finished (all its callbacks returned). timeout_ms < 0
 * waits forever; 0 polls. Returns TIMEOUT if it has not finished in time, INVALID_ARGUMENT
 * for a ticket never issued, and — if the request failed while running (its callbacks then
 * did not all run) — that failure's status and message (the last 1024 failures are kept).
 * A finished ticket stays finished. Must not be called from one of this engine's callbacks
 * (BUSY). From a callback of another engine B's sx_submit_async (on B's worker), a wait that
 * could block (timeout_ms != 0, ticket unfinished) returns BUSY at once when this engine's
 * worker is blocked, directly or through other engines' workers, waiting for B's worker
 * (sx_wait or sx_engine_destroy on B): neither wait could end. Other cross-engine waits wait.
 * Errors: INVALID_ARGUMENT, TIMEOUT, BUSY, and those of sx_submit. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_wait(sx_engine *engine, uint64_t ticket, int64_t timeout_ms);

/* As sx_submit, for an engine whose teacher is "host:<classes>": labels[i] (num_labels ==
 * batch) is sample i's class per the host's own detector, or -1 when it has none. Samples that
 * run the full model are recorded with their label (unlabelled ones are not) and answered with
 * it (class_index -1 without one). `labels` is borrowed for the call. Errors: as sx_submit, plus
 * INVALID_ARGUMENT (labels NULL, num_labels != batch, a label outside -1..num_classes-1, or the
 * engine's teacher is not host labels; nothing runs). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_submit_labeled(sx_engine *engine, const float *input, size_t input_len, size_t batch,
                                                const int32_t *labels, size_t num_labels, sx_result_fn callback, void *user_data);

/* ---- Exits ------------------------------------------------------------------------------ */

/* Where an exit build stands, passed to sx_update_options.progress. Valid only during the
 * call (copy the strings to keep them). */
typedef struct sx_progress {
    uint32_t struct_size;
    /* Share of the build done, in [0, 1]; never decreases within one build; 1 only with the
     * stage "done". */
    double fraction;
    /* The step, one of "prepare", "activations", "search", "train" (activations, search and
     * train repeat per candidate layer), "select", "done". Static storage. */
    const char *stage;
    /* A line for a log, e.g. "candidate 2/6 'x': training the chosen head". */
    const char *message;
} sx_progress;

/* Progress callback of sx_update_exits. Runs on the thread that called sx_update_exits, at
 * every stage and about ten times a second within one. Return 0 to go on, non-zero to cancel:
 * the build then stops within a fraction of a second and sx_update_exits returns
 * SX_ERR_CANCELLED, the previous exits staying in service. The last call (stage "done",
 * fraction 1) comes after the new exits are in service; its return value is ignored. It may
 * call the library, except sx_engine_destroy of this engine (BUSY). */
typedef int (*sx_progress_fn)(const sx_progress *progress, void *user_data);

typedef struct sx_update_options {
    uint32_t struct_size;
    /* Tolerated drop of agreement with the full model, in (0, 1). Default 0.01. */
    double tolerance;
    /* Architecture-search trials per candidate layer, ≥ 1. Default 4. */
    uint32_t search_budget;
    uint64_t seed;
    /* Bytes the build may hold for recorded activations. Default 2 GiB. */
    uint64_t memory_budget_bytes;
    /* Shares of the collected samples for training and validation (the rest: held-out
     * statistics). Defaults 0.5 and 0.2, as in the paper. */
    double train_fraction;
    double validation_fraction;
    /* Fewest collected samples a build accepts. Default 200. */
    uint32_t min_samples;
    /* Training epochs of each chosen head. Default 30. */
    uint32_t epochs;
    /* Progress and cancel (see sx_progress_fn); NULL (default): none. `progress_user_data` is
     * passed to it unchanged. */
    sx_progress_fn progress;
    void *progress_user_data;
    /* 1: split the collected samples in recording order (train, validation, test) instead of
     * shuffling — for video, whose neighbouring frames are near-duplicates. Default 0. */
    uint32_t keep_order;
    /* How each threshold is chosen. SX_THRESHOLD_POINT (0, default): the paper's Eq. 3 on point
     * estimates, HR·(1−CA) ≤ T/2^n on the validation frames. SX_THRESHOLD_GUARANTEED (1): a
     * (1−δ) Clopper–Pearson upper bound of HR·(1−CA) stays within T/2^n (δ spread over the
     * (exit, position) pairs the subset search may use), so that with probability ≥ 1−δ the
     * disagreement with the full model is at most T on traffic like the collected frames; the
     * build report (sx_get_stats_json: last_build) states the guarantee. Other values:
     * INVALID_ARGUMENT. */
    uint32_t threshold_rule;
    /* δ of SX_THRESHOLD_GUARANTEED, in (0, 1). Default 0.05. */
    double guarantee_delta;
    /* What the subset search minimises: SX_COST_FLOPS (0, default) or SX_COST_MEASURED (1):
     * the time per sample of each backbone segment and head, measured on this machine during
     * the build. The report gives both (test_flops_ratio, test_time_ratio). */
    uint32_t cost_model;
    /* Kernel threads of the build; 0 (default): all the engine's for sx_update_exits, 1 for
     * sx_update_exits_async. */
    uint32_t threads;
} sx_update_options;

#define SX_THRESHOLD_POINT 0u
#define SX_THRESHOLD_GUARANTEED 1u
#define SX_COST_FLOPS 0u
#define SX_COST_MEASURED 1u

SX_API void sx_update_options_init(sx_update_options *options);

/* Builds exits from the samples collected so far (search, distillation, calibration,
 * thresholds, subset selection) and puts them in service; blocks for the build (seconds to
 * minutes). Inference from other threads goes on meanwhile with the previous exits. On
 * failure the previous exits stay. `options` may be NULL (defaults).
 * Errors: INVALID_ARGUMENT (tolerance outside (0,1), zero budget …), WRONG_STATE (too few
 * samples collected), OUT_OF_MEMORY (a workspace or a training thread could not be had),
 * CANCELLED (options->progress returned non-zero). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_update_exits(sx_engine *engine, const sx_update_options *options);

/* Starts an exit build (as sx_update_exits, same options) on a background thread and returns
 * at once; inference goes on meanwhile and never pauses. The new exits replace the old ones
 * atomically when the build completes. The build thread runs at a lower priority (nice +19,
 * that thread only) on options->threads kernel threads (0: one), so inference keeps the other
 * cores. options->progress runs on the build's thread (never concurrently with itself);
 * non-zero from it cancels, as sx_cancel_exit_build does. Progress and the outcome are also in
 * sx_get_serving_stats_json ("build_*"). `options` is read during the call only (the progress
 * function and its user data must stay valid until the build ends: sx_wait_exit_build).
 * Errors: INVALID_ARGUMENT (as sx_update_exits), BUSY (a background build is already
 * running: the engine is unchanged), OUT_OF_MEMORY (the OS refused the thread). Errors of the
 * build itself (too few samples …) end it and are reported by sx_wait_exit_build.
 * Thread-safe. */
SX_NODISCARD SX_API sx_status sx_update_exits_async(sx_engine *engine, const sx_update_options *options);

/* Asks the background build to stop: it ends within a fraction of a second, the exits in
 * service staying (sx_wait_exit_build then returns CANCELLED). A cancel that arrives while the
 * new exits are being installed is too late and that build completes. Errors: INVALID_ARGUMENT,
 * WRONG_STATE (no background build is running). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_cancel_exit_build(sx_engine *engine);

/* Waits until no background build runs (timeout_ms < 0: for ever; 0: polls), then returns how
 * the last one ended: OK (its exits are in service), CANCELLED, or its error's status with the
 * message in sx_last_error (e.g. WRONG_STATE, too few samples). OK as well when no background
 * build ever ran. Must not be called from the build's own progress or event callback (BUSY).
 * Errors: INVALID_ARGUMENT, TIMEOUT, BUSY, CANCELLED, WRONG_STATE, OUT_OF_MEMORY.
 * Thread-safe. */
SX_NODISCARD SX_API sx_status sx_wait_exit_build(sx_engine *engine, int64_t timeout_ms);

/* An event of the live guard or of background builds, passed to sx_serving_options.on_event.
 * Valid only during the call. */
typedef struct sx_event {
    uint32_t struct_size;
    /* "guard_tripped", "rebuild_started", "rebuild_succeeded", "rebuild_cancelled",
     * "rebuild_failed". Static storage. */
    const char *kind;
    /* The exit concerned (exit index), or -1. */
    int32_t exit_index;
    const char *message;
} sx_event;

/* Runs on the thread where the event happens (a thread inside sx_submit, the engine's async
 * worker, or a background build's thread), outside the engine's locks. It may call the library
 * except sx_engine_destroy of this engine (BUSY). */
typedef void (*sx_event_fn)(const sx_event *event, void *user_data);

typedef struct sx_serving_options {
    uint32_t struct_size;
    /* Share of the frames answered by an exit that also run the full model after their
     * callback (audits), in [0, 1]. Audits measure each exit's live agreement and feed the
     * collection; while exits serve, every frame is collected with this probability (audited
     * exit answers and, by an independent draw, backbone answers), so the collection stays a
     * uniform sample of the traffic. 0: no audits, no guard, and the old collection (backbone
     * answers only). Default 0.02. */
    double audit_rate;
    /* Seed of the audit and collection draws. Default 0. */
    uint64_t seed;
    /* 1: the live guard takes an exit out of service when the (1−guard_delta) upper bound of
     * its live disagreement (audits pooled with its build's validation frames) exceeds its
     * share T/2^n of the tolerance, after at least one audited disagreement. 0 (default): the
     * bounds are measured and reported only. Meant with SX_THRESHOLD_GUARANTEED builds: with
     * point-rule thresholds the first audited disagreement trips an exit. */
    uint32_t guard_enabled;
    /* In (0, 1). Default 0.05. */
    double guard_delta;
    /* 1: after a guard trip, start a background rebuild once collect_after_trip frames (at
     * least the rebuild's min_samples) were collected since the trip. Default 0. */
    uint32_t rebuild_on_guard_trip;
    /* > 0: start a background rebuild once this many frames were collected since the exits in
     * service were installed (or the last background build began). Default 0 (off). */
    uint64_t rebuild_after_collected;
    /* 1: drop the collected frames at a guard trip (the rebuild learns from the traffic after
     * the change). Default 0. */
    uint32_t restart_collection_on_trip;
    /* Options of the policy's rebuilds (copied during the call; NULL: defaults, one thread).
     * Their progress function, if any, must stay valid while the engine lives. */
    const sx_update_options *rebuild_options;
    /* Events (NULL: none) and the user data passed to them unchanged. */
    sx_event_fn on_event;
    void *event_user_data;
    /* The guard judges an exit on a window of max(guard_window, its validation exit answers)
     * outcomes that starts filled with its build's validation outcomes, which live audits
     * displace one by one (then the oldest audits leave first): a long good history cannot
     * drown a change. guard_window 1 … 2^20, default 400; guard_prior_frames > 0 caps the
     * validation part (0, default: no cap). */
    uint32_t guard_window;
    uint32_t guard_prior_frames;
    /* rebuild_on_guard_trip waits for this many frames collected after the trip (at least the
     * rebuild's min_samples). Default 0. */
    uint64_t collect_after_trip;
} sx_serving_options;

SX_API void sx_serving_options_init(sx_serving_options *options);

/* Sets audited serving, the live guard and the rebuild policy for the next submits (`options`
 * NULL: defaults). The live counts of the exits in service are kept; installing new exits
 * restarts them. Errors: INVALID_ARGUMENT (audit_rate outside [0, 1], guard_delta outside
 * (0, 1), bad rebuild options; the engine keeps its settings). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_configure_serving(sx_engine *engine, const sx_serving_options *options);

/* Writes the audit, guard and background-build figures as a JSON object into `buffer`, as
 * sx_get_stats_json does: audit_rate, frames, audited, audit_flops, guard_trips,
 * rebuild_requested, exits (per exit in service: exit_index, position, state "serving" /
 * "out_of_service" / "unguarded", answered, audited, agreeing, live_agreement,
 * agreement_lower_bound, disagreement_bound, budget), build_running, build_stage,
 * build_fraction, build_message, builds_started / _succeeded / _cancelled / _failed,
 * last_build_error. Errors: INVALID_ARGUMENT. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_get_serving_stats_json(sx_engine *engine, char *buffer, size_t capacity, size_t *needed);

/* Switches early exits on (1) or off (0); off, every sample runs the full model (and is
 * collected). Errors: INVALID_ARGUMENT. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_set_exits_enabled(sx_engine *engine, int enabled);

/* All-exits mode on (1) or off (0) (paper §4.3): every trained exit's prediction is reported
 * (SX_RESULT_EXIT_PREDICTION, best so far), no sample leaves early, then the full model's
 * answer. Errors: INVALID_ARGUMENT. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_set_all_exits(sx_engine *engine, int enabled);

/* Writes the engine's exits to `path`: a versioned bundle with the model's fingerprint and
 * a checksum. A regular file at `path` is replaced atomically (written beside it, then
 * renamed over it); a symbolic link, directory, FIFO, device or socket at `path` is refused
 * (IO) and left as it is — to write through a link, pass its target. Errors:
 * INVALID_ARGUMENT, WRONG_STATE (no exits are built), IO. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_save_exits(sx_engine *engine, const char *path);

/* Loads exits saved by sx_save_exits. A bundle is checked whole before it is used: one made
 * for another model, of another format version, damaged, or with any field that does not fit
 * the model (indices, shapes, counts, thresholds, temperatures, non-finite values …) is
 * refused and the engine keeps its current exits. Format 2 (this library's) also records the
 * teacher, the watched classes (miss budgets, warn thresholds, warning budgets) and each
 * exit's guard (safe threshold of the miss-budget rule, warn thresholds: the warning exits),
 * so reloaded exits warn and refuse exactly as before saving; it is refused (INVALID_DATA)
 * when its teacher differs from the engine's, or when the engine watches classes other than
 * the bundle's (an engine that watches none takes the bundle's). Format 1 bundles still load
 * but record none of that: with watched classes no exit then answers a frame as not watched
 * and only active exits warn; one built with watched classes is refused by an engine that
 * watches none. What a loaded bundle lacks is stated in sx_get_stats_json's
 * last_build.bundle_note. Errors: INVALID_ARGUMENT, IO (unreadable;
 * not a regular file; over 1 GiB), INVALID_DATA (not a valid bundle for this model; the
 * message names the field). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_load_exits(sx_engine *engine, const char *path);

/* ---- Statistics ------------------------------------------------------------------------- */

typedef struct sx_stats {
    uint32_t struct_size;
    /* Samples answered since creation or sx_reset_stats. */
    uint64_t samples;
    /* Samples answered by each exit candidate (index = exit_index), and by the backbone. */
    uint32_t num_exits;
    uint64_t exit_samples[SX_MAX_EXITS];
    uint64_t backbone_samples;
    /* Mean FLOPs per sample, and the full model's FLOPs per sample. */
    double mean_flops;
    double backbone_flops;
    /* Latency from submission to callback over the recent samples, in seconds. */
    double latency_p50;
    double latency_p95;
    double latency_p99;
} sx_stats;

/* Fills `stats` (set its struct_size first, e.g. sizeof(sx_stats)). Errors: INVALID_ARGUMENT.
 * Thread-safe. */
SX_NODISCARD SX_API sx_status sx_get_stats(sx_engine *engine, sx_stats *stats);

/* Writes the statistics, including the last exit build's per-exit report, as a JSON object
 * NUL-terminated into `buffer` (`capacity` bytes). *needed (if not NULL) receives the bytes
 * required including the NUL. With a too small (or NULL, capacity 0) buffer nothing is
 * written and INVALID_ARGUMENT is returned with *needed set. Errors: INVALID_ARGUMENT.
 * Thread-safe. */
SX_NODISCARD SX_API sx_status sx_get_stats_json(sx_engine *engine, char *buffer, size_t capacity, size_t *needed);

/* Zeroes the inference statistics (not the collected samples or the exits). Errors:
 * INVALID_ARGUMENT. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_reset_stats(sx_engine *engine);

/* ---- Image ingest ----------------------------------------------------------------------- */

typedef struct sx_preprocess {
    uint32_t struct_size;
    /* Pixel p (0–255) of channel c becomes (p · scale − mean[c]) / std[c].
     * Defaults: scale 1/255, mean 0, std 1. Grayscale uses index 0. */
    float scale;
    float mean[3];
    float std[3];
    /* Since 0.1 (struct grown; an older, shorter struct_size reads as the default): an image
     * whose header claims more than this many pixels is refused (INVALID_DATA) before anything
     * is allocated or decoded. 1 … 2^26; 0 means the default, 2^26 (what sx_preprocess_init
     * sets). A host that knows its cameras' size sets it near that: it bounds the memory and
     * the time one frame can cost (a crafted 250-byte JPEG claiming 2^26 pixels takes
     * seconds to decode). */
    uint64_t max_pixels;
} sx_preprocess;

SX_API void sx_preprocess_init(sx_preprocess *preprocess);

/* Decodes a JPEG or PNG image (`size` bytes) into the engine's input layout for one sample:
 * converted to grayscale or RGB as the model's channel count asks, resized to the model's
 * height and width, normalised per `preprocess` (NULL = defaults), written CHW into `out`,
 * which must hold input_size floats (out_len).
 * The resize is Pillow's `Image.resize((W, H), Image.BILINEAR)`: a triangle filter whose
 * support grows with the shrink factor (an area average: thin lines do not alias away),
 * plain centre-aligned bilinear when enlarging, each axis separately (horizontal first) in
 * 8-bit with Pillow's fixed-point rounding — on the same decoded pixels the result is Pillow's
 * to the bit. A JPEG at least 12× the model's size in both directions is decoded DCT-scaled
 * by 1/2, 1/4 or 1/8 (libjpeg-turbo), leaving ≥ 6× to the filter: within 1 grey level of
 * Pillow's full decode and resize (measured), and faster. Gray from a colour image is the
 * ITU-R 601 luma of its RGB pixels, as Pillow's convert("L"); gray to RGB repeats the value;
 * an alpha channel is dropped; 16-bit PNG samples are scaled to 8 bits (read as sRGB values,
 * never as linear light). Then each 8-bit value p becomes (p · scale − mean[c]) / std[c].
 * Images whose header claims more than preprocess->max_pixels (default and ceiling 2^26)
 * pixels are refused before anything is allocated;
 * JPEGs that libjpeg-turbo decodes with a warning only (e.g. a missing end-of-image marker)
 * are accepted. Errors:
 * INVALID_ARGUMENT (also max_pixels above 2^26), INVALID_DATA (undecodable, empty or oversized
 * image), SHAPE_MISMATCH (the
 * model's input is not [1 or 3, H, W] or out_len is wrong). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_decode_image(sx_engine *engine, const void *bytes, size_t size, const sx_preprocess *preprocess,
                          float *out, size_t out_len);

/* ---- Graph outputs ---------------------------------------------------------------------- */

/* One graph output of the model (a detector's boxes, scores and labels; a classifier's logits). */
typedef struct sx_output_info {
    uint32_t struct_size;
    /* The output's name in the ONNX graph. Owned by the engine: valid until sx_engine_destroy. */
    const char *name;
    /* Per-sample shape (batch excluded) and its number of floats. */
    size_t rank;
    int64_t shape[SX_MAX_RANK];
    size_t size;
} sx_output_info;

/* The number of graph outputs of the model (at least 1), in `*count`. Errors: INVALID_ARGUMENT
 * (NULL engine or count). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_output_count(sx_engine *engine, size_t *count);

/* Describes graph output `index` (model order; output 0 is the one sx_result's probabilities
 * come from). Set info->struct_size first (sizeof(sx_output_info)). Errors: INVALID_ARGUMENT
 * (NULL engine or info, index out of range, struct_size too small). Thread-safe. */
SX_NODISCARD SX_API sx_status sx_output_describe(sx_engine *engine, size_t index, sx_output_info *info);

/* Runs the full model (no early exits; nothing is recorded for exit building) on `batch`
 * samples of input_size floats each (input_len = batch × input_size) and copies every graph
 * output: outputs[i] (caller-owned, capacities[i] floats) receives batch × size_i floats of
 * output i, sample after sample. num_outputs must equal sx_output_count. Blocks until done;
 * nothing is written to `outputs` on an error. Errors: INVALID_ARGUMENT (NULL pointer, batch 0
 * or above max_batch, num_outputs wrong, a capacity too small, a non-finite input while those
 * are refused; a capacity below the size a run-time-shaped output has for this input),
 * SHAPE_MISMATCH (input_len), BAD_MODEL or UNSUPPORTED_OP (a run-time-shaped part fails on this
 * input, naming the node), OUT_OF_MEMORY. Thread-safe (calls run concurrently, each on its own
 * workspace). */
SX_NODISCARD SX_API sx_status sx_infer_outputs(sx_engine *engine, const float *input, size_t input_len, size_t batch,
                                               size_t num_outputs, float *const *outputs, const size_t *capacities);

/* Runs the full model on ONE input (input_size floats) and copies every graph output with the
 * shape computed for this input: for models whose later part has shapes known only at run time
 * (sx_info.has_runtime_shapes: a detector's boxes, scores and labels after NMS; such a model
 * runs one image a call), and for any other model (then each shape is the file's, batch 1
 * leading). ranks[i] and shapes[i * SX_MAX_RANK + axis] (caller-owned, num_outputs and
 * num_outputs × SX_MAX_RANK entries) receive output i's rank and dims; outputs[i]
 * (caller-owned, capacities[i] floats) its values, row-major (integer outputs such as labels
 * as floats). When a capacity is too small, ranks and shapes are still written, no output is,
 * and the call fails: size the buffers from the shapes and call again. Blocks until done.
 * Errors: INVALID_ARGUMENT (NULL pointer, num_outputs wrong, a capacity too small, a
 * non-finite input while those are refused), SHAPE_MISMATCH (input_len, or a run-time shape
 * the model's own operators reject), BAD_MODEL or UNSUPPORTED_OP (the run-time-shaped part
 * fails on this input, naming the node), OUT_OF_MEMORY. Thread-safe. */
SX_NODISCARD SX_API sx_status sx_infer_outputs_shaped(sx_engine *engine, const float *input, size_t input_len,
                                                      size_t num_outputs, float *const *outputs, const size_t *capacities,
                                                      size_t *ranks, int64_t *shapes);

#ifdef __cplusplus
}
#endif

#endif /* SELFXIT_H */
