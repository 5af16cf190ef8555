#!/usr/bin/env bash
# The `selfxit` command end to end on the bundled Fashion-MNIST model, run by tools/test.sh
# after the release build: inspect, build (small collect), report, run with the bundle, bench;
# --help everywhere and bad flags refused (also by the other executables and the camera loop);
# then the HTML report opened in headless Chromium, screenshotted under .build/cli-test/ and
# checked for drawn figures (SVG data points in the DOM, a screenshot that is not blank and
# shows the figure colours).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release
cli=$bin/selfxit-cli
model=models/fmnist-resnet18-w16.onnx
work=.build/cli-test
rm -rf "$work"
mkdir -p "$work"
fail() { echo "test_cli: FAIL: $*" >&2; exit 1; }

# expect_error "what it must say" command...: a non-zero exit and the message on stderr/stdout.
expect_error() {
  local message=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' exited 0, expected an error"
  grep -qF -- "$message" <<<"$out" || fail "'$*' did not say '$message':"$'\n'"$out"
  echo "  refused (exit $rc): $* -> $(grep -F -- "$message" <<<"$out" | head -1)"
}

echo "-- frames: 400 Fashion-MNIST test images as PNG"
python3 tools/write_frames.py --out "$work/frames" --count 400 >/dev/null

echo "-- selfxit inspect"
$cli inspect "$model" | tee "$work/inspect.txt"
grep -q "exit candidates: 8" "$work/inspect.txt" || fail "inspect: expected 8 exit candidates"
# A whole detector (run-time-shaped tail): its graph outputs are listed, not the planned tensor.
$cli inspect Tests/Fixtures/detector/tiny_fasterrcnn.onnx | tee "$work/inspect_detector.txt"
grep -q "run-time-shaped tail" "$work/inspect_detector.txt" || fail "inspect: a detector's tail not stated"
grep -q "'scores' \[?\]" "$work/inspect_detector.txt" || fail "inspect: a detector's scores output not listed with its run-time shape"
$cli inspect "$model" --json > "$work/inspect.json"
python3 - "$work/inspect.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["candidates"]
assert d["inputShape"] == [1, 28, 28] and d["outputShape"] == [10], d
assert d["runtimeShapes"] is False and [o["shape"] for o in d["outputs"]] == [[10]], d
assert len(c) == 8 and all(0 < a["flopsBefore"] < b["flopsBefore"] < d["flops"] for a, b in zip(c, c[1:])), c
assert all(x["flopsBefore"] + x["flopsAfter"] == d["flops"] for x in c)
EOF

echo "-- selfxit build (collect 300 frames, 100 held out; tolerances 0.005, 0.02 swept for the report)"
start=$(date +%s)
$cli build "$model" "$work/frames" --collect 300 --mean 0.286 --std 0.353 --tolerance 0.01 --sweep 0.005,0.02 \
     --epochs 15 -o "$work/exits.sxb" 2> "$work/build.log" | tee "$work/build.txt"
echo "   ($(( $(date +%s) - start )) s; progress went to $work/build.log, $(wc -l < "$work/build.log") lines)"
[ -s "$work/exits.sxb" ] && [ -s "$work/exits.sxb.json" ] || fail "build wrote no bundle or no report data"
grep -q "^\[100%\] exit build: done" "$work/build.log" || fail "build: no plain progress lines on a non-terminal stderr"
grep -q "on 100 held-out frames" "$work/build.txt" || fail "build: no held-out measurement"

