"""`Engine`, `Error` and the callback plumbing over the C ABI."""

from __future__ import annotations

import atexit
import ctypes
import importlib
import itertools
import json
import math
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Literal, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

from . import _lib
from ._lib import RESULT_FN, Status, lib

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
#: `infer(x)`: labels, confidences, exit indices.
InferResult = tuple[IntArray, FloatArray, IntArray]
#: `infer(x, return_probabilities=True)`: labels, confidences, exit indices, probabilities (N, classes).
InferResultWithProbabilities = tuple[IntArray, FloatArray, IntArray, FloatArray]
#: `update_exits(progress=...)`: called with (fraction, stage); True cancels the build.
ProgressCallback = Callable[[float, str], Optional[bool]]
ResultCallback = Callable[[dict[str, Any]], Any]
PathLike = Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes]


class Error(Exception):
    """A failed SelfXit call.

    `status` is the `sx_status` code (a `Status` member when known), `message` the library's
    message (`sx_last_error()` of the failing call) or the bindings' own message for errors
    detected on the Python side (closed engine, bad array shape …).
    """

    def __init__(self, status: int, message: str = ""):
        self.status: Union[Status, int]
        try:
            self.status = Status(status)
        except ValueError:
            self.status = int(status)
        self.message = message
        super().__init__(status, message)

    def __str__(self) -> str:
        name = self.status.name if isinstance(self.status, Status) else str(int(self.status))
        return f"[{name}] {self.message}" if self.message else f"[{name}] {_lib.status_string(self.status)}"


def _check(rc: int, context: str = "") -> None:
    if rc != Status.OK:
        message = _lib.last_error() or _lib.status_string(rc)
        raise Error(rc, f"{context}: {message}" if context and not message.startswith(context) else message)


def _uint(name: str, value: Any, bits: int) -> int:
    v = int(value)
    if v < 0 or v >= 1 << bits:
        raise Error(Status.INVALID_ARGUMENT, f"{name} must be in [0, 2^{bits}), got {value!r}")
    return v


# ---- callback plumbing ----------------------------------------------------------------------
#
# One trampoline (a module-level RESULT_FN instance, so never garbage-collected) serves every
# request. `user_data` is an integer key into `_requests`; the request holds the Python
# handler, the input array and the first exception a handler raised. A result whose key is no
# longer registered is ignored, so a late or stray callback can never reach freed Python state.

_requests: dict[int, "_Request"] = {}
_requests_lock = threading.Lock()
_keys = itertools.count(1)
_tls = threading.local()  # .engines: tokens of the engines whose callback this thread is in


class _Request:
    __slots__ = ("key", "engine_token", "handler", "input", "error", "ticket", "user_callback", "delivered")

    def __init__(
        self,
        engine_token: int,
        handler: Callable[[_lib.sx_result], None],
        input_array: FloatArray,
        user_callback: Optional[ResultCallback],
    ):
        self.key = next(_keys)
        self.engine_token = engine_token
        self.handler = handler
        self.input = input_array  # kept alive for the request's lifetime
        self.user_callback = user_callback
        self.error: Optional[BaseException] = None
        self.ticket = 0
        self.delivered = 0  # results received (including ones dropped after an error)

    def finish(self) -> None:
        """Re-raises the handler's exception, or reports results the library never delivered."""
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        n = self.input.shape[0]
        if self.delivered != n:
            what = f"ticket {self.ticket}" if self.ticket else "the request"
            raise Error(
                Status.INTERNAL,
                f"{what} finished with {self.delivered} of {n} results and no error reported by the library",
            )


def _register(req: _Request) -> None:
    with _requests_lock:
        _requests[req.key] = req


def _unregister(req: _Request) -> None:
    with _requests_lock:
        _requests.pop(req.key, None)


def _in_callback_of(token: int) -> bool:
    return token in getattr(_tls, "engines", ())


def _deliver(result_p: Any, user_data: Optional[int]) -> None:  # runs on a library thread; must never raise into C
    req = _requests.get(user_data or 0)
    if req is None:
        return
    # Warnings and all-exits predictions come before a sample's final answer: count finals only.
    if not (result_p.contents.flags & _lib.SX_RESULT_NOT_FINAL):
        req.delivered += 1
    if req.error is not None:
        return  # unknown request, or its handler already failed: drop the rest
    stack = getattr(_tls, "engines", None)
    if stack is None:
        stack = _tls.engines = []
    stack.append(req.engine_token)
    try:
        req.handler(result_p.contents)
    except BaseException as e:  # noqa: BLE001 — stored, re-raised by submit()/wait()
        req.error = e
    finally:
        stack.pop()


_trampoline = RESULT_FN(_deliver)


def _result_dict(r: _lib.sx_result) -> dict[str, Any]:
    n = int(r.num_classes)
    if r.probabilities and n:
        probs = np.ctypeslib.as_array(r.probabilities, shape=(n,)).copy()
    else:
        probs = np.empty(0, dtype=np.float32)
    return {
        "sample_index": int(r.sample_index),
        "exit_index": int(r.exit_index),
        "class_index": int(r.class_index),
        "confidence": float(r.confidence),
        "probabilities": probs,
        "flops": int(r.flops),
        "latency_seconds": float(r.latency_seconds),
        "ticket": int(r.ticket),
        "non_finite": bool(r.flags & _lib.SX_RESULT_NON_FINITE),
        # "answer" (the one final result), "warning" (an exit saw a watched class; the full
        # model's "confirmation" follows), "confirmation", "exit_prediction" (all-exits mode).
        "kind": (
            "warning" if r.flags & _lib.SX_RESULT_WARNING
            else "confirmation" if r.flags & _lib.SX_RESULT_CONFIRMATION
            else "exit_prediction" if r.flags & _lib.SX_RESULT_EXIT_PREDICTION
            else "answer"
        ),
    }


def _watched_buffers(watched: Any) -> Optional[tuple[Any, Any, Any, Any]]:
    """ctypes arrays (classes, miss budgets, warn thresholds, warning budgets) for Engine(watched=...)."""
    if watched is None:
        return None
    entries = [watched] if isinstance(watched, (int, np.integer, dict)) else list(watched)
    classes, budgets, thresholds, warning = [], [], [], []
    for entry in entries:
        if isinstance(entry, dict):
            c, b, t = entry.get("class"), entry.get("miss_budget", 0.005), entry.get("warn_threshold", 0.0)
            wb = entry.get("warning_budget", 0.0)
        elif isinstance(entry, (tuple, list)):
            e = list(entry)
            c = e[0] if e else None
            b = e[1] if len(e) > 1 else 0.005
            t = e[2] if len(e) > 2 else 0.0
            wb = e[3] if len(e) > 3 else 0.0
        else:
            c, b, t, wb = entry, 0.005, 0.0, 0.0
        if c is None or isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise Error(Status.INVALID_ARGUMENT, f"watched class must be an integer index, got {c!r}")
        classes.append(int(c))
        budgets.append(float(b))
        thresholds.append(0.0 if t is None else float(t))
        warning.append(0.0 if wb is None else float(wb))
    if not classes:
        return None
    n = len(classes)
    return ((ctypes.c_int32 * n)(*classes), (ctypes.c_double * n)(*budgets), (ctypes.c_float * n)(*thresholds),
            (ctypes.c_double * n)(*warning))


# ---- engine ---------------------------------------------------------------------------------

_live_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_tokens = itertools.count(1)
_WAIT_SLICE_MS = 200


@atexit.register
def _close_all() -> None:
    # Pending asynchronous work must not call into a finalising interpreter.
    for engine in list(_live_engines):
        try:
            engine.close()
        except Exception:  # noqa: BLE001
            pass


