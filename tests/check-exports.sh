#!/bin/sh
# SPDX-License-Identifier: MIT
# The preload exports exactly the hooked symbols: nm -D --defined-only equals the hook lists.
set -eu
lib=$1 list=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TWDBRVi]$/ { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/exported"
"$list" | sort -u >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/exported"; then
	echo "check-exports: $lib exports differ from the hook lists (- expected, + exported)" >&2
	exit 1
fi
echo "check-exports: $(wc -l <"$tmp/expected") symbols, as listed"
