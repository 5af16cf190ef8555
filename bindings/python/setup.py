"""Build hooks for the selfxit wheel: ship libselfxit.so inside the package.

The library is built by the Swift package, not here (a Swift build takes minutes and needs
the toolchain; a Python build backend should not start one behind the user's back). This
script copies an already built library into the wheel:

  1. $SELFXIT_BUILD_LIBRARY, if set (the full path of a libselfxit.so);
  2. otherwise <repo>/.build/release/libselfxit.so, the `swift build -c release` output of
     the repository holding this directory (pip builds a local directory in place, so the
     repository is found from here).

No library: the build stops with a message saying how to make one. The wheel is tagged
py3-none-linux_<arch> (ctypes: any Python 3, one platform); `auditwheel repair` turns it into
manylinux_2_XX, grafting whatever the library still links dynamically.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIB_NAME = "libselfxit.so"


def _library() -> Path:
    env = os.environ.get("SELFXIT_BUILD_LIBRARY")
    if env:
        path = Path(env)
        if not path.is_file():
            sys.exit(f"selfxit build: SELFXIT_BUILD_LIBRARY={env} is not a file")
        return path
    path = HERE.parents[1] / ".build" / "release" / LIB_NAME
    if not path.is_file():
        sys.exit(
            f"selfxit build: {path} not found. Build the library first, in the repository root:\n"
            "    swift build -c release\n"
            "or point SELFXIT_BUILD_LIBRARY at a libselfxit.so to package."
        )
    return path


class BuildPyWithLibrary(build_py):
    """Copies the library into the build tree (never into the source tree), beside _lib.py,
    where `selfxit._lib` looks first after $SELFXIT_LIBRARY."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # `pip install -e`: the package finds <repo>/.build/release by itself
        source = _library()
        target = Path(self.build_lib) / "selfxit" / LIB_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        print(f"selfxit build: packaged {source} ({source.stat().st_size / 1e6:.1f} MB)")


class NativeDistribution(Distribution):
    """Carries a native library: installed to platlib, wheel not pure (no extension module though)."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """A platform wheel (it carries a native library) for any Python 3 (ctypes, no extension
    module, so no Python ABI tag)."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(distclass=NativeDistribution, cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
