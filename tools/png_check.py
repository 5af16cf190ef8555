#!/usr/bin/env python3
"""Check that a PNG screenshot is not blank and shows given colours (no Pillow needed).

    python3 tools/png_check.py SHOT.png [--min-ink 0.02] [--color 1f77b4 ...]

Decodes the PNG with zlib (8-bit RGB/RGBA, non-interlaced, as Chromium writes them), prints the
size, the share of non-white pixels ("ink") and how many pixels are near each --color, and
exits 1 when the ink is below --min-ink or a colour is missing (fewer than 50 pixels).
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib


def decode(path: str) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, unfiltered pixel rows concatenated)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError(f"{path}: no IHDR")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are handled (depth {depth}, colour type {color})")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    out = bytearray(height * stride)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ValueError(f"{path}: bad filter {kind} in row {y}")
        out[y * stride:(y + 1) * stride] = row
        previous = row
    return width, height, bpp, bytes(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("png")
    p.add_argument("--min-ink", type=float, default=0.02, help="least share of non-white pixels")
    p.add_argument("--color", action="append", default=[], help="hex RRGGBB that must appear (±24 per channel)")
    args = p.parse_args()
    width, height, bpp, pixels = decode(args.png)
    wanted = [tuple(int(c[i:i + 2], 16) for i in (0, 2, 4)) for c in args.color]
    ink, found = 0, [0] * len(wanted)
    for i in range(0, len(pixels), bpp):
        r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
        if r < 245 or g < 245 or b < 245:
            ink += 1
            for k, (wr, wg, wb) in enumerate(wanted):
                if abs(r - wr) <= 24 and abs(g - wg) <= 24 and abs(b - wb) <= 24:
                    found[k] += 1
    share = ink / (width * height)
    print(f"{args.png}: {width}x{height}, non-white pixels {share:.1%}"
          + "".join(f", #{c}: {n} px" for c, n in zip(args.color, found)))
    ok = share >= args.min_ink and all(n >= 50 for n in found)
    if not ok:
        print(f"{args.png}: looks blank or lacks the figure colours", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
