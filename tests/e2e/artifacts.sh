#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: what is written with the model. ONNXHOOK_DOT (graphviz's dot lays it out, its node and
# edge counts are the model's), ONNXHOOK_TEST_DATA (onnxruntime on input_N.pb gives output_N.pb, and
# those are the program's own bytes; models sharing a directory keep their own sets), provenance in
# metadata_props, and two traces of one run byte-identical.
# usage: artifacts.sh PRELOAD RESNET18 MULTI_INPUT INPLACE_INPUT VERSION TINYNN_LIB [NODE]
set -u
preload=$(realpath "$1") resnet=$(realpath "$2") multi=$(realpath "$3") inplace=$(realpath "$4")
version=$5 tinynn=$(realpath "$6") node=${7:-node}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/preload-env.sh" "$preload"
python=/usr/bin/python3
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_PASS ONNXHOOK_DOT ONNXHOOK_TEST_DATA ONNXHOOK_STACK
failures=0
fail() { echo "artifacts: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "artifacts: ok: $*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "artifacts: FAIL: $1 not found: $2" >&2; exit 1; }; }
need dot "apt-get install graphviz"
need "$node" "apt-get install nodejs npm; (cd tests/ort && npm ci --ignore-scripts)"
need "$python" "apt-get install python3-onnx"
"$python" -c 'import onnx' 2>/dev/null || { echo "artifacts: FAIL: $python cannot import onnx" >&2; exit 1; }
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-artifacts.XXXXXX")

# run NAME APP [VAR=VALUE...] -- ARGS: the app in $dir/NAME (created if needed) with the hook
run() {
	local name=$1 app=$2
	shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && env LD_PRELOAD="$hook_preload" "${envs[@]}" "$app" "$@" >stdout 2>stderr </dev/null)
	echo $? >"$dir/$name/status"
}
status() { cat "$dir/$1/status"; }
leftovers() { find "$dir/$1" -name '*.tmp*' -o -name '.onnxhook.*' -o -name '*.old.*' | head -n 3; }

# The model's counts as graphviz must see them: boxes for nodes, inputs and outputs; an edge per
# data input of a node (initializers are inside the boxes) and one into each output.
dot_counts() {
	"$python" - "$1" <<'EOF'
import onnx, sys
g = onnx.load(sys.argv[1]).graph
inits = {i.name for i in g.initializer}
edges = sum(1 for n in g.node for x in n.input if x and x not in inits) + len(g.output)
print(len(g.node) + len(g.input) + len(g.output), edges)
EOF
}

# check_dot NAME MODEL DOT: dot lays it out silently, with the model's counts, and nothing is left over
check_dot() {
	local name=$1 model=$2 file=$3
	if [ ! -s "$file" ]; then
		fail "$name: no $file; stderr: $(cat "$dir/$name/stderr")"
		return
	fi
	if ! dot -Tsvg "$file" -o "$file.svg" 2>"$file.err" || [ -s "$file.err" ]; then
		fail "$name: dot -Tsvg $file: $(cat "$file.err")"
		return
	fi
	local want got
	want=$(dot_counts "$model")
	got="$(grep -c 'class="node"' "$file.svg") $(grep -c 'class="edge"' "$file.svg")"
	if [ "$want" != "$got" ]; then
		fail "$name: dot drew $got nodes/edges, the model has $want"
	elif [ -n "$(leftovers "$name")" ]; then
		fail "$name: temporary files left: $(leftovers "$name")"
	else
		ok "$name: dot -Tsvg draws the model's $got nodes/edges"
	fi
}

# ---- 1. ONNXHOOK_DOT -------------------------------------------------------------------------
run dot-resnet "$resnet" ONNXHOOK_OUTPUT=m.onnx 'ONNXHOOK_DOT=%e-%%.dot' -- --size 64
check_dot dot-resnet "$dir/dot-resnet/m.onnx" "$dir/dot-resnet/resnet18-%.dot"
# nothing more on stderr than the summary
[ "$(grep -c . "$dir/dot-resnet/stderr")" = 1 ] || fail "dot-resnet: stderr: $(cat "$dir/dot-resnet/stderr")"
run dot-multi "$multi" ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_DOT=m.dot --
check_dot dot-multi "$dir/dot-multi/m.onnx" "$dir/dot-multi/m.dot"
# an unwritable place: one error line, the model is written all the same, the status unchanged
run dot-unwritable "$multi" ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_DOT=/nonexistent/m.dot --
err=$(grep -v '^onnxhook: wrote m.onnx: ' "$dir/dot-unwritable/stderr")
if [ "$err" = "onnxhook: error: cannot write the Graphviz file /nonexistent/m.dot: No such file or directory (the model is written)" ] &&
	[ "$(status dot-unwritable)" = 0 ] &&
	"$python" -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$dir/dot-unwritable/m.onnx"; then
	ok "dot-unwritable: $err"
