#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: stderr is a pipe whose reader is gone. Our lines there raise no SIGPIPE in the
# program: at every log level, with the preload alone and with the onnxhook command, the exit
# status is the untraced run's and the model is written (checker + onnxruntime).
# usage: closed-stderr.sh PRELOAD EXITS_APP ONNXHOOK
set -u
preload=$(realpath "$1") app=$(realpath "$2") cli=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/preload-env.sh" "$preload"
for v in $(compgen -e | grep '^ONNXHOOK_' | grep -v '^ONNXHOOK_ORT_DIR$'); do unset "$v"; done
unset LD_PRELOAD
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-closed-stderr.XXXXXX")
failures=0
fail() { echo "closed-stderr: FAIL: $*" >&2; failures=$((failures + 1)); }

# fd 6: the write end of a FIFO whose only reader (fd 5) is closed again.
mkfifo "$dir/fifo"
exec 5<>"$dir/fifo" 6>"$dir/fifo" 5<&-
# The set-up proves something only if a write there kills a program (SIGPIPE not ignored).
bash -c 'echo x >&2' 2>&6 6>&-
[ $? = 141 ] || fail "a write to the closed pipe does not raise SIGPIPE here: is SIGPIPE ignored?"

# run NAME CMD...: CMD in a fresh $dir/NAME, stderr on the closed pipe, status in NAME/status
run() {
	local name=$1
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && "$@" >stdout 2>&6 6>&-; echo $? >status)
}

# check NAME NATIVE: status as the untraced run's, one valid model reproducing the app's numbers
check() {
	local w=$dir/$1 want
	want=$(cat "$dir/$2/status")
	if [ "$(cat "$w/status")" != "$want" ]; then
		fail "$1: status $(cat "$w/status"), untraced $want"
	elif [ ! -s "$w/model.onnx" ]; then
		fail "$1: no model written"
	elif ! /usr/bin/python3 "$here/check-onnx.py" "$w/model.onnx" --expect-ops Conv=1,Relu=1 >"$w/check" 2>&1; then
		fail "$1: the checker rejects the model: $(cat "$w/check")"
	elif ! node "$here/ort-compare.js" --model "$w/model.onnx" --in "$w/exits-in.bin" \
		--expect "$w/exits-out.bin" >"$w/ort" 2>&1; then
		fail "$1: onnxruntime disagrees with the app: $(cat "$w/ort")"
	else
		echo "closed-stderr: ok: $1: status $want, model written"
	fi
}

for mode in return _exit; do
	run "native-$mode" "$app" "$mode"
	for level in info debug quiet; do
		run "preload-$mode-$level" env LD_PRELOAD="$hook_preload" ONNXHOOK_LOG=$level \
			ONNXHOOK_OUTPUT=model.onnx "$app" "$mode"
		check "preload-$mode-$level" "native-$mode"
	done
	for opt in -v "" -q; do
		run "onnxhook$opt-$mode" "$cli" $opt -o model.onnx -- "$app" "$mode"
		check "onnxhook$opt-$mode" "native-$mode"
	done
done
exec 6>&-
if [ "$failures" -gt 0 ]; then
	echo "closed-stderr: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
