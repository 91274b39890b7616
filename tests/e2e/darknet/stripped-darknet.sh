#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end check of Debian's stripped /usr/bin/darknet (darknet's code linked in, no library to
# interpose): `darknet classifier predict` traced through the inline hooks, the model proved.
#
# usage: stripped-darknet.sh --preload LIB --weights-tool DARKNET_WEIGHTS --cfg CFG [--name NAME]
#                            [--net-set "width=64,height=64"] [--image IMG] [--tol T] [--layer-tol T]
#                            [--program PROG] [--node NODE] [--python PY]
#
# 1. darknet-weights: a deterministic .weights file for CFG (a copy with --net-set applied);
# 2. PROG classifier predict imagenet1k.data CFG W IMG untraced, then traced (ONNXHOOK_LAYER_DATA=1:
#    the test data set, holding every layer's result after output_N):
#    same status, byte-identical stdout (the top-5), the same stderr less onnxhook's lines and the
#    timing line; the trace located every hooked function (onnxhook.host_code says so, no warning);
# 3. check-onnx.py (the full checker) on the model;
# 4. onnxruntime on the model's test data input: its output is the program's own output buffer
#    (the test data's output_0, tol), and its top-5 are the labels and percentages the program
#    printed;
# 5. onnxruntime on the model's test data gives every layer's buffer as the program left it
#    (test-data-run.js makes each layer value of the set an output of a copy of the model; layer tol).
# Exit 0 pass, 1 fail. The work dir (under $MESON_BUILD_ROOT or $TMPDIR) is removed on success.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e=$(cd "$here/.." && pwd)
name='' preload='' wtool='' cfg='' net_set='' image=/usr/share/darknet/data/dog.jpg tol=1e-4
layer_tol="" program=/usr/bin/darknet node=node python=/usr/bin/python3 ort=1
data=/usr/share/darknet/cfg/imagenet1k.data

say() { printf 'stripped-darknet[%s]: %s\n' "${name:-?}" "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
usage() { sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --preload) preload=${2:?}; shift 2 ;;
    --weights-tool) wtool=${2:?}; shift 2 ;;
    --cfg) cfg=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --net-set) net_set=${2:?}; shift 2 ;;
    --image) image=${2:?}; shift 2 ;;
    --tol) tol=${2:?}; shift 2 ;;
    --layer-tol) layer_tol=${2:?}; shift 2 ;;
    --program) program=${2:?}; shift 2 ;;
    --node) node=${2:?}; shift 2 ;;
    --python) python=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "stripped-darknet: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ -z "$preload" ] || [ -z "$wtool" ] || [ -z "$cfg" ]; then usage; fi
[ -n "$name" ] || name=$(basename "$cfg" .cfg)
[ -n "$layer_tol" ] || layer_tol=$tol

unset LD_PRELOAD
for v in $(compgen -e ONNXHOOK_); do
    case $v in
    ONNXHOOK_ORT_DIR|ONNXHOOK_E2E_*) ;;
    *) unset "$v" ;;
    esac
done

# shellcheck source=../checkers.sh
. "$e2e/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$e2e/../ort}")
for f in "$preload" "$cfg" "$image" "$data"; do [ -f "$f" ] || fail "$f does not exist"; done
[ -x "$program" ] || fail "$program is not an executable file"
[ -x "$wtool" ] || fail "darknet-weights $wtool is not an executable file"
require_checkers
preload=$(realpath "$preload")
wtool=$(realpath "$wtool")

base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
dir=$(mktemp -d "$base/onnxhook-stripped-darknet-$name.XXXXXX") || fail "mktemp in $base failed"

