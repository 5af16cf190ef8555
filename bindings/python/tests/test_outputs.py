"""Every graph output as numpy arrays (issue 13, point 3): Engine.outputs() and infer_outputs()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selfxit import Engine, Error, Status

ROOT = Path(__file__).resolve().parents[3]
TENSOROPS = ROOT / "Tests" / "Fixtures" / "tensorops"


def _floats(name: str) -> np.ndarray:
    return np.fromfile(TENSOROPS / name, dtype=np.float32)


def test_infer_outputs_returns_every_output_matching_onnx_runtime():
    entry = json.loads((TENSOROPS / "manifest.json").read_text())["models"]["einsum_two_outputs"]
    with Engine(str(TENSOROPS / entry["file"]), threads=2, max_batch=2) as engine:
        assert engine.outputs() == [("y", (3, 5, 4)), ("pooled", (3, 4))]
        ref = entry["batches"]["3"]
        x = _floats(ref["input"]).reshape(3, *entry["input_shape"])
        got = engine.infer_outputs(x)  # 3 samples through max_batch 2: two calls
        assert list(got) == ["y", "pooled"]
        for (name, array), expected in zip(got.items(), ref["outputs"]):
            assert array.dtype == np.float32 and array.shape == tuple(expected["shape"])
            np.testing.assert_allclose(array, _floats(expected["file"]).reshape(expected["shape"]), atol=1e-4)
        # One sample without its batch axis, and a wrong shape refused with the engine usable.
        single = engine.infer_outputs(x[0])
        np.testing.assert_allclose(single["pooled"][0], got["pooled"][0], atol=1e-6)
        with pytest.raises(Error) as error:
            engine.infer_outputs(np.zeros((2, 3), dtype=np.float32))
        assert error.value.status == Status.SHAPE_MISMATCH
        assert engine.infer_outputs(x)["y"].shape == (3, 3, 5, 4)


DETECTOR = Path(__file__).resolve().parents[3] / "Tests" / "Fixtures" / "detector"


def test_detector_outputs_have_run_time_shapes_and_match_onnx_runtime():
    """torchvision's FasterRCNN (tiny backbone): one image [3, H, W] without batch axis, boxes /
    labels / scores with the number of detections the image decides (issue 13)."""
    reference = json.loads((DETECTOR / "reference.json").read_text())
    x = np.fromfile(DETECTOR / "input.f32", dtype=np.float32).reshape(reference["input_shape"])
    with Engine(str(DETECTOR / "tiny_fasterrcnn.onnx"), threads=2, max_batch=1) as engine:
        info = engine.info
        assert not info["input_has_batch_axis"] and info["has_runtime_shapes"]
        assert engine.num_classes == 0  # no class vector: outputs come from infer_outputs
        assert engine.input_shape == tuple(reference["input_shape"])
        assert engine.outputs()[0] == ("boxes", (-1, 4))
        got = engine.infer_outputs(x)
        n = len(reference["scores"])
        assert got["boxes"].shape == (n, 4) and got["labels"].shape == (n,) and got["scores"].shape == (n,)
        # Order-insensitive: sort both by (label, score).
        ours = sorted(zip(got["labels"].astype(int), got["scores"], map(tuple, got["boxes"])))
        theirs = sorted(zip(reference["labels"], reference["scores"], map(tuple, reference["boxes"])))
        for (la, sa, ba), (lb, sb, bb) in zip(ours, theirs):
            assert la == lb and abs(sa - sb) <= 1e-3
            assert np.abs(np.array(ba) - np.array(bb)).max() <= 1e-3 * max(1.0, np.abs(bb).max())
