"""Per-node time of SelfXit beside ONNX Runtime's profiler, matched by node name.

    .cache/isa-venv/bin/python bench/profile_compare.py --model .cache/models/tv-densenet121.onnx \\
        --batch 1 --threads 2 --iters 20 [--bench .build/release/selfxit-bench] [--rounds 5] [--sort]

ORT: CPUExecutionProvider, intra_op_num_threads=--threads, ORT_ENABLE_ALL (as bench/ort_bench.py),
enable_profiling; each node's `<name>_kernel_time` events over --iters runs after a warm-up, best
(minimum) per node. SelfXit: `selfxit-bench --profile --plan-order`, best of --iters per node
(it runs each node on the whole batch, also where a real run goes sample-parallel).

Nodes are matched by name. Both engines fuse (ORT: Conv+BN+Add+Relu into NCHWc convolutions it
names after the value they write, '.../relu/Relu_output_0_nchwc'; SelfXit: BN/ReLU/Add into the
conv, keeping the conv's name): ORT's names are mapped through the model to the node writing that
value and back through BN/activations/Add to the node SelfXit kept (`rename_ort_nodes`), so the
convolutions match one to one; a node only one side ran (ORT's Concat where SelfXit fused it,
its layout reorders) is listed with the other side empty, and its time still counts in its
engine's total. The table lists SelfXit's plan order, then
ORT-only nodes; --sort orders by the time lost (ours − ORT) instead. Per-operator totals follow.
--rounds N alternates the two profiles N times and keeps each node's best over all of them: on a
shared VM one profile of each engine, taken a minute apart, can compare two machine states.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile


def keep_best(best, times):
    """Folds one profile's node times into `best`, each node keeping its minimum."""
    for name, ms in times.items():
        best[name] = min(ms, best.get(name, ms))


