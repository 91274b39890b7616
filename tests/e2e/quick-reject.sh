#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: the preload in programs that carry no host code (python3, /bin/true) must not decode
# them: the locator's quick reject (.eh_frame_hdr's FDEs) answers for every host, said by the
# ONNXHOOK_LOG=debug line "locate: HOST: quick reject in PROGRAM (N candidates)"; the program's
# output is unchanged. The libraries loaded with it are rejected from their unwind tables, without
# decoding their files (no "locate:" line names libc). The controls: resnet18-static (tinynn linked in) is swept
# and hooked; resnet18-vendor, whose library carries tinynn unexported, gets that library swept
# and hooked. With darknet: darknet-run loads some 260 objects (OpenCV, ffmpeg; libx265 and
# libdav1d mostly hand-written assembly, with FDEs for a third of their code or less): every one
# rejected from its unwind tables, none swept (it was 0.8 s and 75 MB at start-up).
# usage: quick-reject.sh PRELOAD RESNET18-STATIC RESNET18-VENDOR [DARKNET-RUN]
set -u
preload=$(realpath "$1") static=$(realpath "$2") vendor=$(realpath "$3") darknet_run=${4:+$(realpath "$4")}
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/e2e/preload-env.sh" "$preload" # ASAN_OPTIONS for a sanitized build
for v in $(compgen -e | grep '^ONNXHOOK_'); do unset "$v"; done
unset LD_PRELOAD
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-quick-reject.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export XDG_CACHE_HOME=$dir/cache HOME=$dir # never the user's
failures=0
fail() { echo "quick-reject: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "quick-reject: ok: $*"; }

# run NAME PROGRAM ARGS...: preloaded, in $dir, with the debug log.
run() {
	local name=$1
	shift
	(cd "$dir" && env LD_PRELOAD="$hook_preload" ONNXHOOK_LOG=debug "$@" >"$dir/$name.out" 2>"$dir/$name.err" </dev/null)
	echo $? >"$dir/$name.status"
}

# rejected NAME BASENAME: every host looked for is rejected quickly (tinynn at least: its
# reference is in this build tree), none swept.
rejected() {
	local name=$1 base=$2 err=$dir/$1.err
	if [ "$(cat "$dir/$name.status")" != 0 ]; then
		fail "$name: status $(cat "$dir/$name.status"): $(head -c 2000 "$err")"
	elif ! grep -q "^onnxhook: locate: tinynn: quick reject in $base (" "$err"; then
		fail "$name: no quick reject for tinynn: $(head -c 2000 "$err")"
	elif grep -q "whole-code sweep of $base " "$err"; then
		fail "$name: swept: $(grep 'whole-code sweep' "$err")"
	elif grep -q "^onnxhook: locate: .* libc\.so" "$err"; then
		fail "$name: libc's file read, not rejected from its unwind tables: $(grep 'libc\.so' "$err")"
	else
		ok "$name: $(grep -c '^onnxhook: locate: .*: quick reject in ' "$err") host(s) rejected quickly"
	fi
}

py=$(readlink -f /usr/bin/python3)
run python3 /usr/bin/python3 -c 'print(6 * 7)'
rejected python3 "$(basename "$py")"
[ "$(cat "$dir/python3.out")" = 42 ] || fail "python3: printed '$(cat "$dir/python3.out")', not 42"

run true /bin/true
rejected true "$(basename "$(readlink -f /bin/true)")"

if [ -n "$darknet_run" ]; then
	run many "$darknet_run" # its usage (status 2): the locator has run before main
	err=$dir/many.err
	line=$(grep '^onnxhook: locate: [0-9]* of [0-9]* objects rejected from their unwind tables' "$err")
	set -- $line
	if [ "$(cat "$dir/many.status")" != 2 ] || ! grep -q '^usage: darknet-run' "$err"; then
		fail "darknet-run: status $(cat "$dir/many.status"), not its usage: $(head -c 2000 "$err")"
	elif [ -z "$line" ] || [ "$3" != "$5" ] || [ "$3" -lt 100 ]; then
		fail "darknet-run: not every object of many rejected from its unwind tables: ${line:-no such line}"
	elif grep -q 'whole-code sweep' "$err"; then
		fail "darknet-run: swept: $(grep 'whole-code sweep' "$err")"
	else
		ok "darknet-run: $3 of $5 objects rejected from their unwind tables"
	fi
fi

# The control: a program with tinynn's code is swept, and its functions hooked.
run static "$static"
err=$dir/static.err
if [ "$(cat "$dir/static.status")" != 0 ]; then
	fail "resnet18-static: status $(cat "$dir/static.status"): $(tail -c 2000 "$err")"
elif ! grep -q "^onnxhook: locate: tinynn: whole-code sweep of $(basename "$static") (" "$err" ||
	! grep -q "^onnxhook: tinynn: all [0-9]* functions located in .* and hooked" "$err"; then
	fail "resnet18-static: not swept and hooked: $(grep 'locate\|located' "$err")"
else
	ok "resnet18-static: swept, tinynn hooked"
fi

# The vendor's library: a candidate from its unwind tables, its file swept, tinynn hooked there.
run vendor "$vendor" --size 32
err=$dir/vendor.err
if [ "$(cat "$dir/vendor.status")" != 0 ]; then
	fail "resnet18-vendor: status $(cat "$dir/vendor.status"): $(tail -c 2000 "$err")"
elif ! grep -q "^onnxhook: locate: tinynn: whole-code sweep of libresnet18-vendor\.so (" "$err" ||
	! grep -q "^onnxhook: tinynn: all [0-9]* functions located in .*/libresnet18-vendor\.so and hooked" "$err"; then
	fail "resnet18-vendor: its library not swept and hooked: $(grep 'locate\|located' "$err")"
elif grep -q "^onnxhook: locate: .* libc\.so" "$err"; then
	fail "resnet18-vendor: libc's file read, not rejected from its unwind tables: $(grep 'libc\.so' "$err")"
elif ! model=$(ls "$dir"/*vendor*.onnx 2>/dev/null | head -n 1) || [ -z "$model" ]; then
	fail "resnet18-vendor: no model written: $(tail -c 2000 "$err")"
elif ! /usr/bin/python3 - "$model" <<'PY'; then
import sys, onnx
m = onnx.load(sys.argv[1])
meta = {p.key: p.value for p in m.metadata_props}
code, lib = meta.get("onnxhook.host_code", ""), meta.get("onnxhook.host_library", "")
print("quick-reject: onnxhook.host_code =", code, "; onnxhook.host_library =", lib)
sys.exit(0 if "10 of 10 functions" in code and "libresnet18-vendor.so" in code
         and "libresnet18-vendor.so" in lib else 1)
PY
	fail "resnet18-vendor: the model's metadata does not name the vendor's library"
else
	ok "resnet18-vendor: its library swept, tinynn hooked there, the model names it"
fi

[ "$failures" = 0 ] || { echo "quick-reject: $failures failure(s)" >&2; exit 1; }
echo "quick-reject: all ok"
