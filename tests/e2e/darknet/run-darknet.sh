#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end check of one darknet cfg: trace darknet-run with the preload, prove the model on every head and every layer.
#
# usage: run-darknet.sh --preload LIB --runner DARKNET_RUN --weights-tool DARKNET_WEIGHTS --cfg CFG
#                       [--name NAME] [--tol T] [--layer-tol T] [--seed S] [--expect-ops "Conv=3,..."]
#                       [--weights-args "--zero-var-channels 4"] [--net-set "width=128,height=128"]
#                       [--zero-state] [--no-ort] [--node NODE] [--python PY] [-- DARKNET_RUN ARGS...]
#                       (darknet-run's default arguments: --runs 2)
#
# --net-set runs a copy of the cfg with those [net] keys replaced (e.g. a smaller input size).
# --zero-state: graph inputs after input_0 are recurrent state darknet starts at zero (rnn, gru,
# lstm): onnxruntime gets zeros there, darknet-run only input_0.
# 1. darknet-weights: a deterministic .weights file with calibrated batch-norm statistics;
# 2. darknet-run on its default input, untraced and traced (model.onnx): same status, stdout,
#    stderr less `onnxhook: ` lines, byte-identical --out heads and --dump-layers files;
# 3. the same traced with ONNXHOOK_DEBUG_OUTPUTS=1 (debug.onnx: every layer's value is an output);
# 4. check-onnx.py: model.onnx strictly (+ --expect-ops), debug.onnx with --allow-debug-outputs;
# 5. a seeded random input sized from the model (ort-compare.js --gen-input), darknet-run on it
#    untraced (reference heads + every layer's l.output) and traced: identical behaviour again;
# 6. onnxruntime on that input: ort-compare.js on model.onnx (heads, tol), compare-layers.js on
#    debug.onnx (heads and every layer_<i> against the dumps, layer tol). Both models were traced on
#    the default input, so the graph cannot depend on the traced data.
#
# Exit 0 pass, 1 fail, 77 skip (only when a tool is missing AND ONNXHOOK_E2E_ALLOW_SKIP=1).
# The work dir (under $MESON_BUILD_ROOT or $TMPDIR) is removed on success and kept on failure
# (always kept with ONNXHOOK_E2E_KEEP=1). ONNXHOOK_ORT_DIR: where node_modules/onnxruntime-node is.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e=$(cd "$here/.." && pwd)
name='' preload='' runner='' wtool='' cfg='' tol=1e-4 layer_tol='' seed=1 expect_ops='' weights_args=''
net_set='' zero_state=0
ort=1 node=node python=/usr/bin/python3
app_args=(--runs 2)

say() { printf 'run-darknet[%s]: %s\n' "${name:-?}" "$*"; }
fail() {
    say "FAIL: $*" >&2
    [ -n "${dir:-}" ] && [ -d "$dir" ] && say "work dir kept: $dir" >&2
    exit 1
}
usage() { sed -n '5,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --preload) preload=${2:?}; shift 2 ;;
    --runner) runner=${2:?}; shift 2 ;;
    --weights-tool) wtool=${2:?}; shift 2 ;;
    --cfg) cfg=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --tol) tol=${2:?}; shift 2 ;;
    --layer-tol) layer_tol=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --expect-ops) expect_ops=${2?}; shift 2 ;;
    --weights-args) weights_args=${2?}; shift 2 ;;
    --net-set) net_set=${2:?}; shift 2 ;;
    --zero-state) zero_state=1; shift ;;
    --no-ort) ort=0; shift ;;
    --node) node=${2:?}; shift 2 ;;
    --python) python=${2:?}; shift 2 ;;
    --) shift; app_args=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "run-darknet: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ -z "$preload" ] || [ -z "$runner" ] || [ -z "$wtool" ] || [ -z "$cfg" ]; then usage; fi
[ -n "$name" ] || name=$(basename "$cfg" .cfg)
[ -n "$layer_tol" ] || layer_tol=$tol

# Nothing of the caller's preloading or tracing settings may leak into the runs; app commands get
# theirs explicitly (ONNXHOOK_LOG may stay, for debugging).
unset LD_PRELOAD
for v in $(compgen -e ONNXHOOK_); do
    case $v in
    ONNXHOOK_ORT_DIR|ONNXHOOK_E2E_*|ONNXHOOK_LOG) ;;
    *) unset "$v" ;;
    esac
done

# ---- preconditions: missing tools fail by default (CI must have them) ----
# shellcheck source=checkers.sh
. "$e2e/checkers.sh"
ort_dir=$(realpath -m "${ONNXHOOK_ORT_DIR:-$e2e/../ort}")
[ -f "$preload" ] || fail "preload $preload does not exist"
[ -x "$runner" ] || fail "darknet-run $runner is not an executable file"
[ -x "$wtool" ] || fail "darknet-weights $wtool is not an executable file"
[ -f "$cfg" ] || fail "cfg $cfg does not exist"
require_checkers

abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
preload=$(abs "$preload")
runner=$(abs "$runner")
wtool=$(abs "$wtool")
cfg=$(abs "$cfg")

