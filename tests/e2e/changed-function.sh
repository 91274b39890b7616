#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A program with a host linked in where one hooked function was built from other sources: that
# function is reported as not found (one warning line, and the model's onnxhook.host_code), the
# others are located and hooked, and the program runs as without the hook.
#
# usage: changed-function.sh --preload LIB --app APP --reference LIB --changed SYMBOL
#                            --host HOST --expect-ops "Conv=3,Relu=1" [--node NODE] [--python PY]
#
# 1. APP untraced, then traced with ONNXHOOK_HOST_CODE=LIB and test data: same status, stdout and
#    --out bytes;
# 2. exactly one onnxhook warning line naming SYMBOL as not found (others only about memory it
#    wrote unseen), and no error;
# 3. the checker takes the model, whose ops are --expect-ops (SYMBOL's op is missing);
# 4. onnxhook.host_code says N-1 of N functions were hooked and SYMBOL was not found;
# 5. onnxruntime on the model's test data gives the program's outputs (what SYMBOL computed is a
#    graph input there: the program's own bytes).
# Exit 0 pass, 1 fail. The work dir (under $MESON_BUILD_ROOT or $TMPDIR) is removed on success.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=changed-function preload='' app='' ref='' changed='' host='' expect_ops='' node=node
python=/usr/bin/python3 ort=1

say() { printf 'changed-function: %s\n' "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
usage() { sed -n '7,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --preload) preload=${2:?}; shift 2 ;;
    --app) app=${2:?}; shift 2 ;;
    --reference) ref=${2:?}; shift 2 ;;
    --changed) changed=${2:?}; shift 2 ;;
    --host) host=${2:?}; shift 2 ;;
    --expect-ops) expect_ops=${2:?}; shift 2 ;;
    --node) node=${2:?}; shift 2 ;;
    --python) python=${2:?}; shift 2 ;;
    *) echo "changed-function: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ -z "$preload" ] || [ -z "$app" ] || [ -z "$ref" ] || [ -z "$changed" ] || [ -z "$host" ]; then usage; fi

unset LD_PRELOAD
for v in $(compgen -e ONNXHOOK_); do
    case $v in ONNXHOOK_ORT_DIR|ONNXHOOK_E2E_*) ;; *) unset "$v" ;; esac
done
# shellcheck source=checkers.sh
. "$here/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$here/../ort}")
require_checkers
for f in "$preload" "$app" "$ref"; do [ -f "$f" ] || fail "$f does not exist"; done
preload=$(realpath "$preload") app=$(realpath "$app") ref=$(realpath "$ref")
base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
dir=$(mktemp -d "$base/onnxhook-changed-function.XXXXXX") || fail "mktemp in $base failed"

asan=$(ldd "$preload" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
hook_preload=$preload
[ -n "$asan" ] && hook_preload=$asan:$preload
envs=()
[ -n "$asan" ] && envs+=("ASAN_OPTIONS=detect_leaks=0")

(cd "$dir" && env ${envs[@]+"${envs[@]}"} "$app" --out plain.bin >plain.stdout 2>plain.stderr </dev/null)
echo $? >"$dir/plain.status"
(cd "$dir" && env ${envs[@]+"${envs[@]}"} LD_PRELOAD="$hook_preload" ONNXHOOK_HOST_CODE="$ref" \
    ONNXHOOK_OUTPUT="$dir/model.onnx" ONNXHOOK_TEST_DATA=1 \
    "$app" --out trace.bin >trace.stdout 2>trace.stderr </dev/null)
echo $? >"$dir/trace.status"

[ "$(cat "$dir/plain.status")" = 0 ] || fail "$app exits $(cat "$dir/plain.status")"
cmp -s "$dir/plain.status" "$dir/trace.status" || fail "exit status $(cat "$dir/trace.status") traced"
cmp -s "$dir/plain.stdout" "$dir/trace.stdout" || fail "stdout differs with the hook"
cmp "$dir/plain.bin" "$dir/trace.bin" >&2 || fail "the output differs with the hook"
grep '^onnxhook: ' "$dir/trace.stderr" | sed 's/^/changed-function: trace: /'

! grep -q '^onnxhook: error:' "$dir/trace.stderr" || fail "the traced run printed an error"
# One line says what is missing. The only other warnings allowed are its consequence: memory the
# unhooked function wrote in place over a recorded value, taken as a graph input.
warnings=$(grep -c "^onnxhook: warning: $host: .* hooked functions located" "$dir/trace.stderr")
[ "$warnings" = 1 ] || fail "$warnings warnings about located functions, not 1"
grep -q "^onnxhook: warning: $host: .* not hooked: $changed (not found" "$dir/trace.stderr" ||
    fail "the warning does not name $changed as not found"
others=$(grep '^onnxhook: warning:' "$dir/trace.stderr" | grep -v -e "hooked functions located" \
    -e "changed before .* read it: code the hook does not see modified it")
[ -z "$others" ] || fail "unexpected warnings: $others"

"$python" "$here/check-onnx.py" "$dir/model.onnx" --expect-ops "$expect_ops" || fail "check-onnx.py rejects the model"
"$python" - "$dir/model.onnx" "$host" "$changed" <<'PY' || fail "onnxhook.host_code does not say what is missing"
import re, sys, onnx
m = onnx.load(sys.argv[1])
code = {p.key: p.value for p in m.metadata_props}.get("onnxhook.host_code", "")
print("changed-function: onnxhook.host_code =", code)
g = re.match(r"%s: (\d+) of (\d+) functions" % re.escape(sys.argv[2]), code)
sys.exit(0 if g and int(g[1]) == int(g[2]) - 1 and
         ("not hooked: %s (not found" % sys.argv[3]) in code else 1)
PY
[ -d "$dir/test_data_set_0" ] || fail "no test data set written"
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/test-data-run.js" --model "$dir/model.onnx" \
    --set "$dir/test_data_set_0" || fail "onnxruntime on the model's test data does not give the program's outputs"

rm -rf "$dir"
say "PASS"
