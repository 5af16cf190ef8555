#!/usr/bin/env python3
"""Checks that include/selfxit.h's "Errors:" line of each function lists every status the C
shell (Sources/SelfXitC) can return from it.

    tools/check_error_docs.py [REPO_ROOT]

How the statuses of a function are found:
  - in the @_cdecl function's body and, recursively, in the SelfXitC helpers it calls:
    CABIError.invalid → INVALID_ARGUMENT, CABIError.busy → BUSY, any SX_ERR_X literal → X,
    HandleRegistry.with / readVersioned / writeVersioned → INVALID_ARGUMENT;
  - for calls into the Swift API (`engine.method(` / `Engine(contentsOf:`), the SelfXitError cases that
    method can throw, from SWIFT_API below — the one hand-kept part: when a Swift method
    starts throwing a new case, add it there (Tests/CABI/test_files.c checks at run time that
    every status the library actually returned is documented, which catches a stale entry).
INTERNAL is documented once for all functions (header conventions) and not required per line.
Exits 1 listing each undocumented status; prints the table it derived otherwise.
"""

import re
import sys
from pathlib import Path

STATUSES = ["INVALID_ARGUMENT", "IO", "BAD_MODEL", "UNSUPPORTED_OP", "SHAPE_MISMATCH", "WRONG_STATE", "BUSY",
            "OUT_OF_MEMORY", "TIMEOUT", "INTERNAL", "INVALID_DATA", "CANCELLED"]

# SelfXitError case → status (mirrors SelfXitError.status in Sources/SelfXitC/CABI+Errors.swift;
# checked against that file below).
CASE_STATUS = {
    "invalidArgument": "INVALID_ARGUMENT", "io": "IO", "invalidModel": "BAD_MODEL",
    "unsupportedOperator": "UNSUPPORTED_OP", "shapeMismatch": "SHAPE_MISMATCH", "wrongState": "WRONG_STATE",
    "internalError": "INTERNAL", "invalidData": "INVALID_DATA", "unsupportedModel": "UNSUPPORTED_OP",
    "outOfMemory": "OUT_OF_MEMORY", "cancelled": "CANCELLED", "busy": "BUSY",
}

# Swift API entry points the shell calls → SelfXitError cases they can throw.
SWIFT_API = {
    "Engine(contentsOf": {"invalidArgument", "io", "invalidModel", "unsupportedOperator", "unsupportedModel", "shapeMismatch",
                          "outOfMemory"},
    "Engine(modelBytes": {"invalidArgument", "invalidModel", "unsupportedOperator", "unsupportedModel", "shapeMismatch",
                          "outOfMemory"},
    "submit": {"invalidArgument", "shapeMismatch", "outOfMemory"},
    "inferOutputs": {"invalidArgument", "shapeMismatch", "outOfMemory", "invalidModel", "unsupportedOperator"},
    "updateExits": {"invalidArgument", "wrongState", "outOfMemory", "cancelled"},
    "setExitsEnabled": set(),
    "saveExits": {"wrongState", "io"},
    "loadExits": {"io", "invalidData"},
    "decodeImage": {"invalidArgument", "invalidData", "shapeMismatch"},
    "stats": set(), "statsJSON": set(), "resetStats": set(),
    # Issue 16: background builds and audited serving.
    "startExitBuild": {"invalidArgument", "busy", "outOfMemory", "wrongState"},
    "cancelExitBuild": {"wrongState"},
    "configureServing": {"invalidArgument"},
    "servingStatsJSON": set(), "waitForExitBuild": set(), "exitBuildRunning": set(), "shutDownExitBuilds": set(),
    # sx_wait_exit_build rethrows the last background build's failure: updateExits' errors.
    "lastExitBuildError": {"invalidArgument", "wrongState", "outOfMemory", "cancelled"},
}

# Statuses a ticket's stored failure can carry into sx_wait: those of the async run (sx_submit's).
WAIT_INHERITS = "sx_submit"


