#!/usr/bin/env python3
"""Conformance of the engine with ONNX Runtime over the exported torchvision zoo (issue 13).

For every .cache/zoo/<name>-op<opset>.onnx made by tools/zoo_export.py:
  1. ONNX Runtime reference logits at batch 1 and 4 (cached as <name>-op<opset>.ort.npy);
  2. the engine, in a CHILD process (a crash or signal is recorded, not fatal to the run),
     loads the model and classifies the same inputs at batch 1 and 4;
  3. the raw outputs (engine: sx_infer_outputs) compared: softmax max |difference| ≤ 1e-4 and
     identical argmax, both batches; the logits' max difference relative to their largest
     magnitude is reported too (random weights make near-uniform softmaxes);
  4. speed: median seconds per batch-4 call of each, same thread count, same process pair,
     reported as the engine's time over ONNX Runtime's (the machine may be shared).

Writes a JSON line per model to .cache/zoo/results.jsonl and prints a table (Markdown with
--markdown). Needs onnxruntime + numpy (the tools venv: tools/zoo_venv.sh) and
SELFXIT_LIBRARY pointing at the built libselfxit.so. Exit status 1 when any model fails.

    python tools/zoo_conformance.py [--dir .cache/zoo] [--only a,b] [--threads 2] [--markdown]
"""
import argparse
import glob
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

TOLERANCE = 1e-4


def softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def ort_session(path: str, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def engine_child(path: str, x: np.ndarray, threads: int, repeats: int, queue) -> None:
    """Runs in a child process: load, classify batch 1 and 4, time batch 4."""
    try:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings", "python"))
        import selfxit
        start = time.perf_counter()
        with selfxit.Engine(path, threads=threads, max_batch=8) as engine:
            load = time.perf_counter() - start
            outputs = {}
            for batch in (1, 4):
                # The raw graph output (sx_infer_outputs), compared with ORT's as logits.
                outputs[batch] = next(iter(engine.infer_outputs(x[:batch]).values()))
            seconds = median_time(lambda: engine.infer_outputs(x), repeats) if repeats else None
        queue.put({"ok": True, "probabilities": outputs, "seconds": seconds, "load": load})
    except Exception as error:  # a refusal: the engine's own message
        queue.put({"ok": False, "error": f"{type(error).__name__}: {error}"})


def run_engine(path: str, x: np.ndarray, threads: int, repeats: int, timeout: float) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=engine_child, args=(path, x, threads, repeats, queue))
    child.start()
    result = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = queue.get(timeout=1)
            break
        except Exception:
            if not child.is_alive():
                break
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        child.join()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s", "crash": True}
    if result is None:
        code = child.exitcode
        what = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        return {"ok": False, "error": f"engine process {what} without a result", "crash": True}
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=".cache/zoo")
    parser.add_argument("--only", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed batch-4 calls (0: no timing)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    models = sorted(glob.glob(os.path.join(args.dir, "*-op*.onnx")))
    if only:
        models = [m for m in models if os.path.basename(m).rsplit("-op", 1)[0] in only]
    if not models:
        print(f"no models under {args.dir}: run tools/zoo_export.py first", file=sys.stderr)
        return 1
    rows = []
    log = open(os.path.join(args.dir, "results.jsonl"), "a")
    for path in models:
        base = os.path.basename(path)[:-5]
        name, opset = base.rsplit("-op", 1)
        x = np.load(os.path.join(args.dir, f"{name}.input.npy"))
        ref_path = os.path.join(args.dir, f"{base}.ort.npz")
        ort_seconds = None
        session = ort_session(path, args.threads)
        if os.path.exists(ref_path):
            refs = dict(np.load(ref_path))
        else:
            refs = {str(b): session.run(None, {session.get_inputs()[0].name: x[:b]})[0] for b in (1, 4)}
            np.savez(ref_path, **refs)
        if args.repeats:
            feed = {session.get_inputs()[0].name: x}
            ort_seconds = median_time(lambda: session.run(None, feed), args.repeats)
        del session
        result = run_engine(path, x, args.threads, args.repeats, args.timeout)
        row = {"model": name, "opset": int(opset), "ort_s": ort_seconds}
        if result["ok"]:
            diffs, logit_diffs, argmax_equal = [], [], True
            for b in (1, 4):
                ours, theirs = result["probabilities"][b].astype(np.float64), refs[str(b)].astype(np.float64)
                if ours.shape != theirs.shape or not np.isfinite(ours).all():
                    diffs.append(float("inf")); logit_diffs.append(float("inf")); argmax_equal = False
                    continue
                got, expected = softmax(ours), softmax(theirs)
                diffs.append(float(np.max(np.abs(got - expected))))
                argmax_equal &= bool((ours.argmax(1) == theirs.argmax(1)).all())
                # Random weights give near-uniform softmaxes: the logits themselves, relative to
                # their largest magnitude, show differences the softmax hides.
                logit_diffs.append(float(np.max(np.abs(ours - theirs)) / max(1.0, np.max(np.abs(theirs)))))
            row.update(max_diff=max(diffs), logit_rel_diff=max(logit_diffs), argmax_equal=argmax_equal, engine_s=result["seconds"], load_s=result["load"],
                       passed=max(diffs) <= TOLERANCE and argmax_equal)
        else:
            row.update(passed=False, error=result["error"], crash=result.get("crash", False))
        rows.append(row)
        log.write(json.dumps(row) + "\n")
        log.flush()
        status = "PASS" if row["passed"] else ("CRASH" if row.get("crash") else "FAIL")
        detail = row.get("error") or f"max softmax diff {row['max_diff']:.2e}, logits rel. {row['logit_rel_diff']:.1e}, argmax {'equal' if row['argmax_equal'] else 'DIFFERS'}"
        print(f"{status} {name} opset {opset}: {detail}", flush=True)
    print()
    if args.markdown:
        print("| model | opset | max softmax diff (b1, b4) | max logit diff (rel.) | argmax | engine b4 (s) | ORT b4 (s) | engine / ORT |")
        print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        if row["passed"] or "max_diff" in row:
            ratio = row["engine_s"] / row["ort_s"] if row.get("engine_s") and row.get("ort_s") else None
            cells = [row["model"], str(row["opset"]), f"{row['max_diff']:.1e}", f"{row['logit_rel_diff']:.1e}", "equal" if row["argmax_equal"] else "DIFFERS",
                     f"{row['engine_s']:.3f}" if row.get("engine_s") else "–", f"{row['ort_s']:.3f}" if row.get("ort_s") else "–",
                     f"{ratio:.2f}" if ratio else "–"]
        else:
            cells = [row["model"], str(row["opset"]), ("CRASH: " if row.get("crash") else "refused: ") + row["error"].replace("|", "/"), "", "", "", "", ""]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(cells))
    passed = sum(r["passed"] for r in rows)
    print(f"\n{passed}/{len(rows)} pass; {sum(bool(r.get('crash')) for r in rows)} crashes")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
