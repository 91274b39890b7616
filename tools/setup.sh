#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what building and checking onnxhook needs on Debian (idempotent, quiet when done).
set -eu
cd "$(dirname "$0")/.."

# Build: meson, ninja, protobuf-c, libunwind, check. Host: darknet. Checker: Debian's onnx 1.12.
# Runtime checker: onnxruntime-node from npm (needs node/npm). valgrind, binutils: tests.
# help2man: onnxhook(1) from the command's --help; groff-base checks it. graphviz: the ONNXHOOK_DOT
# picture (its test and tools/picture.sh run dot). ltrace, uftrace: bench/run.sh compares with them.
# libzydis-dev: the locator's x86-64 decoder (finds a host's code in a stripped executable).
# python3-torch, python3-torchvision, libtorch-dev, g++: the torch host (its headers, libc10) and
# its tests.
packages="meson ninja-build gcc g++ pkg-config protobuf-c-compiler libprotobuf-c-dev libunwind-dev
libzydis-dev check darknet python3-onnx python3-numpy binutils valgrind help2man groff-base graphviz
ltrace uftrace python3-torch python3-torchvision libtorch-dev"
command -v node >/dev/null 2>&1 || packages="$packages nodejs"
command -v npm >/dev/null 2>&1 || packages="$packages npm"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing Debian packages:$missing"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

# onnxruntime-node, pinned by tests/ort/package-lock.json. --ignore-scripts: its install
# script downloads GPU binaries and fails offline; the CPU library ships inside the package.
lock=tests/ort/package-lock.json
stamp=tests/ort/node_modules/.onnxhook-stamp
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
	echo "setup: installing onnxruntime-node (npm ci --ignore-scripts)"
	(cd tests/ort && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$lock" "$stamp"
fi
