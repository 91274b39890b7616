#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: big models (ONNX external data). bigfc --size big holds 2.47 GB of weights: traced
# with the default ONNXHOOK_EXTERNAL_DATA=auto it must give a small model + model.onnx.data that the
# checker (by path, on a copy) and onnxruntime accept and that matches the app (1e-4), with extra
# peak RSS <= 1.2x the weights; =never must say so and still write the pair. bigfc --size small
# with =always: every initializer of >= 1 KiB outside, aligned; auto and never: one file.
# usage: bigmodel.sh PRELOAD BIGFC RUNSTAT [--node NODE] [--python PY] [--strip-tool S]
# Exit 0 pass, 1 fail, 77 skip (only when the disk lacks room).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=bigmodel
say() { printf 'bigmodel: %s\n' "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
preload=$(realpath "$1") app=$(realpath "$2") runstat=$(realpath "$3")
shift 3
node=node python=/usr/bin/python3 ort=1
while [ $# -gt 0 ]; do
    case $1 in
    --node) node=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --strip-tool) shift 2 ;;
    *) echo "bigmodel: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_EXTERNAL_DATA ONNXHOOK_LOG
# shellcheck source=checkers.sh
. "$here/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$here/../ort}")
require_checkers
# shellcheck source=preload-env.sh
. "$here/preload-env.sh" "$preload"

base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
mkdir -p "$base" || fail "cannot create $base"
dir=$(mktemp -d "$base/onnxhook-bigmodel.XXXXXX") || fail "mktemp in $base failed"
dir=$(cd "$dir" && pwd)
# The data file (2.47 GB) here, and check-onnx.py's private copy of the pair in $TMPDIR (a hard
# link when that is the same file system).
need_kib=$((3 * 1024 * 1024))
for d in "$dir" "${TMPDIR:-/tmp}"; do
    avail=$(df -Pk "$d" | awk 'NR == 2 { print $4 }')
    if [ "${avail:-0}" -lt "$need_kib" ]; then
        rm -rf "$dir"
        say "SKIP: $d has $((avail / 1024)) MiB free, this test needs $((need_kib / 1024)) MiB"
        exit 77
    fi
done

# Traced runs get explicit bounds: the default weight bound depends on the machine's memory.
traced() { env LD_PRELOAD="$hook_preload" ONNXHOOK_MAX_BYTES=8000000000 "$@"; }

# Each model's initializers against its data file: location, 4096-aligned offsets, no overlap,
# lengths equal to the tensors' sizes, the data file exactly as long as the last one's end.
# Prints "<external> <inline> <weight bytes> <model bytes> <data bytes>".
inspect() {
    "$python" - "$@" <<'PY'
import os, sys
import onnx
from onnx import TensorProto
path, want_loc = sys.argv[1], sys.argv[2]
m = onnx.load(path, load_external_data=False)
ext, inl, weights, spans = 0, 0, 0, []
size = {TensorProto.FLOAT: 4, TensorProto.INT64: 8}
for t in m.graph.initializer:
    n = size[t.data_type]
    for d in t.dims:
        n *= d
    weights += n
    if t.data_location == TensorProto.EXTERNAL:
        e = {kv.key: kv.value for kv in t.external_data}
        assert not t.raw_data, t.name
        assert e.get("location") == want_loc, (t.name, e)
        off, length = int(e["offset"]), int(e["length"])
        assert off % 4096 == 0, (t.name, off)
        assert length == n, (t.name, length, n)
        spans.append((off, off + length))
        ext += 1
    else:
        assert len(t.raw_data) == n, t.name
        inl += 1
spans.sort()
assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "overlapping tensors"
data = os.path.join(os.path.dirname(path), want_loc)
dsize = os.path.getsize(data) if spans else 0
assert not spans or dsize == spans[-1][1], (dsize, spans[-1])
print(ext, inl, weights, os.path.getsize(path), dsize)
PY
}

check() { "$python" "$here/check-onnx.py" "$@" --expect-ops 'Flatten=3,Gemm=3,Relu=2,Reshape=*'; }
compare() {
    ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/ort-compare.js" --model "$1" --in "$dir/in.bin" \
        --expect "$2" --tol 1e-4
}
gen_input() { # a seeded uniform[-1, 1] input of $1 floats (no onnxruntime session just for its shape)
    "$python" -c 'import random, struct, sys
r = random.Random(1); n = int(sys.argv[1])
sys.stdout.buffer.write(struct.pack(f"<{n}f", *(r.uniform(-1, 1) for _ in range(n))))' "$1" >"$dir/in.bin"
}
stat_field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1"; }

cd "$dir" || fail "cd $dir"
t_start=$(date +%s)

# ---- small, every mode ----
gen_input 256
"$app" --size small --in in.bin --out small-ref.bin >small-ref.stdout || fail "bigfc --size small failed"
for mode in always auto never; do
    traced env ONNXHOOK_EXTERNAL_DATA=$mode ONNXHOOK_OUTPUT="$dir/small-$mode.onnx" \
        "$app" --size small --in in.bin --out "small-$mode.bin" >"small-$mode.stdout" 2>"small-$mode.stderr" ||
        fail "traced bigfc --size small ($mode) failed: $(cat "small-$mode.stderr")"
    cmp -s small-ref.bin "small-$mode.bin" || fail "the traced app's output differs ($mode)"
    cmp -s small-ref.stdout "small-$mode.stdout" || fail "the traced app's stdout differs ($mode)"
    ! grep -v '^onnxhook: wrote ' "small-$mode.stderr" | grep -q . ||
        fail "unexpected stderr ($mode): $(cat "small-$mode.stderr")"
    r=$(inspect "small-$mode.onnx" "small-$mode.onnx.data") || fail "small-$mode.onnx: bad initializers"
    read -r ext inl _ _ _ <<<"$r"
    if [ "$mode" = always ]; then
        # 3 weights (256 KiB) and 3 biases (exactly 1 KiB) outside; Reshape shapes inline
        [ "$ext" = 6 ] && [ "$inl" -ge 1 ] || fail "always: $ext external, $inl inline initializers"
        grep -q ' parameters, [0-9.]* KB, [0-9.]* KB in small-always\.onnx\.data, ' small-always.stderr ||
            fail "the summary does not name the data file: $(cat small-always.stderr)"
    else
        [ "$ext" = 0 ] && [ ! -e "small-$mode.onnx.data" ] || fail "$mode: external data for a small model"
    fi
    check "small-$mode.onnx" >"small-$mode.check" 2>&1 || fail "check-onnx ($mode): $(cat "small-$mode.check")"
    compare "small-$mode.onnx" small-ref.bin >"small-$mode.ort" 2>&1 ||
        fail "onnxruntime ($mode): $(cat "small-$mode.ort")"
done
say "small: always -> 6 initializers in small-always.onnx.data, auto and never inline; checker and onnxruntime OK"
ls ./.onnxhook.* >/dev/null 2>&1 && fail "temporary files left: $(ls ./.onnxhook.*)"

# ---- big (2.47 GB of weights), auto ----
gen_input 14336
"$runstat" -o untraced.stat -- "$app" --size big --in in.bin --out ref.bin >ref.stdout ||
    fail "bigfc --size big failed"
t0=$(date +%s.%N)
"$runstat" -o traced.stat -- env LD_PRELOAD="$hook_preload" ONNXHOOK_MAX_BYTES=8000000000 \
    ONNXHOOK_OUTPUT="$dir/big.onnx" "$app" --size big --in in.bin --out big.bin >big.stdout 2>big.stderr ||
    fail "traced bigfc --size big failed: $(cat big.stderr)"
t1=$(date +%s.%N)
cmp -s ref.bin big.bin && cmp -s ref.stdout big.stdout || fail "the traced app's output differs"
grep -q '^onnxhook: wrote .*big\.onnx: .* GB in big\.onnx\.data, ' big.stderr ||
    fail "the summary does not name the data file: $(cat big.stderr)"
! grep -v '^onnxhook: wrote ' big.stderr | grep -q . || fail "unexpected stderr: $(cat big.stderr)"
r=$(inspect big.onnx big.onnx.data) || fail "big.onnx: bad initializers"
read -r ext inl weights model_bytes data_bytes <<<"$r"
[ "$ext" = 6 ] || fail "$ext initializers external, expected the 3 weights and 3 biases"
[ "$weights" -gt $((2 * 1024 * 1024 * 1024)) ] || fail "only $weights bytes of weights: not past 2 GiB"
[ "$model_bytes" -lt $((1024 * 1024)) ] || fail "big.onnx is $model_bytes bytes"
u=$(stat_field untraced.stat maxrss_kib) t=$(stat_field traced.stat maxrss_kib)
extra=$(((t - u) * 1024))
say "big: $weights bytes of weights; big.onnx $model_bytes bytes, big.onnx.data $data_bytes bytes;" \
    "traced run $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" \
    "(untraced $(stat_field untraced.stat wall_s) s); peak RSS untraced $u KiB, traced $t KiB:" \
    "extra $(awk -v e="$extra" -v w="$weights" 'BEGIN { printf "%.3f", e / w }')x the weights"
sed -n 's/^onnxhook: /bigmodel: onnxhook said: /p' big.stderr
[ "$extra" -le $((weights * 12 / 10)) ] || fail "extra peak RSS $extra bytes > 1.2 x $weights"

check big.onnx >big.check 2>&1 || fail "check-onnx: $(cat big.check)"
say "checker by path (on a copy): OK"
compare big.onnx ref.bin >big.ort 2>&1 || fail "onnxruntime: $(cat big.ort)"
sed -n 's/^ort-compare: /bigmodel: onnxruntime: /p' big.ort
rm -f big.onnx big.onnx.data

# ---- big, never: one error line, and the pair written all the same ----
traced env ONNXHOOK_EXTERNAL_DATA=never ONNXHOOK_OUTPUT="$dir/never.onnx" ONNXHOOK_LOG=quiet \
    "$app" --size big >never.stdout 2>never.stderr || fail "traced bigfc --size big (never) failed"
[ "$(grep -c . never.stderr)" = 1 ] && grep -q '^onnxhook: error: .*never.*never\.onnx\.data' never.stderr ||
    fail "never: expected one error line naming the data file, got: $(cat never.stderr)"
r=$(inspect never.onnx never.onnx.data) || fail "never.onnx: bad initializers"
read -r ext _ _ _ _ <<<"$r"
[ "$ext" = 6 ] || fail "never: $ext initializers external"
sed -n 's/^onnxhook: /bigmodel: never: onnxhook said: /p' never.stderr
ls ./.onnxhook.* >/dev/null 2>&1 && fail "temporary files left: $(ls ./.onnxhook.*)"

cd / && rm -rf "$dir"
say "OK ($(($(date +%s) - t_start)) s)"
