#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end check of one app: trace it with the preload, then prove the model with the checker and onnxruntime.
#
# usage: run-e2e.sh --preload LIB --app APP [--name NAME] [--strip] [--tol T] [--seed S]
#                   [--expect-ops "Conv=3,Relu=1,Reshape=*"] [--expect-initializers N] [--opset N]
#                   [--expect-inputs N] [--expect-warnings N] [--test-data] [--expect-stderr REGEX]
#                   [--app-env VAR=VALUE]... [--no-ort] [--node NODE] [--python PY]
#                   [--strip-tool STRIP] [-- APP ARGS...]
#
# 1. (--strip) run a stripped copy of the app (the closed-source case);
# 2. trace run on the app's default input -> model.onnx (and no model.onnx.tmp* left behind);
#    its stdout/stderr/status must match an untraced run's (and with --expect-stderr, the
#    untraced run's stderr must match REGEX: the test's set-up really took effect);
# 3. check-onnx.py: full onnx checker + naming/shape/opset conventions (+ --expect-ops);
# 4. a seeded random input sized from the model's inputs (ort-compare.js --gen-input);
# 5. the app on that input without and with the hook: same status, same stdout, same stderr less
#    `onnxhook: ` lines, and byte-identical --out files;
# 6. ort-compare.js: the model traced on the DEFAULT input, run by onnxruntime on the RANDOM input,
#    matches the app's output there -- the graph does not depend on the traced data;
# 7. (--test-data) the model traced on the random input, run by onnxruntime on its own test data
#    set (the bytes the program read and wrote), gives the app's outputs.
# Each traced run prints exactly --expect-warnings (default 0) warnings and no error.
#
# Exit 0 pass, 1 fail, 77 skip (only when a tool is missing AND ONNXHOOK_E2E_ALLOW_SKIP=1).
# The work dir (under $MESON_BUILD_ROOT or $TMPDIR) is removed on success and kept on failure.
# ONNXHOOK_ORT_DIR: the directory holding node_modules/onnxruntime-node (default tests/ort).
# --app-env VAR=VALUE is set for the app's runs only (traced and untraced), over the test's own.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name='' preload='' app='' strip=0 tol=1e-4 seed=1 expect_ops='' expect_inits='' opset=17 ort=1
expect_inputs='' expect_warnings=0 test_data=0 expect_stderr=''
node=node python=/usr/bin/python3 strip_tool=strip
app_args=() app_env=()

say() { printf 'run-e2e[%s]: %s\n' "${name:-?}" "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
usage() { sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --preload) preload=${2:?}; shift 2 ;;
    --app) app=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --strip) strip=1; shift ;;
    --tol) tol=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --expect-ops) expect_ops=${2?}; shift 2 ;;
    --expect-initializers) expect_inits=${2:?}; shift 2 ;;
    --expect-inputs) expect_inputs=${2:?}; shift 2 ;;
    --expect-warnings) expect_warnings=${2:?}; shift 2 ;;
    --test-data) test_data=1; shift ;;
    --opset) opset=${2:?}; shift 2 ;;
    --expect-stderr) expect_stderr=${2:?}; shift 2 ;;
    --app-env) app_env+=("${2:?}"); shift 2 ;;
    --no-ort) ort=0; shift ;;
    --node) node=${2:?}; shift 2 ;;
    --python) python=${2:?}; shift 2 ;;
    --strip-tool) strip_tool=${2:?}; shift 2 ;;
    --) shift; app_args=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "run-e2e: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ -z "$preload" ] || [ -z "$app" ]; then usage; fi
[ -n "$name" ] || name=$(basename "$app")$([ "$strip" = 1 ] && echo -stripped)

# Nothing of the caller's preloading may leak into node/python; app commands get theirs explicitly.
unset LD_PRELOAD
unset ONNXHOOK_OUTPUT

# ---- preconditions: missing tools fail by default (CI must have them) ----
# shellcheck source=checkers.sh
. "$here/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$here/../ort}")
[ -f "$preload" ] || fail "preload $preload does not exist"
[ -x "$app" ] || fail "app $app is not an executable file"
require_checkers
if [ "$strip" = 1 ]; then
    command -v "$strip_tool" >/dev/null || missing "$strip_tool not found: apt-get install binutils"
fi

base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
mkdir -p "$base" || fail "cannot create $base"
dir=$(mktemp -d "$base/onnxhook-e2e-$name.XXXXXX") || fail "mktemp in $base failed"
dir=$(cd "$dir" && pwd)

