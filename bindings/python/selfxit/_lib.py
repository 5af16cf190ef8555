"""Loading libselfxit and mirroring `include/selfxit.h` in ctypes.

Everything here follows the header (the contract); `_check_abi()` compares the
loaded library's ABI version and struct sizes with these mirrors at import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import os
from pathlib import Path

# ---- constants of selfxit.h ---------------------------------------------------------------

SX_ABI_VERSION = 1
SX_MAX_EXITS = 32
SX_MAX_RANK = 8
SX_RESULT_NON_FINITE = 1
SX_RESULT_WARNING = 2
SX_RESULT_CONFIRMATION = 4
SX_RESULT_EXIT_PREDICTION = 8
# Results that are not a sample's final answer (more callbacks follow for that sample).
SX_RESULT_NOT_FINAL = SX_RESULT_WARNING | SX_RESULT_EXIT_PREDICTION


class Status(enum.IntEnum):
    """`sx_status`."""

    OK = 0
    INVALID_ARGUMENT = 1
    IO = 2
    BAD_MODEL = 3
    UNSUPPORTED_OP = 4
    SHAPE_MISMATCH = 5
    WRONG_STATE = 6
    BUSY = 7
    OUT_OF_MEMORY = 8
    TIMEOUT = 9
    INTERNAL = 10
    INVALID_DATA = 11
    CANCELLED = 12


# ---- struct mirrors -------------------------------------------------------------------------
# ctypes applies the platform C alignment rules, so plain field lists reproduce the header's
# layouts (padding included); the import-time size check guards against drift.


class sx_engine_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("max_batch", ctypes.c_uint32),
        ("collection_budget_bytes", ctypes.c_uint64),
        ("seed", ctypes.c_uint64),
        ("input_shape", ctypes.POINTER(ctypes.c_int64)),
        ("input_rank", ctypes.c_size_t),
        ("max_pending", ctypes.c_uint32),
        ("non_finite_inputs", ctypes.c_uint32),
        ("teacher", ctypes.c_char_p),
        ("watched_classes", ctypes.POINTER(ctypes.c_int32)),
        ("miss_budgets", ctypes.POINTER(ctypes.c_double)),
        ("warn_thresholds", ctypes.POINTER(ctypes.c_float)),
        ("num_watched", ctypes.c_size_t),
        ("warning_budgets", ctypes.POINTER(ctypes.c_double)),
    ]


class sx_output_info(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("rank", ctypes.c_size_t),
        ("shape", ctypes.c_int64 * SX_MAX_RANK),
        ("size", ctypes.c_size_t),
    ]


class sx_info(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("input_rank", ctypes.c_size_t),
        ("input_shape", ctypes.c_int64 * SX_MAX_RANK),
        ("input_size", ctypes.c_size_t),
        ("num_classes", ctypes.c_size_t),
        ("backbone_flops", ctypes.c_uint64),
        ("num_candidates", ctypes.c_uint32),
        ("num_trained_exits", ctypes.c_uint32),
        ("num_active_exits", ctypes.c_uint32),
        ("exits_enabled", ctypes.c_uint32),
        ("collected_samples", ctypes.c_uint64),
        ("input_has_batch_axis", ctypes.c_uint32),
        ("has_runtime_shapes", ctypes.c_uint32),
    ]


class sx_result(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("ticket", ctypes.c_uint64),
        ("sample_index", ctypes.c_size_t),
        ("exit_index", ctypes.c_int32),
        ("class_index", ctypes.c_int32),
        ("confidence", ctypes.c_float),
        ("probabilities", ctypes.POINTER(ctypes.c_float)),
        ("num_classes", ctypes.c_size_t),
        ("flops", ctypes.c_uint64),
        ("latency_seconds", ctypes.c_double),
        ("flags", ctypes.c_uint32),
    ]


class sx_progress(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("fraction", ctypes.c_double),
        ("stage", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
    ]


# `sx_progress_fn`: int (*)(const sx_progress *, void *user_data); non-zero cancels.
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(sx_progress), ctypes.c_void_p)


class sx_update_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("tolerance", ctypes.c_double),
        ("search_budget", ctypes.c_uint32),
        ("seed", ctypes.c_uint64),
        ("memory_budget_bytes", ctypes.c_uint64),
        ("train_fraction", ctypes.c_double),
        ("validation_fraction", ctypes.c_double),
        ("min_samples", ctypes.c_uint32),
        ("epochs", ctypes.c_uint32),
        ("progress", PROGRESS_FN),
        ("progress_user_data", ctypes.c_void_p),
        ("keep_order", ctypes.c_uint32),
        ("threshold_rule", ctypes.c_uint32),
        ("guarantee_delta", ctypes.c_double),
        ("cost_model", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
    ]


SX_THRESHOLD_POINT = 0
SX_THRESHOLD_GUARANTEED = 1
SX_COST_FLOPS = 0
SX_COST_MEASURED = 1


class sx_event(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("kind", ctypes.c_char_p),
        ("exit_index", ctypes.c_int32),
        ("message", ctypes.c_char_p),
    ]


# `sx_event_fn`: void (*)(const sx_event *, void *user_data).
EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(sx_event), ctypes.c_void_p)


class sx_serving_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("audit_rate", ctypes.c_double),
        ("seed", ctypes.c_uint64),
        ("guard_enabled", ctypes.c_uint32),
        ("guard_delta", ctypes.c_double),
        ("rebuild_on_guard_trip", ctypes.c_uint32),
        ("rebuild_after_collected", ctypes.c_uint64),
        ("restart_collection_on_trip", ctypes.c_uint32),
        ("rebuild_options", ctypes.POINTER(sx_update_options)),
        ("on_event", EVENT_FN),
        ("event_user_data", ctypes.c_void_p),
        ("guard_window", ctypes.c_uint32),
        ("guard_prior_frames", ctypes.c_uint32),
        ("collect_after_trip", ctypes.c_uint64),
    ]


class sx_stats(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("samples", ctypes.c_uint64),
        ("num_exits", ctypes.c_uint32),
        ("exit_samples", ctypes.c_uint64 * SX_MAX_EXITS),
        ("backbone_samples", ctypes.c_uint64),
        ("mean_flops", ctypes.c_double),
        ("backbone_flops", ctypes.c_double),
        ("latency_p50", ctypes.c_double),
        ("latency_p95", ctypes.c_double),
        ("latency_p99", ctypes.c_double),
    ]


class sx_preprocess(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("scale", ctypes.c_float),
        ("mean", ctypes.c_float * 3),
        ("std", ctypes.c_float * 3),
        ("max_pixels", ctypes.c_uint64),
    ]


STRUCTS = (sx_result, sx_stats, sx_engine_options, sx_update_options, sx_info, sx_preprocess, sx_progress,
           sx_output_info, sx_event, sx_serving_options)

# The one CFUNCTYPE type for `sx_result_fn`: void (*)(const sx_result *, void *user_data).
RESULT_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(sx_result), ctypes.c_void_p)

# ---- locating the library -----------------------------------------------------------------

_LIB_NAME = "libselfxit.so"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _candidates() -> list[tuple[str, str]]:
    """(description, path-or-name) in lookup order."""
    out: list[tuple[str, str]] = []
    env = os.environ.get("SELFXIT_LIBRARY")
    if env:
        out.append(("$SELFXIT_LIBRARY", env))
        return out  # an explicit choice is never second-guessed
    out.append(("inside the package", str(_PACKAGE_DIR / _LIB_NAME)))
    # Editable/develop install: the package source is <repo>/bindings/python/selfxit, and the
    # Swift build puts the library in <repo>/.build/release.
    out.append(("repository build", str(_PACKAGE_DIR.parents[2] / ".build" / "release" / _LIB_NAME)))
    found = ctypes.util.find_library("selfxit")
    if found:
        out.append(("ctypes.util.find_library", found))
    return out


def _load() -> tuple[ctypes.CDLL, str]:
    tried = []
    env = os.environ.get("SELFXIT_LIBRARY")
    for what, path in _candidates():
        is_file_path = os.sep in path
        if is_file_path and not os.path.isfile(path):
            tried.append(f"  {what}: {path} (no such file)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"  {what}: {path} ({e})")
    if not env:
        tried.append("  ctypes.util.find_library('selfxit'): not found")
    raise ImportError(
        "selfxit: cannot load libselfxit.so. Set SELFXIT_LIBRARY to its full path "
        "(e.g. <repo>/.build/release/libselfxit.so after `swift build -c release`). Tried:\n"
        + "\n".join(tried)
    )


lib, library_path = _load()

# ---- prototypes ---------------------------------------------------------------------------

_p = ctypes.POINTER
_engine_p = ctypes.c_void_p  # sx_engine * (opaque)
_status = ctypes.c_int  # sx_status (an int-sized C enum)

_PROTOTYPES = {
    "sx_abi_version": (ctypes.c_uint32, []),
    "sx_version": (ctypes.c_char_p, []),
    "sx_status_string": (ctypes.c_char_p, [_status]),
    "sx_last_error": (ctypes.c_char_p, []),
    "sx_struct_size": (ctypes.c_size_t, [ctypes.c_char_p]),
    "sx_engine_options_init": (None, [_p(sx_engine_options)]),
    "sx_engine_create": (_status, [ctypes.c_char_p, _p(sx_engine_options), _p(_engine_p)]),
    "sx_engine_create_from_memory": (
        _status,
        [ctypes.c_char_p, ctypes.c_size_t, _p(sx_engine_options), _p(_engine_p)],
    ),
    "sx_engine_destroy": (_status, [_engine_p]),
    "sx_engine_info": (_status, [_engine_p, _p(sx_info)]),
    "sx_submit": (
        _status,
        [_engine_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, RESULT_FN, ctypes.c_void_p],
    ),
    "sx_submit_async": (
        _status,
        [
            _engine_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, RESULT_FN, ctypes.c_void_p,
            _p(ctypes.c_uint64),
        ],
    ),
    "sx_wait": (_status, [_engine_p, ctypes.c_uint64, ctypes.c_int64]),
    "sx_update_options_init": (None, [_p(sx_update_options)]),
    "sx_update_exits": (_status, [_engine_p, _p(sx_update_options)]),
    "sx_set_exits_enabled": (_status, [_engine_p, ctypes.c_int]),
    "sx_set_all_exits": (_status, [_engine_p, ctypes.c_int]),
    "sx_submit_labeled": (
        _status,
        [
            _engine_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, _p(ctypes.c_int32), ctypes.c_size_t,
            RESULT_FN, ctypes.c_void_p,
        ],
    ),
    "sx_save_exits": (_status, [_engine_p, ctypes.c_char_p]),
    "sx_load_exits": (_status, [_engine_p, ctypes.c_char_p]),
    "sx_get_stats": (_status, [_engine_p, _p(sx_stats)]),
    "sx_get_stats_json": (
        _status,
        [_engine_p, ctypes.c_void_p, ctypes.c_size_t, _p(ctypes.c_size_t)],
    ),
    "sx_reset_stats": (_status, [_engine_p]),
    "sx_output_count": (_status, [_engine_p, _p(ctypes.c_size_t)]),
    "sx_output_describe": (_status, [_engine_p, ctypes.c_size_t, _p(sx_output_info)]),
    "sx_infer_outputs": (
        _status,
        [_engine_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t,
         _p(ctypes.c_void_p), _p(ctypes.c_size_t)],
    ),
    "sx_infer_outputs_shaped": (
        _status,
        [_engine_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, _p(ctypes.c_void_p), _p(ctypes.c_size_t),
         _p(ctypes.c_size_t), _p(ctypes.c_int64)],
    ),
    "sx_update_exits_async": (_status, [_engine_p, _p(sx_update_options)]),
    "sx_cancel_exit_build": (_status, [_engine_p]),
    "sx_wait_exit_build": (_status, [_engine_p, ctypes.c_int64]),
    "sx_serving_options_init": (None, [_p(sx_serving_options)]),
    "sx_configure_serving": (_status, [_engine_p, _p(sx_serving_options)]),
    "sx_get_serving_stats_json": (
        _status,
        [_engine_p, ctypes.c_void_p, ctypes.c_size_t, _p(ctypes.c_size_t)],
    ),
    "sx_preprocess_init": (None, [_p(sx_preprocess)]),
    "sx_decode_image": (
        _status,
        [_engine_p, ctypes.c_char_p, ctypes.c_size_t, _p(sx_preprocess), ctypes.c_void_p, ctypes.c_size_t],
    ),
}


def _bind() -> None:
    missing = []
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(f"selfxit: {library_path} lacks the symbols {', '.join(missing)}")


def _check_abi() -> None:
    abi = lib.sx_abi_version()
    if abi != SX_ABI_VERSION:
        raise ImportError(
            f"selfxit: {library_path} has ABI version {abi}, these bindings were written for "
            f"{SX_ABI_VERSION}"
        )
    wrong = []
    for struct in STRUCTS:
        theirs = lib.sx_struct_size(struct.__name__.encode())
        ours = ctypes.sizeof(struct)
        if theirs != ours:
            wrong.append(f"{struct.__name__}: library {theirs} bytes, bindings {ours}")
    if wrong:
        raise ImportError(f"selfxit: struct layouts differ from {library_path}: " + "; ".join(wrong))


_bind()
_check_abi()


def version() -> str:
    """The library's version string (`sx_version()`)."""
    return str(lib.sx_version().decode())


def status_string(status: int) -> str:
    """`sx_status_string()`."""
    s = lib.sx_status_string(int(status))
    return s.decode() if s else f"status {status}"


def last_error() -> str:
    """`sx_last_error()` of the calling thread."""
    s = lib.sx_last_error()
    return s.decode(errors="replace") if s else ""
