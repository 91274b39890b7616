#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's picture: build, trace the resnet18 demo (--size 64) with ONNXHOOK_DOT, and lay the
# graph out with graphviz's dot into docs/resnet18.png. usage: tools/picture.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build}

tools/setup.sh
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && LD_PRELOAD="$root/$build/preload/libonnxhook.so" ONNXHOOK_OUTPUT=resnet18.onnx \
	ONNXHOOK_DOT=resnet18.dot "$root/$build/demo/resnet18" --size 64 >/dev/null)
# The dot file says rankdir=TB and the font sizes; 72 dpi keeps the ~70 boxes a readable column.
dot -Tpng -Gdpi=72 "$tmp/resnet18.dot" -o "$tmp/resnet18.png"
mv "$tmp/resnet18.png" docs/resnet18.png
echo "== picture: docs/resnet18.png ($(wc -c <docs/resnet18.png) bytes) from $tmp/resnet18.dot"
