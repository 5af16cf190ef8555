"""One-command benchmark: SelfXit vs ONNX Runtime on the same models.

    python3 bench/make_bench_models.py     # once: full-size models into .cache/models/
    swift build -c release                 # builds .build/release/selfxit-bench
    python3 bench/compare.py               # all rows, 2 threads
    python3 bench/compare.py --threads 1 --iters 10 --rows resnet18-b1 resnet50-b8

Rows (name: model file, batch):
    resnet18-b1, resnet18-b32      resnet18-w64-28.onnx (CIFAR-style ResNet-18, 1×28×28)
    resnet50-b1, resnet50-b8       resnet50-224.onnx
    mobilenetv2-b1, mobilenetv2-b8 mobilenetv2-224.onnx
  torchvision's (tools/export_torchvision_bench.py; --torchvision adds them to the default rows):
    tv-resnet50-b1, -b8            tv-resnet50.onnx (torchvision ResNet-50)
    tv-mobilenetv3l-b1, -b8        tv-mobilenetv3l.onnx (MobileNetV3-Large)
    tv-efficientnetb0-b1, -b8      tv-efficientnetb0.onnx (EfficientNet-B0)
    tv-regnety400mf-b1, -b8        tv-regnety400mf.onnx (RegNetY-400MF)
    tv-densenet121-b1, -b8         tv-densenet121.onnx (DenseNet-121)

--isa avx2|avx512|scalar|neon sets SELFXIT_GEMM_ISA for SelfXit's worker only (ORT keeps its own
dispatch): e.g. the AVX2 kernel configuration measured on an AVX-512 machine, labelled as such.
--cpu-mask avx2 runs both workers under tools/cpuid_mask.c (an LD_PRELOAD shim, built into
.build/cpuid_mask.so on first use): CPUID answers without AVX-512, so ONNX Runtime's MLAS picks its
AVX2 + FMA kernels and SelfXit its AVX2 configuration — the AVX2 ratio measured on an AVX-512 core
(same caches; not a Zen 2). Refused where the CPU or kernel lacks CPUID faulting.

For each row ORT (`bench/ort_bench.py --child --serve`) and SelfXit (`selfxit-bench
--model PATH --batch N --threads T --warmup W --serve`) run in two worker processes
started side by side, each warmed up, and the driver lets them take turns (ORT, ours,
ours, ORT, ...: each engine goes first half the time), with the same thread count.  A
turn is a burst of 5 batches back to back, the first untimed (it finds the caches
full of the other engine's data and its threads asleep), after a 1 ms pause (so
neither engine's idle threads spin into the other's turn).  --repeats starts a fresh
pair of workers per round, with at least --iters timed batches each per round.  An
engine's latency is the median of all its timed batches.  The ratio is the median over
all turns of one turn's median against the other engine's turn beside it: a shared VM
moves between speed states (the same model 35 or 57 ms, minutes apart; steady within a
turn), and two medians pooled over rounds in different states can land outside every
round's ratio (rounds 1.13 and 0.86, pooled 0.77; that pooled ratio is still in the JSON
as pooled_ratio, with round_ratios and turn_ratios).  Peak RSS is each worker's own.
Prints a Markdown table; --json-out also saves the raw results.
If the selfxit binary is missing the table is produced with ORT only.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

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
DEFAULT_ROWS = list(ROWS)
TORCHVISION_ROWS = {}
for _key, _label in [("resnet50", "ResNet-50 (torchvision)"), ("mobilenetv3l", "MobileNetV3-Large (torchvision)"),
                     ("efficientnetb0", "EfficientNet-B0 (torchvision)"), ("regnety400mf", "RegNetY-400MF (torchvision)"),
                     ("densenet121", "DenseNet-121 (torchvision)")]:
    for _batch in (1, 8):
        TORCHVISION_ROWS[f"tv-{_key}-b{_batch}"] = (_label, f"tv-{_key}.onnx", _batch)
ROWS.update(TORCHVISION_ROWS)


class Worker:
    """A `--serve` benchmark worker: prints `ready`, times K batches per `run K`, JSON at `quit`."""

    def __init__(self, name, cmd, env, timeout):
        self.name, self.cmd, self.timeout = name, cmd, timeout
        # stderr to a file: a chatty worker must not block on a full pipe nobody reads.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self._expect_line("ready")

    def _read_line(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            self.proc.wait()
            self.stderr.seek(0)
            err = self.stderr.read()[-2000:] if ready else "(timed out)"
            raise RuntimeError(f"{' '.join(self.cmd)} stopped answering:\n{err.strip()}")
        return line.strip()

    def _expect_line(self, expected):
        line = self._read_line()
        if line != expected:
            raise RuntimeError(f"{' '.join(self.cmd)} printed {line!r}, expected {expected!r}")

    def run(self, count):
        """Milliseconds of each of `count` batches run back to back."""
        self.proc.stdin.write(f"run {count}\n")
        self.proc.stdin.flush()
        return [float(ms) for ms in self._read_line().split()]

    def finish(self):
        """The worker's closing JSON object (peak RSS)."""
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        summary = json.loads(self._read_line())
        self.proc.wait(timeout=self.timeout)
        return summary


