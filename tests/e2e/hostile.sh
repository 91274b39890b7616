#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: hostile conditions get one clear line and the app's exit status unchanged —
# memory changed behind the hook's back, a full disk, a read-only file system, a symlink or a
# file at the output path.
# usage: hostile.sh PRELOAD HOSTILE_APP
set -u
preload=$(realpath "$1") app=$(realpath "$2")
. "$(dirname "$0")/preload-env.sh" "$preload"
unset LD_PRELOAD ONNXHOOK_OUTPUT ONNXHOOK_LOG E2E_TAMPER
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-hostile.XXXXXX")
failures=0
fail() { echo "hostile: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "hostile: ok: $*"; }
(cd "$dir" && "$app" >ref.stdout 2>&1; echo $? >ref.status)

# 1. Unhooked code changed a layer's output: one warning naming the value, noted in the model.
(cd "$dir" && E2E_TAMPER=1 LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT=t.onnx "$app" >/dev/null 2>tamper.stderr)
if grep -q '^onnxhook: warning: the memory of main_0/Conv_0 (1x4x6x6, written by tnn_conv2d) changed before tnn_relu read it' "$dir/tamper.stderr" &&
	[ "$(grep -c warning "$dir/tamper.stderr")" = 1 ] &&
	/usr/bin/python3 -c 'import onnx,sys; m=onnx.load(sys.argv[1]); d={p.key: p.value for p in m.metadata_props}; sys.exit(d.get("onnxhook.warnings") != "main_0/Conv_0 changed before tnn_relu")' "$dir/t.onnx"; then
	ok "memory changed behind the hook: warned, noted in metadata_props"
else
	fail "tamper: $(cat "$dir/tamper.stderr")"
fi

# Places that cannot hold the model, in a private mount namespace (root; CI runs as root).
# run_in_ns NAME SETUP: the app with ONNXHOOK_OUTPUT=$dir/NAME/mnt/m.onnx after SETUP mounts it.
run_in_ns() {
	local name=$1 setup=$2
	mkdir -p "$dir/$name/mnt" "$dir/$name/tmp"
	unshare --mount sh -c "$setup && cd '$dir/$name' && LD_PRELOAD='$hook_preload' ONNXHOOK_OUTPUT='$dir/$name/mnt/m.onnx' \
		TMPDIR='$dir/$name/tmp' '$app' >stdout 2>stderr; echo \$? >status; ls -A mnt | grep -v '^fill$' >mnt.ls; true" ||
		fail "$name: cannot make a private mount namespace (unshare --mount needs root)"
}
check_fallback() { # NAME REASON: one error line with the reason, the model in $TMPDIR, status unchanged
	local name=$1 reason=$2 w=$dir/$1
	local alt
	alt=$(ls "$w"/tmp/*.onnx 2>/dev/null)
	if grep -q "^onnxhook: error: cannot write $w/mnt/m.onnx: $reason" "$w/stderr" && [ -n "$alt" ] &&
		grep -q "^onnxhook: wrote $alt:" "$w/stderr" && cmp -s "$w/status" "$dir/ref.status" &&
		cmp -s "$w/stdout" "$dir/ref.stdout" && [ ! -s "$w/mnt.ls" ]; then
		ok "$name: '$reason', model in \$TMPDIR, nothing left behind"
	else
		fail "$name: status $(cat "$w/status"); $(cat "$w/stderr"); left: $(cat "$w/mnt.ls")"
	fi
}
run_in_ns full "mount -t tmpfs -o size=64k tmpfs '$dir/full/mnt' && (dd if=/dev/zero of='$dir/full/mnt/fill' bs=4k 2>/dev/null; true)"
check_fallback full "No space left on device"
run_in_ns readonly "mount -t tmpfs -o ro tmpfs '$dir/readonly/mnt'"
check_fallback readonly "Read-only file system"

# An explicit path holding a symlink or a file is replaced atomically, never written through.
mkdir -p "$dir/links"
echo precious >"$dir/links/victim"
ln -s "$dir/links/victim" "$dir/links/m.onnx"
echo old >"$dir/links/f.onnx"
(cd "$dir/links" && LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT=m.onnx "$app" >/dev/null 2>&1 &&
	LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT=f.onnx "$app" >/dev/null 2>&1)
if [ "$(cat "$dir/links/victim")" = precious ] && [ ! -L "$dir/links/m.onnx" ] && [ -s "$dir/links/m.onnx" ] &&
	[ "$(stat -c %s "$dir/links/f.onnx")" -gt 4 ]; then
	ok "symlink and file at the output path replaced, the link's target untouched"
else
	fail "symlink/file at the output path: $(ls -l "$dir/links")"
fi

if [ "$failures" -gt 0 ]; then
	echo "hostile: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
