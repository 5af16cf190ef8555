"""Where a second thread does not pay: each node's time on one thread and on N, side by side.

    python3 bench/thread_scaling.py MODEL.onnx [--threads 2] [--batch 1] [--iters 100] [--top 25]
        [--bench .build/release/selfxit-bench]

Runs `selfxit-bench --profile --plan-order` (best time of --iters per node, the whole batch node by
node) at one thread and at --threads, joins the two lists by node name and prints the sums and the
nodes that lose most against a perfect split (time at N threads − time at one / N), with their
speed-up. A node at or under 1.0× ran no faster on N threads than on one: its work is split in a
way that fights the layers around it (BENCHMARKS §7.34: row blocks alternating between the cores
while the next layer split rows in halves) or is too small to share. Run it on a quiet machine;
both profiles are taken one after the other, not interleaved. Not part of `make test`.
"""
import argparse
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = re.compile(r"\s+([\d.]+) ms\s+(\S+) \((\w+)\)")


def profile(bench, model, batch, threads, iters):
    out = subprocess.run([bench, "--model", model, "--batch", str(batch), "--threads", str(threads),
                          "--iters", str(iters), "--profile", "--plan-order"],
                         capture_output=True, text=True, check=True).stdout
    times, order = {}, []
    for line in out.splitlines():
        m = NODE.match(line)
        if m:
            if m.group(2) not in times:
                order.append(m.group(2))
            times[m.group(2)] = (float(m.group(1)), m.group(3))
    return times, order


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "selfxit-bench"))
    a = p.parse_args()
    one, order = profile(a.bench, a.model, a.batch, 1, a.iters)
    many, _ = profile(a.bench, a.model, a.batch, a.threads, a.iters)
    rows = [(name, one[name][1], one[name][0], many[name][0]) for name in order if name in many]
    if not rows:
        raise SystemExit("no node in both profiles")
    s1, sn = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"{len(rows)} nodes: 1 thread {s1:.3f} ms, {a.threads} threads {sn:.3f} ms ({s1 / sn:.2f}x)")
    print(f"{'1 thread':>9} {str(a.threads) + ' threads':>10} {'speed-up':>8}  node (op), most time lost against a perfect split first")
    rows.sort(key=lambda r: -(r[3] - r[2] / a.threads))
    for name, op, t1, tn in rows[:a.top]:
        print(f"{t1:9.3f} {tn:10.3f} {t1 / tn if tn > 0 else float('nan'):8.2f}  {name} ({op})")


if __name__ == "__main__":
    main()
