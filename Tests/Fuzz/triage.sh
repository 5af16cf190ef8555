#!/bin/sh
# Groups crash inputs by cause: runs each through its harness (built by `make fuzz-build`) and
# prints one line per input: the Swift fatal error or sanitizer report, then the deepest frames
# inside Sources/ (file:line), so duplicates sort together.
#
#   Tests/Fuzz/triage.sh HARNESS FILE...      e.g. Tests/Fuzz/triage.sh onnx .build/fuzz/artifacts/onnx/crash-*
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
h=$1
shift
bin="$root/.build/fuzz/bin/fuzz_$h"
sym="$(dirname "$(realpath "$(command -v swift)")")/llvm-symbolizer"
for f in "$@"; do
    out=$(SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 ASAN_SYMBOLIZER_PATH="$sym" timeout 60 "$bin" -rss_limit_mb=2048 \
          -malloc_limit_mb=1024 -timeout=10 -detect_leaks=0 "$f" 2>&1)
    why=$(printf '%s\n' "$out" | grep -v 'Running' | grep -m1 -E 'Fatal error|ERROR: AddressSanitizer|ERROR: libFuzzer: (out-of-memory|timeout|deadly)|fuzz harness:|fuzz_[a-z]+:' |
          sed -e 's/^==[0-9]*==[ ]*//' -e 's/0x[0-9a-f]*//g')
    frames=$(printf '%s\n' "$out" | grep -E '/Sources/[^ ]+\.(swift|c):[0-9]+' -o | sed "s|.*/Sources/|Sources/|" |
             awk '!seen[$0]++' | head -3 | tr '\n' ' ')
    printf '%s\t%s\t%s\n' "$(basename "$f")" "$why" "$frames"
done
