#!/usr/bin/env bash
# The README's Swift snippet, as written, in an external SwiftPM package (run by tools/test.sh,
# so by `make test`): a temporary package depends on this repository by path
# (.product(name: "SelfXit")), its main.swift is the ```swift block under "Using the engine
# from Swift" in README.md (extracted, not copied), and it must build and run, printing an
# answer for every sample. Run from the repository root, where the snippet's model path points.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/selfxit-swiftpm.XXXXXX")
trap 'rm -rf "$work"' EXIT

# SwiftPM names a path dependency after its directory (lowercased).
identity=$(basename "$root" | tr '[:upper:]' '[:lower:]')
mkdir -p "$work/Sources/ReadmeSnippet"
cat > "$work/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ReadmeSnippet",
    dependencies: [.package(path: "$root")],
    targets: [
        .executableTarget(name: "ReadmeSnippet", dependencies: [.product(name: "SelfXit", package: "$identity")]),
    ]
)
SWIFT
awk '/^## Using the engine from Swift/ { section = 1; next }
     /^## / { section = 0 }
     section && /^```swift/ { code = 1; next }
     code && /^```/ { exit }
     code { print }' README.md > "$work/Sources/ReadmeSnippet/main.swift"
[ -s "$work/Sources/ReadmeSnippet/main.swift" ] || { echo "FAIL: no \`\`\`swift block under '## Using the engine from Swift' in README.md" >&2; exit 1; }
echo "-- the README snippet (main.swift of $work):"
sed 's/^/  /' "$work/Sources/ReadmeSnippet/main.swift"

echo "-- swift build, debug (external package, depends on $root by path)"
# Its own scratch path: nothing of this repository's .build is reused.
if ! swift build --package-path "$work" >"$work/build.log" 2>&1; then
  tail -60 "$work/build.log"
  echo "FAIL: the README's Swift snippet does not build in an external package" >&2
  exit 1
fi
tail -1 "$work/build.log"
echo "-- run (from the repository root)"
"$(swift build --package-path "$work" --show-bin-path)/ReadmeSnippet" | tee "$work/run.log"
# The snippet answers a batch of 32: every sample once.
for i in $(seq 0 31); do
  grep -q "^sample $i: class [0-9]" "$work/run.log" || { echo "FAIL: no answer for sample $i" >&2; exit 1; }
done
echo "README Swift snippet: builds and runs outside the repository"
