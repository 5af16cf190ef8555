"""selfxit — Python bindings (ctypes) for libselfxit, the CPU inference engine for ONNX
classifiers with unsupervised early exits.

    import numpy as np, selfxit
    with selfxit.Engine("models/fmnist-resnet18-w16.onnx") as engine:
        labels, confidences, exits = engine.infer(np.zeros((8, 1, 28, 28), np.float32))

The library is found through $SELFXIT_LIBRARY, the libselfxit.so inside this package (the
wheel carries it), the repository build (<repo>/.build/release) for an editable install, or
the system search path.
"""

from ._lib import SX_ABI_VERSION, SX_MAX_EXITS, SX_MAX_RANK, Status, library_path, status_string, version
from ._engine import Engine, Error, InferResult, InferResultWithProbabilities, ProgressCallback

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Error",
    "InferResult",
    "InferResultWithProbabilities",
    "ProgressCallback",
    "Status",
    "SX_ABI_VERSION",
    "SX_MAX_EXITS",
    "SX_MAX_RANK",
    "library_path",
    "status_string",
    "version",
    "__version__",
]
