#!/usr/bin/env python3
"""More pedestrian frames from the same footage, and a stream of other footage (issue 12).

    tools/make_pedestrian_venv.sh                       # → .cache/ped-venv (opencv, numpy, …)
    .cache/ped-venv/bin/python tools/make_pedestrian_crops.py

Why: certifying a 0.5 % miss budget at the first active exit (0.25 % there, Eq. 3's split)
with no hidden pedestrian needs N ≥ ln 0.05 / ln(1 − 0.0025) ≈ 1 197 validation frames the
detector calls pedestrian (`ExitPolicy.certifiedMisses`); the full frame and its four tiles of
every 3rd time step gave 168. This script makes more views of each time step of vtest.avi
(795 frames, 768×576) at several positions and scales, and a stream of *other* footage for the
"no pedestrian" check.

1. `.cache/pedestrian/crops/`: per time step t, 23 views with the frame's 4:3 aspect, named
   `f{t:03d}_{scale}_{x}{y}.jpg` so that name order is time order (all views of one time step
   are adjacent, and the experiment's time-ordered split — e.g. `--split-times 397,556` for
   50/20/30 — keeps every view of a time step in one part: no near-duplicate crosses a split):
     s100  the full frame                                   1 view
     s075  576×432 at x ∈ {0, 192},      y ∈ {0, 144}        4 views
     s050  384×288 at x ∈ {0, 192, 384}, y ∈ {0, 144, 288}   9 views (the old tiles are the corners)
     s038  288×216 at x ∈ {0, 240, 480}, y ∈ {0, 180, 360}   9 views
   JPEG quality 90, as tools/make_pedestrian_detector.py writes the frames. Which view shows a
   pedestrian is decided by the detector (the teacher) when the stream runs, never here.
2. `.cache/pedestrian/other/`: other real footage from the same Debian package (opencv-doc's
   examples/data): every 4th frame of `tree.avi` (320×240) and the still
   street/building photographs `building.jpg`, `home.jpg`, `leuvenA.jpg`, `leuvenB.jpg`, each as
   the full image and its four quadrant tiles. The experiment runs them through the detector:
   the ones it calls "none" are the empty-street stream whose false warnings are compared with
   the rate the validation frames predict.
Deterministic: the same inputs write the same files. Needs the footage fetched by
tools/make_pedestrian_detector.py (it is fetched here when missing, without the conversion).
"""
import argparse
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "pedestrian")
DATA = os.path.join(CACHE, "opencv-doc", "usr", "share", "doc", "opencv-doc", "examples", "data")
STILLS = ["building.jpg", "home.jpg", "leuvenA.jpg", "leuvenB.jpg"]


def views(width, height):
    """(name, x, y, w, h) of the 23 views of a width×height frame (4:3), in name order."""
    out = []
    for scale, name, steps in ((1.0, "s100", 1), (0.75, "s075", 2), (0.5, "s050", 3), (0.375, "s038", 3)):
        w, h = int(round(width * scale)), int(round(height * scale))
        for ix in range(steps):
            for iy in range(steps):
                x = 0 if steps == 1 else (width - w) * ix // (steps - 1)
                y = 0 if steps == 1 else (height - h) * iy // (steps - 1)
                out.append((f"{name}_{ix}{iy}", x, y, w, h))
    return sorted(out)


def footage():
    """vtest.avi (fetched as tools/make_pedestrian_detector.py does) and opencv-doc's data folder."""
    video = os.path.join(CACHE, "vtest.avi")
    if not os.path.exists(video) or not os.path.isdir(DATA):
        os.makedirs(CACHE, exist_ok=True)
        debs = glob.glob(os.path.join(CACHE, "opencv-doc_*.deb"))
        if not debs:
            subprocess.check_call(["apt-get", "download", "opencv-doc"], cwd=CACHE)
            debs = glob.glob(os.path.join(CACHE, "opencv-doc_*.deb"))
        subprocess.check_call(["dpkg", "-x", debs[0], os.path.join(CACHE, "opencv-doc")])
        if not os.path.exists(video):
            with open(os.path.join(DATA, "vtest.avi"), "rb") as src, open(video, "wb") as dst:
                dst.write(src.read())
    return video


def crops(video, out):
    import cv2
    os.makedirs(out, exist_ok=True)
    capture = cv2.VideoCapture(video)
    t = 0
    written = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        for name, x, y, vw, vh in views(w, h):
            cv2.imwrite(os.path.join(out, f"f{t:03d}_{name}.jpg"), frame[y:y + vh, x:x + vw], [cv2.IMWRITE_JPEG_QUALITY, 90])
            written += 1
        t += 1
    print(f"crops: {t} time steps × {written // max(t, 1)} views = {written} frames in {out}")


def other(out):
    import cv2
    os.makedirs(out, exist_ok=True)
    written = 0

    def save(stem, image):
        nonlocal written
        h, w = image.shape[:2]
        parts = {"full": image, "tl": image[:h // 2, :w // 2], "tr": image[:h // 2, w // 2:],
                 "bl": image[h // 2:, :w // 2], "br": image[h // 2:, w // 2:]}
        for name, view in parts.items():
            cv2.imwrite(os.path.join(out, f"{stem}_{name}.jpg"), view, [cv2.IMWRITE_JPEG_QUALITY, 90])
            written += 1

    capture = cv2.VideoCapture(os.path.join(DATA, "tree.avi"))
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 4 == 0:
            save(f"tree{index:03d}", frame)
        index += 1
    for still in STILLS:
        image = cv2.imread(os.path.join(DATA, still))
        if image is None:
            sys.exit(f"cannot read {still} from {DATA}")
        save("still_" + os.path.splitext(still)[0], image)
    print(f"other footage: tree.avi ({index} frames, every 4th) and {len(STILLS)} stills → {written} frames in {out}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crops", default=os.path.join(CACHE, "crops"))
    p.add_argument("--other", default=os.path.join(CACHE, "other"))
    a = p.parse_args()
    os.chdir(ROOT)
    crops(footage(), a.crops)
    other(a.other)
