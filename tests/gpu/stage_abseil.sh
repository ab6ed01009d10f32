#!/usr/bin/env bash
# Copies Debian's Abseil headers and shared libraries into .gpu/ (git-ignored), for
# tests/gpu/run_on_device.sh on a GPU machine that has no Abseil of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu && mkdir -p .gpu/include .gpu/lib
cp -r /usr/include/absl .gpu/include/
for library in /usr/lib/x86_64-linux-gnu/libabsl_*.so; do
  soname=$(objdump -p "$library" | awk '/SONAME/ {print $2}')
  cp -L "$library" ".gpu/lib/$soname"              # the name the binary loads
  cp -L "$library" ".gpu/lib/$(basename "$library")"  # the name the linker looks for
done
du -sh .gpu