echo "-- selfxit report"
$cli report "$work/exits.sxb" --model "$model" -o "$work/report.html"
python3 - "$work/report.html" <<'EOF'
import re, sys
html = open(sys.argv[1]).read()
assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html, "report must be self-contained"
svgs = re.findall(r"<svg id=\"([\w-]+)\"", html)
assert svgs == ["fig-accuracy-flops", "fig-exit-shares", "fig-thresholds"], svgs
points = re.findall(r'class="pt" data-series="(\d+)" data-x="([\d.]+)" data-y="([\d.]+)"', html)
assert len(points) > 100, f"only {len(points)} data points in the accuracy/FLOPs figure"
assert all(0 <= float(x) <= 200 and 0 <= float(y) <= 100.001 for _, x, y in points)
assert html.count("<tr>") >= 3 + 1, "per-tolerance table missing"
print(f"   report.html: {len(html)} bytes, figures {svgs}, {len(points)} points in the accuracy/FLOPs figure")
EOF
# The bundle alone (no sidecar, no model) cannot give FLOPs: a clear error, not a broken page.
cp "$work/exits.sxb" "$work/alone.sxb"
expect_error "give --model" $cli report "$work/alone.sxb" -o "$work/alone.html"
$cli report "$work/alone.sxb" --model "$model" -o "$work/alone.html" > /dev/null

echo "-- selfxit run (with the bundle)"
$cli run "$model" "$work/frames" --mean 0.286 --std 0.353 --batch 16 --exits "$work/exits.sxb" > "$work/run.txt"
head -3 "$work/run.txt"
tail -1 "$work/run.txt"
[ "$(grep -c '^frame_.*label .* confidence .* exit .* latency ' "$work/run.txt")" -eq 400 ] || fail "run: expected 400 result lines"
grep -q "^summary: 400 images (0 skipped), batch 16: .*accuracy vs file-name labels" "$work/run.txt" || fail "run: no summary line"
python3 - "$work/run.txt" <<'EOF'
import re, sys
summary = open(sys.argv[1]).read().splitlines()[-1]
accuracy = float(re.search(r"accuracy vs file-name labels ([\d.]+)%", summary).group(1))
assert accuracy > 80, f"accuracy {accuracy}% with exits on 400 Fashion-MNIST frames: preprocessing or exits broken"
assert re.search(r"exit \d+ [\d.]+%", summary), "no image left early"
EOF

echo "-- selfxit bench"
$cli bench "$model" --batch 4 --iters 10 --threads 2 | tee "$work/bench.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['batch']==4 and 0<d['p50_ms']<=d['p95_ms'] and d['mean_ms']>0, d" "$work/bench.json"

echo "-- --help and bad flags"
for sub in "" inspect run build report bench; do
  $cli $sub --help | grep -q "^USAGE: selfxit" || fail "selfxit $sub --help"
done
for exe in selfxit-demo selfxit-bench selfxit-experiment selfxit-kernelbench; do
  $bin/$exe --help | grep -q "^USAGE: $exe" || fail "$exe --help"
done
expect_error "The value 'abc' is invalid for '--batch <batch>'" $cli run "$model" "$work/frames" --batch abc
expect_error "Unknown option '--bogus'" $cli inspect "$model" --bogus
expect_error "model file 'no/such.onnx' does not exist" $cli inspect no/such.onnx
expect_error "image folder 'no/such/folder' does not exist" $cli run "$model" no/such/folder
expect_error "--batch must be in 1...1048576, got 0" $cli bench "$model" --batch 0
expect_error "--tolerance must be in (0, 1), got 2.0" $cli build "$model" "$work/frames" --tolerance 2 -o "$work/x.sxb"
expect_error "Missing expected argument '--output <bundle.sxb>'" $cli build "$model" "$work/frames"
expect_error "--mean has 2 values; the model takes 1 channel: give one value" $cli run "$model" "$work/frames" --mean 0.1,0.2
expect_error "The value 'x' is invalid for '--std" $cli run "$model" "$work/frames" --std x
expect_error "exit bundle 'no.sxb' does not exist" $cli run "$model" "$work/frames" --exits no.sxb
expect_error "not a SelfXit exit bundle" $cli run "$model" "$work/frames" --exits "$work/build.txt"
expect_error "The value 'abc' is invalid for '--batch <batch>'" $bin/selfxit-bench --model "$model" --batch abc
expect_error "The value 'abc' is invalid for '--batch <batch>'" $bin/selfxit-demo --batch abc
expect_error "--tolerances must be numbers in (0, 1)" $bin/selfxit-experiment --model "$model" --tolerances 0.01,x
expect_error "'abc' is neither a word (cold, copy, ctd, dn, dw, grid, grouped, inplace, min, packed, pw, r50, tune) nor a positive number" $bin/selfxit-kernelbench 2 abc
expect_error "Missing expected argument '--model <model>'" $bin/selfxit-bench

