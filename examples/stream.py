#!/usr/bin/env python3
"""The camera loop in Python: a folder of frames, classified as they "arrive".

Reads PNG/JPEG frames (e.g. made by `tools/write_frames.py --out DIR --count N`; a frame's
label is taken from `label<digits>` in its file name when present), decodes each with
`Engine.decode_image` (Fashion-MNIST normalisation), submits it asynchronously at `--fps`, and
prints every result as the engine's worker thread delivers it. The first `--collect` frames
run with exits off (the backbone answers them and the engine records them); then the exits
are built from that traffic (`update_exits`) and the stream carries on with them. At the end
it prints a table: per-exit hit rate, mean FLOPs against the backbone, latency p50/p99 and
accuracy, before and after the exits.

    python3 examples/stream.py --model models/fmnist-resnet18-w16.onnx --frames DIR \\
        --fps 200 --collect 3000 --tolerance 0.01

Needs the `selfxit` package (bindings/python) and libselfxit.so (see bindings/python/README.md).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

try:
    import selfxit
except ImportError as e:  # running from a checkout without installing the bindings
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
    try:
        import selfxit
    except ImportError:
        sys.exit(f"stream.py: {e}")

MEAN, STD = 0.2860, 0.3530
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
LABEL = re.compile(r"label(\d+)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/fmnist-resnet18-w16.onnx")
    p.add_argument("--frames", required=True, help="folder of .png/.jpg/.jpeg frames")
    p.add_argument("--fps", type=float, default=200.0, help="frames submitted per second (0 = as fast as possible)")
    p.add_argument("--collect", type=int, default=3000, help="frames run with exits off before building them")
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--search-budget", type=int, default=4)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--min-samples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="kernel threads (0 = all cores)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N frames")
    p.add_argument("--load-exits", help="load exits from this bundle instead of collecting and building")
    p.add_argument("--save-exits", help="save the built exits to this bundle")
    p.add_argument("--quiet", action="store_true", help="do not print every result")
    return p.parse_args(argv)


def list_frames(folder: Path, limit: int) -> list[tuple[Path, int]]:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if limit > 0:
        files = files[:limit]
    out = []
    for f in files:
        m = LABEL.search(f.stem)
        out.append((f, int(m.group(1)) if m else -1))
    return out


class Stream:
    """Submits frames at a fixed rate and records every result."""

    def __init__(self, engine: selfxit.Engine, fps: float, quiet: bool):
        self.engine = engine
        self.period = 1.0 / fps if fps > 0 else 0.0
        self.quiet = quiet
        self.outstanding: collections.deque[int] = collections.deque()
        self.records: list[dict] = []
        self.lock = threading.Lock()

    def _callback(self, index: int, label: int, phase: str):
        def on_result(r: dict) -> None:
            rec = {"frame": index, "label": label, "phase": phase, "exit": r["exit_index"],
                   "class": r["class_index"], "confidence": r["confidence"], "flops": r["flops"],
                   "latency": r["latency_seconds"]}
            with self.lock:
                self.records.append(rec)
            if not self.quiet:
                where = "backbone" if rec["exit"] < 0 else f"exit {rec['exit']:>2}"
                name = CLASSES[rec["class"]] if 0 <= rec["class"] < len(CLASSES) else str(rec["class"])
                mark = "" if label < 0 else ("  ok" if rec["class"] == label else f"  WRONG (label {label})")
                print(f"frame {index:6d} [{phase:7s}] {where:8s} class {rec['class']} {name:12s} "
                      f"conf {rec['confidence']:.3f}  latency {rec['latency'] * 1e3:7.2f} ms{mark}", flush=True)
        return on_result

    def _release_finished(self) -> None:
        while self.outstanding and self.engine.wait(self.outstanding[0], 0):
            self.outstanding.popleft()

    def drain(self) -> None:
        while self.outstanding:
            self.engine.wait(self.outstanding.popleft())

    def run(self, frames: list[tuple[Path, int]], first_index: int, phase: str) -> None:
        start = time.perf_counter()
        for k, (path, label) in enumerate(frames):
            if self.period:
                delay = start + k * self.period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            x = self.engine.decode_image(path.read_bytes(), scale=1 / 255, mean=MEAN, std=STD)
            callback = self._callback(first_index + k, label, phase)
            while True:
                try:
                    self.outstanding.append(self.engine.submit_async(x, callback))
                    break
                except selfxit.Error as e:
                    if e.status != selfxit.Status.BUSY or not self.outstanding:
                        raise
                    self.engine.wait(self.outstanding.popleft())  # queue full: wait for the oldest
            self._release_finished()


def percentile(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def print_report(report: dict) -> None:
    exits = report.get("exits", [])
    print(f"\nexit build: {report.get('samples', '?')} samples "
          f"(train {report.get('train_samples', '?')}, validation {report.get('validation_samples', '?')}, "
          f"test {report.get('test_samples', '?')}) in {report.get('seconds', float('nan')):.1f} s")
    print(f"  {'cand':>4} {'active':>6} {'threshold':>9} {'val.agree':>9} {'test hit':>8} {'test agree':>10}  head")
    for ex in exits:
        print(f"  {ex.get('candidate_index', '?'):>4} {('yes' if ex.get('active') else 'no'):>6} "
              f"{ex.get('threshold', float('nan')):9.3f} {ex.get('validation_agreement', float('nan')):9.3f} "
              f"{ex.get('test_hit_rate', float('nan')):8.3f} {ex.get('test_agreement', float('nan')):10.3f}  "
              f"{ex.get('architecture') or '(discarded)'}")
    ratio = next((v for k, v in report.items() if "ratio" in k), None)
    agreement = report.get("test_agreement")
    if agreement is not None:
        print(f"  held-out agreement with the backbone {agreement:.4f}"
              + (f", FLOPs {ratio:.3f} of the backbone" if isinstance(ratio, (int, float)) else ""))


def print_table(records: list[dict], backbone_flops: float) -> None:
    print("\nphase     frames  accuracy  mean FLOPs  vs backbone  latency p50   p99")
    for phase in ("collect", "exits"):
        rs = [r for r in records if r["phase"] == phase]
        if not rs:
            continue
        labelled = [r for r in rs if r["label"] >= 0]
        acc = (sum(r["class"] == r["label"] for r in labelled) / len(labelled)) if labelled else float("nan")
        flops = float(np.mean([r["flops"] for r in rs]))
        lat = [r["latency"] * 1e3 for r in rs]
        print(f"{phase:8s} {len(rs):7d}  {acc:8.4f}  {flops / 1e6:8.2f} M  {flops / backbone_flops:10.3f}  "
              f"{percentile(lat, 50):8.2f} ms {percentile(lat, 99):6.2f} ms")
    rs = [r for r in records if r["phase"] == "exits"]
    if rs:
        print("\nwith exits: where the frames left")
        print("  exit      hits  hit rate  accuracy  mean FLOPs")
        by_exit = collections.defaultdict(list)
        for r in rs:
            by_exit[r["exit"]].append(r)
        for ex in sorted(by_exit, key=lambda e: (e < 0, e)):
            group = by_exit[ex]
            labelled = [r for r in group if r["label"] >= 0]
            acc = (sum(r["class"] == r["label"] for r in labelled) / len(labelled)) if labelled else float("nan")
            name = "backbone" if ex < 0 else f"{ex:8d}"
            print(f"  {name:8s} {len(group):5d}  {len(group) / len(rs):8.3f}  {acc:8.4f}  "
                  f"{np.mean([r['flops'] for r in group]) / 1e6:8.2f} M")


def main(argv=None) -> int:
    args = parse_args(argv)
    frames = list_frames(Path(args.frames), args.limit)
    if not frames:
        print(f"no .png/.jpg frames in {args.frames}", file=sys.stderr)
        return 1
    with selfxit.Engine(args.model, threads=args.threads, seed=args.seed) as engine:
        info = engine.info
        print(f"selfxit {selfxit.version()} ({selfxit.library_path}); model {args.model}: input {info['input_shape']}, "
              f"{info['num_classes']} classes, {info['backbone_flops'] / 1e6:.1f} MFLOPs, "
              f"{info['num_candidates']} exit candidates; {len(frames)} frames at {args.fps:g} fps")
        stream = Stream(engine, args.fps, args.quiet)
        collect = 0
        if args.load_exits:
            engine.load_exits(args.load_exits)
            print(f"loaded exits from {args.load_exits}: {engine.info['num_active_exits']} in service")
        else:
            collect = min(max(args.collect, 0), len(frames))
        if collect:
            engine.set_exits_enabled(False)
            print(f"\n-- {collect} frames with exits off (collecting) --")
            stream.run(frames[:collect], 0, "collect")
            stream.drain()
            if collect < len(frames):
                print(f"\n-- building exits from {engine.info['collected_samples']} collected frames "
                      f"(tolerance {args.tolerance}) --", flush=True)
                t0 = time.perf_counter()
                report = engine.update_exits(tolerance=args.tolerance, search_budget=args.search_budget,
                                             seed=args.seed, min_samples=args.min_samples, epochs=args.epochs)
                print(f"built in {time.perf_counter() - t0:.1f} s")
                print_report(report)
                if args.save_exits:
                    engine.save_exits(args.save_exits)
                    print(f"saved exits to {args.save_exits}")
        engine.set_exits_enabled(True)
        engine.reset_stats()
        rest = frames[collect:]
        if rest:
            print(f"\n-- {len(rest)} frames with exits on --")
            stream.run(rest, collect, "exits")
        stream.drain()
        print_table(stream.records, float(info["backbone_flops"]))
        s = engine.stats_struct()
        print(f"\nengine statistics (exits phase): {s['samples']} samples, mean FLOPs {s['mean_flops'] / 1e6:.2f} M "
              f"of {s['backbone_flops'] / 1e6:.2f} M, latency p50 {s['latency_p50'] * 1e3:.2f} ms "
              f"p99 {s['latency_p99'] * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
