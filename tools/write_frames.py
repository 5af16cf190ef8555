#!/usr/bin/env python3
"""Write Fashion-MNIST test images as image files ("camera frames").

    python3 tools/write_frames.py --out DIR --count N [--format png|jpg|both] [--start 0]

Reads the gzip idx files of the Fashion-MNIST *test* split from
/usr/share/datasets/fashion-mnist (override with the FASHION_MNIST_DIR environment variable)
and writes image k of the split (k = start … start+count-1) as

    DIR/frame_{k:05d}_label{y}.png      (and/or .jpg)

where y is its label (0–9). Images are 28×28 8-bit grayscale. PNGs are encoded here with
zlib alone (no Pillow needed); JPEGs need Pillow and are skipped, with a note, without it.
The output is deterministic: the same arguments write the same bytes.

examples/camera_loop.c reads such a folder (sorted by name) and takes the label from the
file name to report accuracy.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
import zlib

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"


def read_idx(path: str) -> tuple[tuple[int, ...], bytes]:
    """(dims, raw unsigned-byte payload) of a gzip idx file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an idx header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    count = 1
    for d in dims:
        count *= d
    payload = data[header:]
    if len(payload) != count:
        raise ValueError(f"{path}: {len(payload)} bytes of data, expected {count} for dims {dims}")
    return dims, payload


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png_gray(pixels: bytes, width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG of `pixels` (row-major, width × height bytes)."""
    assert len(pixels) == width * height
    # Every scanline starts with its filter type; 0 = None.
    raw = b"".join(b"\x00" + pixels[r * width:(r + 1) * width] for r in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # depth 8, gray, deflate, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def jpeg_encoder():
    """A function (pixels, width, height) -> JPEG bytes, or None without Pillow."""
    try:
        from PIL import Image  # type: ignore
    except ImportError:
        return None
    import io

    def encode(pixels: bytes, width: int, height: int) -> bytes:
        image = Image.frombytes("L", (width, height), pixels)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=95, optimize=False)
        return buf.getvalue()

    return encode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--count", type=int, required=True, help="number of frames")
    ap.add_argument("--format", choices=("png", "jpg", "both"), default="png")
    ap.add_argument("--start", type=int, default=0, help="first test image (default 0)")
    args = ap.parse_args(argv)

    data_dir = os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    try:
        idims, images = read_idx(os.path.join(data_dir, IMAGES))
        ldims, labels = read_idx(os.path.join(data_dir, LABELS))
    except (OSError, ValueError) as e:
        print(f"write_frames: {e}", file=sys.stderr)
        return 1
    if len(idims) != 3 or len(ldims) != 1 or idims[0] != ldims[0]:
        print(f"write_frames: unexpected idx shapes {idims} / {ldims}", file=sys.stderr)
        return 1
    total, height, width = idims

    if args.count < 0 or args.start < 0 or args.start >= total:
        print(f"write_frames: --start must be in 0..{total - 1} and --count ≥ 0", file=sys.stderr)
        return 2
    count = min(args.count, total - args.start)
    if count < args.count:
        print(f"write_frames: only {count} images from --start {args.start}; writing {count}", file=sys.stderr)

    want_png = args.format in ("png", "both")
    want_jpg = args.format in ("jpg", "both")
    encode_jpg = jpeg_encoder() if want_jpg else None
    if want_jpg and encode_jpg is None:
        print("write_frames: Pillow is not installed; skipping JPEG frames", file=sys.stderr)
        want_jpg = False

    os.makedirs(args.out, exist_ok=True)
    size = width * height
    written = 0
    for k in range(args.start, args.start + count):
        pixels = images[k * size:(k + 1) * size]
        stem = os.path.join(args.out, f"frame_{k:05d}_label{labels[k]}")
        if want_png:
            with open(stem + ".png", "wb") as f:
                f.write(encode_png_gray(pixels, width, height))
            written += 1
        if want_jpg:
            with open(stem + ".jpg", "wb") as f:
                f.write(encode_jpg(pixels, width, height))
            written += 1
    print(f"write_frames: wrote {written} files for images {args.start}..{args.start + count - 1} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
