"""pytest suite for the selfxit Python bindings (needs libselfxit.so: set SELFXIT_LIBRARY)."""

from __future__ import annotations

import gc
import gzip
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import selfxit
from selfxit import Engine, Error, Status

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "fmnist-resnet18-w16.onnx"
STREAM = ROOT / "examples" / "stream.py"
FMNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
MEAN, STD = 0.2860, 0.3530
THREADS = int(os.environ.get("SELFXIT_TEST_THREADS", "0"))


# ---- data helpers ---------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.open(path, "rb").read()
    _, code, ndim = struct.unpack(">HBB", data[:4])
    assert code == 0x08
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def normalize(u8: np.ndarray) -> np.ndarray:
    return ((u8.astype(np.float32) / 255.0 - MEAN) / STD)[:, None, :, :].astype(np.float32)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A minimal PNG writer: uint8 H×W (grayscale) or H×W×3 (RGB), filter 0, one IDAT."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    color = 0 if pixels.ndim == 2 else 2
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def fmnist():
    images = FMNIST_DIR / "t10k-images-idx3-ubyte.gz"
    labels = FMNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        pytest.skip(f"Fashion-MNIST test set not found in {FMNIST_DIR}")
    u8 = _read_idx(images)[:3000]
    return u8, normalize(u8), _read_idx(labels)[:3000].astype(np.int64)


@pytest.fixture(scope="module")
def engine():
    with Engine(MODEL, threads=THREADS) as e:
        yield e


@pytest.fixture(scope="module")
def exit_engine(fmnist):
    """An engine with exits built from 1500 samples collected with exits off."""
    _, x, _ = fmnist
    e = Engine(MODEL, threads=THREADS, seed=1)
    e.set_exits_enabled(False)
    e.infer(x[500:2000])
    t0 = time.time()
    report = e.update_exits(tolerance=0.02, search_budget=1, epochs=5, seed=0)
    e.build_seconds = time.time() - t0
    e.build_report = report
    e.set_exits_enabled(True)
    yield e
    e.close()


# ---- library and loading --------------------------------------------------------------------


def test_library_metadata():
    assert selfxit.SX_ABI_VERSION == 1
    assert selfxit.version().count(".") == 2
    assert Path(selfxit.library_path).exists()
    assert selfxit.status_string(Status.IO)
    assert selfxit.status_string(999)  # never NULL


