#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: node names from the call stack (unstripped and stripped, ONNXHOOK_STACK=0),
# stable between runs, and ONNXHOOK_BATCH=dynamic (a batch-1 trace run at batch 4 in
# onnxruntime against the app at batch 4; a graph that slices the batch refused clearly).
# usage: export.sh PRELOAD RESNET18 VIEWS NODE
set -u
preload=$(realpath "$1") app=$(realpath "$2") views=$(realpath "$3") node=$4
. "$(dirname "$0")/preload-env.sh" "$preload"
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_PASS ONNXHOOK_OPSET ONNXHOOK_STACK ONNXHOOK_BATCH
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-export.XXXXXX")
failures=0
fail() { echo "export: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "export: ok: $*"; }
trace() { # MODEL APP [VAR=VALUE...] -- ARGS: stderr in MODEL.stderr
	local model=$1 exe=$2
	shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	env LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT="$model" "${envs[@]}" "$exe" "$@" \
		>"$model.stdout" 2>"$model.stderr"
}
names() { # MODEL -> "name<TAB>first doc line" per node
	"$python" -c 'import onnx,sys
for n in onnx.load(sys.argv[1]).graph.node: print(n.name + "\t" + n.doc_string.split("\n")[0])' "$1"
}

# 1. Names from the call stack: the block functions of resnet18 name its nodes; every name is
# unique; the whole stack is in doc_string.
trace "$dir/named.onnx" "$app" -- --size 32
names "$dir/named.onnx" >"$dir/named.txt"
blocks=$(cut -f1 "$dir/named.txt" | grep -c '^basic_block_[0-7]/')
if [ "$blocks" = 62 ] && grep -q '^stem_0/Conv_0	stem+0x' "$dir/named.txt" &&
	grep -q '^basic_block_7/Relu_1	' "$dir/named.txt" && grep -q '^head_0/Gemm_0	' "$dir/named.txt" &&
	[ "$(cut -f1 "$dir/named.txt" | sort | uniq -d | wc -l)" = 0 ] &&
	"$python" -c 'import onnx,sys
d = onnx.load(sys.argv[1]).graph.node[0].doc_string.split("\n")
sys.exit(not (d[0].startswith("stem+") and any(l.startswith("forward+") for l in d) and any(l.startswith("main+") for l in d)))' "$dir/named.onnx"; then
	ok "unstripped: $blocks nodes in basic_block_0..7, stem_0/…, head_0/…, full stacks in doc_string"
else
	fail "unstripped names: $(head -c 600 "$dir/named.txt")"
fi

# 2. The same run twice: byte-identical models (no addresses, pids or times in them).
trace "$dir/again.onnx" "$app" -- --size 32
if cmp -s "$dir/named.onnx" "$dir/again.onnx"; then
	ok "two traces of one run are byte-identical"
else
	fail "two traces of one run differ"
fi
# Threads racing through the same functions: the recorded thread's names do not depend on them.
for k in 1 2 3; do
	trace "$dir/threads$k.onnx" "$app" -- --size 32 --threads 4 --runs 3
done
if cmp -s "$dir/threads1.onnx" "$dir/threads2.onnx" && cmp -s "$dir/threads1.onnx" "$dir/threads3.onnx" &&
	[ "$(names "$dir/threads1.onnx" | cut -f1 | grep -c '^basic_block_[0-7]/')" = 62 ]; then
	ok "4 threads: three traces byte-identical, blocks named basic_block_0..7"
else
	fail "4 threads: traces differ or names wrong: $(names "$dir/threads1.onnx" | cut -f1 | head -c 400)"
fi

# 3. Stripped: functions are named by module+offset of their start, and still group the blocks.
cp "$app" "$dir/r18" && strip "$dir/r18"
trace "$dir/stripped.onnx" "$dir/r18" -- --size 32
names "$dir/stripped.onnx" >"$dir/stripped.txt"
scopes=$(cut -f1 "$dir/stripped.txt" | sed -n 's|^\(r18+0x[0-9a-f]*\)_[0-9]*/.*|\1|p' | sort -u | wc -l)
if [ "$(wc -l <"$dir/stripped.txt")" = 71 ] && [ "$scopes" = 3 ] &&
	[ "$(cut -f1 "$dir/stripped.txt" | grep -c '^r18+0x[0-9a-f]*_7/')" -gt 0 ] &&
	[ "$(cut -f1 "$dir/stripped.txt" | sort | uniq -d | wc -l)" = 0 ] &&
	! grep -q 'basic_block' "$dir/stripped.txt" &&
	/usr/bin/python3 "$here/check-onnx.py" "$dir/stripped.onnx" >/dev/null; then
	ok "stripped: 3 functions as r18+0x…, 8 block instances, valid model"
else
	fail "stripped names ($scopes scopes): $(head -c 600 "$dir/stripped.txt")"
fi

# 4. ONNXHOOK_STACK=0: the plain <Op>_<k> names, no doc_string.
trace "$dir/plain.onnx" "$app" ONNXHOOK_STACK=0 -- --size 32
names "$dir/plain.onnx" >"$dir/plain.txt"
if grep -q '^Conv_19	$' "$dir/plain.txt" && ! grep -q '/' "$dir/plain.txt" &&
	[ "$(cut -f2 "$dir/plain.txt" | grep -c .)" = 0 ]; then
	ok "ONNXHOOK_STACK=0: Conv_0..Conv_19, no stacks"
else
	fail "ONNXHOOK_STACK=0: $(head -c 300 "$dir/plain.txt")"
fi

# 5. Dynamic batch: traced at batch 1, run by onnxruntime at batch 4, against the app at batch 4.
trace "$dir/dyn.onnx" "$app" ONNXHOOK_BATCH=dynamic -- --size 32
if [ -s "$dir/dyn.onnx.stderr" ] && grep -v '^onnxhook: wrote ' "$dir/dyn.onnx.stderr" | grep -q .; then
	fail "dynamic batch: unexpected messages: $(cat "$dir/dyn.onnx.stderr")"
elif "$python" "$here/check-onnx.py" --dynamic-batch "$dir/dyn.onnx" >"$dir/dyn.check" 2>&1 &&
	"$node" "$here/ort-compare.js" --model "$dir/dyn.onnx" --gen-input "$dir/in4.bin" --batch 4 --seed 5 >/dev/null &&
	"$app" --size 32 --batch 4 --in "$dir/in4.bin" --out "$dir/ref4.bin" >/dev/null &&
	"$node" "$here/ort-compare.js" --model "$dir/dyn.onnx" --in "$dir/in4.bin" --expect "$dir/ref4.bin" >"$dir/dyn.ort" 2>&1 &&
	grep -q 'output_0 \[4,1000,1,1\]' "$dir/dyn.ort"; then
	ok "dynamic batch: $(grep 'rel err' "$dir/dyn.ort" | sed 's/.*rel err/rel err/') at batch 4"
else
	fail "dynamic batch: $(cat "$dir/dyn.check" "$dir/dyn.ort" 2>/dev/null | tail -n 5)"
fi

# 6. A graph that slices the batch (views reads batch items): one error line naming the node,
# and the static model is still written and valid.
trace "$dir/views.onnx" "$views" ONNXHOOK_BATCH=dynamic --
if [ "$(grep -c '^onnxhook: error: ONNXHOOK_BATCH=dynamic: .*Slice.* depends on the traced batch size: it slices the batch axis; the model keeps the traced batch size$' "$dir/views.onnx.stderr")" = 1 ] &&
	"$python" "$here/check-onnx.py" "$dir/views.onnx" >/dev/null 2>&1; then
	ok "dynamic batch refused for a batch slice: $(grep -o 'dynamic: [^ ]*' "$dir/views.onnx.stderr")"
else
	fail "views under dynamic batch: $(cat "$dir/views.onnx.stderr")"
fi

if [ "$failures" -gt 0 ]; then
	echo "export: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
