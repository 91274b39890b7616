#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: a dump made from a signal handler neither crashes nor hangs.
#   stacks: the program's own SA_ONSTACK handler on a 16 KiB sigaltstack (ending it with _exit,
#           or with the default action), and a stack overflow caught on such a stack: the exit
#           status is the program's own, the model is written, with the provenance an exit gives.
#   stress: SIGTERM at random moments of a loop over hooked calls and malloc/realloc/free,
#           100 runs: no hang, the status the program has without the hook, and each run writes
#           a valid model or says in one line that it wrote none.
# The app refuses malloc inside signal handlers (status 99, one line).
# usage: sigdump.sh PRELOAD SIGDUMP_APP stacks|stress
set -u
preload=$(realpath "$1") app=$(realpath "$2") part=$3
. "$(dirname "$0")/preload-env.sh" "$preload"
# Under ASan a stack overflow is ASan's to report: let it take its default action instead.
[ -n "$asan_lib" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:handle_segv=0
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_DUMP_ON_SIGNAL ONNXHOOK_DUMP_ON_CRASH ONNXHOOK_PASS
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-sigdump.XXXXXX")
failures=0
fail() {
	echo "sigdump: FAIL: $*" >&2
	failures=$((failures + 1))
}

# run NAME HOOK DUMP PASS ARGS...: the app in $dir/NAME (with the hook if HOOK=1, and the
# variables in $extra), killed after a minute if it hangs; its status in NAME/status.
extra=
run() {
	local name=$1 hook=$2 dump=$3 pass=$4
	shift 4
	mkdir -p "$dir/$name"
	(
		cd "$dir/$name" || exit
		ulimit -c 0
		if [ "$hook" = 1 ]; then
			# shellcheck disable=SC2086 # $extra: several assignments
			timeout -s KILL 60 env LD_PRELOAD="$hook_preload" ONNXHOOK_DUMP_ON_SIGNAL="$dump" \
				ONNXHOOK_DUMP_ON_CRASH="$dump" ONNXHOOK_PASS="$pass" $extra "$app" "$@" >stdout 2>stderr
		else
			timeout -s KILL 60 "$app" "$@" >stdout 2>stderr
		fi
		echo $? >status
	)
}

# check NAME WANT_STATUS: the status, stdout as natively, stderr only our lines, no temp files.
check() {
	local w=$dir/$1
	if [ "$(cat "$w/status")" = 137 ]; then
		fail "$1: hung (killed after a minute)"
	elif [ "$(cat "$w/status")" != "$2" ]; then
		fail "$1: status $(cat "$w/status"), without the hook $2: $(head -c 300 "$w/stderr")"
	elif grep -qv '^onnxhook: ' "$w/stderr"; then
		fail "$1: stderr has more than onnxhook lines: $(grep -v '^onnxhook: ' "$w/stderr" | head -3)"
	elif [ -n "$(find "$w" -name '*.tmp.*')" ]; then
		fail "$1: temporary files left: $(find "$w" -name '*.tmp.*')"
	else
		return 0
	fi
	return 1
}

models() { find "$dir/$1" -name '*.onnx' | wc -l; }

if [ "$part" = stacks ]; then
	# mode : models without dump options : with ONNXHOOK_DUMP_ON_SIGNAL=1 ONNXHOOK_DUMP_ON_CRASH=1
	for c in return:1:1 altstack-exit:1:1 altstack-default:0:1 overflow:0:1; do
		IFS=: read -r mode plain dumped <<<"$c"
		run "native-$mode" 0 0 1 "$mode"
		for dump in 0 1; do
			run "$mode-$dump" 1 "$dump" 1 "$mode"
			want=$([ "$dump" = 1 ] && echo "$dumped" || echo "$plain")
			if check "$mode-$dump" "$(cat "$dir/native-$mode/status")"; then
				if ! cmp -s "$dir/$mode-$dump/stdout" "$dir/native-$mode/stdout"; then
					fail "$mode (dump=$dump): stdout differs"
				elif [ "$(models "$mode-$dump")" != "$want" ]; then
					fail "$mode (dump=$dump): $(models "$mode-$dump") model(s), want $want: $(cat "$dir/$mode-$dump/stderr")"
				else
					echo "sigdump: ok: $mode (dump=$dump): status $(cat "$dir/$mode-$dump/status"), $want model(s)"
				fi
			fi
		done
	done
	# What a dump from a handler leaves out says so, each in one line; the model is written.
	extra="ONNXHOOK_BATCH=dynamic ONNXHOOK_DOT=m.dot ONNXHOOK_TEST_DATA=1"
	run extras 1 1 1 altstack-default
	extra=
	if check extras "$(cat "$dir/native-altstack-default/status")"; then
		w=$dir/extras
		if [ "$(models extras)" != 1 ] || [ -e "$w/m.dot" ] || [ -n "$(find "$w" -name '*test_data*')" ]; then
			fail "extras: want the model alone: $(ls "$w")"
		elif ! grep -q '^onnxhook: error: ONNXHOOK_BATCH=dynamic is not applied in a dump from a signal handler; the model keeps the traced batch size$' "$w/stderr" ||
			! grep -q '^onnxhook: warning: a dump from a signal handler writes the model only: no Graphviz file or test data$' "$w/stderr"; then
			fail "extras: stderr does not say what was left out: $(cat "$w/stderr")"
		else
			echo "sigdump: ok: dynamic batch, dot file and test data left out of a dump from a handler, with a line each"
		fi
	fi
elif [ "$part" = stress ]; then
	run native-stress 0 0 1 stress 1
	native=$(cat "$dir/native-stress/status")
	written=0 refused=0
	for seed in $(seq 1 100); do
		# Odd runs record every pass: the signal may find the recorder busy.
		pass=$([ $((seed % 2)) = 1 ] && echo all || echo 1)
		name=stress-$seed-pass-$pass
		run "$name" 1 1 "$pass" stress "$seed"
		check "$name" "$native" || continue
		n=$(models "$name")
		if [ "$n" = 1 ]; then
			written=$((written + 1))
		elif [ "$n" = 0 ] && [ "$(grep -c '^onnxhook: error: .*no model written$' "$dir/$name/stderr")" = 1 ]; then
			refused=$((refused + 1))
		else
			fail "$name: $n model(s), and stderr: $(head -c 300 "$dir/$name/stderr")"
		fi
	done
	echo "sigdump: stress: 100 runs killed by SIGTERM (status $native): $written models written, $refused said why none"
else
	echo "usage: sigdump.sh PRELOAD SIGDUMP_APP stacks|stress" >&2
	exit 2
fi

# Every model is complete and valid; those written from a handler carry the provenance an exit
# gives (a crash dump carries none).
if ! /usr/bin/python3 - "$dir" <<'PY'
import glob, onnx, sys
paths = sorted(glob.glob(sys.argv[1] + "/*/*.onnx"))
hosts = set()
for p in paths:
    m = onnx.load(p)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    assert ops and set(ops) <= {"Conv", "Relu"}, (p, ops)
    meta = {e.key: e.value for e in m.metadata_props}
    if "/overflow-" not in p:
        hosts.add((meta.get("onnxhook.host_library"), meta.get("onnxhook.host_build_id")))
assert len(hosts) == 1 and None not in next(iter(hosts)), hosts
print(f"sigdump: {len(paths)} models pass the full checker, with one provenance: {hosts}")
PY
then
	failures=$((failures + 1))
fi
if [ "$failures" -gt 0 ]; then
	echo "sigdump: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