else
	fail "dot-unwritable: status $(status dot-unwritable), stderr: $(cat "$dir/dot-unwritable/stderr")"
fi

# ---- 2. ONNXHOOK_TEST_DATA -------------------------------------------------------------------
# pb_raw FILE: the raw_data of a TensorProto file
pb_raw() {
	"$python" -c 'import onnx,sys; t=onnx.TensorProto(); t.ParseFromString(open(sys.argv[1],"rb").read()); sys.stdout.buffer.write(t.raw_data)' "$1"
}

# check_set NAME APP SEED APP_ARGS...: trace the app on a random input with test data; onnxruntime
# on input_N.pb gives output_N.pb; the inputs are the app's input file, the outputs its --out file
check_set() {
	local name=$1 app=$2 seed=$3
	shift 3
	local d=$dir/$name
	mkdir -p "$d"
	"$node" "$here/ort-compare.js" --model "$dir/dot-$name/m.onnx" --gen-input "$d/in.bin" --seed "$seed" >/dev/null ||
		{ fail "$name: could not generate an input"; return; }
	run "$name" "$app" ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_TEST_DATA=1 -- "$@" --in in.bin --out app.bin
	(cd "$d" && "$app" "$@" --in in.bin --out plain.bin >plain.stdout 2>plain.stderr </dev/null)
	if [ "$(status "$name")" != 0 ] || ! cmp -s "$d/stdout" "$d/plain.stdout" || ! cmp -s "$d/app.bin" "$d/plain.bin"; then
		fail "$name: the traced app behaved differently; stderr: $(cat "$d/stderr")"
		return
	fi
	[ "$(grep -c . "$d/stderr")" = 1 ] || fail "$name: stderr: $(cat "$d/stderr")"
	local res
	if ! res=$("$node" "$here/test-data-run.js" --model "$d/m.onnx" --set "$d/test_data_set_0" --tol 1e-4 2>&1); then
		fail "$name: $res"
		return
	fi
	local k=0
	: >"$d/inputs.bin"
	: >"$d/outputs.bin"
	while [ -f "$d/test_data_set_0/input_$k.pb" ]; do pb_raw "$d/test_data_set_0/input_$k.pb" >>"$d/inputs.bin"; k=$((k + 1)); done
	k=0
	while [ -f "$d/test_data_set_0/output_$k.pb" ]; do pb_raw "$d/test_data_set_0/output_$k.pb" >>"$d/outputs.bin"; k=$((k + 1)); done
	if ! cmp -s "$d/inputs.bin" "$d/in.bin"; then
		fail "$name: input_N.pb are not the app's input file byte for byte"
	elif ! cmp -s "$d/outputs.bin" "$d/app.bin"; then
		fail "$name: output_N.pb are not the app's --out file byte for byte"
	elif [ -n "$(leftovers "$name")" ]; then
		fail "$name: temporary files left: $(leftovers "$name")"
	else
		ok "$name (seed $seed): $res; inputs and outputs equal the app's files byte for byte"
	fi
}
check_set resnet "$resnet" 1 --size 64
check_set multi "$multi" 1
# a second run replaces the set whole (another input, so other bytes)
check_set resnet "$resnet" 2 --size 64
ls "$dir/resnet/test_data_set_0" | tr '\n' ' ' | grep -qx 'input_0.pb output_0.pb ' ||
	fail "resnet: the replaced set holds $(ls "$dir/resnet/test_data_set_0")"

# an in-place op on the graph input: its bytes are gone, so no set (and an earlier one goes)
mkdir -p "$dir/inplace"
cp -r "$dir/resnet/test_data_set_0" "$dir/inplace/"
run inplace "$inplace" ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_TEST_DATA=1 --
want="onnxhook: warning: no test data written beside m.onnx: input_0 was overwritten in place by tnn_relu, the call that first read it, before its bytes could be copied; the earlier test_data_set_0 there was removed"
if [ "$(status inplace)" = 0 ] && [ -s "$dir/inplace/m.onnx" ] && [ ! -e "$dir/inplace/test_data_set_0" ] &&
	[ "$(grep -v '^onnxhook: wrote m.onnx: ' "$dir/inplace/stderr")" = "$want" ]; then
	ok "inplace: ${want#onnxhook: }"