# --net-set: [net] keys replaced (a smaller input keeps the test quick)
awk -v set="$net_set" '
    BEGIN { n = split(set, kv, ","); for (i = 1; i <= n; i++) { split(kv[i], p, "="); val[p[1]] = p[2] } }
    /^\[/ { innet = ($0 ~ /^\[(net|network)\]/) }
    innet && /^[^#;=]+=/ { k = $0; sub(/[ \t]*=.*/, "", k); if (k in val) { print k "=" val[k]; next } }
    { print }
' "$cfg" >"$dir/net.cfg" || fail "cannot write $dir/net.cfg"

# An ASan-built preload needs libasan first in LD_PRELOAD.
asan=
for f in "$preload" "$wtool"; do
    a=$(ldd "$f" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
    [ -n "$a" ] && { asan=$a; break; }
done
hook_preload=$preload
[ -n "$asan" ] && hook_preload=$asan:$preload

# run OUT MODE(plain|trace): the program in the work dir; streams in OUT.stdout/.stderr
run() {
    local out=$1 mode=$2 envs=()
    [ -n "$asan" ] && envs+=("ASAN_OPTIONS=detect_leaks=0")
    [ "$mode" != plain ] && envs+=("LD_PRELOAD=$hook_preload" "ONNXHOOK_OUTPUT=$dir/$mode.onnx"
                                   "ONNXHOOK_LAYER_DATA=1")
    (cd "$dir" && env "${envs[@]}" "$program" classifier predict "$data" "$dir/net.cfg" \
        "$dir/net.weights" "$image" >"$out.stdout" 2>"$out.stderr" </dev/null)
    echo $? >"$out.status"
}

same_run() { # the traced run B behaved like the untraced run A
    local a=$1 b=$2
    cmp -s "$a.status" "$b.status" || fail "exit status $(cat "$a.status") untraced, $(cat "$b.status") traced"
    [ "$(cat "$a.status")" = 0 ] || { tail -n 5 "$a.stderr" >&2; fail "the program itself exits $(cat "$a.status")"; }
    cmp -s "$a.stdout" "$b.stdout" || { diff "$a.stdout" "$b.stdout" | head -n 20 >&2; fail "stdout differs with the hook"; }
    grep -v -e '^onnxhook: ' -e 'Predicted in' "$a.stderr" >"$a.stderr.app"
    grep -v -e '^onnxhook: ' -e 'Predicted in' "$b.stderr" >"$b.stderr.app"
    cmp -s "$a.stderr.app" "$b.stderr.app" || { diff "$a.stderr.app" "$b.stderr.app" | head -n 20 >&2; fail "stderr differs with the hook"; }
    ! grep -q '^onnxhook: \(warning\|error\):' "$b.stderr" || { grep '^onnxhook: ' "$b.stderr" >&2; fail "the traced run warned"; }
}

say "$program classifier predict $(basename "$cfg")${net_set:+ ($net_set)} $(basename "$image"); work dir $dir"
# (an ASan build's tools may leak at exit, as darknet does)
env ${asan:+ASAN_OPTIONS=detect_leaks=0} "$wtool" "$dir/net.cfg" "$dir/net.weights" >"$dir/weights.log" 2>&1 || { tail -n 5 "$dir/weights.log" >&2; fail "darknet-weights failed"; }

run "$dir/plain" plain
run "$dir/trace" trace
same_run "$dir/plain" "$dir/trace"
sed "s/^/stripped-darknet[$name]: app: /" "$dir/plain.stdout"
grep '^onnxhook: ' "$dir/trace.stderr" | sed "s/^/stripped-darknet[$name]: trace: /"
[ -s "$dir/trace.onnx" ] || fail "the traced run wrote no model"
[ -d "$dir/test_data_set_0" ] || fail "the traced run wrote no test data"
mv "$dir/test_data_set_0" "$dir/trace-data"

# the checker, and the provenance: every hooked function located in the program
"$python" "$e2e/check-onnx.py" "$dir/trace.onnx" || fail "check-onnx.py rejects the model"
"$python" - "$dir/trace.onnx" "$program" <<'PY' || fail "the model's provenance is not the located program"
import sys, os, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
meta = {p.key: p.value for p in m.metadata_props}
code = meta.get("onnxhook.host_code", "")
print("stripped-darknet: onnxhook.host_code =", code)
prog = os.path.realpath(sys.argv[2])
ok = code.startswith("darknet: 28 of 28 functions") and prog in code and "not hooked" not in code
sys.exit(0 if ok and meta.get("onnxhook.host_library") == prog else 1)
PY

# onnxruntime on the test data's input: the program's output buffer, and its printed top-5
"$python" - "$dir/trace-data" "$dir/in.bin" "$dir/buffer.bin" <<'PY' || fail "cannot read the test data"
import sys, onnx
from onnx import numpy_helper
d = sys.argv[1]
open(sys.argv[2], "wb").write(numpy_helper.to_array(onnx.load_tensor(d + "/input_0.pb")).tobytes())
open(sys.argv[3], "wb").write(numpy_helper.to_array(onnx.load_tensor(d + "/output_0.pb")).tobytes())
PY
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$e2e/ort-compare.js" --model "$dir/trace.onnx" --in "$dir/in.bin" \
    --expect "$dir/buffer.bin" --tol "$tol" --save "$dir/ort.bin" ||
    fail "onnxruntime on the test data does not give the program's output buffer"
"$python" "$here/top5.py" "$dir/ort.bin" "$dir/plain.stdout" "$data" ||
    fail "onnxruntime's top-5 is not what the program printed"

# every layer: onnxruntime on the model's test data gives each layer's buffer as the program left
# it (the set holds every layer's result after output_0, the bytes each layer call wrote)
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$e2e/test-data-run.js" --model "$dir/trace.onnx" \
    --set "$dir/trace-data" --tol "$layer_tol" ||
    fail "onnxruntime on the model's test data does not give every layer's buffer"
n=$(find "$dir/trace-data" -name 'output_*.pb' | wc -l)
layers=$(grep -c '^\[' "$dir/net.cfg")
say "$n outputs (the head, then every layer) held against the program's buffers"
[ "$n" -ge "$((layers - 1))" ] || fail "the test data has $n outputs for $layers sections of the cfg"

rm -rf "$dir"
say "PASS"
