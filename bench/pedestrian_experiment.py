#!/usr/bin/env python3
"""Pedestrian early-warning experiment (issue 12; paper §3.5, §3.5.1, §4.3).

    tools/make_pedestrian_venv.sh && .cache/ped-venv/bin/python tools/make_pedestrian_detector.py
    swift build -c release
    SELFXIT_LIBRARY=$PWD/.build/release/libselfxit.so .cache/ped-venv/bin/python bench/pedestrian_experiment.py \
        --step 3 --out .cache/pedestrian/experiment.json

Stream: vtest.avi's frames (every --step-th time step; per time step the full frame and its four
quadrant tiles, .cache/pedestrian/frames, decoded by the engine as the example does) in time
order, split 50/20/30 without shuffling (neighbouring frames are near-duplicates): the first 70 %
are collected with exits off and exits are built on them in recording order (train 50 %,
validation 20 %); the last 30 % are the test. Person (class 1) is watched, miss budget 0.5 %.

For each teacher (most confident object — the paper's choice —, most confident person, all
objects) and T ∈ {0.5, 1, 2} %: the build's per-exit table (head, FLOPs, threshold, validation
agreement, watched-class guard: safe threshold, warn threshold, validation hidden / false-warning
rate and recall), then every test frame runs on a reference engine (the full detector, exits
off: its verdict is the truth the exits are judged against, its time the full detector's) and on
the engine with exits (time to warning, early answers). Reported: warning recall, hidden-
pedestrian rate (over pedestrian frames and over all frames), warnings before the full detector
would have finished, mean time to warning / first answer / final answer, FLOPs ratio; false
warnings on the test frames without a pedestrian (the "empty street" stream: tiles the detector
calls empty) against the rate the same cascade showed on the validation frames; and ONNX
Runtime's full-detector latency (batch 1, same threads) measured in the same run.

More frames (after the first pass, issue 12): `--frames .cache/pedestrian/crops` (23 views per
time step, tools/make_pedestrian_crops.py) with `--split-times 397,556` (time steps < 397 train,
< 556 validation, the rest test: 50/20/30 of the clip's time, every view of a time step in one
part) and `--steps TRAIN,VALIDATION,TEST` (every n-th time step per part: the validation part is
sampled densely, because the miss-budget certification needs ≈ 1 200 validation pedestrian
frames, while the heads need far fewer training frames). `--other DIR` adds other footage
(tools/make_pedestrian_crops.py's .cache/pedestrian/other): its frames the detector calls
"none" are the empty-street stream. `--save-exits PATH` keeps the built exits (bundle format 2:
watched classes and guards included), so examples/pedestrian_warning.c `--load-exits` serves
the same test frames with the same exits. `--label-only` just runs the detector over the
selected frames and prints how many it calls pedestrian per part (teacher cache:
`--teacher-cache`).
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import selfxit  # noqa: E402

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "pedestrian", "ssdlite_person.onnx")
TEACHERS = {
    "most_confident_object": "detector",
    "most_confident_person": "detector:mode=most_confident_of,class=1",
    "all_objects": "detector:mode=all_objects",
}


def frame_names(directory, step, limit):
    names = sorted(n for n in os.listdir(directory) if n.endswith(".jpg")
                   and not (n.startswith("f") and int(n[1:].split("_")[0]) % step))
    return names[:limit] if limit else names


def split_names(directory, split_times, steps, views):
    """Frames `fTTT_*.jpg` in name (= time) order, split by time step: t < split_times[0] train,
    t < split_times[1] validation, the rest test; every steps[k]-th time step of part k (as
    examples/pedestrian_warning.c --split-times/--steps/--views selects)."""
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
    """train_fraction, validation_fraction for which the engine's Int(Double(n) * f) gives exactly
    n_train and n_val of the n = n_train + n_val collected frames (and f_t + f_v <= 1)."""
    c = n_train + n_val
    ft, fv = n_train / c, n_val / c
    while int(c * ft) < n_train:
        ft = math.nextafter(ft, 2)
    while int(c * fv) < n_val:
        fv = math.nextafter(fv, 2)
    while ft + fv > 1:
        fv = math.nextafter(fv, 0)
    assert int(c * ft) == n_train and int(c * fv) == n_val and ft + fv <= 1, (n_train, n_val, ft, fv)
    return ft, fv


def run(engine, x):
    out = {"warned": False, "warning": None, "first": None, "warn_exit": None}

    def on_result(r):
        if r["kind"] == "exit_prediction":
            return
        if out["first"] is None:
            out["first"] = r["latency_seconds"]
        if r["kind"] == "warning":
            out.update(warned=True, warning=r["latency_seconds"], warn_exit=r["exit_index"])
            return
        out.update(cls=r["class_index"], exit=r["exit_index"], latency=r["latency_seconds"], flops=r["flops"])
    engine.submit(x[None], on_result)
    return out


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def ort_latency(frames, threads):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(MODEL, o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    s.run(None, {name: frames[0][None]})
    times = []
    for x in frames:
        t = time.perf_counter()
        s.run(None, {name: x[None]})
        times.append(time.perf_counter() - t)
    return float(np.mean(times)), float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", default=os.path.join(ROOT, ".cache", "pedestrian", "frames"))
    p.add_argument("--step", type=int, default=3)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--split-times", default="", help="T1,T2: time steps < T1 train, < T2 validation, the rest test (instead of 70 %% collected)")
    p.add_argument("--steps", default="1,1,1", help="with --split-times: every n-th time step of train, validation, test")
    p.add_argument("--views", default="", help="with --split-times: only frame names matching this regular expression")
    p.add_argument("--other", default="", help="folder of other footage: its frames the detector calls none are the empty stream")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tolerances", default="0.005,0.01,0.02")
    p.add_argument("--teachers", default=",".join(TEACHERS))
    p.add_argument("--miss-budget", type=float, default=0.005)
    p.add_argument("--warning-budgets", default="0",
                   help="comma list of warning budgets W (false warnings the warning exits may raise on validation, in all); 0: W = T")
    p.add_argument("--search-budget", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--skip-ort", action="store_true", help="do not time ONNX Runtime")
    p.add_argument("--save-exits", default="", help="save each build's exits to PATH (T and W appended when several)")
    p.add_argument("--label-only", action="store_true", help="only count the frames the detector calls pedestrian per part")
    p.add_argument("--teacher-cache", default=os.path.join(ROOT, ".cache", "pedestrian", "teacher_cache.json"))
    p.add_argument("--out", default=os.path.join(ROOT, ".cache", "pedestrian", "experiment.json"))
    a = p.parse_args()

    if a.split_times:
        split_times = [int(v) for v in a.split_times.split(",")]
        steps = [int(v) for v in a.steps.split(",")]
        train_names, val_names, test_names = split_names(a.frames, split_times, steps, a.views)
        names = train_names + val_names + test_names
        n_train, n_val = len(train_names), len(val_names)
        collected = n_train + n_val
        train_fraction, validation_fraction = exact_fractions(n_train, n_val)
        about = f"time steps < {split_times[0]} / < {split_times[1]} / rest, every {steps} time step{' views ' + a.views if a.views else ''}"
    else:
        names = frame_names(a.frames, a.step, a.limit)
        # As examples/pedestrian_warning.c splits (so its table can be compared): the first 70 %
        # collected, of which train = 50/70 and validation the rest, in the engine's own rounding.
        collected = int(0.7 * len(names))
        train_fraction = 0.5 / 0.7
        validation_fraction = 1 - train_fraction
        n_train, n_val = int(collected * train_fraction), int(collected * (1 - train_fraction))
        about = f"every {a.step}-th time step of vtest.avi, full + 4 tiles"
    n = len(names)
    test = range(collected, n)
    validation = range(n_train, n_train + n_val)
    other = sorted(f for f in os.listdir(a.other) if f.endswith(".jpg")) if a.other else []
    print(f"{n} frames ({about}): train {n_train}, validation {n_val}, test {n - collected}; other footage {len(other)}", flush=True)

    decoder = selfxit.Engine(MODEL, threads=a.threads, max_batch=8, collection_budget_bytes=0)

    def load(directory, name):
        with open(os.path.join(directory, name), "rb") as f:
            return decoder.decode_image(f.read(), scale=2.0 / 255.0, mean=1.0, std=1.0)

    def frame(i):
        return load(a.frames, names[i])

    # The detector's verdict (the teacher) per frame, cached by file, teacher spec and model.
    cache = {}
    if os.path.exists(a.teacher_cache):
        with open(a.teacher_cache) as f:
            cache = json.load(f)
    model_key = "%x" % (os.path.getsize(MODEL))

    def labels(spec, directory, files):
        key = f"{spec}|{model_key}|{os.path.abspath(directory)}"
        known = cache.setdefault(key, {})
        todo = [f for f in files if f not in known]
        if todo:
            with selfxit.Engine(MODEL, threads=a.threads, max_batch=8, teacher=spec, collection_budget_bytes=0) as e:
                e.set_exits_enabled(False)
                for start in range(0, len(todo), 8):
                    chunk = todo[start:start + 8]
                    got, _, _ = e.infer(np.stack([load(directory, f) for f in chunk]))
                    known.update({f: int(c) for f, c in zip(chunk, got)})
            with open(a.teacher_cache, "w") as f:
                json.dump(cache, f)
        return [known[f] for f in files]

    if a.label_only:
        for teacher_name in a.teachers.split(","):
            spec = TEACHERS[teacher_name]
            t0 = time.perf_counter()
            got = labels(spec, a.frames, names)
            parts = {"train": range(0, n_train), "validation": validation, "test": test}
            print(f"teacher {teacher_name}: " + ", ".join(f"{k} {sum(got[i] == 1 for i in r)}/{len(r)} pedestrian" for k, r in parts.items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            if other:
                o = labels(spec, a.other, other)
                print(f"  other footage: {sum(c == 1 for c in o)}/{len(o)} pedestrian", flush=True)
            # Certification needs, per exit position n: N ≥ ln 0.05 / ln(1 − budget/2^n) with no miss.
            need = [math.ceil(math.log(0.05) / math.log(1 - a.miss_budget / 2 ** k)) for k in (1, 2, 3)]
            print(f"  validation pedestrian frames needed to certify {a.miss_budget:g}/2^n with no miss: n=1 {need[0]}, n=2 {need[1]}, n=3 {need[2]}")
        return

    results = {"frames": n, "about": about, "split": [n_train, n_val, n - collected], "threads": a.threads,
               "cpu": open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(), "runs": []}
    if not a.skip_ort:
        ort_mean, ort_median = ort_latency([frame(i) for i in list(test)[:200]], a.threads)
        results["ort_full_detector_ms"] = {"mean": ort_mean * 1e3, "median": ort_median * 1e3}
        print(f"ONNX Runtime full detector, batch 1, {a.threads} threads, first 200 test frames: mean {ort_mean * 1e3:.2f} ms, "
              f"median {ort_median * 1e3:.2f} ms", flush=True)

    for teacher_name in a.teachers.split(","):
        spec = TEACHERS[teacher_name]
        reference = selfxit.Engine(MODEL, threads=a.threads, max_batch=1, teacher=spec, collection_budget_bytes=0)
        reference.set_exits_enabled(False)
        for tolerance, warning_budget in [(float(t), float(w)) for t in a.tolerances.split(",") for w in a.warning_budgets.split(",")]:
            # A fresh engine per T: serving records the frames that run fully, which must not
            # reach the next build (collection is deterministic, so every T sees the same data).
            engine = selfxit.Engine(MODEL, threads=a.threads, max_batch=1, teacher=spec, watched=[(1, a.miss_budget, None, warning_budget)],
                                    collection_budget_bytes=(collected + 8) * (3 * 300 * 300 + 16) * 4)
            engine.set_exits_enabled(False)
            t0 = time.perf_counter()
            truth = {}
            for i in range(collected):
                truth[i] = run(engine, frame(i))["cls"]
            collect_s = time.perf_counter() - t0
            persons_val = sum(truth[i] == 1 for i in validation)
            print(f"\n== teacher {teacher_name} ({spec}): validation frames with a person: {persons_val}/{n_val}", flush=True)
            t0 = time.perf_counter()
            report = engine.update_exits(tolerance=tolerance, search_budget=a.search_budget, epochs=a.epochs, min_samples=min(50, collected),
                                         keep_order=True, train_fraction=train_fraction, validation_fraction=validation_fraction,
                                         memory_budget_bytes=1 << 40)
            build_s = time.perf_counter() - t0
            assert report["train_samples"] == n_train and report["validation_samples"] == n_val, report
            if a.save_exits:
                several = len(a.tolerances.split(",")) * len(a.warning_budgets.split(",")) * len(a.teachers.split(",")) > 1
                path = a.save_exits + (f".{teacher_name}.T{tolerance:g}.W{warning_budget:g}" if several else "")
                engine.save_exits(path)
                print(f"exits saved to {path}")
            watch = {g["candidate_index"]: g for g in report.get("watch") or []}
            backbone = engine.info["backbone_flops"]
            print(f"\n-- T = {tolerance:g}, warning budget W = {warning_budget or tolerance:g}: collected {collected} in {collect_s:.0f} s, build {build_s:.0f} s; per exit (validation):")
            print("| exit | tensor | head | head MFLOPs | saved % | threshold | val. agreement | active | safe threshold | "
                  "warn threshold | val. hidden rate | val. false-warning rate | val. warning recall |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for e in report["exits"]:
                g = watch.get(e["candidate_index"])
                gs = (f"{g['safe_threshold']} | {g['warn_thresholds'][0]:.3f} | {g['hidden_rate'][0]:.4f} | {g['false_warning_rate'][0]:.3f} | "
                      f"{g['warning_recall'][0]:.3f}") if g else "– | – | – | – | –"
                print(f"| {e['candidate_index']} | {e['tensor'][-40:]} | {e.get('architecture')} | {e['head_flops'] / 1e6:.2f} | "
                      f"{100 * e['saved_flops'] / backbone:.0f} | "
                      f"{e['threshold']} | {e['validation_agreement']:.3f} | {e['active']} | {gs} |", flush=True)
            engine.set_exits_enabled(True)
            # Validation frames through the deployed cascade: the false-warning rate it predicts.
            val_none = [i for i in validation if truth[i] != 1]
            val_false = sum(run(engine, frame(i))["warned"] for i in val_none)
            stats = dict(frames=0, warnings=0, confirmed=0, false_alarms=0, hidden=0, persons=0, warned_in_time=0, early=0,
                         early_person_answers=0)
            sums = dict(warning=0.0, full=0.0, first=0.0, final=0.0, flops=0.0, none_final_ratio=0.0)
            warn_exits = {}
            t0 = time.perf_counter()
            for i in test:
                x = frame(i)
                full = run(reference, x)
                ex = run(engine, x)
                person = full["cls"] == 1
                stats["frames"] += 1
                stats["persons"] += person
                sums["full"] += full["latency"]
                sums["first"] += ex["first"]
                sums["final"] += ex["latency"]
                sums["flops"] += ex["flops"]
                stats["early"] += ex["exit"] >= 0
                if not person:
                    sums["none_final_ratio"] += ex["latency"] / full["latency"]
                if ex["warned"]:
                    stats["warnings"] += 1
                    sums["warning"] += ex["warning"]
                    stats["confirmed" if person else "false_alarms"] += 1
                    stats["warned_in_time"] += person and ex["warning"] < full["latency"]
                    warn_exits[ex["warn_exit"]] = warn_exits.get(ex["warn_exit"], 0) + 1
                stats["hidden"] += person and ex["exit"] >= 0 and ex["cls"] != 1
            serve_s = time.perf_counter() - t0
            # Other footage: false warnings on the frames the detector calls none.
            other_stats = dict(frames=len(other), none=0, false_warnings=0, early=0, persons=0, warned_persons=0)
            for f in other:
                x = load(a.other, f)
                cls = run(reference, x)["cls"]   # the detector's verdict, at batch 1 as everywhere
                ex = run(engine, x)
                if cls == 1:
                    other_stats["persons"] += 1
                    other_stats["warned_persons"] += ex["warned"]
                else:
                    other_stats["none"] += 1
                    other_stats["false_warnings"] += ex["warned"]
                    other_stats["early"] += ex["exit"] >= 0
            engine.set_exits_enabled(False)
            m = stats["frames"]
            none_test = m - stats["persons"]
            backbone = engine.info["backbone_flops"]
            # The warn-then-confirm bound: a warned (pedestrian) frame runs the full detector, so
            # mean latency ≥ p_ped · 1 + (1 − p_ped) · c_exit, c_exit ≥ the cheapest active exit's
            # FLOPs share (backbone up to it + its head) — with c_exit = 0 the bound is p_ped.
            active = [e for e in report["exits"] if e["active"]]
            c_exit = min(((backbone - e["saved_flops"] + e["head_flops"]) / backbone for e in active), default=1.0)
            p_ped = stats["persons"] / max(m, 1)
            row = dict(teacher=teacher_name, tolerance=tolerance, warning_budget=warning_budget or tolerance, build_seconds=build_s,
                       serve_seconds=serve_s, **stats,
                       validation_persons=persons_val, validation_frames=n_val,
                       warning_recall=stats["confirmed"] / max(stats["persons"], 1),
                       warned_in_time_rate=stats["warned_in_time"] / max(stats["persons"], 1),
                       hidden_rate_of_pedestrian_frames=stats["hidden"] / max(stats["persons"], 1),
                       hidden_rate_of_all_frames=stats["hidden"] / m,
                       mean_time_to_warning_ms=sums["warning"] / max(stats["warnings"], 1) * 1e3,
                       mean_full_detector_ms=sums["full"] / m * 1e3, mean_time_to_first_answer_ms=sums["first"] / m * 1e3,
                       mean_latency_with_exits_ms=sums["final"] / m * 1e3, flops_ratio=sums["flops"] / m / backbone,
                       latency_bound=dict(p_ped=p_ped, c_exit_flops=c_exit, bound=p_ped + (1 - p_ped) * c_exit,
                                          none_frames_final_over_full=sums["none_final_ratio"] / max(none_test, 1)),
                       false_warning_rate_test=stats["false_alarms"] / max(none_test, 1), none_frames_test=none_test,
                       false_warning_rate_validation=val_false / max(len(val_none), 1), none_frames_validation=len(val_none),
                       false_warning_ci95_validation=wilson(val_false, len(val_none)), other=other_stats,
                       warnings_by_exit=warn_exits, active_exits=[e["candidate_index"] for e in active],
                       watch=report.get("watch"), exits=report["exits"])
            results["runs"].append(row)
            print(f"test: frames {m}, pedestrian frames {stats['persons']}, warnings {stats['warnings']} (confirmed {stats['confirmed']}, "
                  f"false alarms {stats['false_alarms']}), hidden pedestrians {stats['hidden']} "
                  f"({100 * row['hidden_rate_of_pedestrian_frames']:.2f} % of pedestrian frames, {100 * row['hidden_rate_of_all_frames']:.2f} % of all), "
                  f"warning recall {100 * row['warning_recall']:.1f} %, warned before the full detector finished "
                  f"{stats['warned_in_time']}/{stats['persons']} ({100 * row['warned_in_time_rate']:.1f} %), early answers {stats['early']}")
            print(f"      time to warning {row['mean_time_to_warning_ms']:.2f} ms, first answer {row['mean_time_to_first_answer_ms']:.2f} ms, "
                  f"final answer with exits {row['mean_latency_with_exits_ms']:.2f} ms vs full detector {row['mean_full_detector_ms']:.2f} ms "
                  f"(ratio first {row['mean_time_to_first_answer_ms'] / row['mean_full_detector_ms']:.2f}, final "
                  f"{row['mean_latency_with_exits_ms'] / row['mean_full_detector_ms']:.2f}), FLOPs ratio {row['flops_ratio']:.3f}")
            print(f"      warn-then-confirm bound: p_ped {p_ped:.3f}, cheapest active exit {c_exit:.3f} of the FLOPs → mean latency "
                  f"≥ {row['latency_bound']['bound']:.3f} × the full detector; frames without a pedestrian took "
                  f"{row['latency_bound']['none_frames_final_over_full']:.3f} × on average")
            print(f"      empty-street frames: false warnings {stats['false_alarms']}/{none_test} = {100 * row['false_warning_rate_test']:.1f} % on test "
                  f"vs {val_false}/{len(val_none)} = {100 * row['false_warning_rate_validation']:.1f} % on validation "
                  f"(95 % interval {100 * row['false_warning_ci95_validation'][0]:.1f}–{100 * row['false_warning_ci95_validation'][1]:.1f} %); "
                  f"warnings by exit {warn_exits}", flush=True)
            if other:
                print(f"      other footage: {other_stats['none']} frames the detector calls none, false warnings {other_stats['false_warnings']} "
                      f"({100 * other_stats['false_warnings'] / max(other_stats['none'], 1):.1f} %), early answers {other_stats['early']}; "
                      f"{other_stats['persons']} with a person, {other_stats['warned_persons']} warned", flush=True)
            print("RESULT " + " ".join(f"{k}={stats[k]}" for k in ("frames", "warnings", "confirmed", "false_alarms", "hidden", "persons",
                                                                   "warned_in_time", "early")), flush=True)
            with open(a.out, "w") as f:
                json.dump(results, f, indent=1)
            engine.close()
        reference.close()
    decoder.close()


if __name__ == "__main__":
    main()
