#!/bin/sh
# SPDX-License-Identifier: MIT
# The main job: set-up, build, install the demo apps stripped (like a closed-source binary),
# trace resnet18 with the installed onnxhook command (and darknet: its library, and Debian's
# stripped /usr/bin/darknet with its code linked in), validate the ONNX (full checker +
# onnxruntime), print its path.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
stage=$root/build/stage
rm -rf "$stage"
meson install -C build --destdir "$stage" --strip --quiet >/dev/null

prefix=$stage$(meson introspect build --buildoptions | /usr/bin/python3 -c \
	'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
app=$prefix/bin/resnet18
preload=$(find "$prefix" -name libonnxhook.so | head -n 1)
out=$root/build/trace
mkdir -p "$out"
model=$out/resnet18.onnx

echo "== $(file -b "$app" | cut -d, -f1-2,5-)"
echo "== tracing: $prefix/bin/onnxhook -o $model --dot $out/resnet18.dot $app"
"$prefix/bin/onnxhook" -o "$model" --dot "$out/resnet18.dot" "$app"

echo "== full ONNX checker (Debian onnx $(/usr/bin/python3 -c 'import onnx; print(onnx.__version__)'))"
/usr/bin/python3 tests/e2e/check-onnx.py "$model"

echo "== onnxruntime on a fresh random input vs. the app on the same input"
node tests/e2e/ort-compare.js --model "$model" --gen-input "$out/input.bin" --seed 7
"$app" --in "$out/input.bin" --out "$out/app-output.bin" >/dev/null
node tests/e2e/ort-compare.js --model "$model" --in "$out/input.bin" --expect "$out/app-output.bin"

echo "== model: $model"

# The real third-party host: Debian's libdarknet.so running the published yolov3-tiny.cfg.
runner=$prefix/bin/darknet-run
if [ -x "$runner" ]; then
	cfg=/usr/share/darknet/cfg/yolov3-tiny.cfg
	dmodel=$out/yolov3-tiny.onnx
	echo "== darknet: seeded weights with sane statistics for $cfg"
	"$prefix/bin/darknet-weights" "$cfg" "$out/yolov3-tiny.weights" --seed 1 >/dev/null 2>&1
	echo "== tracing: LD_PRELOAD=$preload ONNXHOOK_OUTPUT=$dmodel $runner $cfg --weights …"
	# (darknet prints its layer table on stderr: keep only our line)
	LD_PRELOAD=$preload ONNXHOOK_OUTPUT=$dmodel "$runner" "$cfg" --weights "$out/yolov3-tiny.weights" 2>&1 >/dev/null |
		grep '^onnxhook: '
	/usr/bin/python3 tests/e2e/check-onnx.py "$dmodel" | tail -n 1
	node tests/e2e/ort-compare.js --model "$dmodel" --gen-input "$out/yolo-input.bin" --seed 7 >/dev/null
	"$runner" "$cfg" --weights "$out/yolov3-tiny.weights" --in "$out/yolo-input.bin" --out "$out/yolo-output.bin" >/dev/null 2>&1
	node tests/e2e/ort-compare.js --model "$dmodel" --in "$out/yolo-input.bin" --expect "$out/yolo-output.bin" | tail -n 2
	echo "== model: $dmodel"
fi

# A host linked into a stripped program: Debian's /usr/bin/darknet carries darknet's code
# inside (no libdarknet.so to interpose). onnxhook finds the layer functions by their code,
# with /usr/lib/darknet/libdarknet.so as the reference, and hooks them inline.
if [ -x /usr/bin/darknet ] && [ -x "$prefix/bin/darknet-weights" ]; then
	data=/usr/share/darknet/cfg/imagenet1k.data cfg=/usr/share/darknet/cfg/darknet19.cfg
	image=/usr/share/darknet/data/dog.jpg smodel=$out/darknet19.onnx
	echo "== stripped program: $(file -b /usr/bin/darknet | cut -d, -f1-2,6-)"
	echo "== darknet: seeded weights with sane statistics for $cfg"
	"$prefix/bin/darknet-weights" "$cfg" "$out/darknet19.weights" --seed 1 >/dev/null 2>&1
	echo "== tracing: $prefix/bin/onnxhook -o $smodel --test-data /usr/bin/darknet classifier predict …"
	rm -rf "$out/test_data_set_0"
	"$prefix/bin/onnxhook" -o "$smodel" --test-data /usr/bin/darknet classifier predict "$data" "$cfg" \
		"$out/darknet19.weights" "$image" 2>"$out/darknet19.stderr" | tee "$out/darknet19.stdout"
	grep '^onnxhook: ' "$out/darknet19.stderr" || true
	/usr/bin/python3 tests/e2e/check-onnx.py "$smodel" | tail -n 1
	echo "== onnxruntime on the program's input (the model's test data) vs. its output buffer and top-5"
	/usr/bin/python3 - "$out/test_data_set_0" "$out/darknet19-in.bin" "$out/darknet19-out.bin" <<'PY'
import sys, onnx
from onnx import numpy_helper
d = sys.argv[1]
open(sys.argv[2], "wb").write(numpy_helper.to_array(onnx.load_tensor(d + "/input_0.pb")).tobytes())
open(sys.argv[3], "wb").write(numpy_helper.to_array(onnx.load_tensor(d + "/output_0.pb")).tobytes())
PY
	node tests/e2e/ort-compare.js --model "$smodel" --in "$out/darknet19-in.bin" \
		--expect "$out/darknet19-out.bin" --save "$out/darknet19-ort.bin" | tail -n 2
	/usr/bin/python3 tests/e2e/darknet/top5.py "$out/darknet19-ort.bin" "$out/darknet19.stdout" "$data"
	echo "== model: $smodel"
fi

# PyTorch: a torchvision resnet18 (random weights) in Python, traced by the onnxhook command.
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null && "$prefix/bin/onnxhook" --list-symbols | grep -q '^torch'; then
	tmodel=$out/torch-resnet18.onnx
	mkdir -p "$out/torch"
	echo "== tracing: $prefix/bin/onnxhook -o $tmodel /usr/bin/python3 tests/e2e/torch/vision.py resnet18 …"
	"$prefix/bin/onnxhook" -o "$tmodel" /usr/bin/python3 tests/e2e/torch/vision.py resnet18 "$out/torch" --size 64
	/usr/bin/python3 tests/e2e/check-onnx.py "$tmodel" --expect-inputs 1 | tail -n 1
	node tests/e2e/ort-compare.js --model "$tmodel" --in "$out/torch/input_1.bin" --expect "$out/torch/output_1.bin" | tail -n 2
	echo "== model: $tmodel"
fi
