#!/usr/bin/env bash
# Tools-only Python environment for tools/make_pedestrian_detector.py and
# bench/pedestrian_experiment.py (issue 12): TensorFlow (CPU) and tf2onnx to convert the
# detector once, ONNX Runtime for references and the latency comparison, OpenCV to read the
# footage. Never needed by `make test` (the fixtures it makes are committed).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PED_VENV:-.cache/ped-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check tensorflow-cpu tf2onnx onnxruntime==1.32.0 onnx==1.23.2 numpy pillow opencv-python-headless
echo "$venv"
