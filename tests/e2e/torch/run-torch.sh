#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end check of the torch host: a PyTorch program (Python or C++) traced by the preload.
#
# usage: run-torch.sh --preload LIB [--name NAME] [--pass N] [--tol T] [--expect-ops "Conv=3,..."]
#                     [--node NODE] [--python PY] [--external-data auto|always|never]
#                     -- COMMAND ARGS...
#
# COMMAND writes OUT/input_<k>.bin and OUT/output_<k>.bin (raw float32) for each forward k; the
# argument @OUT@ is replaced by its output directory. It runs untraced, then traced
# (ONNXHOOK_OUTPUT=model.onnx, ONNXHOOK_PASS=N and ONNXHOOK_EXTERNAL_DATA=MODE when given):
# 1. same exit status and the same output files, byte for byte (the hook changed nothing);
# 2. check-onnx.py: the full checker, exactly one graph input (+ --expect-ops); a model with
#    external data (model.onnx.data: past 2 GiB, or --external-data always, which requires one)
#    is checked by path and run by onnxruntime from its path, beside its data file;
# 3. onnxruntime on the traced run's input of pass N (default 1) gives its output (tol 1e-4).
# Exit 0 pass, 1 fail. The work dir (under $MESON_BUILD_ROOT or $TMPDIR) is removed on success.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e=$(cd "$here/.." && pwd)
name=torch preload='' pass='' external='' tol=1e-4 expect_ops='' node=node python=/usr/bin/python3
# checkers.sh reads $ort: onnxruntime is always used here.
# shellcheck disable=SC2034
ort=1

say() { printf 'run-torch[%s]: %s\n' "$name" "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
usage() { sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --preload) preload=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --pass) pass=${2:?}; shift 2 ;;
    --external-data) external=${2:?}; shift 2 ;;
    --tol) tol=${2:?}; shift 2 ;;
    --expect-ops) expect_ops=${2?}; shift 2 ;;
    --node) node=${2:?}; shift 2 ;;
    --python) python=${2:?}; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
    esac
done
if [ -z "$preload" ] || [ $# -eq 0 ]; then usage; fi

unset LD_PRELOAD
for v in $(compgen -e ONNXHOOK_); do
    case $v in
    ONNXHOOK_ORT_DIR|ONNXHOOK_E2E_*|ONNXHOOK_LOG) ;;
    *) unset "$v" ;;
    esac
done
# shellcheck source=../checkers.sh
. "$e2e/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$e2e/../ort}")
require_checkers
preload=$(realpath "$preload") || fail "no preload $preload"

base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
dir=$(mktemp -d "$base/onnxhook-torch-$name.XXXXXX") || fail "mktemp in $base failed"

# An ASan-built preload needs libasan first in LD_PRELOAD (the programs are not instrumented).
asan=$(ldd "$preload" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
hook_preload=$preload
[ -n "$asan" ] && hook_preload=$asan:$preload
asan_opts=${ASAN_OPTIONS:-}
[ -n "$asan" ] && asan_opts=${asan_opts:+$asan_opts:}detect_leaks=0

run() { # run MODE(plain|trace): streams and status in $dir/MODE.*
    local mode=$1 out=$dir/$1 envs=() args=()
    mkdir -p "$out"
    for a in "${cmd[@]}"; do args+=("${a//@OUT@/$out}"); done
    if [ "$mode" = trace ]; then
        envs+=("LD_PRELOAD=$hook_preload" "ONNXHOOK_OUTPUT=$dir/model.onnx")
        [ -n "$asan" ] && envs+=("ASAN_OPTIONS=$asan_opts")
        [ -n "$pass" ] && envs+=("ONNXHOOK_PASS=$pass")
        [ -n "$external" ] && envs+=("ONNXHOOK_EXTERNAL_DATA=$external")
    fi
    (cd "$dir" && env "${envs[@]}" "${args[@]}" >"$dir/$mode.stdout" 2>"$dir/$mode.stderr" </dev/null)
    echo $? >"$dir/$mode.status"
}
# The programs run in the work dir: relative paths (with a '/') to files here are made absolute.
# A bare word stays a word, even when a file of that name is here (`--mode trace` after the
# README's first command has made build/trace).
cmd=()
for a in "$@"; do
    if [ "${a#/}" = "$a" ] && [ "${a#*/}" != "$a" ] && [ -e "$a" ]; then cmd+=("$(realpath "$a")"); else cmd+=("$a"); fi
done
run plain
run trace
show() { tail -n 20 "$dir/$1.stderr" >&2; }
[ "$(cat "$dir/plain.status")" = 0 ] || { show plain; fail "the program failed untraced"; }
cmp -s "$dir/plain.status" "$dir/trace.status" || { show trace; fail "exit status differs under the hook"; }
cmp -s "$dir/plain.stdout" "$dir/trace.stdout" || fail "stdout differs under the hook"
n=0
for f in "$dir"/plain/output_*.bin; do
    [ -f "$f" ] || fail "the program wrote no output_<k>.bin"
    cmp -s "$f" "$dir/trace/$(basename "$f")" || fail "$(basename "$f") differs under the hook"
    n=$((n + 1))
done
if grep -q 'onnxhook: error' "$dir/trace.stderr"; then show trace; fail "the hook reported an error"; fi
[ -f "$dir/model.onnx" ] || { show trace; fail "no model written"; }
say "$n forward(s), outputs identical under the hook"
data=$dir/model.onnx.data
if [ "$external" = always ] && [ ! -s "$data" ]; then show trace; fail "--external-data always: no $data"; fi
[ -f "$data" ] && say "weights in model.onnx.data: $(stat -c %s "$data") bytes, the model $(stat -c %s "$dir/model.onnx")"

check_args=("$dir/model.onnx" --expect-inputs 1)
[ -n "$expect_ops" ] && check_args+=(--expect-ops "$expect_ops")
"$python" "$e2e/check-onnx.py" "${check_args[@]}" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; fail "check-onnx"; }
k=${pass:-1}
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$e2e/ort-compare.js" --model "$dir/model.onnx" \
    --in "$dir/trace/input_$k.bin" --expect "$dir/trace/output_$k.bin" --tol "$tol" >"$dir/ort.log" 2>&1 ||
    { cat "$dir/ort.log" >&2; fail "onnxruntime differs from the program"; }
say "$(grep -m1 'nodes' "$dir/check.log" | sed 's/^check-onnx: //'); $(grep 'rel err' "$dir/ort.log" | sed 's/^ort-compare: //')"
[ "${ONNXHOOK_E2E_KEEP:-0}" = 1 ] || rm -rf "$dir"
say OK