echo "-- camera loop: --mean/--std/--scale"
cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -Iinclude examples/camera_loop.c -o "$work/camera_loop" \
   -L$bin -lselfxit -Wl,-rpath,"$PWD/$bin" -lpthread
"$work/camera_loop" --help | grep -q -- "--mean M\[,M,M\]" || fail "camera_loop --help does not list --mean"
expect_error "--mean needs one number or three" "$work/camera_loop" --model "$model" --frames "$work/frames" --mean 0.1,0.2
expect_error "--std needs one number or three separated by commas (non-zero)" "$work/camera_loop" --model "$model" --frames "$work/frames" --std 0
expect_error "--scale needs a non-zero number, got 'abc'" "$work/camera_loop" --model "$model" --frames "$work/frames" --scale abc
expect_error "--fps needs a number >= 0, got 'abc'" "$work/camera_loop" --model "$model" --frames "$work/frames" --fps abc
expect_error "--collect needs a whole number >= 0, got '1.5'" "$work/camera_loop" --model "$model" --frames "$work/frames" --collect 1.5
# Explicit flags equal to the defaults give the default run's answers (no exit build); other
# normalisation changes them.
answers() { grep '^frame ' "$1" | sed 's/ *latency.*//' | sort; }
loop=("$work/camera_loop" --model "$model" --frames "$work/frames" --fps 0 --collect 0 --threads 2)
"${loop[@]}" > "$work/loop_default.txt"
"${loop[@]}" --mean 0.286,0.286,0.286 --std 0.353 --scale 0.00392156862745098 > "$work/loop_flags.txt"
"${loop[@]}" --mean 0.9 --std 0.1 > "$work/loop_wrong.txt"
[ "$(answers "$work/loop_default.txt" | wc -l)" -eq 400 ] || fail "camera_loop: expected 400 answers"
[ "$(answers "$work/loop_default.txt")" = "$(answers "$work/loop_flags.txt")" ] || fail "camera_loop: explicit default normalisation changed the answers"
[ "$(answers "$work/loop_default.txt")" != "$(answers "$work/loop_wrong.txt")" ] || fail "camera_loop: --mean/--std had no effect"
for run in default flags wrong; do echo "   camera loop ($run): $(grep "no exits built" "$work/loop_$run.txt" | tr -s ' ')"; done

echo "-- report.html in headless Chromium"
command -v chromium >/dev/null || fail "chromium is not installed (tools/bootstrap.sh installs it)"
shot="$PWD/$work/report.png"
chrome=(timeout 180 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$PWD/$work/chromium-profile")
"${chrome[@]}" --dump-dom "file://$PWD/$work/report.html" 2>/dev/null > "$work/report.dom.html"
python3 - "$work/report.dom.html" <<'EOF'
import re, sys
dom = open(sys.argv[1]).read()
svgs = re.findall(r"<svg id=\"([\w-]+)\"", dom)
points = len(re.findall(r'class="pt"', dom))
assert len(svgs) == 3 and points > 100, (svgs, points)
print(f"   Chromium DOM: {len(svgs)} <svg> figures, {points} data marks")
EOF
"${chrome[@]}" --screenshot="$shot" --window-size=1200,1700 "file://$PWD/$work/report.html" > /dev/null 2>&1
[ -s "$shot" ] || fail "no screenshot"
# Blue, orange and green: the first three exits' curves and bars.
python3 tools/png_check.py "$shot" --min-ink 0.05 --color 1f77b4 --color ff7f0e --color 2ca02c
echo "   screenshot: $shot"
echo "test_cli: all passed"
