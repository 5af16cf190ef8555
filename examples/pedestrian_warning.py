#!/usr/bin/env python3
"""pedestrian_warning.py — the Python twin of examples/pedestrian_warning.c (issue 12).

    python3 examples/pedestrian_warning.py --frames DIR [--step 1] [--limit 0] [--collect 0.7]
        [--train 0.5] [--tolerance 0.01] [--miss-budget 0.005] [--warning-budget 0] [--teacher detector] [--threads 2]
        [--search-budget 2] [--epochs 10] [--min-samples 200] [--quiet]
        [--split-times T1,T2 [--steps S1,S2,S3] [--views REGEX]] [--save-exits FILE | --load-exits FILE]

Same steps and table as the C program: JPEG frames in name (= time) order decoded by the
engine (sx_decode_image: RGB 300×300, p · 2/255 − 1); the first --collect share runs with exits
off (the detector's most confident object is the teacher, person = class 1 watched with
--miss-budget); exits are built in recording order; each remaining frame runs with exits off
(the reference) and then on — a person seen by an exit is warned of at once and confirmed by the
full detector. --split-times / --steps / --views split by time step (e.g. the 23-view crops of
tools/make_pedestrian_crops.py), --save-exits / --load-exits keep or reuse built exits (watched
classes and guards included), as in the C program.
"""
import argparse
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
import selfxit  # noqa: E402


def frame_names(directory, step, limit):
    names = sorted(n for n in os.listdir(directory) if n.endswith(".jpg")
                   and not (n.startswith("f") and int(n[1:].split("_")[0]) % step))
    return names[:limit] if limit else names


def split_names(directory, split_times, steps, views):
    """As the C program's --split-times: train, validation and served frames by time step."""
    parts = ([], [], [])
    pattern = re.compile(views) if views else None
    for n in sorted(os.listdir(directory)):
        if not (n.endswith(".jpg") and n.startswith("f")) or (pattern and not pattern.search(n)):
            continue
        t = int(n[1:].split("_")[0])
        k = 0 if t < split_times[0] else 1 if t < split_times[1] else 2
        if t % steps[k] == 0:
            parts[k].append(n)
    return parts


