#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: a signal handler releasing memory inside what the recorder follows, interrupting
# the recording thread anywhere (also while it takes or lets go of the recorder's lock): the app
# neither hangs (its watchdog exits 4) nor crashes, and the model is written.
# usage: sigrelease.sh PRELOAD SIGRELEASE_APP
set -u
preload=$(realpath "$1") app=$(realpath "$2")
. "$(dirname "$0")/preload-env.sh" "$preload"
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-sigrelease.XXXXXX")
# A pass that never ends, stopped at 20000 nodes: the loop then still takes the lock twice a call.
(cd "$dir" && LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT=m.onnx ONNXHOOK_MAX_NODES=20000 \
	timeout 60 "$app" 2 >stdout 2>stderr; echo $? >status)
if [ "$(cat "$dir/status")" = 0 ] && [ -s "$dir/m.onnx" ] && grep -q '^sigrelease: [0-9]* rounds$' "$dir/stdout"; then
	echo "sigrelease: ok: $(cat "$dir/stdout")"
	rm -rf "$dir"
	exit 0
fi
echo "sigrelease: FAIL: exit status $(cat "$dir/status"); work dir kept: $dir" >&2
tail -n 5 "$dir/stderr" >&2
exit 1
