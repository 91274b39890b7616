#!/bin/sh
# SPDX-License-Identifier: MIT
# Every host of the registry (preload/meson.build) is in every place derived from it: the
# preload's host table (hosts-check) and the command's --list-symbols. The exports test holds
# the preload's exported symbols against the registry too.
set -eu
check=$1 preload=$2 stubs=$3 cli=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$check" "$preload" "$stubs"
"$check" --list >"$tmp/registry"
"$cli" --list-symbols | sed '/^process /,$d' >"$tmp/cli"
if ! diff -u "$tmp/registry" "$tmp/cli"; then
	echo "check-hosts: onnxhook --list-symbols differs from the host registry (- registry, + command)" >&2
	exit 1
fi
echo "check-hosts: $(grep -c ':$' "$tmp/registry") hosts, $(grep -c '^  ' "$tmp/registry") symbols, in the preload's table and the command's list"
