#!/bin/sh
# SPDX-License-Identifier: MIT
# The torch host is a module of its own (preload/module.h): libonnxhook.so does not need libc10
# or libstdc++, a preloaded C program maps neither (nor the module), and a Python program that
# imports torch gets the module from beside the library it preloaded: a staged copy of the two
# moved elsewhere, and a symbolic link to that copy, trace; a library without its module says so
# in one warning line and the program runs untouched.
# usage: module.sh PRELOAD MODULE PYTHON
set -u
preload=$1 module=$2 python=$3
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-torch-module.XXXXXX") || exit 1
fail() { echo "module: FAIL: $*" >&2; echo "module: work dir kept: $dir" >&2; exit 1; }
ok() { echo "module: ok: $*"; }
asan=$(ldd "$preload" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
hooked() { # hooked LIB COMMAND...: COMMAND with LIB preloaded (after libasan for an ASan build)
	lib=$1
	shift
	env ${asan:+ASAN_OPTIONS=detect_leaks=0} LD_PRELOAD="${asan:+$asan:}$lib" "$@"
}

# 1. What the preload needs, and what a plain C program (cat, reading its own maps) maps. UBSan's
#    runtime (an ASan+UBSan build's dependency) brings libstdc++ of its own: allowed then.
needed=$(readelf -d "$preload" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || fail "readelf -d $preload lists no NEEDED entry"
echo "$needed" | grep -E '^lib(c10|stdc\+\+|torch|glog|gflags|gomp)' && fail "libonnxhook.so needs the above"
ok "libonnxhook.so needs $(echo "$needed" | tr '\n' ' ')"
forbidden='c10|onnxhook-torch|stdc\+\+'
echo "$needed" | grep -q '^libubsan\.so' && forbidden='c10|onnxhook-torch'
ldd "$preload" | grep -E "lib($forbidden)[.-]" && fail "libonnxhook.so loads the above"
hooked "$preload" cat /proc/self/maps >"$dir/maps" || fail "cat /proc/self/maps failed preloaded"
grep -q '/libonnxhook\.so$' "$dir/maps" || fail "libonnxhook.so is not in cat's maps: not preloaded?"
grep -E "/lib($forbidden)[.-]" "$dir/maps" && fail "a preloaded cat maps the above"
ok "a preloaded cat maps $(awk '$6 ~ /\.so/ { print $6 }' "$dir/maps" | sort -u | wc -l) libraries, none of lib($forbidden)"

# 2. A staged tree moved elsewhere (lib/ and lib/onnxhook/), and a link to its library. (The
# input from data: a tensor from arange would be a constant, and relu of it no layer.)
prog='import torch
with torch.no_grad():
    print(float(torch.nn.functional.relu(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])).sum()))'
mkdir -p "$dir/moved/lib/onnxhook" "$dir/link"
cp "$preload" "$dir/moved/lib/libonnxhook.so" && cp "$module" "$dir/moved/lib/onnxhook/" || fail "copy"
ln -s "$dir/moved/lib/libonnxhook.so" "$dir/link/libonnxhook.so"
for where in moved/lib link; do
	out=$dir/$(echo "$where" | tr / -)
	hooked "$dir/$where/libonnxhook.so" env ONNXHOOK_OUTPUT="$out.onnx" "$python" -c "$prog" \
		>"$out.stdout" 2>"$out.stderr" || { cat "$out.stderr" >&2; fail "$where: the program failed"; }
	[ "$(cat "$out.stdout")" = 3.0 ] || fail "$where: the program printed $(cat "$out.stdout")"
	grep -q 'warning\|error' "$out.stderr" && { cat "$out.stderr" >&2; fail "$where: a warning"; }
	grep -q '^onnxhook: wrote .*: 1 nodes\{0,1\} (Relu 1)' "$out.stderr" ||
		{ cat "$out.stderr" >&2; fail "$where: no model of one Relu"; }
	ok "$where/libonnxhook.so finds its module: $(head -n 1 "$out.stderr")"
done

# 3. The library alone: one warning line, the program untouched, nothing written.
mkdir "$dir/alone"
cp "$preload" "$dir/alone/libonnxhook.so" || fail "copy"
hooked "$dir/alone/libonnxhook.so" env ONNXHOOK_OUTPUT="$dir/alone.onnx" "$python" -c "$prog" \
	>"$dir/alone.stdout" 2>"$dir/alone.stderr" || { cat "$dir/alone.stderr" >&2; fail "alone: the program failed"; }
[ "$(cat "$dir/alone.stdout")" = 3.0 ] || fail "alone: the program printed $(cat "$dir/alone.stdout")"
want="^onnxhook: warning: libtorch_cpu\.so is loaded, but the torch host's module is not: $dir/alone/onnxhook/libonnxhook-torch\.so: cannot open shared object file: No such file or directory; the torch host is off\$"
if [ "$(wc -l <"$dir/alone.stderr")" != 1 ] || ! grep -q "$want" "$dir/alone.stderr"; then
	cat "$dir/alone.stderr" >&2
	fail "alone: not the one warning line expected"
fi
[ -e "$dir/alone.onnx" ] && fail "alone: a model was written"
ok "without its module: $(cat "$dir/alone.stderr")"
rm -rf "$dir"
echo "module: OK"
