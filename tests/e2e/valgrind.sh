#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end under valgrind's memcheck: the traced app makes no memory error and leaks nothing
# definite, behaves as without the hook, and the model is complete.
# usage: valgrind.sh PRELOAD APP [APP ARGS...]
set -u
preload=$(realpath "$1") app=$(realpath "$2")
shift 2
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-valgrind.XXXXXX")
unset LD_PRELOAD
"$app" "$@" >"$dir/native.stdout" 2>&1 || { echo "valgrind: the app fails by itself" >&2; exit 1; }
# valgrind hands LD_PRELOAD on to the program, after its own preloads.
LD_PRELOAD="$preload" ONNXHOOK_OUTPUT="$dir/m.onnx" valgrind --quiet --error-exitcode=99 \
	--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions="$(dirname "$0")/valgrind.supp" \
	"$app" "$@" >"$dir/valgrind.stdout" 2>"$dir/valgrind.stderr"
status=$?
if [ "$status" != 0 ] || ! cmp -s "$dir/native.stdout" "$dir/valgrind.stdout" ||
	grep -v '^onnxhook: wrote ' "$dir/valgrind.stderr" | grep -q . ||
	! /usr/bin/python3 -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$dir/m.onnx"; then
	echo "valgrind: FAIL (status $status); work dir kept: $dir" >&2
	cat "$dir/valgrind.stderr" >&2
	exit 1
fi
echo "valgrind: clean; $(grep '^onnxhook: wrote ' "$dir/valgrind.stderr")"
rm -rf "$dir"
