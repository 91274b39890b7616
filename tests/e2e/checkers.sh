# SPDX-License-Identifier: MIT
# Sourced by run-e2e.sh and darknet/run-darknet.sh: the independent checkers must be present.
# Uses the caller's say(), $python, $node, $ort (1: onnxruntime is used) and $ort_dir.
# A missing tool fails (CI must have it), or skips (exit 77) with ONNXHOOK_E2E_ALLOW_SKIP=1.
missing() {
    if [ "${ONNXHOOK_E2E_ALLOW_SKIP:-0}" = 1 ]; then
        say "SKIP: $1"
        exit 77
    fi
    say "FAIL: $1" >&2
    say "(set ONNXHOOK_E2E_ALLOW_SKIP=1 to skip instead of failing)" >&2
    exit 1
}

require_checkers() {
    [ -x "$python" ] || missing "$python not found: apt-get install python3 python3-onnx"
    "$python" -c 'import onnx' 2>/dev/null ||
        missing "$python cannot import onnx: apt-get install python3-onnx"
    command -v "$node" >/dev/null || missing "node not found: apt-get install nodejs npm"
    if [ "$ort" = 1 ]; then
        ONNXHOOK_ORT_DIR=$ort_dir "$node" -e \
            'require(require("path").resolve(process.env.ONNXHOOK_ORT_DIR, "node_modules", "onnxruntime-node"))' \
            2>/dev/null ||
            missing "onnxruntime-node cannot be loaded from $ort_dir/node_modules: run (cd $ort_dir && npm ci --ignore-scripts)"
    fi
}
