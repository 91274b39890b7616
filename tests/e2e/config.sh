#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: ONNXHOOK_* values, output naming and places, passes, exit status, as a user sees them.
# usage: config.sh PRELOAD SEEDNET EXITS
set -u
preload=$(realpath "$1") app=$(realpath "$2") exits=$(realpath "$3")
. "$(dirname "$0")/preload-env.sh" "$preload"
python=/usr/bin/python3
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_PASS ONNXHOOK_OPSET
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-config.XXXXXX")
failures=0
fail() { echo "config: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "config: ok: $*"; }

# run NAME [VAR=VALUE...] -- ARGS: the app in $dir/NAME (a fresh cwd) with the hook
run() {
	local name=$1
	shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && env LD_PRELOAD="$hook_preload" "${envs[@]}" "$app" "$@" >stdout 2>stderr)
	echo $? >"$dir/$name/status"
}
(cd "$dir" && "$app" >ref.stdout 2>ref.stderr)

nodes() { # model -> "N nodes, I inputs, O outputs, opset S"
	"$python" -c 'import onnx,sys; m=onnx.load(sys.argv[1]); g=m.graph
print(f"{len(g.node)} nodes, {len(g.input)} inputs, {len(g.output)} outputs, opset {m.opset_import[0].version}")' "$1"
}
models() { find "$1" -name '*.onnx*' | wc -l; }

# 1. Invalid values: exactly one error line naming the variable, no model, app untouched.
for bad in ONNXHOOK_LOG=loud ONNXHOOK_PASS=0 ONNXHOOK_PASS=first ONNXHOOK_OPSET=9 'ONNXHOOK_OUTPUT=m%x.onnx'; do
	name=bad-${bad%%=*}-$RANDOM
	run "$name" "$bad" --
	var=${bad%%=*}
	lines=$(wc -l <"$dir/$name/stderr")
	if [ "$lines" != 1 ] || ! grep -q "^onnxhook: error: invalid $var=" "$dir/$name/stderr"; then
		fail "$bad: expected one 'onnxhook: error: invalid $var=' line, got: $(cat "$dir/$name/stderr")"
	elif [ "$(models "$dir/$name")" != 0 ]; then
		fail "$bad: a model was written although tracing is off"
	elif ! cmp -s "$dir/$name/stdout" "$dir/ref.stdout" || [ "$(cat "$dir/$name/status")" != 0 ]; then
		fail "$bad: the app's output or status changed"
	else
		ok "$bad -> $(cat "$dir/$name/stderr")"
	fi
done

# 2. Default name %e.%p.onnx in the working directory; empty values mean unset.
run default ONNXHOOK_LOG= ONNXHOOK_PASS= --
f=$(cd "$dir/default" && ls seednet.*.onnx 2>/dev/null)
# (A small model's sizes exactly: "28 parameters, 1.7 KB", not "0.00M parameters, 0.0 MB".)
if [[ "$f" =~ ^seednet\.[0-9]+\.onnx$ ]] &&
	grep -Eq "^onnxhook: wrote $f: 5 nodes \(Conv 3, Relu 1, Add 1\), 1 input, 1 output, 28 parameters, [0-9]\.[0-9] KB, [0-9.]+ s$" "$dir/default/stderr"; then
	ok "default name $f, $(grep -o '28 parameters, .* KB' "$dir/default/stderr")"
else
	fail "default name: got '$f', stderr: $(cat "$dir/default/stderr")"
fi

# 3. Templates.
run template 'ONNXHOOK_OUTPUT=%e-%%-%p.onnx' --
if ls "$dir/template" | grep -Eq '^seednet-%-[0-9]+\.onnx$'; then ok "template %e-%%-%p"; else fail "template: $(ls "$dir/template")"; fi

# 4. Unwritable place: one error line, the model lands in $TMPDIR, and it says where.
mkdir -p "$dir/tmpdir"
run unwritable ONNXHOOK_OUTPUT=/nonexistent/dir/m.onnx "TMPDIR=$dir/tmpdir" --
alt=$(ls "$dir"/tmpdir/seednet.*.onnx 2>/dev/null)
if grep -q '^onnxhook: error: cannot write /nonexistent/dir/m.onnx: No such file or directory' "$dir/unwritable/stderr" &&
	[ -n "$alt" ] && grep -q "^onnxhook: wrote $alt:" "$dir/unwritable/stderr" &&
	[ "$(cat "$dir/unwritable/status")" = 0 ]; then
	ok "unwritable output -> $alt"
else
	fail "unwritable output: $(cat "$dir/unwritable/stderr")"
fi

# 5. quiet: not a byte on stderr.
run quiet ONNXHOOK_LOG=quiet ONNXHOOK_OUTPUT=m.onnx --
if [ ! -s "$dir/quiet/stderr" ] && [ -f "$dir/quiet/m.onnx" ]; then ok "quiet"; else fail "quiet: $(cat "$dir/quiet/stderr")"; fi

