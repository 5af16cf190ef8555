"""Fashion-MNIST loader (no torchvision needed).

Reads the gzip idx files installed by Debian's ``dataset-fashion-mnist``
package from ``/usr/share/datasets/fashion-mnist`` (override with the
``FASHION_MNIST_DIR`` environment variable).

    from fashion_mnist import load, normalize
    x_u8, y = load("train")          # (60000, 28, 28) uint8, (60000,) uint8
    x = normalize(x_u8)              # (60000, 1, 28, 28) float32

The normalisation used everywhere in SelfXit (training, export metadata,
Swift-side preprocessing) is ``x = (pixel / 255 - MEAN) / STD``.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
MEAN = 0.2860
STD = 0.3530
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def data_dir() -> str:
    return os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size mismatch {arr.size} vs {dims}")
    return arr.reshape(dims)


def load(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 N×28×28, labels uint8 N) for split 'train' or 'test'."""
    if split == "t10k":
        split = "test"
    img_name, lbl_name = _FILES[split]
    d = data_dir()
    images = _read_idx(os.path.join(d, img_name))
    labels = _read_idx(os.path.join(d, lbl_name))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("image/label count mismatch")
    return images, labels


def normalize(images_u8: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 -> float32 N×1×28×28, (p/255 - MEAN)/STD."""
    x = images_u8.astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return x[:, None, :, :].astype(np.float32, copy=False)


if __name__ == "__main__":
    for s in ("train", "test"):
        x, y = load(s)
        xn = normalize(x)
        print(s, x.shape, y.shape, np.bincount(y), f"mean={xn.mean():.4f} std={xn.std():.4f}")
