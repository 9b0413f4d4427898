#!/usr/bin/env bash
# Makes `cargo build --features cuda` work without network access to GitHub: installs the LLVM
# that Burn's CUDA backend builds against from PyPI, where its build script looks for it.
#
#   scripts/setup-cuda-toolchain.sh      (then: cargo build --release --features cuda)
#
# Why: burn 0.22.1's `cuda` feature pulls burn-cuda → cubecl-cuda 0.11.3 → cubecl-llvm (the
# NVPTX code generator, always compiled) → the build dependency tracel-llvm-bundler 23.1.0-4,
# whose build script downloads an LLVM 23.1 bundle from GitHub unless its marker file exists
# in ${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4/. PyPI's relocatable static
# LLVM 23.1.1 with the NVPTX target (mlc-llvm-static + mlc-llvm-static-extra-targets) has the
# layout that bundle has (lib/, include/, bin/llvm-config). With network access to GitHub the
# script is not needed: the build downloads the bundle itself.
#
# The trick depends on the exact versions above: the script refuses to run when Cargo.lock
# names others (update the paths and pins below together with Burn).
set -euo pipefail
cd "$(dirname "$0")/.."

locked() {
  # The version Cargo.lock records for package $1 (empty when absent).
  awk -v name="$1" '$1 == "name" && $3 == "\"" name "\"" { getline; gsub(/"/, "", $3); print $3 }' \
    Cargo.lock | head -n 1
}
for pin in "burn 0.22.1" "tracel-llvm-bundler 23.1.0-4"; do
  set -- $pin
  found="$(locked "$1")"
  if [ -n "$found" ] && [ "$found" != "$2" ]; then
    echo "setup-cuda-toolchain: Cargo.lock has $1 $found; this script knows $1 $2 only." >&2
    echo "Check where the new tracel-llvm-bundler looks for LLVM and update the script." >&2
    exit 1
  fi
done

data="${XDG_DATA_HOME:-$HOME/.local/share}/tracel"
bundle="$data/tracel-llvm-23.1.0-4"
marker="$bundle/.tracel-llvm-installed"
if [ -f "$marker" ]; then
  echo "LLVM for the cuda feature: already in $bundle"
  exit 0
fi
wheels="$data/mlc-llvm-static-23.1.1"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --upgrade \
  --target "$wheels" mlc-llvm-static==23.1.1.post0 mlc-llvm-static-extra-targets==23.1.1.post0
static="$wheels/mlc_llvm_static/static"
if [ ! -x "$static/bin/llvm-config" ]; then
  echo "setup-cuda-toolchain: $static/bin/llvm-config is missing; the PyPI package changed." >&2
  exit 1
fi
ln -sfn "$static" "$bundle"
touch "$marker"
echo "LLVM for the cuda feature: $("$static/bin/llvm-config" --version) in $bundle"