class Engine:
    """An ONNX classifier loaded into libselfxit, with unsupervised early exits.

    `path_or_bytes` is a file path (str / os.PathLike) or the model's bytes (bytes,
    bytearray, memoryview). The keyword arguments are `sx_engine_options`' fields; `threads=0`
    means all cores, `input_shape` (batch excluded) is only needed for models with symbolic
    dimensions. `non_finite_inputs="refuse"` (default) makes a NaN/inf in an input an
    Error(INVALID_ARGUMENT) naming the sample and element; `"propagate"` runs such samples
    (NaN propagates as in ONNX Runtime) and marks their results `non_finite` (class -1).

    Thread-safe like the library. `close()` waits for calls in progress on other threads and
    for outstanding asynchronous work; it must not be called from one of this engine's
    callbacks (Error BUSY).
    """

    def __init__(
        self,
        path_or_bytes: Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes, bytearray, memoryview],
        threads: int = 0,
        max_batch: int = 1024,
        collection_budget_bytes: int = 64 << 20,
        seed: int = 0,
        input_shape: Optional[Sequence[int]] = None,
        max_pending: int = 64,
        non_finite_inputs: str = "refuse",
        teacher: Optional[str] = None,
        watched: Union[None, int, Sequence[Any]] = None,
    ):
        self._handle: Optional[int] = None
        self._token = next(_tokens)
        self._cond = threading.Condition()
        self._active = 0
        self._closing = False
        self._pending: dict[int, _Request] = {}  # ticket -> request, until wait() or close()
        self._async_progress: Any = None  # the background build's progress function (issue 16)
        self._event_callback: Any = None  # the serving event function, called by the engine later

        opts = _lib.sx_engine_options()
        lib.sx_engine_options_init(ctypes.byref(opts))
        opts.threads = _uint("threads", threads, 32)
        opts.max_batch = _uint("max_batch", max_batch, 32)
        opts.collection_budget_bytes = _uint("collection_budget_bytes", collection_budget_bytes, 64)
        opts.seed = _uint("seed", seed, 64)
        opts.max_pending = _uint("max_pending", max_pending, 32)
        modes = {"refuse": 0, "propagate": 1}
        if non_finite_inputs not in modes:
            raise Error(
                Status.INVALID_ARGUMENT,
                f"non_finite_inputs must be 'refuse' or 'propagate', got {non_finite_inputs!r}",
            )
        opts.non_finite_inputs = modes[non_finite_inputs]
        # Teacher and watched classes (issue 12; see sx_engine_options.teacher): `teacher` is a
        # spec string ("classifier", "detector[:key=value,...]", "host:<classes>"); `watched`
        # a class index, or a list of indices, (index, miss_budget) or (index, miss_budget,
        # warn_threshold) or (index, miss_budget, warn_threshold, warning_budget) entries, or
        # {"class": i, "miss_budget": b, "warn_threshold": t, "warning_budget": w} dicts
        # (warn_threshold / warning_budget None or 0: chosen at build time / the tolerance).
        teacher_buf = None if teacher is None else os.fsencode(str(teacher))
        opts.teacher = teacher_buf
        watched_bufs = _watched_buffers(watched)
        if watched_bufs is not None:
            classes_buf, budgets_buf, thresholds_buf, warning_buf = watched_bufs
            opts.watched_classes = ctypes.cast(classes_buf, ctypes.POINTER(ctypes.c_int32))
            opts.miss_budgets = ctypes.cast(budgets_buf, ctypes.POINTER(ctypes.c_double))
            opts.warn_thresholds = ctypes.cast(thresholds_buf, ctypes.POINTER(ctypes.c_float))
            opts.warning_budgets = ctypes.cast(warning_buf, ctypes.POINTER(ctypes.c_double))
            opts.num_watched = len(watched_bufs[0])
        shape_buf = None
        if input_shape is not None:
            dims = [int(d) for d in input_shape]
            shape_buf = (ctypes.c_int64 * max(len(dims), 1))(*dims)
            opts.input_shape = ctypes.cast(shape_buf, ctypes.POINTER(ctypes.c_int64))
            opts.input_rank = len(dims)

        handle = ctypes.c_void_p()
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            rc = lib.sx_engine_create_from_memory(data, len(data), ctypes.byref(opts), ctypes.byref(handle))
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            rc = lib.sx_engine_create(os.fsencode(path_or_bytes), ctypes.byref(opts), ctypes.byref(handle))
        else:
            raise Error(
                Status.INVALID_ARGUMENT,
                f"Engine() takes a path or the model's bytes, not {type(path_or_bytes).__name__}",
            )
        del teacher_buf, watched_bufs  # borrowed by sx_engine_create only
        _check(rc)
        if not handle.value:
            raise Error(Status.INTERNAL, "sx_engine_create returned SX_OK without an engine")
        self._handle = handle.value
        self._max_batch = opts.max_batch or 1024
        _live_engines.add(self)

        info = self.info
        self._input_shape: tuple[int, ...] = info["input_shape"]
        self._input_size: int = info["input_size"]
        self._num_classes: int = info["num_classes"]

    # -- lifetime ------------------------------------------------------------------------

    def _enter(self) -> int:
        with self._cond:
            if self._closing or self._handle is None:
                raise Error(Status.WRONG_STATE, "the engine is closed")
            self._active += 1
            return self._handle

    def _leave(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def close(self) -> None:
        """Waits for calls in progress and asynchronous work, then frees the engine.

        Idempotent. From inside one of this engine's callbacks: Error BUSY (nothing freed).
        Requests never waited for are released; their callback exceptions are discarded.
        """
        if _in_callback_of(self._token):
            raise Error(Status.BUSY, "close() called from one of this engine's callbacks")
        with self._cond:
            if self._handle is None or self._closing:
                # Closed, or another thread is closing it: wait for that to finish.
                while self._handle is not None:
                    self._cond.wait()
                return
            self._closing = True
            while self._active:
                self._cond.wait()
            handle = self._handle
        try:
            rc = lib.sx_engine_destroy(handle)
            _check(rc, "sx_engine_destroy")
        except BaseException:
            with self._cond:
                self._closing = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._handle = None
            self._closing = False
            pending, self._pending = self._pending, {}
            self._cond.notify_all()
        for req in pending.values():
            _unregister(req)
        _live_engines.discard(self)

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is None:
            return
        if _in_callback_of(self._token):
            # Last reference dropped inside one of our own callbacks: sx_engine_destroy would be
            # refused there, so free the engine from another thread once the callback returns.
            handle, self._handle = self._handle, None
            threading.Thread(target=lib.sx_engine_destroy, args=(handle,), daemon=True).start()
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 — nothing sensible to do in a finaliser
            pass

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._handle is None

    # -- properties ----------------------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        """`sx_engine_info` as a dict (fresh on every access)."""
        info = _lib.sx_info()
        info.struct_size = ctypes.sizeof(info)
        h = self._enter()
        try:
            _check(lib.sx_engine_info(h, ctypes.byref(info)))
        finally:
            self._leave()
        rank = int(info.input_rank)
        return {
            "input_shape": tuple(int(info.input_shape[i]) for i in range(min(rank, _lib.SX_MAX_RANK))),
            "input_size": int(info.input_size),
            "num_classes": int(info.num_classes),
            "backbone_flops": int(info.backbone_flops),
            "num_candidates": int(info.num_candidates),
            "num_trained_exits": int(info.num_trained_exits),
            "num_active_exits": int(info.num_active_exits),
            "exits_enabled": bool(info.exits_enabled),
            "collected_samples": int(info.collected_samples),
            "input_has_batch_axis": bool(info.input_has_batch_axis),
            "has_runtime_shapes": bool(info.has_runtime_shapes),
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape (batch excluded)."""
        return self._input_shape

    @property
    def num_classes(self) -> int:
        return self._num_classes

    # -- inference -----------------------------------------------------------------------

    def _as_batch(self, x: npt.ArrayLike) -> FloatArray:
        """float32 C-contiguous (N, *input_shape); a single sample (*input_shape) becomes N=1."""
        a = np.asarray(x)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise Error(Status.INVALID_ARGUMENT, f"input must be numeric, got dtype {a.dtype}")
        shape = self._input_shape
        if a.ndim == len(shape) and a.shape == shape:
            a = a.reshape((1,) + shape)
        elif a.ndim != len(shape) + 1 or a.shape[1:] != shape:
            raise Error(
                Status.SHAPE_MISMATCH,
                f"input shape {a.shape} is neither (N, {', '.join(map(str, shape))}) nor {shape}",
            )
        return np.ascontiguousarray(a, dtype=np.float32)

    def _run(
        self,
        batch: FloatArray,
        handler: Callable[[_lib.sx_result], None],
        user_callback: Optional[ResultCallback] = None,
    ) -> None:
        """Blocking sx_submit of `batch` (already validated) with `handler(sx_result)`."""
        req = _Request(self._token, handler, batch, user_callback)
        _register(req)
        try:
            h = self._enter()
            try:
                rc = lib.sx_submit(
                    h, batch.ctypes.data, batch.size, batch.shape[0], _trampoline, req.key
                )
            finally:
                self._leave()
            _check(rc)
        finally:
            _unregister(req)
        req.finish()

    @overload
    def infer(self, x: npt.ArrayLike, *, return_probabilities: Literal[False] = False) -> InferResult: ...

    @overload
    def infer(self, x: npt.ArrayLike, *, return_probabilities: Literal[True]) -> InferResultWithProbabilities: ...

    @overload
    def infer(
        self, x: npt.ArrayLike, *, return_probabilities: bool
    ) -> Union[InferResult, InferResultWithProbabilities]: ...

    def infer(
        self, x: npt.ArrayLike, *, return_probabilities: bool = False
    ) -> Union[InferResult, InferResultWithProbabilities]:
        """Classifies a batch (N, *input_shape) or one sample (*input_shape).

        Returns (labels int64[N], confidences float32[N], exit_indices int64[N]); an exit index
        of -1 means the backbone's own classifier answered; a label of -1 (confidence 0) marks
        a non-finite sample (only with non_finite_inputs="propagate", or overflowing inputs).
        With `return_probabilities=True` a fourth array follows: float32[N, num_classes], each
        row the calibrated class probabilities of the classifier that answered the sample (an
        exit head's or the full model's; NaN where the model computed NaN). Batches larger
        than `max_batch` are split into several sx_submit calls.
        """
        batch = self._as_batch(x)
        n = batch.shape[0]
        classes = self._num_classes
        labels = np.full(n, -1, dtype=np.int64)
        confidences = np.zeros(n, dtype=np.float32)
        exits = np.full(n, -1, dtype=np.int64)
        probabilities = np.full((n, classes), np.nan, dtype=np.float32) if return_probabilities else None
        step = max(1, self._max_batch)
        for start in range(0, max(n, 1), step):
            chunk = batch[start:start + step]

            def handler(r: _lib.sx_result, start: int = start) -> None:
                if r.flags & _lib.SX_RESULT_NOT_FINAL:
                    return  # a warning or an all-exits prediction; the final answer follows
                i = start + int(r.sample_index)
                labels[i] = r.class_index
                confidences[i] = r.confidence
                exits[i] = r.exit_index
                if probabilities is not None and r.probabilities:
                    k = min(int(r.num_classes), classes)
                    probabilities[i, :k] = np.ctypeslib.as_array(r.probabilities, shape=(k,))

            self._run(chunk, handler)
        if probabilities is not None:
            return labels, confidences, exits, probabilities
        return labels, confidences, exits

    def submit(self, x: npt.ArrayLike, callback: ResultCallback) -> None:
        """Runs a batch and blocks; `callback(result)` runs on this thread once per sample, in
        resolution order (early exits first). `result` keys: sample_index, exit_index,
        class_index, confidence, probabilities (numpy copy), flops, latency_seconds, ticket,
        non_finite (NaN/inf input or output: class_index -1, confidence 0).

        An exception raised by `callback` stops delivery of the batch's remaining results and is
        re-raised here once the library call returns.
        """
        batch = self._as_batch(x)
        self._run(batch, lambda r: callback(_result_dict(r)), callback)

    def submit_async(self, x: npt.ArrayLike, callback: ResultCallback) -> int:
        """Queues a batch and returns its ticket (> 0) at once. `callback(result)` runs later on
        the engine's worker thread, once per sample, requests in submission order.

        The callback and input stay referenced until `wait(ticket)` succeeds or the engine is
        closed. An exception raised by `callback` stops delivery of that request's remaining
        results and is re-raised by `wait(ticket)`. Error BUSY when `max_pending` requests are
        already queued.
        """
        batch = self._as_batch(x)
        req = _Request(self._token, lambda r: callback(_result_dict(r)), batch, callback)
        ticket = ctypes.c_uint64(0)
        _register(req)
        try:
            h = self._enter()
            try:
                rc = lib.sx_submit_async(
                    h, batch.ctypes.data, batch.size, batch.shape[0], _trampoline, req.key,
                    ctypes.byref(ticket),
                )
                _check(rc)
                req.ticket = int(ticket.value)
                with self._cond:
                    self._pending[req.ticket] = req
            finally:
                self._leave()
        except BaseException:
            _unregister(req)
            raise
        return req.ticket

    def wait(self, ticket: int, timeout_ms: int = -1) -> bool:
        """Waits for request `ticket` (all its callbacks returned). `timeout_ms` < 0 waits
        forever, 0 polls. Returns False on timeout (the work goes on), True when finished; then
        releases the request and re-raises the first exception its callback raised, if any.
        Waiting again for a finished ticket returns True."""
        ticket = _uint("ticket", ticket, 64)
        timeout_ms = int(timeout_ms)
        # Waited in slices so that signals (Ctrl-C) are handled while waiting: a ctypes call
        # cannot be interrupted, Python runs its signal handlers between the slices.
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        h = self._enter()
        try:
            while True:
                if deadline is None:
                    step = _WAIT_SLICE_MS
                else:
                    step = max(0, min(_WAIT_SLICE_MS, math.ceil((deadline - time.monotonic()) * 1000.0)))
                rc = lib.sx_wait(h, ticket, step)
                if rc != Status.TIMEOUT or (deadline is not None and time.monotonic() >= deadline):
                    break
        finally:
            self._leave()
        if rc == Status.TIMEOUT:
            return False
        _check(rc)
        with self._cond:
            req = self._pending.pop(int(ticket), None)
        if req is not None:
            _unregister(req)
            req.finish()
        return True

    @property
    def pending_tickets(self) -> list[int]:
        """Tickets submitted with submit_async and not yet released by wait()."""
        with self._cond:
            return sorted(self._pending)

    # -- exits ---------------------------------------------------------------------------

    def update_exits(
        self,
        tolerance: float = 0.01,
        search_budget: int = 4,
        seed: int = 0,
        memory_budget_bytes: int = 2 << 30,
        train_fraction: float = 0.5,
        validation_fraction: float = 0.2,
        min_samples: int = 200,
        epochs: int = 30,
        progress: Union[None, bool, ProgressCallback] = None,
        keep_order: bool = False,
        threshold_rule: str = "point",
        guarantee_delta: float = 0.05,
        cost_model: str = "flops",
        threads: int = 0,
    ) -> dict[str, Any]:
        """Builds exits from the collected samples and puts them in service (blocks).

        `threshold_rule`: "point" (the paper's Eq. 3) or "guaranteed" (a (1 − guarantee_delta)
        Clopper–Pearson bound of each exit's HR·(1−CA) within T/2^n; the report's
        `guaranteed_disagreement` states the bound). `cost_model`: "flops" or "measured" (time
        per sample of each segment and head measured during the build). `threads`: kernel
        threads of the build (0: all the engine's).

        `progress`: a callable `progress(fraction, stage)` called (on a helper thread running
        the build, never concurrently) at every stage
        of the build and about ten times a second within one (`fraction` in [0, 1], never
        decreasing, 1.0 last with stage "done"; stages "prepare", "activations", "search",
        "train", "select", "done"); returning True cancels the build, which then raises
        Error(CANCELLED) within a fraction of a second, the previous exits staying in service.
        An exception raised by the callable (Ctrl-C included) cancels the build too and is
        re-raised here. `progress=True` shows a tqdm bar (plain lines on stderr without tqdm).
        Ctrl-C cancels a build in every case (the KeyboardInterrupt is re-raised once the build
        has stopped, within a fraction of a second).

        Returns the build report: the `last_build` object of `stats()` (the whole stats JSON if
        the library reports no such key)."""
        opts = _lib.sx_update_options()
        lib.sx_update_options_init(ctypes.byref(opts))
        opts.tolerance = float(tolerance)
        opts.search_budget = _uint("search_budget", search_budget, 32)
        opts.seed = _uint("seed", seed, 64)
        opts.memory_budget_bytes = _uint("memory_budget_bytes", memory_budget_bytes, 64)
        opts.train_fraction = float(train_fraction)
        opts.validation_fraction = float(validation_fraction)
        opts.min_samples = _uint("min_samples", min_samples, 32)
        opts.epochs = _uint("epochs", epochs, 32)
        opts.keep_order = 1 if keep_order else 0  # split in recording order (video: no shuffling)
        _set_build_choices(opts, threshold_rule, guarantee_delta, cost_model, threads)
        if progress is True:
            reporter: _ProgressReporter = _ProgressBar()
        elif progress is None or progress is False:
            reporter = _ProgressReporter(None)
        elif callable(progress):
            reporter = _ProgressReporter(progress)
        else:
            raise Error(Status.INVALID_ARGUMENT, f"progress must be a callable, True or None, not {type(progress).__name__}")
        # The build runs on a helper thread while this one waits in slices: a Ctrl-C (or any
        # exception a signal handler raises) arrives here, in plain Python code, and becomes a
        # cancel that the progress callback hands to the library at its next call (≤ 0.1 s).
        # Raised inside a ctypes callback instead, it could be lost (ctypes only prints it).
        reporter.engine_token = self._token
        callback = _lib.PROGRESS_FN(reporter.call)
        opts.progress = callback
        outcome: dict[str, Any] = {}
        finished = threading.Event()
        h = self._enter()
        try:

            def build() -> None:
                try:
                    outcome["rc"] = rc = lib.sx_update_exits(h, ctypes.byref(opts))
                    if rc != Status.OK:  # sx_last_error() is per thread: read it on this one
                        outcome["message"] = _lib.last_error() or _lib.status_string(rc)
                except BaseException as e:  # noqa: BLE001 — re-raised below
                    outcome["error"] = e
                finally:
                    finished.set()

            worker = threading.Thread(target=build, name="selfxit-update-exits", daemon=True)
            worker.start()
            interrupted: Optional[BaseException] = None
            while not finished.is_set():
                try:
                    finished.wait(_WAIT_SLICE_MS / 1000.0)
                except BaseException as e:  # noqa: BLE001 — Ctrl-C: cancel, wait for the build to stop
                    interrupted = interrupted or e
                    reporter.cancel_requested = True
            worker.join()
        finally:
            self._leave()
            reporter.close()
        if interrupted is not None:
            raise interrupted
        if reporter.error is not None:
            err, reporter.error = reporter.error, None
            raise err
        if "error" in outcome:
            raise outcome["error"]
        if outcome["rc"] != Status.OK:
            raise Error(outcome["rc"], outcome["message"])
        stats = self.stats()
        report = stats.get("last_build")
        return report if isinstance(report, dict) else stats

    def submit_labeled(self, x: npt.ArrayLike, labels: npt.ArrayLike, callback: ResultCallback) -> None:
        """`submit` with the host's teacher labels (engine made with teacher="host:<classes>"):
        labels[i] is sample i's class per the host's own detector, or -1 for none. Error
        INVALID_ARGUMENT (nothing runs) for labels of the wrong length or out of range."""
        batch = self._as_batch(x)
        values = np.ascontiguousarray(np.asarray(labels).reshape(-1), dtype=np.int32)
        req = _Request(self._token, lambda r: callback(_result_dict(r)), batch, callback)
        _register(req)
        try:
            h = self._enter()
            try:
                rc = lib.sx_submit_labeled(
                    h, batch.ctypes.data, batch.size, batch.shape[0],
                    values.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), values.size, _trampoline, req.key,
                )
            finally:
                self._leave()
            _check(rc)
        finally:
            _unregister(req)
        req.finish()

    def set_all_exits(self, enabled: bool) -> None:
        """All-exits mode (paper §4.3): every trained exit's prediction is reported
        (kind "exit_prediction"), nothing leaves early, then the full model's answer."""
        h = self._enter()
        try:
            _check(lib.sx_set_all_exits(h, 1 if enabled else 0))
        finally:
            self._leave()

    def update_exits_async(
        self,
        tolerance: float = 0.01,
        search_budget: int = 4,
        seed: int = 0,
        min_samples: int = 200,
        epochs: int = 30,
        progress: Optional[Callable[[float, str, str], Any]] = None,
        threshold_rule: str = "point",
        guarantee_delta: float = 0.05,
        cost_model: str = "flops",
        threads: int = 1,
        keep_order: bool = False,
    ) -> None:
        """`sx_update_exits_async`: starts an exit build on a background thread and returns at
        once; inference goes on (never paused) and the new exits are swapped in atomically when
        it completes. `progress(fraction, stage, message)` runs on the build's thread; a True
        answer cancels. Wait with `wait_exit_build()`, stop with `cancel_exit_build()`, watch
        with `serving_stats()["build_fraction"]`. Raises Error(BUSY) while a background build
        runs (the engine is unchanged)."""
        opts = _lib.sx_update_options()
        lib.sx_update_options_init(ctypes.byref(opts))
        opts.tolerance = float(tolerance)
        opts.search_budget = _uint("search_budget", search_budget, 32)
        opts.seed = _uint("seed", seed, 64)
        opts.min_samples = _uint("min_samples", min_samples, 32)
        opts.epochs = _uint("epochs", epochs, 32)
        _set_build_choices(opts, threshold_rule, guarantee_delta, cost_model, threads)
        opts.keep_order = 1 if keep_order else 0  # split in recording order (video: no shuffling)
        callback = None
        if progress is not None:
            if not callable(progress):
                raise Error(Status.INVALID_ARGUMENT, f"progress must be a callable or None, not {type(progress).__name__}")
            user = progress

            def call(p: Any, user_data: Optional[int]) -> int:  # on the build's thread; never raises into C
                try:
                    r = p.contents
                    stage = r.stage.decode() if r.stage else ""
                    message = r.message.decode(errors="replace") if r.message else ""
                    return 1 if user(float(r.fraction), stage, message) else 0
                except BaseException:  # noqa: BLE001 — an error in the callable cancels the build
                    return 1

            callback = _lib.PROGRESS_FN(call)
            opts.progress = callback
        h = self._enter()
        try:
            _check(lib.sx_update_exits_async(h, ctypes.byref(opts)))
            # The C function pointer must outlive the build: kept until the next build starts.
            self._async_progress = callback
        finally:
            self._leave()

    def cancel_exit_build(self) -> None:
        """`sx_cancel_exit_build`: asks the background build to stop (Error(WRONG_STATE) when
        none runs). The exits in service stay."""
        h = self._enter()
        try:
            _check(lib.sx_cancel_exit_build(h))
        finally:
            self._leave()

    def wait_exit_build(self, timeout: Optional[float] = None) -> dict[str, Any]:
        """`sx_wait_exit_build`: waits for the background build (timeout in seconds, None:
        for ever; Error(TIMEOUT) when it runs on) and returns the build report; raises the
        build's error (Error(CANCELLED) for a cancelled one)."""
        h = self._enter()
        try:
            if timeout is None:
                # In slices, so Ctrl-C reaches Python between them.
                while True:
                    rc = lib.sx_wait_exit_build(h, _WAIT_SLICE_MS)
                    if rc != Status.TIMEOUT:
                        break
            else:
                rc = lib.sx_wait_exit_build(h, int(max(0.0, timeout) * 1000))
            _check(rc, "sx_wait_exit_build")
        finally:
            self._leave()
        stats = self.stats()
        report = stats.get("last_build")
        return report if isinstance(report, dict) else stats

    def configure_serving(
        self,
        audit_rate: float = 0.02,
        seed: int = 0,
        guard: bool = False,
        guard_delta: float = 0.05,
        rebuild_on_guard_trip: bool = False,
        collect_after_trip: int = 0,
        rebuild_after_collected: int = 0,
        guard_window: int = 400,
        guard_prior_frames: int = 0,
        restart_collection_on_trip: bool = False,
        rebuild_options: Optional[dict[str, Any]] = None,
        on_event: Optional[Callable[[str, int, str], None]] = None,
    ) -> None:
        """`sx_configure_serving`: audited serving (a seeded `audit_rate` share of exit answers
        also runs the full model; the collection stays a uniform sample of the traffic), the live
        guard (an exit whose (1 − guard_delta) bound of live disagreement exceeds its share of T
        goes out of service; judged on a window of at least `guard_window` outcomes that starts
        with the build's validation outcomes, displaced by live audits; `guard_prior_frames` > 0
        caps the validation part) and the rebuild policy
        (`rebuild_on_guard_trip` once `collect_after_trip` frames were collected after the trip;
        `rebuild_after_collected`; `restart_collection_on_trip`). `rebuild_options`: keyword arguments of
        `update_exits_async` (tolerance, search_budget, seed, min_samples, epochs,
        threshold_rule, guarantee_delta, cost_model, threads) for the policy's rebuilds.
        `on_event(kind, exit_index, message)`: guard trips and rebuilds ("guard_tripped",
        "rebuild_started", "rebuild_succeeded", "rebuild_cancelled", "rebuild_failed"), on the
        thread where they happen. Error(INVALID_ARGUMENT) for an audit rate outside [0, 1] or a
        delta outside (0, 1); the engine keeps its settings then."""
        opts = _lib.sx_serving_options()
        lib.sx_serving_options_init(ctypes.byref(opts))
        opts.audit_rate = float(audit_rate)
        opts.seed = _uint("seed", seed, 64)
        opts.guard_enabled = 1 if guard else 0
        opts.guard_delta = float(guard_delta)
        opts.rebuild_on_guard_trip = 1 if rebuild_on_guard_trip else 0
        opts.collect_after_trip = _uint("collect_after_trip", collect_after_trip, 64)
        opts.guard_window = _uint("guard_window", guard_window, 32)
        opts.guard_prior_frames = _uint("guard_prior_frames", guard_prior_frames, 32)
        opts.rebuild_after_collected = _uint("rebuild_after_collected", rebuild_after_collected, 64)
        opts.restart_collection_on_trip = 1 if restart_collection_on_trip else 0
        rebuild = _lib.sx_update_options()
        lib.sx_update_options_init(ctypes.byref(rebuild))
        r = dict(rebuild_options or {})
        rebuild.tolerance = float(r.pop("tolerance", rebuild.tolerance))
        rebuild.search_budget = _uint("search_budget", r.pop("search_budget", rebuild.search_budget), 32)
        rebuild.seed = _uint("seed", r.pop("seed", rebuild.seed), 64)
        rebuild.min_samples = _uint("min_samples", r.pop("min_samples", rebuild.min_samples), 32)
        rebuild.epochs = _uint("epochs", r.pop("epochs", rebuild.epochs), 32)
        _set_build_choices(rebuild, r.pop("threshold_rule", "point"), r.pop("guarantee_delta", 0.05),
                           r.pop("cost_model", "flops"), r.pop("threads", 1))
        if r:
            raise Error(Status.INVALID_ARGUMENT, f"unknown rebuild_options: {', '.join(sorted(r))}")
        opts.rebuild_options = ctypes.pointer(rebuild)
        callback = None
        if on_event is not None:
            if not callable(on_event):
                raise Error(Status.INVALID_ARGUMENT, f"on_event must be a callable or None, not {type(on_event).__name__}")
            handler = on_event

            def call(e: Any, user_data: Optional[int]) -> None:  # never raises into C
                try:
                    ev = e.contents
                    handler(ev.kind.decode() if ev.kind else "", int(ev.exit_index),
                            ev.message.decode(errors="replace") if ev.message else "")
                except BaseException:  # noqa: BLE001 — an event handler's error must not reach the engine
                    pass

            callback = _lib.EVENT_FN(call)
            opts.on_event = callback
        h = self._enter()
        try:
            _check(lib.sx_configure_serving(h, ctypes.byref(opts)))
            self._event_callback = callback  # outlives the call: the engine calls it later
        finally:
            self._leave()

    def serving_stats(self) -> dict[str, Any]:
        """`sx_get_serving_stats_json`, parsed: audits, per-exit live agreement and guard state,
        background builds."""
        return self._read_json(lib.sx_get_serving_stats_json, "sx_get_serving_stats_json")

    def set_exits_enabled(self, enabled: bool) -> None:
        h = self._enter()
        try:
            _check(lib.sx_set_exits_enabled(h, 1 if enabled else 0))
        finally:
            self._leave()

    def save_exits(self, path: PathLike) -> None:
        h = self._enter()
        try:
            _check(lib.sx_save_exits(h, os.fsencode(path)))
        finally:
            self._leave()

    def load_exits(self, path: PathLike) -> None:
        h = self._enter()
        try:
            _check(lib.sx_load_exits(h, os.fsencode(path)))
        finally:
            self._leave()

    # -- graph outputs -------------------------------------------------------------------

    def outputs(self) -> list[tuple[str, tuple[int, ...]]]:
        """The model's graph outputs in order: (name, per-sample shape). Output 0 is the one
        `infer` classifies with."""
        h = self._enter()
        try:
            count = ctypes.c_size_t(0)
            _check(lib.sx_output_count(h, ctypes.byref(count)), "sx_output_count")
            result = []
            for i in range(count.value):
                info = _lib.sx_output_info()
                info.struct_size = ctypes.sizeof(info)
                _check(lib.sx_output_describe(h, i, ctypes.byref(info)), "sx_output_describe")
                rank = min(int(info.rank), _lib.SX_MAX_RANK)
                result.append(((info.name or b"").decode("utf-8", "replace"), tuple(int(info.shape[d]) for d in range(rank))))
            return result
        finally:
            self._leave()

    def infer_outputs(self, x: npt.ArrayLike) -> dict[str, FloatArray]:
        """Runs the full model (no early exits, nothing recorded) on a batch (N, *input_shape)
        or one sample and returns every graph output by name, each float32 (N, *shape) — a
        detector's boxes, scores and labels, or a classifier's raw logits (`sx_infer_outputs`).
        Batches larger than `max_batch` are split into several calls. A model whose outputs
        have shapes known only at run time (`info["has_runtime_shapes"]`, a detector) takes one
        input and returns its outputs with their run-time shapes (`infer_outputs_shaped`)."""
        if self.info["has_runtime_shapes"]:
            return self.infer_outputs_shaped(x)
        batch = self._as_batch(x)
        n = batch.shape[0]
        described = self.outputs()
        arrays = [np.empty((n, *shape), dtype=np.float32) for _, shape in described]
        step = max(1, self._max_batch)
        for start in range(0, n, step):
            chunk = np.ascontiguousarray(batch[start:start + step], dtype=np.float32)
            rows = chunk.shape[0]
            parts = [np.empty((rows, *shape), dtype=np.float32) for _, shape in described]
            pointers = (ctypes.c_void_p * len(parts))(*[p.ctypes.data for p in parts])
            capacities = (ctypes.c_size_t * len(parts))(*[p.size for p in parts])
            h = self._enter()
            try:
                _check(lib.sx_infer_outputs(h, chunk.ctypes.data, chunk.size, rows, len(parts), pointers, capacities),
                       "sx_infer_outputs")
            finally:
                self._leave()
            for array, part in zip(arrays, parts):
                array[start:start + rows] = part
        return {name: array for (name, _), array in zip(described, arrays)}

    def infer_outputs_shaped(self, x: npt.ArrayLike) -> dict[str, FloatArray]:
        """ONE input (`input_shape`, or a batch of one) through the full model; every output by
        name with the shape computed for this input (`sx_infer_outputs_shaped`): a detector's
        boxes [n, 4], scores [n] and labels [n] (as float32)."""
        chunk = np.ascontiguousarray(self._as_batch(x), dtype=np.float32)
        if chunk.shape[0] != 1:
            raise ValueError(f"infer_outputs_shaped takes one input, got a batch of {chunk.shape[0]}")
        names = [name for name, _ in self.outputs()]
        n = len(names)
        capacity = 1 << 16
        for _ in range(3):
            parts = [np.empty(capacity, dtype=np.float32) for _ in names]
            pointers = (ctypes.c_void_p * n)(*[p.ctypes.data for p in parts])
            capacities = (ctypes.c_size_t * n)(*[p.size for p in parts])
            ranks = (ctypes.c_size_t * n)()
            shapes = (ctypes.c_int64 * (n * _lib.SX_MAX_RANK))()
            h = self._enter()
            try:
                rc = lib.sx_infer_outputs_shaped(h, chunk.ctypes.data, chunk.size, n, pointers, capacities, ranks, shapes)
            finally:
                self._leave()
            dims = [tuple(int(shapes[i * _lib.SX_MAX_RANK + a]) for a in range(int(ranks[i]))) for i in range(n)]
            sizes = [int(np.prod(d)) if d else 1 for d in dims]
            if rc == Status.INVALID_ARGUMENT and any(r > 0 for r in ranks) and max(sizes) > capacity:
                capacity = max(sizes)  # too small for this input: again with the sizes it reported
                continue
            _check(rc, "sx_infer_outputs_shaped")
            return {name: part[:size].reshape(shape) for name, part, size, shape in zip(names, parts, sizes, dims)}
        raise RuntimeError("sx_infer_outputs_shaped: outputs kept growing")

    # -- statistics ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """`sx_get_stats_json`, parsed: inference statistics plus the last exit build's report."""
        return self._read_json(lib.sx_get_stats_json, "sx_get_stats_json")

    def _read_json(self, get_json: Any, name: str) -> dict[str, Any]:
        """One of the `sx_get_*_json` calls, parsed: sized by its *needed and retried while the
        text grows between the query and the fill."""
        h = self._enter()
        try:
            needed = ctypes.c_size_t(0)
            rc = get_json(h, None, 0, ctypes.byref(needed))
            if rc not in (Status.OK, Status.INVALID_ARGUMENT) or needed.value == 0:
                _check(rc if rc != Status.OK else Status.INTERNAL, name)
            for _ in range(8):
                capacity = needed.value + 256
                buf = ctypes.create_string_buffer(capacity)
                rc = get_json(h, buf, capacity, ctypes.byref(needed))
                if rc == Status.OK:
                    parsed: dict[str, Any] = _nonfinite_to_float(json.loads(buf.value.decode()))
                    return parsed
                if rc != Status.INVALID_ARGUMENT or needed.value <= capacity:
                    _check(rc, name)
            raise Error(Status.INTERNAL, f"{name}: the needed size kept growing")
        finally:
            self._leave()

    def stats_struct(self) -> dict[str, Any]:
        """`sx_get_stats` (the fixed-size struct) as a dict."""
        s = _lib.sx_stats()
        s.struct_size = ctypes.sizeof(s)
        h = self._enter()
        try:
            _check(lib.sx_get_stats(h, ctypes.byref(s)))
        finally:
            self._leave()
        n = min(int(s.num_exits), _lib.SX_MAX_EXITS)
        return {
            "samples": int(s.samples),
            "num_exits": int(s.num_exits),
            "exit_samples": [int(s.exit_samples[i]) for i in range(n)],
            "backbone_samples": int(s.backbone_samples),
            "mean_flops": float(s.mean_flops),
            "backbone_flops": float(s.backbone_flops),
            "latency_p50": float(s.latency_p50),
            "latency_p95": float(s.latency_p95),
            "latency_p99": float(s.latency_p99),
        }

    def reset_stats(self) -> None:
        h = self._enter()
        try:
            _check(lib.sx_reset_stats(h))
        finally:
            self._leave()

    # -- images --------------------------------------------------------------------------

    def decode_image(
        self,
        data: bytes,
        scale: float = 1.0 / 255.0,
        mean: Sequence[float] | float = (0.0, 0.0, 0.0),
        std: Sequence[float] | float = (1.0, 1.0, 1.0),
        max_pixels: int | None = None,
    ) -> np.ndarray:
        """Decodes a PNG or JPEG into one input sample (float32, `input_shape`): converted to the
        model's channels, resized to its height and width, (p·scale − mean[c]) / std[c]. A single
        mean/std value applies to every channel. An image whose header claims more than
        `max_pixels` pixels (default and ceiling 2**26) is refused before it is decoded."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise Error(Status.INVALID_ARGUMENT, f"decode_image takes bytes, not {type(data).__name__}")
        data = bytes(data)
        pre = _lib.sx_preprocess()
        lib.sx_preprocess_init(ctypes.byref(pre))
        pre.scale = float(scale)
        pre.mean[:] = _three("mean", mean)
        pre.std[:] = _three("std", std)
        if max_pixels is not None:
            if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or not 1 <= max_pixels <= 1 << 26:
                raise Error(Status.INVALID_ARGUMENT, f"max_pixels must be an int in 1…2**26, not {max_pixels!r}")
            pre.max_pixels = max_pixels
        out = np.empty(self._input_shape, dtype=np.float32)
        h = self._enter()
        try:
            rc = lib.sx_decode_image(h, data, len(data), ctypes.byref(pre), out.ctypes.data, out.size)
        finally:
            self._leave()
        _check(rc)
        return out

    def __repr__(self) -> str:
        if self.closed:
            return "<selfxit.Engine closed>"
        return f"<selfxit.Engine input_shape={self._input_shape} num_classes={self._num_classes}>"


class _ProgressReporter:
    """The sx_progress_fn of one update_exits call: calls `progress(fraction, stage)`, turns a
    True answer or an exception into a cancel (non-zero), and keeps the exception to re-raise."""

    def __init__(self, progress: Optional[ProgressCallback]):
        self.progress = progress
        self.error: Optional[BaseException] = None
        self.cancel_requested = False  # set by update_exits on Ctrl-C
        self.engine_token = 0  # set by update_exits: close() from the callback is then BUSY

    def call(self, p: Any, user_data: Optional[int]) -> int:  # runs inside sx_update_exits; never raises into C
        stack = getattr(_tls, "engines", None)
        if stack is None:
            stack = _tls.engines = []
        stack.append(self.engine_token)
        try:
            if self.error is not None or self.cancel_requested:
                return 1
            r = p.contents
            stage = r.stage.decode() if r.stage else ""
            message = r.message.decode(errors="replace") if r.message else ""
            return 1 if self.update(float(r.fraction), stage, message) else 0
        except BaseException as e:  # noqa: BLE001 — re-raised by update_exits()
            self.error = e
            return 1
        finally:
            stack.pop()

    def update(self, fraction: float, stage: str, message: str) -> bool:
        return bool(self.progress(fraction, stage)) if self.progress is not None else False

    def close(self) -> None:
        pass


class _ProgressBar(_ProgressReporter):
    """progress=True: a tqdm bar in per-mille steps, or a line on stderr per stage without tqdm."""

    def __init__(self) -> None:
        super().__init__(None)
        self.done = 0
        self.last_line = ""
        self.bar: Any = None
        try:
            # Optional dependency, imported by name so the type check needs no tqdm stubs.
            tqdm_auto = importlib.import_module("tqdm.auto")
            self.bar = tqdm_auto.tqdm(total=1000, desc="exit build", unit="‰", leave=True)
        except ImportError:
            self.bar = None

    def update(self, fraction: float, stage: str, message: str) -> bool:
        if self.bar is not None:
            step = int(fraction * 1000) - self.done
            if step > 0:
                self.bar.update(step)
                self.done += step
            self.bar.set_postfix_str(message[:60], refresh=False)
        else:
            line = f"exit build {fraction * 100:5.1f}% {stage}: {message}"
            if message != self.last_line:
                self.last_line = message
                sys.stderr.write(line + "\n")
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_TEXT_KEYS = frozenset({"tensor", "architecture", "state", "build_stage", "build_message", "last_build_error",
                        "threshold_rule", "cost_model"})


def _set_build_choices(opts: Any, threshold_rule: str, guarantee_delta: float, cost_model: str, threads: int) -> None:
    rules = {"point": _lib.SX_THRESHOLD_POINT, "guaranteed": _lib.SX_THRESHOLD_GUARANTEED}
    costs = {"flops": _lib.SX_COST_FLOPS, "measured": _lib.SX_COST_MEASURED}
    if threshold_rule not in rules:
        raise Error(Status.INVALID_ARGUMENT, f"threshold_rule must be 'point' or 'guaranteed', not {threshold_rule!r}")
    if cost_model not in costs:
        raise Error(Status.INVALID_ARGUMENT, f"cost_model must be 'flops' or 'measured', not {cost_model!r}")
    opts.threshold_rule = rules[threshold_rule]
    opts.guarantee_delta = float(guarantee_delta)
    opts.cost_model = costs[cost_model]
    opts.threads = _uint("threads", threads, 32)


def _nonfinite_to_float(obj: Any, key: str = "") -> Any:
    """The library writes non-finite numbers as the strings "inf", "-inf", "nan" (e.g. the
    threshold of an exit that is trained but not in service); make them floats again."""
    if isinstance(obj, dict):
        return {k: _nonfinite_to_float(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nonfinite_to_float(v, key) for v in obj]
    if isinstance(obj, str) and key not in _TEXT_KEYS and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def _three(name: str, v: Union[float, Sequence[float]]) -> list[float]:
    vals = [float(x) for x in np.asarray(v, dtype=np.float64).reshape(-1)]
    if len(vals) == 1:
        return vals * 3
    if len(vals) != 3:
        raise Error(Status.INVALID_ARGUMENT, f"{name} takes 1 or 3 values, got {len(vals)}")
    return vals