def ort_profile(model, batch, threads, iters, warmup, hw=None):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tmp = tempfile.mkdtemp(prefix="ortprof-")
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, "ort")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dims = list(inp.shape[1:])
    if hw:
        dims[-2:] = hw
    x = np.random.default_rng(0).standard_normal((batch, *dims)).astype(np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    for _ in range(iters):
        sess.run(None, feed)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    # Runs are told apart by the "model_run" events; skip the warm-up ones.
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    first_timed = runs[warmup]["ts"] if len(runs) > warmup else 0
    best, op, order = {}, {}, []
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < first_timed:
            continue
        name = e["name"][: -len("_kernel_time")]
        ms = e["dur"] / 1000.0
        if name not in best:
            order.append(name)
            best[name] = ms
            op[name] = e.get("args", {}).get("op_name", "?")
        else:
            best[name] = min(best[name], ms)
    run_ms = sorted(r["dur"] / 1000.0 for r in runs[warmup:])
    for p in glob.glob(os.path.join(tmp, "*")):
        os.remove(p)
    os.rmdir(tmp)
    return order, best, op, (run_ms[len(run_ms) // 2] if run_ms else 0.0)


def ours_profile(bench, model, batch, threads, iters, shape=None):
    cmd = [bench, "--model", model, "--batch", str(batch), "--threads", str(threads),
           "--iters", str(iters), "--profile", "--plan-order"]
    if shape:
        cmd += ["--input-shape", shape]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    order, best, op = [], {}, {}
    line_re = re.compile(r"^\s+([0-9.]+) ms  (.*) \(([^()]*)\)$")
    for line in out.splitlines():
        m = line_re.match(line)
        if m:
            name = m.group(2)
            order.append(name)
            best[name] = float(m.group(1))
            op[name] = m.group(3)
    return order, best, op


def rename_ort_nodes(model, order, best, op, ours):
    """ORT names a node it made (NCHWc convolutions, fusions) after the value it writes —
    '/layer1/layer1.0/relu/Relu_output_0_nchwc' — where SelfXit keeps the name of the node that
    survives a fusion ('/layer1/layer1.0/conv1/Conv'). Map each ORT name to the node producing
    that value, then back through BatchNormalization / activations / Add to the node SelfXit
    kept; names that match nothing stay as they are."""
    import onnx

    graph = onnx.load(model, load_external_data=False).graph
    producer = {out: node.name for node in graph.node for out in node.output}
    nodes = {node.name: node for node in graph.node}
    through = {"BatchNormalization", "Relu", "Clip", "Add", "Sigmoid", "Mul", "HardSwish", "HardSigmoid"}

    def ours_name(name):
        node = producer.get(re.sub(r"(_bn)?_nchwc$", "", name), name)
        for _ in range(4):
            if node in ours or node not in nodes or nodes[node].op_type not in through:
                break
            node = producer.get(nodes[node].input[0])
        return node if node in ours else name

    new_order, new_best, new_op = [], {}, {}
    for name in order:
        key = ours_name(name)
        if key in new_best:  # two ORT nodes for one of ours: add them up
            new_best[key] += best[name]
        else:
            new_order.append(key)
            new_best[key] = best[name]
            new_op[key] = op[name]
    return new_order, new_best, new_op


def module_of(name):
    """'/layer1/layer1.0/conv1/Conv' and ORT's '/layer1/layer1.0/relu/Relu_output_0_nchwc' -> '/layer1/layer1.0'."""
    name = re.sub(r"_output_\d+.*$", "", name)
    parts = name.split("/")
    return "/".join(parts[:-2]) if len(parts) > 3 else "/".join(parts[:-1]) or name


def print_modules(s_order, s_best, o_order, o_best, o_run):
    order, ours, theirs = [], {}, {}
    for names, best, into in ((s_order, s_best, ours), (o_order, o_best, theirs)):
        for n in names:
            m = module_of(n)
            if m not in ours and m not in theirs:
                order.append(m)
            into[m] = into.get(m, 0.0) + best[n]
    print(f"{'ours ms':>9} {'ORT ms':>9} {'ours/ORT':>8}  module")
    for m in order:
        a, b = ours.get(m, 0.0), theirs.get(m, 0.0)
        print(f"{a:9.3f} {b:9.3f} {(a / b if b else float('nan')):8.2f}  {m}")
    print(f"\nsum of nodes: ours {sum(s_best.values()):.3f} ms, ORT {sum(o_best.values()):.3f} ms; ORT run median {o_run:.3f} ms (best round)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--bench", default=".build/release/selfxit-bench")
    p.add_argument("--input-shape", help="C,H,W for symbolic-size models (SelfXit), H W taken for ORT")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate the two engines' profiles this many times; each node's best over all rounds")
    p.add_argument("--sort", action="store_true", help="order by time lost (ours - ORT), largest first")
    p.add_argument("--min-ms", type=float, default=0.0, help="hide nodes under this time on both sides")
    p.add_argument("--cpu-mask", choices=["avx2"],
                   help="both engines see the CPU without AVX-512 (tools/cpuid_mask.c, as bench/compare.py): "
                        "ONNX Runtime's AVX2 kernels against SelfXit's AVX2 configuration")
    p.add_argument("--modules", action="store_true",
                   help="sum per module instead (the node name without its last two path parts, "
                        "'/features/denseblock1/denselayer3/conv1/Conv' -> '.../denselayer3'): robust where "
                        "the engines fuse differently and ORT renames fused nodes after their last output")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    hw = [int(v) for v in args.input_shape.split(",")[-2:]] if args.input_shape else None
    if args.cpu_mask and "cpuid_mask" not in os.environ.get("LD_PRELOAD", ""):
        # ORT runs in this process: start it again under the shim (SelfXit's worker inherits it;
        # Swift's backtracer would otherwise take the CPUID faults' SIGSEGV).
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from compare import cpuid_mask_library
        env = dict(os.environ, LD_PRELOAD=cpuid_mask_library(), SWIFT_BACKTRACE="enable=no")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + (argv if argv is not None else sys.argv[1:]), env)

    # On a shared machine whose speed drifts (a KVM guest's two vCPUs ran the same model 35 ms in
    # one minute and 57 ms in the next), one profile of each engine compares two different machine
    # states: --rounds alternates them and keeps each node's best over all rounds.
    o_order = s_order = None
    o_best, s_best, o_runs = {}, {}, []
    for _ in range(args.rounds):
        order, best, o_op, run = ort_profile(args.model, args.batch, args.threads, args.iters, args.warmup, hw)
        o_order = o_order or order
        o_runs.append(run)
        keep_best(o_best, best)
        order, best, s_op = ours_profile(args.bench, args.model, args.batch, args.threads, args.iters, args.input_shape)
        s_order = s_order or order
        keep_best(s_best, best)
    o_run = min(o_runs)

    if args.modules:
        return print_modules(s_order, s_best, o_order, o_best, o_run)
    o_order, o_best, o_op = rename_ort_nodes(args.model, o_order, o_best, o_op, set(s_order))
    rows = [(n, s_op[n], s_best[n], o_best.get(n)) for n in s_order]
    rows += [(n, o_op[n], None, o_best[n]) for n in o_order if n not in s_best]
    if args.sort:
        rows.sort(key=lambda r: -((r[2] or 0) - (r[3] or 0)))
    print(f"{'ours ms':>9} {'ORT ms':>9} {'ours/ORT':>8}  node (our op / ORT op)")
    for name, opname, ours, theirs in rows:
        if max(ours or 0, theirs or 0) < args.min_ms:
            continue
        ratio = f"{ours / theirs:8.2f}" if ours is not None and theirs else " " * 8
        ort_op = o_op.get(name, "-")
        print(f"{ours if ours is not None else float('nan'):9.3f} {theirs if theirs is not None else float('nan'):9.3f} "
              f"{ratio}  {name} ({opname if ours is not None else '-'} / {ort_op})")
    by_op = {}
    for name, opname, ours, theirs in rows:
        key = opname
        a = by_op.setdefault(key, [0, 0.0, 0.0])
        a[0] += 1
        a[1] += ours or 0
        a[2] += theirs or 0
    print("\nper operator (ours' op where both ran, else the side's own): count, ours ms, ORT ms")
    for key, (count, ours, theirs) in sorted(by_op.items(), key=lambda kv: -kv[1][1]):
        print(f"  {key:<24} {count:4d} {ours:9.3f} {theirs:9.3f}")
    s_total = sum(s_best.values())
    o_total = sum(o_best.values())
    matched = [n for n in s_order if n in o_best]
    print(f"\nsum of nodes: ours {s_total:.3f} ms, ORT {o_total:.3f} ms; "
          f"ORT run median {o_run:.3f} ms (best round); {len(matched)} nodes matched, {len(s_order) - len(matched)} ours only, "
          f"{len(o_order) - len(matched)} ORT only")
    print(f"matched nodes: ours {sum(s_best[n] for n in matched):.3f} ms, ORT {sum(o_best[n] for n in matched):.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
