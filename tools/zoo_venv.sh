#!/bin/sh
# The tools venv of the conformance suite (issue 13): onnx + onnxruntime + numpy from PyPI,
# under .cache/zoo-venv (not committed, never needed by `make test`). torch/torchvision come
# from Debian (python3-torch python3-torchvision) and run under the system python3.
set -eu
VENV=${ZOO_VENV:-.cache/zoo-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import onnxruntime, onnx, numpy' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q onnx==1.23.2 onnxruntime==1.32.0 numpy
fi
echo "$VENV/bin/python"
