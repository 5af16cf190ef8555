"""Issue 16 from Python: background builds (async, progress, cancel, BUSY, swap), audited
serving and the live guard, bad input (needs libselfxit.so)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from test_selfxit import MODEL, THREADS, fmnist  # noqa: F401 — the session fixture

from selfxit import Engine, Error, Status

FAST = dict(tolerance=0.05, search_budget=1, epochs=2, seed=0)


@pytest.fixture(scope="module")
def engine(fmnist):  # noqa: F811
    _, x, _ = fmnist
    e = Engine(MODEL, threads=THREADS, seed=1)
    e.set_exits_enabled(False)
    e.infer(x[:400])
    e.update_exits(**FAST)
    e.set_exits_enabled(True)
    yield e
    e.close()


def test_bad_input_leaves_the_engine_as_it_was(engine):
    before = engine.serving_stats()
    for rate in (-0.1, 1.5, float("nan")):
        with pytest.raises(Error) as err:
            engine.configure_serving(audit_rate=rate)
        assert err.value.status == Status.INVALID_ARGUMENT and "audit rate" in str(err.value)
    for delta in (0.0, 1.0):
        with pytest.raises(Error) as err:
            engine.configure_serving(guard_delta=delta)
        assert err.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(Error) as err:
            engine.update_exits_async(threshold_rule="guaranteed", guarantee_delta=delta, **FAST)
        assert err.value.status == Status.INVALID_ARGUMENT and "delta" in str(err.value)
    with pytest.raises(Error) as err:
        engine.cancel_exit_build()
    assert err.value.status == Status.WRONG_STATE
    with pytest.raises(Error):
        engine.update_exits_async(threshold_rule="median")
    assert engine.serving_stats()["audit_rate"] == before["audit_rate"]
    assert not engine.serving_stats()["build_running"]


def test_async_build_cancel_busy_and_swap(engine, fmnist):  # noqa: F811
    _, x, _ = fmnist
    seen: list[tuple[float, str]] = []
    engine.update_exits_async(progress=lambda f, s, m: seen.append((f, s)), **FAST)
    with pytest.raises(Error) as err:
        engine.update_exits_async(**FAST)
    assert err.value.status == Status.BUSY
    labels, _, _ = engine.infer(x[1000:1100])  # inference goes on meanwhile
    assert len(labels) == 100
    deadline = time.time() + 60
    while len(seen) < 2 and time.time() < deadline:
        time.sleep(0.02)
    engine.cancel_exit_build()
    with pytest.raises(Error) as err:
        engine.wait_exit_build()
    assert err.value.status == Status.CANCELLED
    engine.update_exits_async(progress=lambda f, s, m: seen.append((f, s)), **FAST)
    report = engine.wait_exit_build(timeout=300)
    assert seen[-1] == (1.0, "done")
    assert report["threshold_rule"] == "point"
    stats = engine.serving_stats()
    assert stats["builds_started"] >= 2 and stats["builds_cancelled"] >= 1 and stats["builds_succeeded"] >= 1


def test_guard_trips_on_inverted_frames(engine, fmnist):  # noqa: F811
    _, x, _ = fmnist
    events: list[tuple[str, int, str]] = []
    engine.configure_serving(audit_rate=1.0, seed=3, guard=True, on_event=lambda k, i, m: events.append((k, i, m)))
    mean, std = 0.2860, 0.3530
    inverted = ((1 - 2 * mean) / std - x[2000:3000]).astype(np.float32)
    for start in range(0, 1000, 100):
        engine.infer(inverted[start:start + 100])
        if engine.serving_stats()["guard_trips"]:
            break
    stats = engine.serving_stats()
    assert stats["guard_trips"] >= 1 and stats["rebuild_requested"]
    assert any(ex["state"] == "out_of_service" for ex in stats["exits"])
    assert [k for k, _, _ in events].count("guard_tripped") == stats["guard_trips"]
    engine.configure_serving()  # back to the defaults


def test_concurrent_infer_during_background_build(engine, fmnist):  # noqa: F811
    _, x, _ = fmnist
    engine.reset_stats()
    errors: list[BaseException] = []
    counts = [0] * 4
    stop = threading.Event()

    def submit(t: int) -> None:
        try:
            while not stop.is_set():
                labels, _, _ = engine.infer(x[t * 100:(t + 1) * 100])
                counts[t] += len(labels)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    engine.update_exits_async(**FAST)
    engine.wait_exit_build(timeout=300)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert engine.stats()["samples"] == sum(counts)