def function_bodies(text, pattern):
    """(name, body) for each match of `pattern` (a regex with one name group, matching up to the
    function's name): the signature and the brace-balanced body that follows."""
    for m in re.finditer(pattern, text):
        start = text.find("{", m.end())
        if start < 0:
            continue
        depth, i = 0, start
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield m.group(1), text[m.end():i + 1]


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    header = (root / "include/selfxit.h").read_text()
    shell = {p.name: p.read_text() for p in sorted((root / "Sources/SelfXitC").glob("*.swift"))}
    problems = []

    errors_swift = shell["CABI+Errors.swift"]
    for case, status in CASE_STATUS.items():
        if not re.search(rf"case \.{case}: return SX_ERR_{status}\b", errors_swift):
            problems.append(f"CABI+Errors.swift does not map SelfXitError.{case} to SX_ERR_{status} (update this script)")

    # Documented statuses per function: the comment right above each `sx_status sx_name(`.
    documented = {}
    for m in re.finditer(r"/\*((?:(?!\*/).)*)\*/\s*(?:SX_NODISCARD\s+)?(?:SX_API\s+)?sx_status\s+(sx_\w+)\s*\(", header, re.S):
        comment, name = m.group(1), m.group(2)
        at = comment.find("Errors")
        if at < 0:
            problems.append(f"{name}: no 'Errors:' in its comment")
            documented[name] = set()
            continue
        text = comment[at:]
        listed = {s for s in STATUSES if re.search(rf"\b{s}\b", text)}
        for inherited in re.findall(r"\b(?:as|of)\s+(sx_\w+)", text):
            listed |= documented.get(inherited, set())
        documented[name] = listed

    # SelfXitC helpers (non-@_cdecl funcs) and what they return directly.
    all_shell = "\n".join(shell.values())

    def direct(body):
        found = set()
        if re.search(r"CABIError\.invalid\(|HandleRegistry\.with\(|readVersioned\(|writeVersioned\(", body):
            found.add("INVALID_ARGUMENT")
        if "CABIError.busy(" in body:
            found.add("BUSY")
        found |= {s for s in re.findall(r"SX_ERR_(\w+)", body) if s in STATUSES}
        for method, cases in SWIFT_API.items():
            call = r"\b" + re.escape(method) + ":" if method.startswith("Engine(") else rf"\.{method}\("
            if re.search(call, body):
                found |= {CASE_STATUS[c] for c in cases}
        return found

    helpers = {}
    for name, body in function_bodies(all_shell, r"\bfunc (\w+)"):
        if not name.startswith("sx_"):
            helpers[name] = helpers.get(name, "") + body

    def statuses(body, seen):
        found = direct(body)
        for name in re.findall(r"\b(\w+)\(", body):
            if name in helpers and name not in seen and not name.startswith("sx_"):
                found |= statuses(helpers[name], seen | {name})
        return found

    returned = {}
    for name, body in function_bodies(all_shell, r'@_cdecl\("(sx_\w+)"\)'):
        if not re.search(r"->\s*sx_status", body.split("{")[0]):
            continue
        returned[name] = statuses(body, set())
    if WAIT_INHERITS in returned and "sx_wait" in returned:
        returned["sx_wait"] |= returned[WAIT_INHERITS]

    for name in sorted(returned):
        if name not in documented:
            problems.append(f"{name}: returns sx_status but has no documented prototype in selfxit.h")
            continue
        missing = returned[name] - documented[name] - {"INTERNAL"}
        if missing:
            problems.append(f"{name}: returns {', '.join(sorted(missing))} but its 'Errors:' line does not list it")
    for name in sorted(set(documented) - set(returned)):
        problems.append(f"{name}: documented in selfxit.h but no @_cdecl function returns it")

    if problems:
        print("check_error_docs: FAILED")
        for p in problems:
            print("  " + p)
        return 1
    for name in sorted(returned):
        print(f"  {name}: returns {', '.join(sorted(returned[name]))}; documents {', '.join(sorted(documented[name]))}")
    print(f"check_error_docs: {len(returned)} functions, every status they return is documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
