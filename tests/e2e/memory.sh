#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: recording stops after the captured pass, so a long run traced holds one pass and
# needs no more memory than a short one (peak RSS within 5%).
# usage: memory.sh PRELOAD RESNET18
set -u
preload=$(realpath "$1") app=$(realpath "$2")
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-memory.XXXXXX")
unset LD_PRELOAD
if ! /usr/bin/python3 - "$preload" "$app" "$dir" <<'PY'
import onnx, os, resource, subprocess, sys
preload, app, d = sys.argv[1:]

def peak_kib(runs):
    # a fresh interpreter per measurement: RUSAGE_CHILDREN is a maximum over all children
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = dict(os.environ, LD_PRELOAD=preload, ONNXHOOK_OUTPUT=f"{d}/runs{runs}.onnx", ONNXHOOK_LOG="quiet")
    out = subprocess.run([sys.executable, "-c", code, app, "--size", "64", "--runs", str(runs)],
                         env=env, check=True, capture_output=True, text=True)
    return int(out.stdout)

short, long = peak_kib(2), peak_kib(200)
nodes = {r: len(onnx.load(f"{d}/runs{r}.onnx").graph.node) for r in (2, 200)}
print(f"memory: peak RSS traced, --runs 2: {short} KiB, --runs 200: {long} KiB ({long / short:.3f}x); "
      f"nodes {nodes[2]} and {nodes[200]}")
assert nodes[200] == nodes[2] == 71, "a long run must hold one pass"
assert long <= short * 1.05, "peak RSS grew with the number of passes"
PY
then
	echo "memory: FAIL; work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