else
	fail "inplace: status $(status inplace), set $(ls "$dir/inplace"), stderr: $(cat "$dir/inplace/stderr")"
fi

# a launcher's processes in one directory with the default names (%e.%p.onnx): the first set
# takes test_data_set_0, the next model's goes beside its model under its own name with one
# warning, and a third that can give no set removes neither of them
run shared "$resnet" ONNXHOOK_TEST_DATA=1 -- --size 32 --out r.bin
first=$(cd "$dir/shared" && ls resnet18.*.onnx 2>/dev/null)
run shared "$multi" ONNXHOOK_TEST_DATA=1 -- --out m.bin
second=$(cd "$dir/shared" && ls multi_input.*.onnx 2>/dev/null)
want="onnxhook: warning: ./test_data_set_0 holds another model's test data (or some of unknown origin): left alone; this model's went to ./$second.test_data_set_0"
if [ -z "$first" ] || [ -z "$second" ] || [ "$(grep -v "^onnxhook: wrote $second: " "$dir/shared/stderr")" != "$want" ]; then
	fail "shared: models '$first' '$second', stderr: $(cat "$dir/shared/stderr")"
elif ! res1=$("$node" "$here/test-data-run.js" --model "$dir/shared/$first" --set "$dir/shared/test_data_set_0" --tol 1e-4 2>&1) ||
	! res2=$("$node" "$here/test-data-run.js" --model "$dir/shared/$second" --set "$dir/shared/$second.test_data_set_0" --tol 1e-4 2>&1); then
	fail "shared: each set is not its model's: ${res1:-} ${res2:-}"
else
	run shared "$inplace" ONNXHOOK_TEST_DATA=1 --
	if [ "$(status shared)" = 0 ] && grep -q "; the test_data_set_0 there is not from this model: left alone$" "$dir/shared/stderr" &&
		"$node" "$here/test-data-run.js" --model "$dir/shared/$first" --set "$dir/shared/test_data_set_0" --tol 1e-4 >/dev/null 2>&1 &&
		[ -d "$dir/shared/$second.test_data_set_0" ] && [ -z "$(leftovers shared)" ]; then
		ok "shared: $first in test_data_set_0, $second in $second.test_data_set_0, both left by a third model"
	else
		fail "shared: after the in-place app: $(ls "$dir/shared"), stderr: $(cat "$dir/shared/stderr")"
	fi
fi

# ---- 3. provenance -------------------------------------------------------------------------
run prov "$resnet" ONNXHOOK_OUTPUT=m.onnx -- --size 32 --out "a b's.bin"
build_id=$(readelf -n "$tinynn" | awk '/Build ID:/ { print $3; exit }')
expect=$(printf '%s\n' "onnxhook.version=$version" \
	"onnxhook.command=$resnet --size 32 --out 'a b'\\''s.bin'" \
	"onnxhook.host_library=$tinynn" "onnxhook.host_build_id=$build_id")
got=$("$python" -c 'import onnx,sys
for p in onnx.load(sys.argv[1]).metadata_props: print(f"{p.key}={p.value}")' "$dir/prov/m.onnx")
if [ "$got" = "$expect" ] && [ -n "$build_id" ]; then
	ok "provenance: $(echo "$got" | paste -sd' ')"
else
	fail "provenance: got
$got
expected
$expect"
fi

# ---- 4. two traces of one run are byte-identical (other pids, other output names) ------------
for app in "$resnet" "$multi"; do
	name=det-$(basename "$app")
	args=(--out out.bin)
	[ "$app" = "$resnet" ] && args+=(--size 32)
	run "$name" "$app" ONNXHOOK_OUTPUT=one.onnx ONNXHOOK_DOT=one.dot -- "${args[@]}"
	run "$name" "$app" ONNXHOOK_OUTPUT=two.onnx ONNXHOOK_DOT=two.dot -- "${args[@]}"
	if [ -s "$dir/$name/one.onnx" ] && cmp "$dir/$name/one.onnx" "$dir/$name/two.onnx" &&
		cmp "$dir/$name/one.dot" "$dir/$name/two.dot"; then
		ok "$name: two traces, byte-identical models and pictures"
	else
		fail "$name: two traces of the same run differ"
	fi
done

if [ "$failures" = 0 ]; then
	rm -rf "$dir"
	echo "artifacts: all passed"
	exit 0
fi
echo "artifacts: $failures failed; work dir kept: $dir" >&2
exit 1