def test_missing_library_is_import_error(tmp_path):
    env = dict(os.environ, SELFXIT_LIBRARY=str(tmp_path / "libselfxit.so"))
    proc = subprocess.run([sys.executable, "-c", "import selfxit"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "SELFXIT_LIBRARY" in proc.stderr


def test_load_from_path(engine):
    info = engine.info
    assert engine.input_shape == (1, 28, 28) == info["input_shape"]
    assert engine.num_classes == 10 == info["num_classes"]
    assert info["input_size"] == 784
    assert info["backbone_flops"] > 1_000_000
    assert info["num_candidates"] >= 1
    assert info["num_trained_exits"] == 0 and info["num_active_exits"] == 0
    assert "Engine" in repr(engine)


def test_load_from_bytes_matches_path(engine, fmnist):
    _, x, _ = fmnist
    data = MODEL.read_bytes()
    with Engine(bytearray(data), threads=THREADS) as from_bytes:
        assert from_bytes.info["backbone_flops"] == engine.info["backbone_flops"]
        a = engine.infer(x[:16])
        b = from_bytes.infer(x[:16])
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_load_from_pathlike_and_str(fmnist):
    with Engine(str(MODEL), threads=1, max_batch=8) as e:
        assert e.num_classes == 10


def test_bad_path_is_io_error(tmp_path):
    missing = tmp_path / "no-such-model.onnx"
    with pytest.raises(Error) as info:
        Engine(missing)
    assert info.value.status == Status.IO
    assert info.value.message
    assert "IO" in str(info.value)


def test_bad_bytes_is_bad_model():
    with pytest.raises(Error) as info:
        Engine(b"this is not an ONNX model" * 10)
    assert info.value.status == Status.BAD_MODEL
    assert info.value.message


def test_truncated_model_is_bad_model():
    data = MODEL.read_bytes()
    with pytest.raises(Error) as info:
        Engine(data[: len(data) // 2])
    assert info.value.status == Status.BAD_MODEL


def test_bad_options():
    with pytest.raises(Error) as info:
        Engine(MODEL, threads=-1)
    assert info.value.status == Status.INVALID_ARGUMENT
    with pytest.raises(Error) as info:
        Engine(12345)
    assert info.value.status == Status.INVALID_ARGUMENT


def test_input_shape_option():
    # The model's shape is static; restating it must work, a different one must not.
    with Engine(MODEL, threads=THREADS, input_shape=(1, 28, 28)) as e:
        assert e.input_shape == (1, 28, 28)
    with pytest.raises(Error):
        Engine(MODEL, threads=THREADS, input_shape=(3, 28, 28))


# ---- inference ------------------------------------------------------------------------------


def test_infer_shapes(engine, fmnist):
    _, x, _ = fmnist
    labels, conf, exits = engine.infer(x[:32])
    assert labels.shape == conf.shape == exits.shape == (32,)
    assert labels.dtype == np.int64 and exits.dtype == np.int64 and conf.dtype == np.float32
    assert ((labels >= 0) & (labels < 10)).all()
    assert ((conf > 0) & (conf <= 1.0 + 1e-6)).all()
    assert (exits == -1).all()  # no exits built
    one = engine.infer(x[0])  # a single sample, (1, 28, 28)
    assert one[0].shape == (1,) and one[0][0] == labels[0]
    # float64 and non-contiguous input are converted
    strided = np.asfortranarray(x[:4].astype(np.float64))
    np.testing.assert_array_equal(engine.infer(strided)[0], labels[:4])


def test_infer_matches_submit_probabilities(engine, fmnist):
    _, x, _ = fmnist
    labels, conf, _ = engine.infer(x[:64])
    probs = np.zeros((64, 10), np.float32)
    reported = np.zeros(64, np.int64)

    def cb(r):
        probs[r["sample_index"]] = r["probabilities"]
        reported[r["sample_index"]] = r["class_index"]

    engine.submit(x[:64], cb)
    np.testing.assert_array_equal(probs.argmax(axis=1), labels)
    np.testing.assert_array_equal(reported, labels)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(probs[np.arange(64), labels], conf, rtol=1e-5, atol=1e-6)


def test_accuracy_500(engine, fmnist):
    _, x, y = fmnist
    labels, _, _ = engine.infer(x[:500])
    accuracy = float((labels == y[:500]).mean())
    assert accuracy >= 0.85, accuracy


def test_infer_larger_than_max_batch(fmnist):
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS, max_batch=16) as e:
        labels, _, _ = e.infer(x[:40])  # split into 16 + 16 + 8
        with Engine(MODEL, threads=THREADS) as ref:
            np.testing.assert_array_equal(labels, ref.infer(x[:40])[0])
        with pytest.raises(Error) as info:
            e.submit(x[:17], lambda r: None)  # submit does not split
        assert info.value.status == Status.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "shape",
    [(4, 28, 28), (4, 1, 28, 27), (4, 3, 28, 28), (784,), (2, 784), (1, 1, 1, 28, 28)],
)
def test_wrong_input_shape(engine, shape):
    with pytest.raises(Error) as info:
        engine.infer(np.zeros(shape, np.float32))
    assert info.value.status == Status.SHAPE_MISMATCH
    with pytest.raises(Error):
        engine.submit(np.zeros(shape, np.float32), lambda r: None)


def test_wrong_dtype(engine):
    with pytest.raises(Error) as info:
        engine.infer(np.array([["a"] * 28] * 28)[None])
    assert info.value.status == Status.INVALID_ARGUMENT


def test_empty_batch(engine):
    empty = np.zeros((0, 1, 28, 28), np.float32)
    for call in (engine.infer, lambda a: engine.submit(a, lambda r: None), lambda a: engine.submit_async(a, print)):
        with pytest.raises(Error) as info:
            call(empty)
        assert info.value.status == Status.INVALID_ARGUMENT
        assert info.value.message


def test_submit_calls_back_once_per_sample(engine, fmnist):
    _, x, _ = fmnist
    seen = []
    threads = set()

    def cb(r):
        seen.append(r["sample_index"])
        threads.add(threading.get_ident())
        assert r["ticket"] == 0
        assert r["exit_index"] == -1
        assert r["flops"] > 0 and r["latency_seconds"] >= 0
        assert r["probabilities"].shape == (10,) and r["probabilities"].dtype == np.float32

    assert engine.submit(x[:50], cb) is None
    assert sorted(seen) == list(range(50))
    assert threads == {threading.get_ident()}  # on the calling thread


def test_submit_async_several_tickets(engine, fmnist):
    _, x, y = fmnist
    main = threading.get_ident()
    results: dict[int, list[dict]] = {}
    lock = threading.Lock()
    threads = set()

    def make(tag):
        def cb(r):
            with lock:
                results.setdefault(tag, []).append(r)
                threads.add(threading.get_ident())
        return cb

    sizes = [16, 1, 33, 8, 20]
    tickets = []
    start = 0
    for i, n in enumerate(sizes):
        tickets.append(engine.submit_async(x[start:start + n], make(i)))
        start += n
    gc.collect()  # the callbacks are only referenced by the bindings now
    assert len(set(tickets)) == len(tickets) and all(t > 0 for t in tickets)
    assert set(engine.pending_tickets) >= set(tickets)
    for t in reversed(tickets):
        assert engine.wait(t) is True
    assert not set(engine.pending_tickets) & set(tickets)
    assert main not in threads and len(threads) == 1  # the engine's worker thread
    for i, (t, n) in enumerate(zip(tickets, sizes)):
        assert sorted(r["sample_index"] for r in results[i]) == list(range(n))
        assert {r["ticket"] for r in results[i]} == {t}
    # same answers as the blocking path
    labels = np.concatenate([
        np.array([r["class_index"] for r in sorted(results[i], key=lambda r: r["sample_index"])]) for i in range(len(sizes))
    ])
    np.testing.assert_array_equal(labels, engine.infer(x[:sum(sizes)])[0])
    assert engine.wait(tickets[0], 0) is True  # a finished ticket stays finished


def test_wait_timeout_and_bad_ticket(engine, fmnist):
    _, x, _ = fmnist
    release = threading.Event()
    ticket = engine.submit_async(x[:2], lambda r: release.wait(30))
    assert engine.wait(ticket, 0) is False
    assert engine.wait(ticket, 20) is False
    release.set()
    assert engine.wait(ticket, 30_000) is True
    with pytest.raises(Error) as info:
        engine.wait(ticket + 10_000)
    assert info.value.status == Status.INVALID_ARGUMENT


def test_library_wait_forever():
    """sx_wait(ticket, -1) itself (the bindings wait in slices), run in a subprocess so that a
    crash inside the library fails this test instead of killing the suite."""
    code = (
        "import sys, numpy as np, selfxit\n"
        "from selfxit import _lib\n"
        "e = selfxit.Engine(sys.argv[1], threads=1)\n"
        "done = []\n"
        "t = e.submit_async(np.zeros((2, 1, 28, 28), np.float32), done.append)\n"
        "h = e._enter()\n"
        "rc = _lib.lib.sx_wait(h, t, -1)\n"
        "e._leave()\n"
        "print(rc, len(done))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(MODEL)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["0", "2"]


def test_max_pending_busy(fmnist):
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS, max_pending=2) as e:
        started, release = threading.Event(), threading.Event()

        def blocker(r):
            started.set()
            release.wait(30)

        first = e.submit_async(x[:1], blocker)
        try:
            assert started.wait(30)  # the worker holds the first request: the queue is empty
            tickets = [e.submit_async(x[:1], lambda r: None) for _ in range(2)]
            with pytest.raises(Error) as info:
                e.submit_async(x[:1], lambda r: None)
            assert info.value.status == Status.BUSY
        finally:
            release.set()
        for t in [first] + tickets:
            assert e.wait(t)


def test_callback_exception_in_submit(engine, fmnist):
    _, x, y = fmnist
    calls = []

    def cb(r):
        calls.append(r["sample_index"])
        raise ValueError("boom from a callback")

    with pytest.raises(ValueError, match="boom"):
        engine.submit(x[:8], cb)
    assert len(calls) == 1  # delivery stops after the first exception
    labels, _, _ = engine.infer(x[:8])  # still usable
    assert labels.shape == (8,)


def test_callback_exception_in_async(engine, fmnist):
    _, x, _ = fmnist

    def bad(r):
        raise KeyError("async boom")

    good = []
    t1 = engine.submit_async(x[:4], bad)
    t2 = engine.submit_async(x[:4], lambda r: good.append(r["sample_index"]))
    with pytest.raises(KeyError, match="async boom"):
        engine.wait(t1)
    assert engine.wait(t1) is True  # raised once, then released
    assert engine.wait(t2) is True
    assert sorted(good) == [0, 1, 2, 3]


def test_close_inside_callback_is_busy(fmnist):
    _, x, _ = fmnist
    e = Engine(MODEL, threads=THREADS)
    errors = []

    def cb(r):
        try:
            e.close()
        except Error as err:
            errors.append(err.status)

    e.submit(x[:2], cb)
    t = e.submit_async(x[:1], cb)
    assert e.wait(t)
    assert errors == [Status.BUSY] * 3
    assert e.infer(x[:1])[0].shape == (1,)
    e.close()
    assert e.closed


def test_concurrent_threads(engine, fmnist):
    _, x, _ = fmnist
    expected = engine.infer(x[:64])[0]
    out = [None] * 4
    errors = []

    def work(i):
        try:
            out[i] = engine.infer(x[:64])[0]
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for o in out:
        np.testing.assert_array_equal(o, expected)


# ---- statistics -----------------------------------------------------------------------------


def test_stats(fmnist):
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS) as e:
        e.infer(x[:20])
        s = e.stats()
        for key in ("samples", "exit_counts", "backbone_count", "latency_p50", "latency_p95", "latency_p99",
                    "collected_samples", "exits_enabled", "active_exits"):
            assert key in s, (key, sorted(s))
        assert s["samples"] == 20 and s["backbone_count"] == 20
        assert s.get("last_build") is None
        raw = e.stats_struct()
        assert raw["samples"] == 20 and raw["backbone_samples"] == 20
        assert raw["backbone_flops"] == e.info["backbone_flops"]
        assert abs(raw["mean_flops"] - raw["backbone_flops"]) <= 1e-6 * raw["backbone_flops"]
        assert 0 <= raw["latency_p50"] <= raw["latency_p95"] <= raw["latency_p99"]
        e.reset_stats()
        assert e.stats()["samples"] == 0 and e.stats_struct()["samples"] == 0
        assert e.info["collected_samples"] == 20  # reset_stats keeps the collection


# ---- exits ----------------------------------------------------------------------------------


def test_update_exits_errors(fmnist, tmp_path):
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS) as e:
        with pytest.raises(Error) as info:
            e.update_exits()  # nothing collected
        assert info.value.status == Status.WRONG_STATE
        e.infer(x[:8])
        with pytest.raises(Error) as info:
            e.update_exits(tolerance=0.0)
        assert info.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(Error) as info:
            e.update_exits(search_budget=0)
        assert info.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(Error) as info:
            e.save_exits(tmp_path / "none.sxe")  # no exits built
        assert info.value.status == Status.WRONG_STATE


