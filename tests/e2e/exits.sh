#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: the model comes out on every exit path, the exit status is the app's own, a
# forked child writes its own model only if it recorded, a vfork child writes nothing. With
# ONNXHOOK (the command), it reports the model an exec'ing program wrote.
# usage: exits.sh PRELOAD EXITS_APP [ONNXHOOK]
set -u
preload=$(realpath "$1") app=$(realpath "$2") cli=${3:+$(realpath "$3")}
. "$(dirname "$0")/preload-env.sh" "$preload"
# Under ASan the faults are ASan's to report, not the program's: let them take their default
# action, as without ASan, so the crash dumps have something to test.
[ -n "$asan_lib" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_DUMP_ON_SIGNAL ONNXHOOK_DUMP_ON_CRASH ONNXHOOK_DUMP_AFTER_PASS ONNXHOOK_REPORT
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-exits.XXXXXX")
failures=0

# mode : models written without dump options : with ONNXHOOK_DUMP_ON_SIGNAL=1 ONNXHOOK_DUMP_ON_CRASH=1
#      : with ONNXHOOK_DUMP_AFTER_PASS=1 (written when a second pass begins, else at exit as usual)
cases="return:1:1:1 exit:1:1:1 _exit:1:1:1 _Exit:1:1:1 quick_exit:1:1:1 sigterm:0:1:0 sigterm-handler:1:1:1
sigint-flag:1:1:1 segv:0:1:0 fault:0:1:0 abort:0:1:0 fork-infer:2:2:2 fork-quiet:1:1:1 vfork:1:1:1
sigkill:0:0:0 pass2-sigkill:0:0:1 pass2:1:1:1
execv:1:1:1 execve:1:1:1 execvp:1:1:1 execvpe:1:1:1 execl:1:1:1 execle:1:1:1 execlp:1:1:1 fexecve:1:1:1
execveat:1:1:1 exec-self:1:1:1 exec-fail:1:1:1 vfork-exec:1:1:1 fork-exec:2:2:2"
for c in $cases; do
	IFS=: read -r mode plain dumped after <<<"$c"
	mkdir -p "$dir/native-$mode"
	(cd "$dir/native-$mode" && ulimit -c 0 && "$app" "$mode" >stdout 2>/dev/null; echo $? >status)
	for dump in 0 1 after; do
		w=$dir/$mode-$dump
		mkdir -p "$w"
		sig=$([ $dump = 1 ] && echo 1 || echo 0)
		(cd "$w" && ulimit -c 0 && env LD_PRELOAD="$hook_preload" ONNXHOOK_LOG=quiet ONNXHOOK_DUMP_ON_SIGNAL=$sig \
			ONNXHOOK_DUMP_ON_CRASH=$sig ONNXHOOK_DUMP_AFTER_PASS=$([ $dump = after ] && echo 1 || echo 0) \
			ONNXHOOK_REPORT="$w/report" "$app" "$mode" >stdout 2>stderr; echo $? >status)
		want=$(case $dump in 1) echo "$dumped" ;; after) echo "$after" ;; *) echo "$plain" ;; esac)
		got=$(find "$w" -name '*.onnx' | wc -l)
		leftovers=$(find "$w" -name '*.tmp*' -o -name '.onnxhook.*' | wc -l)
		reported=$(cat "$w/report" 2>/dev/null | wc -l) # one line per model written: none twice
		if [ "$(cat "$w/status")" != "$(cat "$dir/native-$mode/status")" ]; then
			echo "exits: FAIL: $mode (dump=$dump): status $(cat "$w/status"), natively $(cat "$dir/native-$mode/status")" >&2
			failures=$((failures + 1))
		elif ! cmp -s "$w/stdout" "$dir/native-$mode/stdout"; then
			echo "exits: FAIL: $mode (dump=$dump): stdout differs" >&2
			failures=$((failures + 1))
		elif [ "$got" != "$want" ] || [ "$leftovers" != 0 ] || [ "$reported" != "$want" ]; then
			echo "exits: FAIL: $mode (dump=$dump): $got model(s), $reported reported, and $leftovers temp file(s), want $want and 0" >&2
			failures=$((failures + 1))
		else
			echo "exits: ok: $mode (dump=$dump): status $(cat "$w/status"), $got model(s)"
		fi
	done
done
# The command sees the model of a program that recorded, then exec'd another.
for mode in ${cli:+execv exec-self}; do
	w=$dir/onnxhook-$mode
	mkdir -p "$w"
	(cd "$w" && "$cli" -o model.onnx -- "$app" "$mode" >stdout 2>stderr; echo $? >status)
	if [ "$(cat "$w/status")" != "$(cat "$dir/native-$mode/status")" ]; then
		echo "exits: FAIL: onnxhook $mode: status $(cat "$w/status"), natively $(cat "$dir/native-$mode/status")" >&2
		failures=$((failures + 1))
	elif ! grep -q '^onnxhook: wrote model.onnx$' "$w/stderr" || grep -q 'no model written' "$w/stderr"; then
		echo "exits: FAIL: onnxhook $mode: the command did not report model.onnx: $(cat "$w/stderr")" >&2
		failures=$((failures + 1))
	else
		echo "exits: ok: onnxhook $mode: status $(cat "$w/status"), model reported"
	fi
done
# Every model written, even from a signal handler, runs in onnxruntime to the app's numbers.
for m in $(find "$dir" -name '*.onnx' | sort); do
	d=$(dirname "$m")
	if ! node "$(dirname "$0")/ort-compare.js" --model "$m" --in "$d/exits-in.bin" --expect "$d/exits-out.bin" >"$m.ort" 2>&1; then
		echo "exits: FAIL: onnxruntime disagrees with the app for $m: $(cat "$m.ort")" >&2
		failures=$((failures + 1))
	fi
done
# Every model written, even from a signal handler, is complete and valid.
if ! /usr/bin/python3 - "$dir" <<'PY'
import glob, onnx, sys
paths = sorted(glob.glob(sys.argv[1] + "/*/*.onnx"))
for p in paths:
    m = onnx.load(p)
    onnx.checker.check_model(m, full_check=True)
    assert [n.op_type for n in m.graph.node] == ["Conv", "Relu"], p
print(f"exits: {len(paths)} models pass the full checker")
PY
then
	failures=$((failures + 1))
fi
if [ "$failures" -gt 0 ]; then
	echo "exits: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
