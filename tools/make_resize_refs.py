#!/usr/bin/env python3
"""Test images and Pillow reference resizes for the image ingest (Tests/SelfXitTests/ImageResizeTests.swift).

Writes into Tests/Fixtures/images/:
  lines.png    1120x1120 grayscale: 1-px white lines every 5 px on black (vertical, horizontal,
               diagonal) and a ring — the aliasing case (plain bilinear sampling of 1120 -> 28 px
               gives flat 0 or 127.5 where an area filter gives ~51).
  photo.jpg    768x576 RGB JPEG (quality 90, 4:2:0): gradients, soft and hard-edged shapes, a
               fine checker and mild noise — photo-like content.
  small.png    61x47 RGB: the upscale / mixed-direction case.
  alpha.png    4x3 RGBA (transparent, half, opaque rows): alpha is dropped, as convert() does.
  gray16.png   4x4 16-bit gray without gAMA: read as sRGB values scaled to 8 bits.
  ref-<image>-<mode>-<W>x<H>.png
               Image.open(image).convert(mode).resize((W, H), Image.BILINEAR) with Pillow
               (antialiasing triangle filter, reducing_gap=None). Stored as PNG: lossless 8-bit
               bytes, a fraction of the size of raw files.
  cases.json   the list of cases the Swift test checks.

Deterministic (fixed seeds, no time-dependent input). Needs numpy and pillow:
  python3 -m venv /tmp/sxtools && /tmp/sxtools/bin/pip install numpy pillow
  /tmp/sxtools/bin/python tools/make_resize_refs.py
"""
import json
import os

import numpy as np
from PIL import Image, features

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "images")


def lines_image():
    n = 1120
    y, x = np.mgrid[0:n, 0:n]
    img = np.zeros((n, n), np.uint8)
    top = y < n // 2
    img[top & (x % 5 == 0)] = 255                                    # vertical lines, period 5
    bottom_left = (~top) & (x < n // 2)
    img[bottom_left & (y % 5 == 0)] = 255                            # horizontal lines, period 5
    bottom_right = (~top) & (x >= n // 2)
    img[bottom_right & ((x + y) % 7 == 0)] = 255                     # diagonal lines, period 7
    r = np.hypot(x - 280, y - 840)
    img[(r > 150) & (r < 153)] = 200                                 # a thin ring
    return Image.fromarray(img, "L")


def photo_image():
    w, h = 768, 576
    rng = np.random.default_rng(15)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 40 + 170 * x / w
    g = 60 + 120 * y / h
    b = 128 + 90 * np.sin(x / 57.0) * np.cos(y / 43.0)
    rgb = np.stack([r, g, b], -1)
    # soft blob and hard-edged shapes
    blob = np.exp(-((x - 500) ** 2 + (y - 200) ** 2) / (2 * 60.0 ** 2))
    rgb += blob[..., None] * np.array([120, -40, -60])
    disk = (x - 200) ** 2 + (y - 380) ** 2 < 110 ** 2
    rgb[disk] = [230, 210, 40]
    rect = (x > 420) & (x < 700) & (y > 360) & (y < 520)
    rgb[rect] = [20, 30, 90]
    checker = (x > 60) & (x < 300) & (y > 40) & (y < 200)
    rgb[checker] = np.where(((x[checker] // 3 + y[checker] // 3) % 2 == 0)[..., None], 240.0, 15.0)
    rgb += rng.normal(0, 3, rgb.shape)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def small_image():
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (47, 61, 3), dtype=np.uint8), "RGB")


def alpha_image():
    """RGBA: colour (200, 100, 50) fully transparent in row 0, half in row 1, opaque in row 2."""
    a = np.zeros((3, 4, 4), np.uint8)
    a[..., :3] = (200, 100, 50)
    a[..., 3] = np.array([0, 128, 255], np.uint8)[:, None]
    return Image.fromarray(a, "RGBA")


def gray16_image():
    """16-bit gray, no gAMA chunk: values 0, 4096, …, 61440 (8-bit: 0, 16, …, 240)."""
    return Image.fromarray((np.arange(16, dtype=np.uint16).reshape(4, 4) * 4096))


# (image file, mode, width, height): downscale factors 2, ~3.7, ~40, the 300x300 / 28x28 model
# sizes, an upscale and a mixed (down in x, up in y) case, in grayscale and RGB.
CASES = [
    ("lines.png", "L", 560, 560), ("lines.png", "L", 303, 303), ("lines.png", "L", 28, 28),
    ("lines.png", "RGB", 28, 28), ("lines.png", "L", 1120, 28), ("lines.png", "L", 28, 1120),
    ("photo.jpg", "RGB", 384, 288), ("photo.jpg", "RGB", 208, 156), ("photo.jpg", "RGB", 19, 14),
    ("photo.jpg", "RGB", 300, 300), ("photo.jpg", "RGB", 28, 28), ("photo.jpg", "RGB", 32, 32), ("photo.jpg", "RGB", 96, 72),
    ("photo.jpg", "RGB", 64, 48), ("photo.jpg", "RGB", 48, 36), ("photo.jpg", "RGB", 8, 6),
    ("photo.jpg", "L", 384, 288), ("photo.jpg", "L", 300, 300), ("photo.jpg", "L", 28, 28),
    ("small.png", "RGB", 150, 113), ("small.png", "RGB", 30, 90), ("small.png", "L", 150, 113),
    ("alpha.png", "RGB", 4, 3), ("alpha.png", "L", 4, 3),  # no resize: alpha dropped as Pillow does
]


def main():
    os.makedirs(OUT, exist_ok=True)
    lines_image().save(os.path.join(OUT, "lines.png"), optimize=True)
    photo_image().save(os.path.join(OUT, "photo.jpg"), quality=90, subsampling="4:2:0")
    small_image().save(os.path.join(OUT, "small.png"), optimize=True)
    alpha_image().save(os.path.join(OUT, "alpha.png"))
    gray16_image().save(os.path.join(OUT, "gray16.png"))  # checked in Swift (Pillow clips I;16 -> L)
    cases = []
    for name, mode, w, h in CASES:
        src = Image.open(os.path.join(OUT, name))
        src.load()
        ref = src.convert(mode).resize((w, h), Image.BILINEAR, reducing_gap=None)
        ref_name = f"ref-{name.split('.')[0]}-{mode}-{w}x{h}.png"
        ref.save(os.path.join(OUT, ref_name), optimize=True)
        cases.append({"image": name, "channels": 1 if mode == "L" else 3, "width": w, "height": h,
                      "reference": ref_name})
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"pillow": Image.__version__ if hasattr(Image, "__version__") else "",
                   "libjpeg_turbo": features.version("libjpeg_turbo"), "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