# ---- the app command: a stripped copy, its libraries still found ----
lib_path=
if [ "$strip" = 1 ]; then
    # the copy loses the build tree's $ORIGIN-relative rpath: point the loader at the same libraries
    lib_path=$(ldd "$app" | awk '$2 == "=>" && $3 ~ /^\// { sub("/[^/]*$", "", $3); print $3 }' |
        awk '!seen[$0]++' | paste -sd: -)
    if ! { cp "$app" "$dir/app" && chmod u+w "$dir/app" && "$strip_tool" "$dir/app"; }; then
        fail "could not make a stripped copy of $app"
    fi
    app=$dir/app
    if command -v nm >/dev/null && nm "$app" 2>/dev/null | grep -q ' main$'; then
        fail "strip left the symbol table in $app"
    fi
else
    app=$(cd "$(dirname "$app")" && pwd)/$(basename "$app")
fi
preload=$(cd "$(dirname "$preload")" && pwd)/$(basename "$preload")

# An ASan-built preload (or app) needs libasan first in LD_PRELOAD; the app may leak at exit.
asan=
for f in "$preload" "$app"; do
    a=$(ldd "$f" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
    [ -n "$a" ] && { asan=$a; break; }
done
hook_preload=$preload
[ -n "$asan" ] && hook_preload=$asan:$preload
asan_opts=${ASAN_OPTIONS:-}
[ -n "$asan" ] && asan_opts=${asan_opts:+$asan_opts:}detect_leaks=0

# run_app OUT_PREFIX HOOK(0|1) ONNX_PATH ARGS...: status in OUT_PREFIX.status, streams in .stdout/.stderr
run_app() {
    local out=$1 hook=$2 onnx=$3
    shift 3
    local envs=()
    [ -n "$lib_path" ] && envs+=("LD_LIBRARY_PATH=$lib_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    [ -n "$asan" ] && envs+=("ASAN_OPTIONS=$asan_opts")
    envs+=(${app_env[@]+"${app_env[@]}"})
    [ "$hook" = 1 ] && envs+=("LD_PRELOAD=$hook_preload" "ONNXHOOK_OUTPUT=$onnx")
    [ "$hook" = 1 ] && [ "$test_data" = 1 ] && [ "$onnx" = "$dir/hooked.onnx" ] && envs+=("ONNXHOOK_TEST_DATA=1")
    (cd "$dir" && env "${envs[@]}" "$app" "$@" >"$out.stdout" 2>"$out.stderr" </dev/null)
    echo $? >"$out.status"
}

show() { # prints the tail of a captured stream for a failure report
    local f
    for f in "$@"; do
        [ -s "$f" ] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
    done >&2
}

# same_run A B WHAT: the hooked run B behaved exactly like the untraced run A
same_run() {
    local a=$1 b=$2 what=$3
    cmp -s "$a.status" "$b.status" ||
        { show "$a.stderr" "$b.stderr"; fail "$what: exit status $(cat "$a.status") untraced, $(cat "$b.status") traced"; }
    [ "$(cat "$a.status")" = 0 ] || { show "$a.stderr"; fail "$what: the app itself exits $(cat "$a.status")"; }
    cmp -s "$a.stdout" "$b.stdout" ||
        { diff "$a.stdout" "$b.stdout" | head -n 20 >&2; fail "$what: stdout differs with the hook"; }
    grep -v '^onnxhook: ' "$a.stderr" >"$a.stderr.app"
    grep -v '^onnxhook: ' "$b.stderr" >"$b.stderr.app"
    cmp -s "$a.stderr.app" "$b.stderr.app" ||
        { diff "$a.stderr.app" "$b.stderr.app" | head -n 20 >&2; fail "$what: stderr (less onnxhook lines) differs with the hook"; }
}

say "app $app ${app_args[*]:-}; preload $hook_preload; work dir $dir"

# ---- 2. trace run on the default input ----
run_app "$dir/trace" 1 "$dir/model.onnx" "${app_args[@]}"
run_app "$dir/plain" 0 "" "${app_args[@]}"
same_run "$dir/plain" "$dir/trace" "default input"
if [ -n "$expect_stderr" ] && ! grep -Eq -- "$expect_stderr" "$dir/plain.stderr"; then
    show "$dir/plain.stderr"
    fail "the untraced run's stderr does not match '$expect_stderr'"
fi
grep '^onnxhook: ' "$dir/trace.stderr" | head -n 20 | sed "s/^/run-e2e[$name]: trace: /"
[ -s "$dir/model.onnx" ] || { show "$dir/trace.stderr"; fail "the traced run wrote no $dir/model.onnx"; }
# A clean trace says nothing but its summary: a warning or error (e.g. memory changed behind the
# hook's back, recording stopped) means the model is doubtful, unless the case is about that.
# expect_diagnostics STDERR: no error, exactly expect_warnings warnings
expect_diagnostics() {
    ! grep -E '^onnxhook: error:' "$1" >&2 || fail "the traced run printed an error"
    local n
    n=$(grep -c '^onnxhook: warning:' "$1")
    [ "$n" = "$expect_warnings" ] || { show "$1"; fail "the traced run printed $n warnings, expected $expect_warnings"; }
}
expect_diagnostics "$dir/trace.stderr"
leftover=$(find "$dir" -maxdepth 1 -name '.onnxhook.*.tmp*' | head -n 5)
[ -z "$leftover" ] || fail "temporary files left behind: $leftover"

# ---- 3. the onnx checker and our conventions ----
check=("$python" "$here/check-onnx.py" "$dir/model.onnx" --opset "$opset")
[ -n "$expect_ops" ] && check+=(--expect-ops "$expect_ops")
[ -n "$expect_inits" ] && check+=(--expect-initializers "$expect_inits")
[ -n "$expect_inputs" ] && check+=(--expect-inputs "$expect_inputs")
"${check[@]}" || fail "check-onnx rejected the model"

# ---- 4. a random input sized from the model's inputs ----
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/ort-compare.js" --model "$dir/model.onnx" --gen-input "$dir/in.bin" --seed "$seed" ||
    fail "could not generate an input from the model's inputs"

# ---- 5. the same input, untraced and traced: identical behaviour ----
run_app "$dir/ref" 0 "" --in "$dir/in.bin" --out "$dir/ref.bin" "${app_args[@]}"
run_app "$dir/hooked" 1 "$dir/hooked.onnx" --in "$dir/in.bin" --out "$dir/hooked.bin" "${app_args[@]}"
same_run "$dir/ref" "$dir/hooked" "random input"
expect_diagnostics "$dir/hooked.stderr"
[ -s "$dir/ref.bin" ] || fail "the app wrote no output to --out"
cmp "$dir/ref.bin" "$dir/hooked.bin" >&2 || fail "the app's output differs with the hook"
[ -s "$dir/hooked.onnx" ] || fail "the traced run on the random input wrote no model"
leftover=$(find "$dir" -maxdepth 1 -name '.onnxhook.*.tmp*' | head -n 5)
[ -z "$leftover" ] || fail "temporary files left behind: $leftover"
say "behaviour identical with and without the hook ($(stat -c %s "$dir/ref.bin") output bytes)"

# ---- 6. onnxruntime on the random input ----
if [ "$ort" = 1 ]; then
    ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/ort-compare.js" --model "$dir/model.onnx" \
        --in "$dir/in.bin" --expect "$dir/ref.bin" --tol "$tol" ||
        fail "onnxruntime's result on the random input does not match the app's"
fi

# ---- 7. the model on its own test data: the program's bytes in, the program's bytes out ----
if [ "$test_data" = 1 ]; then
    [ -d "$dir/test_data_set_0" ] || { show "$dir/hooked.stderr"; fail "no test data set written"; }
    ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/test-data-run.js" --model "$dir/hooked.onnx" \
        --set "$dir/test_data_set_0" --tol "$tol" ||
        fail "onnxruntime on the model's test data does not give the app's outputs"
    # ... and those outputs are the bytes of the app's own --out file (outputs in production order)
    "$python" - "$dir/test_data_set_0" "$dir/hooked.bin" <<'PY' || fail "the test data's outputs are not the app's --out bytes"
import glob, os, sys
import onnx
from onnx import numpy_helper
d, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(d, "output_*.pb")), key=lambda f: int(f.rsplit("_", 1)[1][:-3]))
got = b"".join(numpy_helper.to_array(onnx.load_tensor(f)).tobytes() for f in files)
sys.exit(0 if files and got == open(out, "rb").read() else 1)
PY
fi

rm -rf "$dir"
say "PASS"