def exact_fractions(n_train, n_val):
    c = n_train + n_val
    ft, fv = n_train / c, n_val / c
    while int(c * ft) < n_train:
        ft = math.nextafter(ft, 2)
    while int(c * fv) < n_val:
        fv = math.nextafter(fv, 2)
    while ft + fv > 1:
        fv = math.nextafter(fv, 0)
    return ft, fv


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Tests/Fixtures/pedestrian/ssdlite_person.onnx")
    p.add_argument("--frames", required=True)
    p.add_argument("--teacher", default="detector")
    p.add_argument("--collect", type=float, default=0.7)
    p.add_argument("--train", type=float, default=0.5)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--miss-budget", type=float, default=0.005)
    p.add_argument("--warning-budget", type=float, default=0.0, help="false warnings allowed on validation, in all (0: the tolerance)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--search-budget", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--min-samples", type=int, default=200)
    p.add_argument("--step", type=int, default=1)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--split-times", default="")
    p.add_argument("--steps", default="1,1,1")
    p.add_argument("--views", default="")
    p.add_argument("--save-exits", default="")
    p.add_argument("--load-exits", default="")
    a = p.parse_args()

    if a.split_times:
        parts = split_names(a.frames, [int(v) for v in a.split_times.split(",")], [int(v) for v in a.steps.split(",")], a.views)
        names = parts[0] + parts[1] + parts[2]
        collected = len(parts[0]) + len(parts[1])
        fractions = exact_fractions(len(parts[0]), len(parts[1]))
    else:
        names = frame_names(a.frames, a.step, a.limit)
        collected = int(a.collect * len(names))
        fractions = (a.train / a.collect, 1 - a.train / a.collect)
    if collected < 10 or collected >= len(names):
        sys.exit(f"{len(names)} frames: too few to collect and test")
    with selfxit.Engine(a.model, threads=a.threads, max_batch=1, teacher=a.teacher, watched=[(1, a.miss_budget, None, a.warning_budget)],
                        collection_budget_bytes=0 if a.load_exits else (collected + 8) * (3 * 300 * 300 + 16) * 4) as engine:
        info = engine.info
        print(f"detector {a.model}: input {list(info['input_shape'])}, {info['num_classes']} teacher classes (0 none, 1 person), "
              f"{info['backbone_flops'] / 1e9:.2f} GFLOPs, {info['num_candidates']} exit candidates")
        print(f"{len(names)} frames (every {a.step}-th time step): {collected} collected (exits off), {len(names) - collected} served")

        def frame(i):
            with open(os.path.join(a.frames, names[i]), "rb") as f:
                return engine.decode_image(f.read(), scale=2.0 / 255.0, mean=1.0, std=1.0)

        def run(x):
            out = {"warned": False, "warning": 0.0, "first": None}

            def on_result(r):
                if r["kind"] == "exit_prediction":
                    return
                if out["first"] is None:
                    out["first"] = r["latency_seconds"]
                if r["kind"] == "warning":
                    out["warned"], out["warning"] = True, r["latency_seconds"]
                    return
                out.update(cls=r["class_index"], exit=r["exit_index"], latency=r["latency_seconds"], flops=r["flops"])
            engine.submit(x[None], on_result)
            return out

        if a.load_exits:
            engine.load_exits(a.load_exits)
            info = engine.info
            print(f"exits loaded from {a.load_exits}: {info['num_trained_exits']} trained, {info['num_active_exits']} active")
        else:
            engine.set_exits_enabled(False)
            persons_collected = sum(run(frame(i))["cls"] == 1 for i in range(collected))
            print(f"collected {collected} frames, {persons_collected} with a person per the detector")
            engine.update_exits(tolerance=a.tolerance, search_budget=a.search_budget, epochs=a.epochs, min_samples=a.min_samples,
                                keep_order=True, train_fraction=fractions[0], validation_fraction=fractions[1],
                                memory_budget_bytes=1 << 40 if a.split_times else 2 << 30)
            info = engine.info
            print(f"exits built: {info['num_trained_exits']} trained, {info['num_active_exits']} active "
                  f"(tolerance {a.tolerance:g}, miss budget {a.miss_budget:g})")
            if a.save_exits:
                engine.save_exits(a.save_exits)
                print(f"exits saved to {a.save_exits}")

        t = dict(served=0, warnings=0, confirmed=0, false_alarms=0, hidden=0, persons=0, warned_in_time=0, early=0)
        sums = dict(warning=0.0, full=0.0, first=0.0, final=0.0, flops=0.0)
        for i in range(collected, len(names)):
            x = frame(i)
            engine.set_exits_enabled(False)
            full = run(x)
            engine.set_exits_enabled(True)
            ex = run(x)
            person = full["cls"] == 1
            t["served"] += 1
            t["persons"] += person
            sums["full"] += full["latency"]
            sums["first"] += ex["first"]
            sums["final"] += ex["latency"]
            sums["flops"] += ex["flops"]
            t["early"] += ex["exit"] >= 0
            if ex["warned"]:
                t["warnings"] += 1
                sums["warning"] += ex["warning"]
                t["confirmed" if person else "false_alarms"] += 1
                t["warned_in_time"] += person and ex["warning"] < full["latency"]
            hidden = person and ex["exit"] >= 0 and ex["cls"] != 1
            t["hidden"] += hidden
            if not a.quiet:
                kind = "WARNING " if ex["warned"] else "early   " if ex["exit"] >= 0 else "full    "
                note = (" (confirmed)" if person else " (false alarm)") if ex["warned"] else (" HIDDEN PEDESTRIAN" if hidden else "")
                print(f"{names[i]:<14} detector: {'person' if person else 'none':<6} {full['latency'] * 1e3:7.2f} ms | exits: {kind}"
                      f"{(ex['warning'] if ex['warned'] else ex['latency']) * 1e3:7.2f} ms{note}")
        n = t["served"]
        print("\n| frames | warnings | confirmed | false alarms | hidden pedestrians | pedestrian frames | warned before full finished | "
              "early answers | mean time to warning ms | mean full detector ms | mean time to first answer ms | mean latency with exits ms | FLOPs ratio |")
        print(f"| {n} | {t['warnings']} | {t['confirmed']} | {t['false_alarms']} | {t['hidden']} | {t['persons']} | {t['warned_in_time']} | "
              f"{t['early']} | {sums['warning'] / max(t['warnings'], 1) * 1e3:.2f} | {sums['full'] / n * 1e3:.2f} | {sums['first'] / n * 1e3:.2f} | "
              f"{sums['final'] / n * 1e3:.2f} | {sums['flops'] / n / info['backbone_flops']:.3f} |")
        print("RESULT " + " ".join(f"{k}={t[k]}" for k in ("served", "warnings", "confirmed", "false_alarms", "hidden", "persons",
                                                           "warned_in_time", "early")).replace("served=", "frames="))


if __name__ == "__main__":
    main()