# Batches per turn (the first of them untimed).
BURST = 5


CPUID_MASK_SOURCE = os.path.join(ROOT, "tools", "cpuid_mask.c")
CPUID_MASK_LIB = os.path.join(ROOT, ".build", "cpuid_mask.so")


def cpuid_mask_library():
    """tools/cpuid_mask.c built as .build/cpuid_mask.so (rebuilt when the source is newer), checked
    to hide AVX-512 from a child process; exits with the reason where it cannot."""
    if not os.path.exists(CPUID_MASK_LIB) or os.path.getmtime(CPUID_MASK_LIB) < os.path.getmtime(CPUID_MASK_SOURCE):
        cc = shutil.which("clang") or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("--cpu-mask needs a C compiler to build tools/cpuid_mask.c")
        os.makedirs(os.path.dirname(CPUID_MASK_LIB), exist_ok=True)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", CPUID_MASK_LIB, CPUID_MASK_SOURCE], check=True)
    env = dict(os.environ, LD_PRELOAD=CPUID_MASK_LIB, CPUID_MASK_CHECK="1")
    check = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True)
    if "AVX512F hidden" not in check.stderr:
        raise SystemExit(f"--cpu-mask avx2: the shim could not hide AVX-512 here: {check.stderr.strip() or 'no report'}")
    return CPUID_MASK_LIB


