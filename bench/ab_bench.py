"""A/B of selfxit-bench binaries on one model: their `--serve` workers (same model, batch, 2 threads)
take turns in bursts of 4 batches (the first of each burst untimed; the order reversed every other
round), so every binary meets the same stretch of a shared machine's load; prints each one's median
batch latency and its ratio to the first binary's. Not part of `make test`.

    SELFXIT_GEMM_ISA=avx2 python3 bench/ab_bench.py MODEL.onnx BATCH ROUNDS BIN_BEFORE BIN_AFTER...

THREADS=N sets the workers' thread count (default 2).
"""
import os
import statistics
import subprocess
import sys

if len(sys.argv) < 6:
    raise SystemExit(__doc__)
model, batch, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
bins = sys.argv[4:]
workers = []
for b in bins:
    p = subprocess.Popen([b, "--model", model, "--batch", batch, "--threads", os.environ.get("THREADS", "2"), "--warmup", "3", "--serve"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit(f"{b} exited before 'ready'")
        if line.strip() == "ready":
            break
    workers.append(p)
times = [[] for _ in bins]
for r in range(rounds):
    for i in (range(len(bins)) if r % 2 == 0 else reversed(range(len(bins)))):
        p = workers[i]
        p.stdin.write("run 4\n")
        p.stdin.flush()
        got = [float(t) for t in p.stdout.readline().split()]
        times[i] += got[1:]
for p in workers:
    p.stdin.write("quit\n")
    p.stdin.flush()
    p.wait()
base = statistics.median(times[0])
print(os.path.basename(model), "b" + batch, " ".join(
    "%s %.2f ms (%.2f)" % (os.path.basename(b), statistics.median(t), statistics.median(t) / base) for b, t in zip(bins, times)))
