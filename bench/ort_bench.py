"""Time ONNX Runtime (CPUExecutionProvider) on one model.

    python3 bench/ort_bench.py --model .cache/models/resnet50-224.onnx \\
        --batch 8 --threads 2 --iters 20 --warmup 3 --json

Session: intra_op_num_threads=--threads, inter_op_num_threads=1,
ORT_SEQUENTIAL, ORT_ENABLE_ALL.  Input: seeded N(0,1) float32 of shape
[batch, *model input dims] (symbolic H/W need --hw H W).

Reports median / p90 latency per batch (ms), median ms per image and the
peak RSS of the process that ran ORT.  The timing runs in a fresh child
process (this script re-invoked with --child), so ru_maxrss there is the ORT
run alone, not this wrapper or a benchmark driver.  It still includes the
Python interpreter, numpy and the onnxruntime import; that part is reported
separately as baseline_rss_mb (peak RSS before the session is created).  --json prints one JSON
object: {"median_ms", "p90_ms", "ms_per_image", "peak_rss_mb", ...}.

`--child --serve` is the worker bench/compare.py drives in turns with SelfXit's: after the
warm-up it prints `ready`, then per `run K` line on stdin runs K batches back to back (printing
their ms on one line) until `quit`, and prints the JSON object (peak RSS) last.  Its session
stops its threads' spinning when a run ends (`session.force_spinning_stop`), so that an idle
ORT does not take cycles from the engine timed next; spinning within a run is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def run_child(args) -> dict:
    import numpy as np
    import onnxruntime as ort

    # Peak RSS of the interpreter + numpy + onnxruntime import, before any model is loaded.
    base_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.serve:
        so.add_session_config_entry("session.force_spinning_stop", "1")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    inp = sess.get_inputs()[0]
    dims = list(inp.shape[1:])
    if args.hw:
        dims[-2:] = args.hw
    if not all(isinstance(d, int) for d in dims):
        raise SystemExit(f"model input {inp.shape} has symbolic non-batch dims; pass --hw H W")
    x = np.random.default_rng(0).standard_normal((args.batch, *dims)).astype(np.float32)
    feed = {inp.name: x}
    for _ in range(args.warmup):
        sess.run(None, feed)
    times = []
    if args.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if words == ["quit"]:
                break
            if len(words) != 2 or words[0] != "run" or not words[1].isdigit() or int(words[1]) < 1:
                raise SystemExit(f"--serve: expected 'run K' or 'quit', got {line.strip()!r}")
            burst = []
            for _ in range(int(words[1])):
                t = time.perf_counter()
                sess.run(None, feed)
                burst.append((time.perf_counter() - t) * 1e3)
            times += burst
            print(" ".join(f"{ms:.4f}" for ms in burst), flush=True)
    else:
        for _ in range(args.iters):
            t = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    median = float(np.median(times)) if times else 0.0
    p90 = float(np.percentile(times, 90)) if times else 0.0
    # ru_maxrss is in KiB on Linux.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "engine": "onnxruntime", "version": ort.__version__,
        "model": os.path.basename(args.model), "batch": args.batch, "threads": args.threads,
        "iters": args.iters, "warmup": args.warmup,
        "median_ms": round(median, 3), "p90_ms": round(p90, 3), "min_ms": round(times[0], 3) if times else 0.0,
        "ms_per_image": round(median / args.batch, 3),
        "load_ms": round(load_ms, 1), "peak_rss_mb": round(rss_mb, 1),
        "baseline_rss_mb": round(base_rss_mb, 1),
    }


def serve_command(model, batch, threads=2, warmup=3, hw=None):
    """The command line of a `--serve` worker (see the module docstring) and its environment."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--serve", "--model", model,
           "--batch", str(batch), "--threads", str(threads), "--warmup", str(warmup)]
    if hw:
        cmd += ["--hw", str(hw[0]), str(hw[1])]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return cmd, env


def measure(model, batch, threads=2, iters=20, warmup=3, hw=None, timeout=None) -> dict:
    """Run the benchmark in a fresh subprocess and return its result dict."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--json", "--model", model,
           "--batch", str(batch), "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup)]
    if hw:
        cmd += ["--hw", str(hw[0]), str(hw[1])]
    env = dict(os.environ)
    # Keep OpenMP/BLAS pools in the child from adding threads beyond --threads.
    env.setdefault("OMP_NUM_THREADS", str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ort_bench child failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--hw", type=int, nargs=2, metavar=("H", "W"), help="input H W for symbolic-size models")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not os.path.exists(args.model):
        raise SystemExit(f"no such model: {args.model}")

    if args.serve and not args.child:
        raise SystemExit("--serve is for the worker bench/compare.py starts (with --child)")
    if args.child:
        res = run_child(args)
    else:
        try:
            res = measure(args.model, args.batch, args.threads, args.iters, args.warmup, args.hw)
        except RuntimeError as e:
            raise SystemExit(str(e))
    if args.json or args.serve:
        print(json.dumps(res))
    else:
        print(f"{res['model']} batch {res['batch']} threads {res['threads']}: "
              f"median {res['median_ms']:.2f} ms, p90 {res['p90_ms']:.2f} ms, "
              f"{res['ms_per_image']:.2f} ms/image, peak RSS {res['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
