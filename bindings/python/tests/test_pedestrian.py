"""Detector teachers, watched classes, warn early / confirm later through the Python bindings (issue 12)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from selfxit import Engine, Error, Status

ROOT = Path(__file__).resolve().parents[3]
PED = ROOT / "Tests" / "Fixtures" / "pedestrian"
MODEL = PED / "ssdlite_person.onnx"
THREADS = int(os.environ.get("SELFXIT_TEST_THREADS", "2"))


def _frames(engine: Engine) -> np.ndarray:
    names = sorted(p for p in (PED / "frames").iterdir() if p.suffix == ".jpg")
    return np.stack([engine.decode_image(p.read_bytes(), scale=2.0 / 255.0, mean=1.0, std=1.0) for p in names])


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(teacher="detector:scores=nope:0"), "'nope:0' is not an output of the model"),
        (dict(teacher="detector:mode=most_confident_of,class=7"), "teacher class 7 is out of range"),
        (dict(teacher="detector", watched=3), "watched class 3 (entry 0) is out of range"),
        (dict(teacher="detector", watched=[(1, 0.0)]), "miss budget of watched class 1 must lie in (0, 1)"),
        (dict(teacher="detector", watched=[(1, 1.0)]), "miss budget of watched class 1 must lie in (0, 1)"),
        (dict(teacher="detector", watched=[(1, 0.005, None, 1.0)]), "warning budget of watched class 1 must lie in (0, 1)"),
        (dict(teacher="detector", watched=[{"class": 1, "warning_budget": float("nan")}]),
         "warning budget of watched class 1 must lie in (0, 1)"),
        (dict(teacher="detector:threshold=2"), "score threshold must lie in (0, 1)"),
        (dict(teacher="segmenter"), "teacher must be"),
    ],
)
def test_bad_teacher_or_watched_is_refused(kwargs, fragment):
    with pytest.raises(Error) as info:
        Engine(MODEL, threads=1, max_batch=1, **kwargs)
    assert info.value.status == Status.INVALID_ARGUMENT
    assert fragment in info.value.message


def test_detector_reports_teacher_classes_not_box_numbers():
    with Engine(MODEL, threads=THREADS, max_batch=8, teacher="detector") as e:
        assert e.info["num_classes"] == 2  # none, person — not 1917 × 2 box numbers
        x = _frames(e)[:8]
        labels, confidences, exits = e.infer(x)
        assert set(labels.tolist()) <= {0, 1} and 0 < labels.sum() < 8
        assert (exits == -1).all()


def test_host_labels_wrong_length_leaves_engine_usable():
    with Engine(MODEL, threads=1, max_batch=2, teacher="host:2") as e:
        x = np.zeros((2, 3, 300, 300), np.float32)
        with pytest.raises(Error) as info:
            e.submit_labeled(x, [1], lambda r: None)
        assert "host labels: 1 labels for a batch of 2" in info.value.message
        with pytest.raises(Error):
            e.submit_labeled(x, [1, 5], lambda r: None)
        assert e.info["collected_samples"] == 0
        got = []
        e.submit_labeled(x, [1, -1], lambda r: got.append((r["sample_index"], r["class_index"], r["kind"])))
        assert sorted(got) == [(0, 1, "answer"), (1, -1, "answer")]
        # Straight through the C ABI: a label count from C is checked before anything is read
        # (a size_t of 2**64 − 1 reaches Swift as −1, which once trapped the process).
        import ctypes

        from selfxit._lib import RESULT_FN, lib

        labels = (ctypes.c_int32 * 2)(1, -1)
        never = RESULT_FN(lambda r, u: None)
        collected = e.info["collected_samples"]
        h = e._enter()
        try:
            for count in (2**64 - 1, 2**63, 3, 0):
                rc = lib.sx_submit_labeled(h, x.ctypes.data, x.size, 2, labels, count, never, None)
                assert rc == Status.INVALID_ARGUMENT, count
                assert "labels for a batch of 2" in lib.sx_last_error().decode()
        finally:
            e._leave()
        assert e.info["collected_samples"] == collected  # nothing ran
        assert e.info["collected_samples"] == 1


def test_warning_then_confirmation_and_all_exits():
    with Engine(MODEL, threads=THREADS, max_batch=8, teacher="detector", watched=[(1, 0.005, 0.5)],
                collection_budget_bytes=64 * 270016 * 4) as e:
        frames = _frames(e)
        e.set_exits_enabled(False)
        for x in (frames, frames[:, :, :, ::-1]):
            for start in range(0, len(x), 8):
                e.submit(np.ascontiguousarray(x[start:start + 8]), lambda r: None)
        e.update_exits(tolerance=0.05, search_budget=1, epochs=3, min_samples=10, keep_order=True)
        assert e.info["num_trained_exits"] >= 1
        e.set_exits_enabled(True)
        kinds: dict[int, list[str]] = {}
        e.submit(frames[:8], lambda r: kinds.setdefault(r["sample_index"], []).append(r["kind"]))
        assert sorted(kinds) == list(range(8))
        for k in kinds.values():
            assert k in (["answer"], ["warning", "confirmation"]), k
        # infer() reports only final answers even with warnings on the way.
        labels, _, exits = e.infer(frames[:8])
        assert len(labels) == 8
        e.set_all_exits(True)
        predictions = [0] * 8
        finals = [0] * 8

        def count(r):
            if r["kind"] == "exit_prediction":
                predictions[r["sample_index"]] += 1
            else:
                finals[r["sample_index"]] += 1
        e.submit(frames[:8], count)
        assert predictions == [e.info["num_trained_exits"]] * 8
        assert finals == [1] * 8


def test_saved_exits_keep_the_safety_rule(tmp_path):
    """An exit bundle records the watched classes and their guards (format 2): reloaded into a
    fresh engine — one that watches nothing included — the exits warn, confirm and refuse
    "no pedestrian" answers exactly as before saving; an engine watching person with another
    miss budget refuses the bundle and keeps its exits."""
    watched = [(1, 0.3, None, 0.2)]
    with Engine(MODEL, threads=THREADS, max_batch=8, teacher="detector", watched=watched,
                collection_budget_bytes=64 * 270016 * 4) as e:
        frames = _frames(e)
        mirrored = np.ascontiguousarray(frames[:, :, :, ::-1])
        e.set_exits_enabled(False)
        for x in (frames, mirrored):
            for start in range(0, len(x), 8):
                e.submit(np.ascontiguousarray(x[start:start + 8]), lambda r: None)
        report = e.update_exits(tolerance=0.05, search_budget=1, epochs=3, min_samples=10, keep_order=True)
        assert report.get("watch"), "the build has watched-class guards"
        e.set_exits_enabled(True)

        def served(engine):
            out = []
            for x in (frames, mirrored):
                for start in range(0, len(x), 8):
                    engine.submit(np.ascontiguousarray(x[start:start + 8]),
                                  lambda r, s=start: out.append((s + r["sample_index"], r["kind"], r["exit_index"], r["class_index"])))
            return out

        reference = served(e)
        assert any(k == "warning" for _, k, _, _ in reference), reference
        bundle = tmp_path / "person.sxe"
        e.save_exits(bundle)
        guards = e.stats()["last_build"]["watch"]

    with Engine(MODEL, threads=THREADS, max_batch=8, teacher="detector", collection_budget_bytes=0) as bare:
        bare.load_exits(bundle)
        bare.set_exits_enabled(True)
        assert served(bare) == reference
        build = bare.stats()["last_build"]
        assert build["watch"] == guards
        assert build["bundle_format"] == 2
        assert "taken from the exit bundle" in build["bundle_note"]

    with Engine(MODEL, threads=THREADS, max_batch=8, teacher="detector", watched=watched, collection_budget_bytes=0) as same:
        same.load_exits(bundle)
        same.set_exits_enabled(True)
        assert served(same) == reference

    with Engine(MODEL, threads=1, max_batch=8, teacher="detector", watched=[(1, 0.005, None, 0.2)],
                collection_budget_bytes=0) as stricter:
        with pytest.raises(Error) as info:
            stricter.load_exits(bundle)
        assert info.value.status == Status.INVALID_DATA
        assert "the exits' guards were chosen for class 1 (miss budget 0.3" in info.value.message
        assert stricter.info["num_trained_exits"] == 0

    with Engine(MODEL, threads=1, max_batch=8, teacher="detector:mode=all_objects", collection_budget_bytes=0) as other:
        with pytest.raises(Error) as info:
            other.load_exits(bundle)
        assert info.value.status == Status.INVALID_DATA
        assert "teacher: the exits learned from detector(most_confident_object" in info.value.message