def test_update_exits_report(exit_engine, fmnist):
    report = exit_engine.build_report
    assert isinstance(report, dict)
    assert report["exits"], report
    for ex in report["exits"]:
        assert {"candidate_index", "threshold", "active"} <= set(ex)
    assert report["samples"] >= 1000
    info = exit_engine.info
    assert info["num_trained_exits"] >= 1
    assert info["exits_enabled"] is True
    s = exit_engine.stats()
    assert s["last_build"] == report
    assert s["active_exits"] == [ex["candidate_index"] for ex in report["exits"] if ex["active"]]


def test_exits_in_service(exit_engine, fmnist):
    _, x, y = fmnist
    exit_engine.reset_stats()
    labels, conf, exits = exit_engine.infer(x[:500])
    accuracy = float((labels == y[:500]).mean())
    assert accuracy >= 0.83, accuracy
    active = exit_engine.stats()["active_exits"]
    assert set(np.unique(exits)) <= set(active) | {-1}
    raw = exit_engine.stats_struct()
    assert raw["samples"] == 500
    assert sum(raw["exit_samples"]) + raw["backbone_samples"] == 500
    if active and (exits >= 0).any():
        assert raw["mean_flops"] < raw["backbone_flops"]
    # exits off: the backbone answers everything again
    exit_engine.set_exits_enabled(False)
    try:
        assert (exit_engine.infer(x[:50])[2] == -1).all()
    finally:
        exit_engine.set_exits_enabled(True)


