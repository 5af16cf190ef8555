#!/usr/bin/env python3
"""Derives small JSON payload seeds for fuzz_bundle from the saved bundle's payload
(Tests/Fuzz/seeds/bundle/resnet18_w4.json, written by make_seeds): one active exit, one exit out
of service (threshold "inf"), and no exits. Small seeds keep the harness fast; the fuzzer grows
them back by crossing over with the full payload.
    python3 Tests/Fuzz/derive_bundle_seeds.py
"""
import json
import os

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "bundle")
with open(os.path.join(here, "resnet18_w4.json")) as f:
    payload = json.load(f)
exits = payload["exits"]
active = [e for e in exits if e["active"]][:1]
inactive = [e for e in exits if not e["active"]][:1]
for name, chosen in [("one_active_exit", active), ("one_inactive_exit", inactive), ("no_exits", [])]:
    if name != "no_exits" and not chosen:
        continue
    small = dict(payload, exits=chosen, report=dict(payload["report"], exits=[]))
    path = os.path.join(here, name + ".json")
    with open(path, "w") as f:
        json.dump(small, f, separators=(",", ":"))
    print("derive_bundle_seeds: %s (%d bytes)" % (path, os.path.getsize(path)))
