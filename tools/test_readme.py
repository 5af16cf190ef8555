#!/usr/bin/env python3
"""Runs the README's C and Python snippets as written (run by tools/test.sh).

    tools/test_readme.py [--python VENV_PYTHON] [--library DIR] [--count N]

C: the ```c block is a complete translation unit defining `classify(images, batch)`. It is
compiled as written (-std=c99 -Wall -Wextra -Werror -pedantic) against include/ and linked with
the build tree's libselfxit.so (--library, default .build/release) and a harness `main` that
passes N Fashion-MNIST test images (the model's normalisation), then run from the repository
root. Checked: exit status 0, one line per sample and pass, every first-pass answer from the full
model, and some second-pass answers from an early exit (the snippet's claim).

Python: the ```python block is run as written by VENV_PYTHON (default: the interpreter running
this script; tools/test.sh passes .build/pyvenv's, where the package is pip-installed), after a
harness that only defines `images` (N Fashion-MNIST test images, (N, 1, 28, 28) float32).
Checked: exit status 0 and the stats it prints hold the exit build (last_build, active_exits).

The ```swift block is not run here (an external SwiftPM package test covers it).
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HARNESS_C = r"""/* tools/test_readme.py: the README's C snippet, given N Fashion-MNIST images. */
#include <stdio.h>
#include <stdlib.h>

int classify(const float *images, size_t batch);

int main(int argc, char **argv) {
    size_t batch = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    float *images = malloc(batch * 784 * sizeof(float));
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (batch == 0 || images == NULL || f == NULL || fread(images, sizeof(float), batch * 784, f) != batch * 784) {
        fprintf(stderr, "usage: readme_c IMAGES.f32 N\n");
        return 2;
    }
    fclose(f);
    int status = classify(images, batch);
    free(images);
    return status;
}
"""

HARNESS_PY = """\
# tools/test_readme.py harness: `images` = the first {count} Fashion-MNIST test images.
import sys
sys.path.insert(0, {tools!r})
import fashion_mnist
images = fashion_mnist.normalize(fashion_mnist.load("test")[0][:{count}])
del sys.path[0]
"""


def snippets(language):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```" + language + r"\n(.*?)^```", text, flags=re.S | re.M)


def fail(message, output=""):
    sys.stderr.write(output[-4000:] + "\ntest_readme: FAIL: " + message + "\n")
    sys.exit(1)


def run_c(library, count, work):
    blocks = snippets("c")
    if len(blocks) != 1:
        fail(f"README.md has {len(blocks)} ```c blocks, expected 1")
    snippet, harness, binary = (os.path.join(work, n) for n in ("snippet.c", "harness.c", "readme_c"))
    with open(snippet, "w") as f:
        f.write(blocks[0])
    with open(harness, "w") as f:
        f.write(HARNESS_C)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import fashion_mnist  # noqa: E402  (numpy is there when this runs in the test venv)
    images = fashion_mnist.normalize(fashion_mnist.load("test")[0][:count])
    data = os.path.join(work, "images.f32")
    images.astype("<f4").tofile(data)
    cc = os.environ.get("CC", "cc")
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-I" + os.path.join(ROOT, "include")]
    build = subprocess.run([cc, *flags, snippet, harness, "-o", binary, "-L" + library, "-lselfxit",
                            "-Wl,-rpath," + library], capture_output=True, text=True)
    if build.returncode != 0:
        fail("the README's C snippet does not compile as written", build.stdout + build.stderr)
    run = subprocess.run([binary, data, str(count)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    output = run.stdout + run.stderr
    if run.returncode != 0:
        fail(f"the README's C snippet exited with {run.returncode}", output)
    lines = run.stdout.splitlines()
    if len(lines) != 2 * count or not all(re.fullmatch(r"sample \d+: class \d \(\d\.\d\d\) from .*", l) for l in lines):
        fail(f"expected {2 * count} result lines from the C snippet, got {len(lines)}", output)
    first, second = lines[:count], lines[count:]
    if any(not l.endswith("the full model") for l in first):
        fail("a first-pass sample (exits off) was answered by an early exit", output)
    early = sum(l.endswith("an early exit") for l in second)
    if early == 0:
        fail("no second-pass sample left early after sx_update_exits", output)
    print(f"test_readme: C snippet OK ({count} samples; {early} left early on the second pass)")


def run_python(python, library, count):
    blocks = snippets("python")
    if len(blocks) != 1:
        fail(f"README.md has {len(blocks)} ```python blocks, expected 1")
    program = HARNESS_PY.format(count=count, tools=os.path.join(ROOT, "tools")) + blocks[0]
    env = dict(os.environ, SELFXIT_LIBRARY=os.path.join(library, "libselfxit.so"))
    run = subprocess.run([python, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    output = run.stdout + run.stderr
    if run.returncode != 0:
        fail(f"the README's Python snippet exited with {run.returncode}", output)
    if "'last_build'" not in run.stdout or "'active_exits'" not in run.stdout:
        fail("the stats the README's Python snippet printed show no exit build", output)
    print(f"test_readme: Python snippet OK ({count} samples)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--library", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--only", choices=["c", "python"])
    args = parser.parse_args()
    library = os.path.abspath(args.library)
    work = os.path.join(ROOT, ".build", "readme")
    os.makedirs(work, exist_ok=True)
    if args.only in (None, "c"):
        run_c(library, args.count, work)
    if args.only in (None, "python"):
        run_python(args.python, library, args.count)


if __name__ == "__main__":
    main()