def test_save_load_exits(exit_engine, fmnist, tmp_path):
    _, x, _ = fmnist
    path = tmp_path / "exits.sxe"
    exit_engine.save_exits(path)
    assert path.stat().st_size > 0
    expected = exit_engine.infer(x[:200])
    with Engine(MODEL, threads=THREADS) as other:
        other.load_exits(str(path))
        info = other.info
        assert info["num_trained_exits"] == exit_engine.info["num_trained_exits"]
        assert info["num_active_exits"] == exit_engine.info["num_active_exits"]
        got = other.infer(x[:200])
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[2], expected[2])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-5)

        # damaged bundles are refused, the engine keeps its exits and keeps working
        data = path.read_bytes()
        corrupted = bytearray(data)
        corrupted[len(data) // 2] ^= 0xFF
        bad = tmp_path / "corrupted.sxe"
        bad.write_bytes(bytes(corrupted))
        with pytest.raises(Error) as err:
            other.load_exits(bad)
        assert err.value.status == Status.INVALID_DATA and err.value.message
        bad.write_bytes(data[: len(data) // 3])
        with pytest.raises(Error) as err:
            other.load_exits(bad)
        assert err.value.status == Status.INVALID_DATA
        with pytest.raises(Error) as err:
            other.load_exits(tmp_path)  # a directory: refused, not read
        assert err.value.status == Status.IO and "directory" in err.value.message
        with pytest.raises(Error) as err:
            other.load_exits(tmp_path / "missing.sxe")
        assert err.value.status == Status.IO
        assert other.info["num_trained_exits"] == info["num_trained_exits"]
        np.testing.assert_array_equal(other.infer(x[:200])[0], expected[0])


# ---- images ---------------------------------------------------------------------------------


def test_decode_image_png(engine, fmnist):
    u8, x, _ = fmnist
    out = engine.decode_image(png_bytes(u8[0]), scale=1 / 255, mean=(MEAN,), std=STD)
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, x[0], atol=1e-5)
    # defaults: p / 255
    np.testing.assert_allclose(engine.decode_image(png_bytes(u8[1])), u8[1][None] / 255.0, atol=1e-6)
    # RGB is converted to gray, a larger image resized to 28×28
    rgb = np.repeat(u8[2][:, :, None], 3, axis=2)
    np.testing.assert_allclose(engine.decode_image(png_bytes(rgb)), u8[2][None] / 255.0, atol=2 / 255)
    big = np.kron(u8[3], np.ones((2, 2), np.uint8))
    resized = engine.decode_image(png_bytes(big), mean=MEAN, std=STD)
    assert resized.shape == (1, 28, 28)
    assert np.corrcoef(resized.ravel(), x[3].ravel())[0, 1] > 0.9
    # decoded frames classify like the idx images
    frames = np.stack([engine.decode_image(png_bytes(u8[i]), mean=MEAN, std=STD) for i in range(16)])
    np.testing.assert_array_equal(engine.infer(frames)[0], engine.infer(x[:16])[0])


def test_decode_image_errors(engine):
    with pytest.raises(Error) as info:
        engine.decode_image(b"\x89PNG\r\n\x1a\n garbage")
    assert info.value.status == Status.INVALID_DATA
    with pytest.raises(Error) as info:
        engine.decode_image(b"")
    assert info.value.status == Status.INVALID_ARGUMENT
    with pytest.raises(Error):
        engine.decode_image(b"x", mean=(1, 2))


def test_decode_image_max_pixels(engine, fmnist):
    u8, _, _ = fmnist
    frame = png_bytes(u8[0])  # 28×28 = 784 pixels
    with pytest.raises(Error) as info:
        engine.decode_image(frame, max_pixels=783)
    assert info.value.status == Status.INVALID_DATA and "28×28" in str(info.value)
    np.testing.assert_allclose(engine.decode_image(frame, max_pixels=784), u8[0][None] / 255.0, atol=1e-6)
    for bad in (0, -1, (1 << 26) + 1, 1.5, True):
        with pytest.raises(Error) as info:
            engine.decode_image(frame, max_pixels=bad)
        assert info.value.status == Status.INVALID_ARGUMENT


# ---- lifetime -------------------------------------------------------------------------------


def test_close_twice_and_use_after_close(fmnist):
    _, x, _ = fmnist
    e = Engine(MODEL, threads=THREADS)
    t = e.submit_async(x[:3], lambda r: None)  # pending work: close() waits for it
    e.close()
    e.close()
    assert e.closed and "closed" in repr(e)
    calls = [
        lambda: e.infer(x[:1]),
        lambda: e.submit(x[:1], print),
        lambda: e.submit_async(x[:1], print),
        lambda: e.wait(t),
        lambda: e.info,
        lambda: e.stats(),
        lambda: e.stats_struct(),
        lambda: e.reset_stats(),
        lambda: e.set_exits_enabled(True),
        lambda: e.update_exits(),
        lambda: e.save_exits("/tmp/x"),
        lambda: e.load_exits("/tmp/x"),
        lambda: e.decode_image(b"x"),
    ]
    for call in calls:
        with pytest.raises(Error) as info:
            call()
        assert info.value.status == Status.WRONG_STATE
    assert e.input_shape == (1, 28, 28)  # cached metadata stays readable


def test_context_manager_and_gc(fmnist):
    _, x, _ = fmnist
    with Engine(MODEL, threads=THREADS) as e:
        got = []
        e.submit_async(x[:5], lambda r: got.append(r))
    assert e.closed and len(got) == 5  # close waited for the queued request
    e2 = Engine(MODEL, threads=THREADS)
    e2.submit_async(x[:3], lambda r: None)
    del e2
    gc.collect()  # __del__ closes it


# ---- the example ----------------------------------------------------------------------------


def test_stream_example(tmp_path, fmnist):
    u8, _, y = fmnist
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(400):
        (frames / f"frame_{i:05d}_label{y[i]}.png").write_bytes(png_bytes(u8[i]))
    cmd = [
        sys.executable, str(STREAM), "--model", str(MODEL), "--frames", str(frames), "--fps", "2000",
        "--collect", "250", "--tolerance", "0.05", "--search-budget", "1", "--epochs", "3",
        "--min-samples", "200", "--threads", str(THREADS), "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "accuracy" in out and "p50" in out and "backbone" in out