# 6. Passes: default = one pass; N = that pass; all = unrolled; beyond the last = error, no model.
run pass1 ONNXHOOK_OUTPUT=m.onnx -- --runs 3
run pass2 ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_PASS=2 -- --runs 3
run passall ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_PASS=all -- --runs 3
run pass4 ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_PASS=4 -- --runs 3
for t in "pass1:5 nodes, 1 inputs, 1 outputs" "pass2:5 nodes, 1 inputs, 1 outputs" "passall:15 nodes, 3 inputs, 3 outputs"; do
	name=${t%%:*} want=${t#*:}
	got=$([ -f "$dir/$name/m.onnx" ] && nodes "$dir/$name/m.onnx")
	if [[ "$got" == "$want"* ]]; then ok "$name: $got"; else fail "$name: want '$want', got '$got'"; fi
done
if [ ! -e "$dir/pass4/m.onnx" ] && grep -q '^onnxhook: error: ONNXHOOK_PASS=4, but the program ran 3 passes' "$dir/pass4/stderr"; then
	ok "pass4: $(cat "$dir/pass4/stderr")"
else
	fail "pass4: $(cat "$dir/pass4/stderr")"
fi

# 7. Opset.
run opset13 ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_OPSET=13 --
got=$(nodes "$dir/opset13/m.onnx")
if [[ "$got" == *"opset 13" ]] && "$python" -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$dir/opset13/m.onnx"; then
	ok "opset 13: $got"
else
	fail "opset 13: $got"
fi

# 8. The app's exit status and messages come through (bad usage: status 2, nothing recorded).
(cd "$dir" && "$app" --no-such-flag >usage.stdout 2>usage.stderr; echo $? >usage.status)
run usage ONNXHOOK_OUTPUT=m.onnx -- --no-such-flag
if [ "$(cat "$dir/usage/status")" = "$(cat "$dir/usage.status")" ] && cmp -s "$dir/usage/stderr" "$dir/usage.stderr" &&
	[ ! -e "$dir/usage/m.onnx" ]; then
	ok "exit status $(cat "$dir/usage.status") passed through, nothing written"
else
	fail "usage error: status $(cat "$dir/usage/status"), stderr $(cat "$dir/usage/stderr")"
fi

# 9. A process that records nothing writes nothing (a shell wrapper, a tool).
mkdir -p "$dir/nothing"
(cd "$dir/nothing" && LD_PRELOAD="$hook_preload" sh -c 'true' 2>stderr)
if [ "$(models "$dir/nothing")" = 0 ] && [ ! -s "$dir/nothing/stderr" ]; then ok "nothing recorded, nothing written"; else fail "nothing recorded: $(ls "$dir/nothing")"; fi

# 10. A pass that never ends is bounded: one warning, the graph so far.
run maxnodes ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_MAX_NODES=3 --
got=$([ -f "$dir/maxnodes/m.onnx" ] && nodes "$dir/maxnodes/m.onnx")
if [[ "$got" == "3 nodes"* ]] && grep -q '^onnxhook: warning: recording stopped at tnn_add: the pass passed ONNXHOOK_MAX_NODES=3' "$dir/maxnodes/stderr" &&
	cmp -s "$dir/maxnodes/stdout" "$dir/ref.stdout"; then
	ok "max nodes: $got"
else
	fail "max nodes: $got; $(cat "$dir/maxnodes/stderr")"
fi

# 11. One explicit path, two live processes (a parent and its forked child both trace): the
# later adds -<pid> and warns. A later run of the program replaces the file, as cc -o does.
mkdir -p "$dir/shared"
(cd "$dir/shared" && LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT=m.onnx "$exits" fork-infer >/dev/null 2>second)
second=$(ls "$dir/shared" | grep -E '^m-[0-9]+\.onnx$')
if [ -f "$dir/shared/m.onnx" ] && [ -n "$second" ] && grep -q "^onnxhook: warning: m.onnx was written by another process" "$dir/shared/second"; then
	ok "shared explicit path: m.onnx and $second"
else
	fail "shared explicit path: $(ls "$dir/shared"); $(cat "$dir/shared/second")"
fi

# 12. A character device is written into, never replaced (ONNXHOOK_OUTPUT=/dev/null to discard).
run devnull ONNXHOOK_OUTPUT=/dev/null --
if [ -c /dev/null ] && grep -q '^onnxhook: wrote /dev/null: 5 nodes' "$dir/devnull/stderr"; then
	ok "/dev/null written into, still a character device"
else
	fail "/dev/null: $(ls -l /dev/null); $(cat "$dir/devnull/stderr")"
fi

# 13. Another preloaded library before ours: dlsym(RTLD_NEXT) from it walks the objects between
# it and us. (ASan builds only run with libasan right before us: with another object between
# them the sanitizer's start-up no longer crashes in our dlsym, but ONNXHOOK_* is then not seen.)
if [ -z "${asan_lib:-}" ]; then
	other=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ { print $NF; exit }')
	[ -n "$other" ] || other=$(ldconfig -p | awk '/libm\.so\.6 / { print $NF; exit }')
	mkdir -p "$dir/between"
	(cd "$dir/between" && LD_PRELOAD="$other:$preload" ONNXHOOK_OUTPUT=m.onnx "$app" >stdout 2>stderr)
	if [ $? = 0 ] && cmp -s "$dir/ref.stdout" "$dir/between/stdout" &&
		grep -q '^onnxhook: wrote m.onnx: 5 nodes' "$dir/between/stderr"; then
		ok "another preload before ours ($(basename "$other")): same output, model written"
	else
		fail "another preload before ours: $(cat "$dir/between/stderr")"
	fi
fi

if [ "$failures" -gt 0 ]; then
	echo "config: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
