#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ONNXHOOK_BATCH=dynamic on Debian's libdarknet: yolov3-tiny traced at batch 1 runs in
# onnxruntime at batch 2 and matches darknet itself run at batch 2 (both YOLO heads).
# usage: dynamic-batch.sh PRELOAD DARKNET_RUN DARKNET_WEIGHTS NODE
set -u
preload=$(realpath "$1") runner=$(realpath "$2") weights_tool=$(realpath "$3") node=$4
. "$(dirname "$0")/../preload-env.sh" "$preload"
here=$(cd "$(dirname "$0")/.." && pwd)
cfg=/usr/share/darknet/cfg/yolov3-tiny.cfg
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_BATCH
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-dnbatch.XXXXXX")
fail() { echo "dynamic-batch: FAIL: $*; work dir kept: $dir" >&2; exit 1; }

"$weights_tool" "$cfg" "$dir/w.weights" --seed 3 >/dev/null 2>&1 || fail "darknet-weights"
# The same network with room for two images (darknet sizes its buffers by the cfg's batch).
sed 's/^batch=.*/batch=2/; s/^subdivisions=.*/subdivisions=1/' "$cfg" >"$dir/batch2.cfg"
LD_PRELOAD="$hook_preload" ONNXHOOK_BATCH=dynamic ONNXHOOK_OUTPUT="$dir/m.onnx" \
	"$runner" "$cfg" --weights "$dir/w.weights" >/dev/null 2>"$dir/trace.stderr" || fail "traced run"
grep '^onnxhook: ' "$dir/trace.stderr" | grep -qv '^onnxhook: wrote ' &&
	fail "unexpected messages: $(grep '^onnxhook: ' "$dir/trace.stderr")"
/usr/bin/python3 "$here/check-onnx.py" --dynamic-batch "$dir/m.onnx" >"$dir/check.log" 2>&1 ||
	fail "check-onnx: $(tail -n 3 "$dir/check.log")"
"$node" "$here/ort-compare.js" --model "$dir/m.onnx" --gen-input "$dir/in.bin" --batch 2 --seed 9 >/dev/null ||
	fail "input generation"
"$runner" "$dir/batch2.cfg" --batch 2 --weights "$dir/w.weights" --in "$dir/in.bin" --out "$dir/ref.bin" \
	>/dev/null 2>&1 || fail "darknet at batch 2"
"$node" "$here/ort-compare.js" --model "$dir/m.onnx" --in "$dir/in.bin" --expect "$dir/ref.bin" >"$dir/ort.log" 2>&1 ||
	fail "onnxruntime at batch 2: $(tail -n 3 "$dir/ort.log")"
grep -q 'output_0 \[2,' "$dir/ort.log" && grep -q 'output_1 \[2,' "$dir/ort.log" ||
	fail "outputs not at batch 2: $(cat "$dir/ort.log")"
echo "dynamic-batch: ok: yolov3-tiny traced at batch 1, $(grep 'rel err' "$dir/ort.log" | sed 's/.*rel err/rel err/') at batch 2"
rm -rf "$dir"