base=${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}
mkdir -p "$base" || fail "cannot create $base"
dir=$(mktemp -d "$base/onnxhook-darknet-$name.XXXXXX") || fail "mktemp in $base failed"
dir=$(cd "$dir" && pwd)

# ---- --net-set: a copy of the cfg with [net] keys replaced (or added) ----
if [ -n "$net_set" ]; then
    awk -v set="$net_set" '
        BEGIN { n = split(set, kv, ","); for (i = 1; i <= n; i++) { split(kv[i], p, "="); val[p[1]] = p[2]; order[i] = p[1] } }
        function flush() { for (i = 1; i <= n; i++) if (!(order[i] in done)) print order[i] "=" val[order[i]]; flushed = 1 }
        /^\[/ { if (innet && !flushed) flush(); innet = ($0 ~ /^\[(net|network)\]/) }
        innet && /^[^#;=]+=/ { k = $0; sub(/[ \t]*=.*/, "", k); if (k in val) { print k "=" val[k]; done[k] = 1; next } }
        { print }
        END { if (innet && !flushed) flush() }
    ' "$cfg" >"$dir/net.cfg" || fail "cannot write $dir/net.cfg"
    cfg=$dir/net.cfg
fi

# An ASan-built preload (or app) needs libasan first in LD_PRELOAD; the apps may leak at exit
# (darknet's free_network does).
asan=
for f in "$preload" "$runner" "$wtool"; do
    a=$(ldd "$f" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
    [ -n "$a" ] && { asan=$a; break; }
done
hook_preload=$preload
[ -n "$asan" ] && hook_preload=$asan:$preload
asan_opts=${ASAN_OPTIONS:-}
[ -n "$asan" ] && asan_opts=${asan_opts:+$asan_opts:}detect_leaks=0

# run_app OUT_PREFIX MODE(plain|trace|debug) ONNX_PATH ARGS...: status in OUT_PREFIX.status, streams in .stdout/.stderr
run_app() {
    local out=$1 mode=$2 onnx=$3
    shift 3
    local envs=()
    [ -n "$asan" ] && envs+=("ASAN_OPTIONS=$asan_opts")
    [ "$mode" != plain ] && envs+=("LD_PRELOAD=$hook_preload" "ONNXHOOK_OUTPUT=$onnx")
    [ "$mode" = debug ] && envs+=("ONNXHOOK_DEBUG_OUTPUTS=1")
    (cd "$dir" && env "${envs[@]}" "$runner" "$cfg" --weights "$dir/net.weights" "$@" \
        >"$out.stdout" 2>"$out.stderr" </dev/null)
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
    [ "$(cat "$a.status")" = 0 ] || { show "$a.stderr"; fail "$what: darknet-run itself exits $(cat "$a.status")"; }
    cmp -s "$a.stdout" "$b.stdout" ||
        { diff "$a.stdout" "$b.stdout" | head -n 20 >&2; fail "$what: stdout differs with the hook"; }
    grep -v '^onnxhook: ' "$a.stderr" >"$a.stderr.app"
    grep -v '^onnxhook: ' "$b.stderr" >"$b.stderr.app"
    cmp -s "$a.stderr.app" "$b.stderr.app" ||
        { diff "$a.stderr.app" "$b.stderr.app" | head -n 20 >&2; fail "$what: stderr (less onnxhook lines) differs with the hook"; }
}

same_files() { # same_files A B WHAT: byte-identical outputs
    cmp "$1" "$2" >&2 || fail "$3 differs with the hook"
}

no_leftovers() {
    local leftover
    leftover=$(find "$dir" -maxdepth 1 -name '.onnxhook.*.tmp*' | head -n 5)
    [ -z "$leftover" ] || fail "temporary files left behind: $leftover"
}

say "cfg $cfg${net_set:+ ($net_set)}; darknet-run ${app_args[*]:-}; preload $hook_preload; work dir $dir"

# ---- 1. weights ----
# shellcheck disable=SC2086 # --weights-args is a word list
env ${asan:+ASAN_OPTIONS=$asan_opts} "$wtool" "$cfg" "$dir/net.weights" --seed "$seed" $weights_args \
    >"$dir/weights.stdout" 2>"$dir/weights.stderr" ||
    { show "$dir/weights.stderr"; fail "darknet-weights failed"; }
grep -v '^Saving' "$dir/weights.stdout" | sed "s/^/run-darknet[$name]: /"

# ---- 2. default input: untraced and traced ----
run_app "$dir/plain" plain "" --out "$dir/plain.bin" --dump-layers "$dir/plain-layers" "${app_args[@]}"
run_app "$dir/trace" trace "$dir/model.onnx" --out "$dir/trace.bin" --dump-layers "$dir/trace-layers" "${app_args[@]}"
same_run "$dir/plain" "$dir/trace" "default input"
same_files "$dir/plain.bin" "$dir/trace.bin" "the heads (--out)"
diff -r "$dir/plain-layers" "$dir/trace-layers" >&2 || fail "the layer outputs (--dump-layers) differ with the hook"
sed "s/^/run-darknet[$name]: app: /" "$dir/plain.stdout"
grep '^onnxhook: ' "$dir/trace.stderr" | head -n 20 | sed "s/^/run-darknet[$name]: trace: /"
[ -s "$dir/model.onnx" ] || { show "$dir/trace.stderr"; fail "the traced run wrote no $dir/model.onnx"; }
no_leftovers

# ---- 3. default input, traced with every layer's value as an extra output ----
run_app "$dir/debug" debug "$dir/debug.onnx" --out "$dir/debug.bin" "${app_args[@]}"
same_run "$dir/plain" "$dir/debug" "default input, ONNXHOOK_DEBUG_OUTPUTS=1"
same_files "$dir/plain.bin" "$dir/debug.bin" "the heads (--out) with ONNXHOOK_DEBUG_OUTPUTS=1"
[ -s "$dir/debug.onnx" ] || { show "$dir/debug.stderr"; fail "the debug-traced run wrote no $dir/debug.onnx"; }
no_leftovers

# ---- 4. the onnx checker and our conventions ----
check=("$python" "$e2e/check-onnx.py" "$dir/model.onnx")
[ -n "$expect_ops" ] && check+=(--expect-ops "$expect_ops")
"${check[@]}" || fail "check-onnx rejected model.onnx"
"$python" "$e2e/check-onnx.py" "$dir/debug.onnx" --allow-debug-outputs >"$dir/check-debug.stdout" ||
    { cat "$dir/check-debug.stdout" >&2; fail "check-onnx rejected debug.onnx"; }
grep -E 'check-onnx: .*(nodes|debug outputs)' "$dir/check-debug.stdout" | sed "s/^/run-darknet[$name]: debug: /"

# ---- 5. a random input sized from the model; the app on it, untraced and traced ----
ONNXHOOK_ORT_DIR=$ort_dir "$node" "$e2e/ort-compare.js" --model "$dir/model.onnx" --gen-input "$dir/in.bin" --seed "$seed" ||
    fail "could not generate an input from the model's inputs"
# darknet-run's input: its summary line says how many values per batch item
values=$(sed -n 's/^darknet-run: .* (\([0-9]*\) values), batch \([0-9]*\),.*/\1 \2/p' "$dir/plain.stdout")
read -r per_item batch <<<"$values"
[ -n "${batch:-}" ] || fail "cannot read the input size from darknet-run's summary"
app_bytes=$((per_item * batch * 4))
ort_in=$dir/in.bin
if [ "$(stat -c %s "$dir/in.bin")" != "$app_bytes" ]; then
    [ "$zero_state" = 1 ] ||
        fail "the model's inputs take $(stat -c %s "$dir/in.bin") bytes, darknet-run's input $app_bytes (extra graph inputs: state? see --zero-state)"
    ort_in=$dir/ort-in.bin
    head -c "$app_bytes" "$dir/in.bin" >"$dir/app-in.bin"
    cp "$dir/app-in.bin" "$ort_in"
    truncate -s "$(stat -c %s "$dir/in.bin")" "$ort_in" # the state inputs: zeros
    mv "$dir/app-in.bin" "$dir/in.bin"
    say "graph inputs after input_0 fed with zeros (--zero-state)"
fi
run_app "$dir/ref" plain "" --in "$dir/in.bin" --out "$dir/ref.bin" --dump-layers "$dir/layers" "${app_args[@]}"
run_app "$dir/hooked" trace "$dir/hooked.onnx" --in "$dir/in.bin" --out "$dir/hooked.bin" "${app_args[@]}"
same_run "$dir/ref" "$dir/hooked" "random input"
[ -s "$dir/ref.bin" ] || fail "darknet-run wrote no output to --out"
same_files "$dir/ref.bin" "$dir/hooked.bin" "the heads (--out) on the random input"
[ -s "$dir/hooked.onnx" ] || fail "the traced run on the random input wrote no model"
no_leftovers
say "behaviour identical with and without the hook ($(stat -c %s "$dir/ref.bin") head bytes, $(find "$dir/layers" -name 'layer_*.bin' | wc -l) layer dumps)"

# ---- 6. onnxruntime on the random input: the heads, then every layer ----
if [ "$ort" = 1 ]; then
    ONNXHOOK_ORT_DIR=$ort_dir "$node" "$e2e/ort-compare.js" --model "$dir/model.onnx" \
        --in "$ort_in" --expect "$dir/ref.bin" --tol "$tol" ||
        fail "onnxruntime's heads on the random input do not match darknet's"
    ONNXHOOK_ORT_DIR=$ort_dir "$node" "$here/compare-layers.js" --model "$dir/debug.onnx" \
        --in "$ort_in" --layers "$dir/layers" --expect "$dir/ref.bin" --tol "$layer_tol" --head-tol "$tol" ||
        fail "onnxruntime's layer outputs on the random input do not match darknet's l.output"
fi

if [ "${ONNXHOOK_E2E_KEEP:-0}" = 1 ]; then
    say "work dir kept: $dir"
else
    rm -rf "$dir"
fi
say "PASS"
