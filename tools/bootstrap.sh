#!/usr/bin/env bash
# Installs the Debian packages SelfXit builds, tests and demos with, when they are missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(libopenblas-dev libturbojpeg0-dev libpng-dev zlib1g-dev dataset-fashion-mnist pkg-config python3 python3-venv cmake)
# Headless Chromium opens the HTML report of `selfxit report` in tools/test_cli.sh.
packages+=(chromium)
# The NEON kernel configuration's C test, cross-compiled for AArch64 and run under qemu-user
# (make test-aarch64-kernels, run by tools/test.sh): the only way this x86 CI tests the ARM path.
packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi
