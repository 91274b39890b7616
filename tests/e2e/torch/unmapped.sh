#!/bin/sh
# SPDX-License-Identifier: MIT
# An op the torch host has no mapping for (the hand-written model with --unmapped: cumsum): the
# program's output is unchanged, the model is still written and passes the full checker, with one
# org.pytorch.aten node named after the op, one graph input, exactly one warning naming the op,
# and the op in the model's onnxhook.warnings metadata.
# usage: unmapped.sh PRELOAD PYTHON HANDMADE_PY
set -u
preload=$1 python=$2 handmade=$3
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-torch-unmapped.XXXXXX") || exit 1
fail() { echo "unmapped: FAIL: $*" >&2; echo "unmapped: work dir kept: $dir" >&2; exit 1; }
asan=$(ldd "$preload" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
mkdir "$dir/plain" "$dir/trace"
"$python" "$handmade" "$dir/plain" --unmapped || fail "the program failed untraced"
env ${asan:+ASAN_OPTIONS=detect_leaks=0} LD_PRELOAD="${asan:+$asan:}$preload" ONNXHOOK_OUTPUT="$dir/m.onnx" \
	"$python" "$handmade" "$dir/trace" --unmapped 2>"$dir/stderr" || fail "the program failed traced"
for f in output_1.bin output_2.bin; do
	cmp -s "$dir/plain/$f" "$dir/trace/$f" || fail "$f differs under the hook"
done
n=$(grep -c 'onnxhook: warning:.*aten::cumsum' "$dir/stderr")
[ "$n" = 1 ] || { cat "$dir/stderr" >&2; fail "$n warnings naming aten::cumsum, expected 1"; }
"$python" - "$dir/m.onnx" <<'PY' || fail "model check"
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
custom = [(n.domain, n.op_type) for n in m.graph.node if n.domain]
assert custom == [('org.pytorch.aten', 'cumsum')], custom
assert len(m.graph.input) == 1, [i.name for i in m.graph.input]
w = {p.key: p.value for p in m.metadata_props}.get('onnxhook.warnings', '')
assert 'aten::cumsum' in w, w
PY
rm -rf "$dir"
echo "unmapped: OK"
