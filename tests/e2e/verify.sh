#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: onnxhook verify. The demos verify clean (also with --dynamic-batch, and as JSON that
# parses); a preload built with a deliberately wrong mapping (libonnxhook-wrongmap.so: tinynn's
# batch normalization with scale and bias swapped) drifts at exactly that layer, with its input
# clean and the layer run alone still off, and the command exits 1; --layer-data keeps a set that
# test-data-run.js checks without the program; node or onnxruntime-node missing is one line and
# status 125; --no-provenance / ONNXHOOK_PROVENANCE=0 keep the command line, paths and build-ids out
# of the model (and without them they are in).
# With darknet (Debian's libdarknet.so): yolov3-tiny verifies clean with --dynamic-batch, and the
# wrong mapping (darknet's batch-norm epsilon on the variance, not the standard deviation) drifts
# at exactly the [batchnorm] layer of a net whose channels have zero variance.
# The other hosts, when this build has them: Debian's stripped /usr/bin/darknet (darknet's code
# linked in, hooked inline; $VERIFY_STRIPPED_DARKNET) on darknet19, and PyTorch running the
# hand-written model from Python ($VERIFY_TORCH_SCRIPT) verify clean.
# usage: verify.sh ONNXHOOK PRELOAD WRONGMAP_PRELOAD SEEDNET RESNET18 ORT_DIR NODE
#                  [DARKNET_RUN DARKNET_WEIGHTS CFG_DIR]
set -u
cli=$(realpath "$1") preload=$(realpath "$2") wrongmap=$(realpath "$3") seednet=$(realpath "$4")
resnet=$(realpath "$5") ort=$(realpath "$6") node=${7:-node}
dn_run=${8:+$(realpath "$8")} dn_weights=${9:+$(realpath "$9")} dn_cfg=${10:+$(realpath "${10}")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/preload-env.sh" "$preload"
python=/usr/bin/python3
failures=0
fail() { echo "verify: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "verify: ok: $*"; }
command -v "$node" >/dev/null 2>&1 || { echo "verify: FAIL: $node not found: apt-get install nodejs" >&2; exit 1; }
[ -d "$ort/node_modules/onnxruntime-node" ] ||
	{ echo "verify: FAIL: no $ort/node_modules/onnxruntime-node: (cd tests/ort && npm ci --ignore-scripts)" >&2; exit 1; }
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-verify-test.XXXXXX")
# The command's own ASan runtime (an ASan build) must not reach node: verify starts node with the
# environment as it was, without our LD_PRELOAD.
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG ONNXHOOK_TEST_DATA ONNXHOOK_LAYER_DATA ONNXHOOK_PROVENANCE ONNXHOOK_NODE
export ONNXHOOK_LIBRARY=$preload ONNXHOOK_ORT=$ort TMPDIR=$dir/tmp
node_dir=$(dirname "$(command -v "$node")")
mkdir -p "$TMPDIR"

# v NAME [ENV=VALUE...] -- ARGS: onnxhook ARGS in $dir/NAME; status, stdout, stderr there
v() {
	local name=$1
	shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && env PATH="$node_dir:$PATH" "${envs[@]}" "$cli" "$@" >stdout 2>stderr </dev/null)
	echo $? >"$dir/$name/status"
}
status() { cat "$dir/$1/status"; }
# json NAME EXPR: a node expression over r (the last stdout line, parsed) printed
json() {
	"$node" -e 'const fs = require("fs"); const l = fs.readFileSync(process.argv[1], "utf8").trim().split("\n");
		const r = JSON.parse(l[l.length - 1]); console.log(eval(process.argv[2]));' "$dir/$1/stdout" "$2"
}

# 1. The demos verify clean, every layer on a line; no temporary directory is left.
v seednet -- verify "$seednet"
layers=$(grep -cE ' (ok|DRIFT)$' "$dir/seednet/stdout")
if [ "$(status seednet)" = 0 ] && [ "$layers" -ge 4 ] && grep -q "all $layers layers within tolerance" "$dir/seednet/stdout"; then
	ok "seednet verifies clean ($layers layers)"
else
	fail "seednet: status $(status seednet), $layers layer lines: $(tail -n 3 "$dir/seednet/stdout") $(cat "$dir/seednet/stderr")"
fi
v resnet18 -- verify --dynamic-batch --json -- "$resnet" --size 32
if [ "$(status resnet18)" = 0 ] && [ "$(json resnet18 'r.ok && r.drift === null && r.layers.length')" = 69 ] &&
	[ "$(json resnet18 'r.layers.every((l) => l.ok && l.op && l.node && l.host_call && l.shape.length >= 2)')" = true ]; then
	ok "resnet18 --dynamic-batch verifies clean, as JSON: 69 layers with node, op, shape, host call"
else
	fail "resnet18: status $(status resnet18): $(tail -c 300 "$dir/resnet18/stdout") $(cat "$dir/resnet18/stderr")"
fi
# (onnxruntime leaves files of its own there.)
left=$(ls -A "$TMPDIR" | grep onnxhook)
[ -z "$left" ] && ok "no onnxhook-verify.* left in TMPDIR" || fail "left in TMPDIR: $left"

# 2. The wrong mapping: DRIFT at exactly the batch normalization, its input clean, exit 1.
v wrong ONNXHOOK_LIBRARY="$wrongmap" -- verify --json -- "$resnet" --size 32
first=$(json wrong 'r.drift && [r.drift.index, r.drift.node, r.drift.host_call, r.drift.cause, r.drift.inputs.every((i) => i.ok), r.drift.alone && r.drift.alone.ok, r.layers.slice(0, r.drift.index - 1).every((l) => l.ok)].join(" ")' 2>&1)
if [ "$(status wrong)" = 1 ] && [ "$first" = "2 stem_0/BatchNormalization_0 tnn_batch_norm mapping true false true" ]; then
	ok "wrong mapping: DRIFT first at stem_0/BatchNormalization_0 (tnn_batch_norm), inputs clean, exit 1"
else
	fail "wrong mapping: status $(status wrong), first drift: $first; $(cat "$dir/wrong/stderr")"
fi
v wrong-text ONNXHOOK_LIBRARY="$wrongmap" -- verify "$resnet" --size 32
if [ "$(status wrong-text)" = 1 ] && grep -q '^   2  stem_0/BatchNormalization_0 .* DRIFT$' "$dir/wrong-text/stdout" &&
	grep -q '^   1  stem_0/Conv_0 .* ok$' "$dir/wrong-text/stdout" &&
	grep -q 'first drift: layer 2, stem_0/BatchNormalization_0 (BatchNormalization), host call tnn_batch_norm' "$dir/wrong-text/stdout" &&
	grep -q 'mapping of tnn_batch_norm to BatchNormalization is wrong' "$dir/wrong-text/stdout" &&
	grep -q '^onnxhook:   called from stem+0x[0-9a-f]* (resnet18+0x[0-9a-f]*) < forward+' "$dir/wrong-text/stdout"; then
	ok "wrong mapping, as text: the layer, its host call, where the program called it, the verdict"
else
	fail "wrong mapping, text: status $(status wrong-text): $(grep -v ' ok$' "$dir/wrong-text/stdout" | tail -n 8)"
fi

# 3. --layer-data with --output: the set stays, and is checked without the program; without it
# the model stays and the set goes.
v keep -- verify --layer-data -o m.onnx -- "$resnet" --size 32
n=$(ls "$dir/keep/test_data_set_0" 2>/dev/null | wc -l)
if [ "$(status keep)" = 0 ] && [ "$n" = 70 ] &&
	res=$(ONNXHOOK_ORT_DIR=$(dirname "$ort")/ort "$node" "$here/test-data-run.js" --model "$dir/keep/m.onnx" --set "$dir/keep/test_data_set_0" 2>&1) &&
	echo "$res" | grep -q '68 layer(s)'; then
	ok "--layer-data: the set (input, output, 68 layers) stays; test-data-run.js: $res"
else
	fail "--layer-data: status $(status keep), $n files: ${res:-} $(cat "$dir/keep/stderr")"
fi
v nokeep -- verify -o m.onnx -- "$seednet"
if [ "$(status nokeep)" = 0 ] && [ -s "$dir/nokeep/m.onnx" ] && [ ! -e "$dir/nokeep/test_data_set_0" ]; then
	ok "--output without --layer-data: the model stays, its set goes"
else
	fail "--output: status $(status nokeep): $(ls -A "$dir/nokeep")"
fi

# 4. What verify needs, missing: one line, 125, the program never runs.
v no-ort ONNXHOOK_ORT="$dir/none" -- verify "$seednet"
if [ "$(status no-ort)" = 125 ] && [ "$(wc -l <"$dir/no-ort/stderr")" = 1 ] && [ ! -s "$dir/no-ort/stdout" ] &&
	grep -q "npm install --ignore-scripts onnxruntime-node@$(sed -n 's/.*"onnxruntime-node": "\(.*\)".*/\1/p' "$ort/package.json")" "$dir/no-ort/stderr"; then
	ok "onnxruntime-node missing: $(cat "$dir/no-ort/stderr")"
else
	fail "onnxruntime-node missing: status $(status no-ort): $(cat "$dir/no-ort/stderr")"
fi
v no-node ONNXHOOK_NODE="$dir/none/node" -- verify "$seednet"
v no-node-path PATH=/nonexistent -- verify "$seednet"
if [ "$(status no-node)" = 125 ] && [ "$(status no-node-path)" = 125 ] && [ "$(wc -l <"$dir/no-node-path/stderr")" = 1 ] &&
	grep -q 'node not found on PATH.*apt-get install nodejs' "$dir/no-node-path/stderr" && [ ! -s "$dir/no-node-path/stdout" ]; then
	ok "node missing: $(cat "$dir/no-node-path/stderr")"
else
	fail "node missing: status $(status no-node)/$(status no-node-path): $(cat "$dir/no-node/stderr" "$dir/no-node-path/stderr")"
fi
v usage1 -- verify --rtol=x "$seednet"
v usage2 -- --json "$seednet"
v failing -- verify -- sh -c 'exit 3'
if [ "$(status usage1)" = 125 ] && [ "$(status usage2)" = 125 ] && [ "$(status failing)" = 3 ]; then
	ok "usage errors 125; a failing program's status, unverified"
else
	fail "statuses: --rtol=x $(status usage1), --json without verify $(status usage2), exit 3: $(status failing)"
fi

# 5. darknet: the demo clean, the wrong batch-norm epsilon found at its layer.
if [ -n "$dn_run" ]; then
	yolo=/usr/share/darknet/cfg/yolov3-tiny.cfg
	mkdir -p "$dir/dn"
	"$dn_weights" "$yolo" "$dir/dn/yolo.weights" --seed 1 >/dev/null 2>&1 &&
		"$dn_weights" "$dn_cfg/batchnorm.cfg" "$dir/dn/bn.weights" --seed 1 --zero-var-channels 4 >/dev/null 2>&1 ||
		fail "darknet-weights failed"
	v dn-yolo -- verify --dynamic-batch --json -- "$dn_run" "$yolo" --weights "$dir/dn/yolo.weights"
	if [ "$(status dn-yolo)" = 0 ] && [ "$(json dn-yolo 'r.ok && r.layers.length')" = 24 ]; then
		ok "darknet yolov3-tiny --dynamic-batch verifies clean: 24 layers"
	else
		fail "darknet yolov3-tiny: status $(status dn-yolo): $(tail -c 300 "$dir/dn-yolo/stdout") $(grep onnxhook "$dir/dn-yolo/stderr")"
	fi
	v dn-bn -- verify --json -- "$dn_run" "$dn_cfg/batchnorm.cfg" --weights "$dir/dn/bn.weights"
	v dn-wrong ONNXHOOK_LIBRARY="$wrongmap" -- verify --json -- "$dn_run" "$dn_cfg/batchnorm.cfg" --weights "$dir/dn/bn.weights"
	first=$(json dn-wrong 'r.drift && [r.drift.index, r.drift.node, r.drift.host_call, r.drift.cause, r.drift.inputs.map((i) => i.value + ":" + i.ok).join(","), r.drift.alone && r.drift.alone.ok].join(" ")' 2>&1)
	if [ "$(status dn-bn)" = 0 ] && [ "$(status dn-wrong)" = 1 ] &&
		[ "$first" = "2 layer_1_BatchNormalization forward_batchnorm_layer mapping layer_0:true false" ]; then
		ok "darknet: zero-variance batch norm clean; the wrong epsilon: DRIFT first at layer_1_BatchNormalization (forward_batchnorm_layer), its input layer_0 clean, exit 1"
	else
		fail "darknet wrong epsilon: status $(status dn-bn)/$(status dn-wrong), first drift: $first; $(grep onnxhook "$dir/dn-wrong/stderr")"
	fi
fi

# 5b. The other hosts: darknet's code inside a stripped program, PyTorch in Python.
stripped=${VERIFY_STRIPPED_DARKNET:-} torch_script=${VERIFY_TORCH_SCRIPT:-}
if [ -n "$stripped" ]; then
	mkdir -p "$dir/sd"
	sed 's/^width=.*/width=64/; s/^height=.*/height=64/' /usr/share/darknet/cfg/darknet19.cfg >"$dir/sd/net.cfg"
	"$dn_weights" "$dir/sd/net.cfg" "$dir/sd/net.weights" --seed 1 >/dev/null 2>&1 || fail "darknet-weights failed"
	v sd -- verify --json -- "$stripped" classifier predict /usr/share/darknet/cfg/imagenet1k.data \
		"$dir/sd/net.cfg" "$dir/sd/net.weights" /usr/share/darknet/data/dog.jpg
	if [ "$(status sd)" = 0 ] && [ "$(json sd 'r.ok && r.layers.length')" = 26 ]; then
		ok "$stripped classifier predict darknet19 (hooked inline) verifies clean: 26 layers"
	else
		fail "$stripped darknet19: status $(status sd): $(tail -c 300 "$dir/sd/stdout") $(grep onnxhook "$dir/sd/stderr")"
	fi
fi
if [ -n "$torch_script" ]; then
	mkdir -p "$dir/torch-out"
	v torch -- verify --json -- "$python" "$torch_script" "$dir/torch-out"
	if [ "$(status torch)" = 0 ] && [ "$(json torch 'r.ok && r.layers.length')" = 19 ]; then
		ok "PyTorch (the hand-written model, eager) verifies clean: 19 layers"
	else
		fail "torch: status $(status torch): $(tail -c 300 "$dir/torch/stdout") $(grep onnxhook "$dir/torch/stderr")"
	fi
fi

# 6. Provenance: in the model by default, out of it with --no-provenance or ONNXHOOK_PROVENANCE=0.
meta() { "$python" -c 'import onnx, sys; print(" ".join(sorted(p.key for p in onnx.load(sys.argv[1]).metadata_props)))' "$1"; }
build_id=$(readelf -n "$(dirname "$seednet")/tinynn/libtinynn.so.0" 2>/dev/null | sed -n 's/.*Build ID: //p')
v prov -- -q -o m.onnx "$seednet" --out secret-arg.bin
v noprov -- -q --no-provenance -o m.onnx "$seednet" --out secret-arg.bin
mkdir -p "$dir/noprov-env"
(cd "$dir/noprov-env" && env LD_PRELOAD="$hook_preload" ONNXHOOK_PROVENANCE=0 ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_LOG=quiet "$seednet" --out secret-arg.bin >/dev/null 2>&1)
has() { grep -c -a -F -e "$2" "$1"; }
if [ "$(meta "$dir/prov/m.onnx")" = "onnxhook.command onnxhook.host_build_id onnxhook.host_library onnxhook.version" ] &&
	[ "$(has "$dir/prov/m.onnx" secret-arg)" -gt 0 ] && [ "$(has "$dir/prov/m.onnx" "$build_id")" -gt 0 ]; then
	ok "provenance by default: command line, host library and build-id in the model"
else
	fail "provenance by default: $(meta "$dir/prov/m.onnx")"
fi
for d in noprov noprov-env; do
	if [ "$(meta "$dir/$d/m.onnx")" = onnxhook.version ] && [ "$(has "$dir/$d/m.onnx" secret-arg)" = 0 ] &&
		[ -n "$build_id" ] && [ "$(has "$dir/$d/m.onnx" "$build_id")" = 0 ] &&
		[ "$(has "$dir/$d/m.onnx" "$(dirname "$seednet")")" = 0 ]; then
		ok "$d: only onnxhook.version; no command line, path or build-id in the file"
	else
		fail "$d: $(meta "$dir/$d/m.onnx")"
	fi
done

if [ "$failures" -eq 0 ]; then
	rm -rf "$dir"
	echo "verify: all passed"
	exit 0
fi
echo "verify: $failures failure(s); files kept in $dir" >&2
exit 1
