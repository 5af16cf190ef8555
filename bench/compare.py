"""One-command benchmark: SelfXit vs ONNX Runtime on the same models.

    python3 bench/make_bench_models.py     # once: full-size models into .cache/models/
    swift build -c release                 # builds .build/release/selfxit-bench
    python3 bench/compare.py               # all rows, 2 threads
    python3 bench/compare.py --threads 1 --iters 10 --rows resnet18-b1 resnet50-b8

Rows (name: model file, batch):
    resnet18-b1, resnet18-b32      resnet18-w64-28.onnx (CIFAR-style ResNet-18, 1×28×28)
    resnet50-b1, resnet50-b8       resnet50-224.onnx
    mobilenetv2-b1, mobilenetv2-b8 mobilenetv2-224.onnx

For each row ORT (bench/ort_bench.py) and SelfXit (`selfxit-bench --model
PATH --batch N --threads T --iters K --warmup W --json`, which prints
{"median_ms", "p90_ms", "peak_rss_mb"}) each run in their own fresh
subprocess, alternately (ORT, ours, ORT, ours, ... for --repeats rounds), with
the same thread count.  The reported latency is the median of the per-run
medians.  Prints a Markdown table; --json-out also saves the raw results.
If the selfxit binary is missing the table is produced with ORT only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ort_bench  # noqa: E402

ROWS = {
    "resnet18-b1": ("ResNet-18 w64 28×28", "resnet18-w64-28.onnx", 1),
    "resnet18-b32": ("ResNet-18 w64 28×28", "resnet18-w64-28.onnx", 32),
    "resnet50-b1": ("ResNet-50 224", "resnet50-224.onnx", 1),
    "resnet50-b8": ("ResNet-50 224", "resnet50-224.onnx", 8),
    "mobilenetv2-b1": ("MobileNetV2 224", "mobilenetv2-224.onnx", 1),
    "mobilenetv2-b8": ("MobileNetV2 224", "mobilenetv2-224.onnx", 8),
}


def run_selfxit(binary, model, batch, threads, iters, warmup, timeout):
    cmd = [binary, "--model", model, "--batch", str(batch), "--threads", str(threads),
           "--iters", str(iters), "--warmup", str(warmup), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{' '.join(cmd)} printed no JSON object:\n{proc.stdout[-2000:]}")


def fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="alternating rounds per engine and row")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), metavar="ROW",
                   help="subset of rows: " + ", ".join(ROWS))
    p.add_argument("--models-dir", default=os.path.join(ROOT, ".cache", "models"))
    p.add_argument("--selfxit-bin", default=os.path.join(ROOT, ".build", "release", "selfxit-bench"))
    p.add_argument("--ort-only", action="store_true", help="skip SelfXit even if the binary exists")
    p.add_argument("--timeout", type=float, default=900, help="seconds per subprocess")
    p.add_argument("--json-out", help="also write raw results here")
    args = p.parse_args(argv)

    missing = sorted({ROWS[r][1] for r in args.rows if not os.path.exists(os.path.join(args.models_dir, ROWS[r][1]))})
    if missing:
        raise SystemExit(f"missing benchmark models in {args.models_dir}: {', '.join(missing)}\n"
                         f"make them with: python3 bench/make_bench_models.py --out {args.models_dir}")

    binary = None
    if not args.ort_only:
        cand = args.selfxit_bin
        if os.path.sep not in cand:
            cand = shutil.which(cand) or cand
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            binary = cand
        else:
            print(f"NOTE: SelfXit benchmark binary not found at {args.selfxit_bin}; "
                  f"build it with `swift build -c release --product selfxit-bench` or pass --selfxit-bin. "
                  f"Reporting ONNX Runtime only.\n", file=sys.stderr)

    results = []
    for row in args.rows:
        label, fname, batch = ROWS[row]
        model = os.path.join(args.models_dir, fname)
        ort_runs, our_runs, our_error = [], [], None
        for _ in range(args.repeats):
            ort_runs.append(ort_bench.measure(model, batch, args.threads, args.iters, args.warmup,
                                              timeout=args.timeout))
            if binary and our_error is None:
                try:
                    our_runs.append(run_selfxit(binary, model, batch, args.threads, args.iters,
                                                args.warmup, args.timeout))
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
                    our_error = str(e)
                    print(f"WARNING: selfxit-bench failed on {row}: {e}", file=sys.stderr)
        ort_ms = statistics.median(r["median_ms"] for r in ort_runs)
        ort_rss = max(r["peak_rss_mb"] for r in ort_runs)
        our_ms = statistics.median(r["median_ms"] for r in our_runs) if our_runs else None
        our_rss = max(r.get("peak_rss_mb", 0.0) for r in our_runs) if our_runs else None
        res = {"row": row, "model": label, "file": fname, "batch": batch, "threads": args.threads,
               "ort_ms": ort_ms, "ours_ms": our_ms,
               "ratio": (our_ms / ort_ms) if our_ms is not None else None,
               "ort_rss_mb": ort_rss, "ours_rss_mb": our_rss,
               "ort_runs": ort_runs, "ours_runs": our_runs, "ours_error": our_error}
        results.append(res)
        print(f"  {row}: ORT {ort_ms:.2f} ms, ours {fmt(our_ms)} ms", file=sys.stderr, flush=True)

    print(f"\nThreads: {args.threads}, iters: {args.iters}, warmup: {args.warmup}, repeats: {args.repeats}; "
          f"latency = median per batch.\n")
    print("| model | batch | ORT ms | ours ms | ours/ORT | ORT peak RSS MB | ours peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['model']} | {r['batch']} | {fmt(r['ort_ms'])} | {fmt(r['ours_ms'])} | "
              f"{fmt(r['ratio'])} | {fmt(r['ort_rss_mb'], 0)} | {fmt(r['ours_rss_mb'], 0)} |")
    base = max((run.get("baseline_rss_mb", 0.0) for r in results for run in r["ort_runs"]), default=0.0)
    print(f"\nORT peak RSS includes ~{base:.0f} MB for the Python interpreter + numpy + onnxruntime "
          f"import (before any model is loaded).")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"threads": args.threads, "iters": args.iters, "warmup": args.warmup,
                       "selfxit_bin": binary, "rows": results}, f, indent=2)


if __name__ == "__main__":
    main()
