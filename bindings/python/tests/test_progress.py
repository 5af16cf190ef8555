"""Exit-build progress and cancel, and infer's probability array (needs libselfxit.so)."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
from test_selfxit import MODEL, THREADS, fmnist  # noqa: F401 — the session fixture

from selfxit import Engine, Error, Status

FAST = dict(tolerance=0.05, search_budget=1, epochs=3, seed=0)


def test_infer_probabilities(fmnist):  # noqa: F811
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS) as e:
        labels, confidences, exits, probs = e.infer(x[:64], return_probabilities=True)
        assert probs.shape == (64, e.num_classes) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        assert (probs.argmax(axis=1) == labels).all()
        np.testing.assert_allclose(probs[np.arange(64), labels], confidences, rtol=1e-6)
        # The old three-array form is unchanged and agrees.
        l3, c3, e3 = e.infer(x[:64])
        assert (l3 == labels).all() and (e3 == exits).all()
        np.testing.assert_array_equal(c3, confidences)
        one = e.infer(x[0], return_probabilities=True)
        assert len(one) == 4 and one[3].shape == (1, e.num_classes)


@pytest.fixture(scope="module")
def built(fmnist):  # noqa: F811
    """An engine with exits built from 400 collected samples, and the progress it reported."""
    _, x, _ = fmnist
    e = Engine(MODEL, threads=THREADS, seed=1)
    e.set_exits_enabled(False)
    e.infer(x[:400])
    seen: list[tuple[float, str]] = []
    report = e.update_exits(progress=lambda f, s: seen.append((f, s)), **FAST)
    yield e, report, seen
    e.close()


def test_progress_callable(built):
    _, _, seen = built
    fractions = [f for f, _ in seen]
    assert len(seen) > 6
    assert all(a <= b for a, b in zip(fractions, fractions[1:])), fractions
    assert fractions[0] == 0.0 and seen[-1] == (1.0, "done")
    assert fractions.count(1.0) == 1
    assert {s for _, s in seen} == {"prepare", "activations", "search", "train", "select", "done"}


def test_cancel_keeps_previous_exits(built):
    e, _, _ = built
    report = e.stats()["last_build"]
    before = e.info
    calls: list[tuple[float, str]] = []
    cancelled_at: list[float] = []

    def cancel_in_training(fraction: float, stage: str) -> bool:
        calls.append((fraction, stage))
        if stage == "train" and not cancelled_at:
            cancelled_at.append(time.monotonic())
            return True
        return False

    with pytest.raises(Error) as info:
        e.update_exits(progress=cancel_in_training, **FAST)
    ended = time.monotonic()
    assert info.value.status == Status.CANCELLED, info.value
    assert "cancelled by the progress handler during train" in str(info.value), info.value
    assert cancelled_at and ended - cancelled_at[0] < 1.5
    assert calls[-1][1] == "train"  # not called again after the cancel
    assert e.info["num_trained_exits"] == before["num_trained_exits"]
    assert e.stats()["last_build"] == report  # the previous build's exits are still in service


def test_exception_in_progress_cancels_and_propagates(built):
    e, _, _ = built
    report = e.stats()["last_build"]

    def boom(fraction: float, stage: str) -> None:
        if stage == "search":
            raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        e.update_exits(progress=boom, **FAST)
    assert e.stats()["last_build"] == report
    # close() from inside the progress callback would wait for the build it runs in: BUSY.
    with pytest.raises(Error) as info:
        e.update_exits(progress=lambda f, s: e.close(), **FAST)
    assert info.value.status == Status.BUSY and not e.closed
    with pytest.raises(Error) as info:
        e.update_exits(progress="yes", **FAST)  # type: ignore[arg-type]
    assert info.value.status == Status.INVALID_ARGUMENT


def test_progress_true_prints_or_draws(built, capsys):
    e, _, _ = built
    e.update_exits(progress=True, **FAST)
    err = capsys.readouterr().err
    assert "exit build" in err and ("done" in err or "100" in err)


def test_ctrl_c_cancels_build(built):
    """SIGINT during a build (here sent by the progress callback itself, so it surely arrives
    while the build runs): KeyboardInterrupt once the build has stopped, exits unchanged."""
    e, _, _ = built
    report = e.stats()["last_build"]
    main = threading.main_thread().ident
    sent: list[float] = []
    calls_after: list[str] = []

    def interrupt(fraction: float, stage: str) -> None:
        if sent:
            calls_after.append(stage)
        elif stage == "search":
            sent.append(time.monotonic())
            signal.pthread_kill(main, signal.SIGINT)

    assert threading.current_thread() is threading.main_thread()
    # A runner started as a background job of a non-interactive shell inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler (the test failed that way when CI
    # ran under `cmd &`): Ctrl-C's own handler for the test's duration, as in a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            e.update_exits(progress=interrupt, **FAST)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sent and time.monotonic() - sent[0] < 1.5
    assert len(calls_after) <= 3, calls_after  # the cancel reaches the library at the next call
    assert e.stats()["last_build"] == report