def measure_round(model, batch, threads, iters, warmup, binary, timeout, isa=None, preload=None):
    """One round: fresh workers, `iters` batches each, interleaved. Returns {engine: (turns, summary)},
    `turns` the timed batches (ms) of each of the engine's turns in order. `preload`: a library
    both workers load first (LD_PRELOAD; the CPUID mask)."""
    cmd, env = ort_bench.serve_command(model, batch, threads, warmup)
    env.pop("SELFXIT_GEMM_ISA", None)
    if preload:
        env["LD_PRELOAD"] = preload
    workers = [Worker("ort", cmd, env, timeout)]
    if binary:
        our_env = dict(os.environ)
        if preload:
            # Swift's runtime backtracer would take the CPUID faults' SIGSEGV from the shim.
            our_env.update(LD_PRELOAD=preload, SWIFT_BACKTRACE="enable=no")
        if isa:
            our_env["SELFXIT_GEMM_ISA"] = isa
        workers.append(Worker("ours", [binary, "--model", model, "--batch", str(batch), "--threads", str(threads),
                                       "--warmup", str(warmup), "--serve"], our_env, timeout))
    turns = {w.name: [] for w in workers}
    try:
        for i in range((iters + BURST - 2) // (BURST - 1)):
            for w in (workers if i % 2 == 0 else workers[::-1]):
                time.sleep(0.001)
                # The burst's first batch finds the caches holding the other engine's data and
                # its threads asleep: run, not timed.
                turns[w.name].append(w.run(BURST)[1:])
        return {w.name: (turns[w.name], w.finish()) for w in workers}
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()


def fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="rounds per row, each with fresh workers")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=None, metavar="ROW",
                   help="subset of rows: " + ", ".join(ROWS))
    p.add_argument("--torchvision", action="store_true", help="add the torchvision rows to the default rows")
    p.add_argument("--isa", choices=["avx512", "avx2", "neon", "scalar"],
                   help="SELFXIT_GEMM_ISA for SelfXit's worker (its kernel configuration)")
    p.add_argument("--cpu-mask", choices=["avx2"],
                   help="run both engines under tools/cpuid_mask.c: the CPU seen without AVX-512")
    p.add_argument("--models-dir", default=os.path.join(ROOT, ".cache", "models"))
    p.add_argument("--selfxit-bin", default=os.path.join(ROOT, ".build", "release", "selfxit-bench"))
    p.add_argument("--ort-only", action="store_true", help="skip SelfXit even if the binary exists")
    p.add_argument("--timeout", type=float, default=900, help="seconds a worker may take to answer")
    p.add_argument("--json-out", help="also write raw results here")
    args = p.parse_args(argv)
    if args.iters < 1 or args.repeats < 1 or args.threads < 1:
        p.error("--iters, --repeats and --threads must be at least 1")
    if args.rows is None:
        args.rows = DEFAULT_ROWS + (list(TORCHVISION_ROWS) if args.torchvision else [])

    missing = sorted({ROWS[r][1] for r in args.rows if not os.path.exists(os.path.join(args.models_dir, ROWS[r][1]))})
    if missing:
        raise SystemExit(f"missing benchmark models in {args.models_dir}: {', '.join(missing)}\n"
                         f"make them with: python3 bench/make_bench_models.py --out {args.models_dir}"
                         f" (tv-*: tools/export_torchvision_bench.py --out {args.models_dir})")

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

    preload = cpuid_mask_library() if args.cpu_mask else None
    results = []
    for row in args.rows:
        label, fname, batch = ROWS[row]
        model = os.path.join(args.models_dir, fname)
        ort_times, our_times, ort_rss, our_rss, round_ratios, turn_ratios = [], [], [], [], [], []
        for _ in range(args.repeats):
            try:
                measured = measure_round(model, batch, args.threads, args.iters, args.warmup, binary, args.timeout,
                                         args.isa, preload)
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, ValueError) as e:
                raise SystemExit(f"{row}: {e}")
            ort_turns = measured["ort"][0]
            ort_round = [t for turn in ort_turns for t in turn]
            ort_times += ort_round
            ort_rss.append(measured["ort"][1]["peak_rss_mb"])
            baseline_rss = measured["ort"][1].get("baseline_rss_mb", 0.0)
            if "ours" in measured:
                our_turns = measured["ours"][0]
                our_round = [t for turn in our_turns for t in turn]
                our_times += our_round
                our_rss.append(measured["ours"][1]["peak_rss_mb"])
                round_ratios.append(statistics.median(our_round) / statistics.median(ort_round))
                turn_ratios += [statistics.median(a) / statistics.median(b) for a, b in zip(our_turns, ort_turns)]
        ort_ms = statistics.median(ort_times)
        our_ms = statistics.median(our_times) if our_times else None
        res = {"row": row, "model": label, "isa": args.isa or "default", "cpu_mask": args.cpu_mask, "file": fname, "batch": batch, "threads": args.threads,
               "ort_ms": ort_ms, "ours_ms": our_ms,
               "ratio": statistics.median(turn_ratios) if turn_ratios else None,
               "pooled_ratio": (our_ms / ort_ms) if our_ms is not None else None,
               "round_ratios": round_ratios, "turn_ratios": turn_ratios,
               "ort_rss_mb": max(ort_rss), "ours_rss_mb": max(our_rss) if our_rss else None,
               "baseline_rss_mb": baseline_rss, "ort_times_ms": ort_times, "ours_times_ms": our_times}
        results.append(res)
        print(f"  {row}: ORT {ort_ms:.2f} ms, ours {fmt(our_ms)} ms, ratio per round "
              f"{' '.join(f'{r:.2f}' for r in round_ratios) or 'n/a'}", file=sys.stderr, flush=True)

    if args.isa:
        print(f"\nSelfXit ran with SELFXIT_GEMM_ISA={args.isa} (its {args.isa} kernel configuration); ORT its own dispatch.")
    if args.cpu_mask:
        print("\nBoth engines ran under tools/cpuid_mask.c: CPUID without AVX-512, so each took its AVX2 + FMA kernels.")
    print(f"\nThreads: {args.threads}, iters: {args.iters}, warmup: {args.warmup}, repeats: {args.repeats}; "
          f"latency = median per batch, the engines taking turns of {BURST} batches (the first untimed); "
          f"ours/ORT = median over the turns of each turn's ratio to the other engine's turn beside it.\n")
    print("| model | batch | ORT ms | ours ms | ours/ORT | ORT peak RSS MB | ours peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['model']} | {r['batch']} | {fmt(r['ort_ms'])} | {fmt(r['ours_ms'])} | "
              f"{fmt(r['ratio'])} | {fmt(r['ort_rss_mb'], 0)} | {fmt(r['ours_rss_mb'], 0)} |")
    base = max((r["baseline_rss_mb"] for r in results), default=0.0)
    print(f"\nORT peak RSS includes ~{base:.0f} MB for the Python interpreter + numpy + onnxruntime "
          f"import (before any model is loaded).")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"threads": args.threads, "iters": args.iters, "warmup": args.warmup, "isa": args.isa, "cpu_mask": args.cpu_mask,
                       "selfxit_bin": binary, "rows": results}, f, indent=2)


if __name__ == "__main__":
    main()
