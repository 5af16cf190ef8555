"""NaN / inf inputs through the Python bindings (hardening: defined behaviour for every float)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from selfxit import Engine, Error, Status

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "Tests" / "Fixtures"
MODEL = FIXTURES / "models" / "silu_se_net.onnx"
THREADS = int(os.environ.get("SELFXIT_TEST_THREADS", "0"))


def _reference():
    x = np.fromfile(FIXTURES / "reference" / "silu_se_net.b8.input.f32", dtype="<f4").reshape(8, 3, 32, 32)
    y = np.fromfile(FIXTURES / "reference" / "silu_se_net.b8.output.f32", dtype="<f4").reshape(8, 10)
    return x, y


def test_refused_by_default_and_engine_stays_usable():
    x, y = _reference()
    with Engine(MODEL, threads=THREADS) as e:
        bad = x.copy()
        bad[3].reshape(-1)[127] = np.nan
        with pytest.raises(Error) as info:
            e.infer(bad)
        assert info.value.status == Status.INVALID_ARGUMENT
        assert "input sample 3, element 127 is NaN" in info.value.message
        bad = x.copy()
        bad[0, 0, 0, 0] = -np.inf
        with pytest.raises(Error) as info:
            e.submit_async(bad, lambda r: None)
        assert "input sample 0, element 0 is -inf" in info.value.message
        assert e.pending_tickets == [] or not e.pending_tickets
        results = []
        e.submit(x, results.append)
        assert len(results) == 8
        for r in results:
            assert not r["non_finite"]
            np.testing.assert_allclose(r["probabilities"], y[r["sample_index"]], atol=1e-4)


def test_propagate_flags_the_sample():
    x, y = _reference()
    with Engine(MODEL, threads=THREADS, non_finite_inputs="propagate") as e:
        bad = x.copy()
        bad[3].reshape(-1)[127] = np.nan
        results = {}
        e.submit(bad, lambda r: results.__setitem__(r["sample_index"], r))
        assert results[3]["non_finite"] and results[3]["class_index"] == -1 and results[3]["confidence"] == 0
        assert np.isnan(results[3]["probabilities"]).all()
        for i in (0, 1, 2, 4, 5, 6, 7):
            assert not results[i]["non_finite"]
            np.testing.assert_allclose(results[i]["probabilities"], y[i], atol=1e-4)
        labels, confidences, _ = e.infer(bad)
        assert labels[3] == -1 and confidences[3] == 0
        assert e.info["collected_samples"] == 14  # the NaN sample, twice, was not collected


def test_bad_mode_is_invalid_argument():
    with pytest.raises(Error) as info:
        Engine(MODEL, non_finite_inputs="ignore")
    assert info.value.status == Status.INVALID_ARGUMENT
