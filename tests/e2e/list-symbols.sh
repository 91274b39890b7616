#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: onnxhook --list-symbols PROGRAM, the locator from the command: the hooked functions
# of a host linked into a stripped program (resnet18-static; Debian's /usr/bin/darknet with the
# darknet host), found where and which not; --host-code and ONNXHOOK_HOST_CODE; a host linked
# dynamically; a program of other code; files it cannot read, in one line and no crash; a
# program whose library carries tinynn's code unexported (resnet18-vendor): found in that library.
# usage: list-symbols.sh ONNXHOOK PRELOAD RESNET18-STATIC RESNET18 LIBTINYNN DARKNET(0|1) RESNET18-VENDOR
set -u
cli=$(realpath "$1") preload=$(realpath "$2") static=$(realpath "$3") dynamic=$(realpath "$4")
libtinynn=$(realpath "$5") darknet=$6 vendor=$(realpath "$7")
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/e2e/preload-env.sh" "$preload" # ASAN_OPTIONS for a sanitized build
for v in $(compgen -e | grep '^ONNXHOOK_'); do unset "$v"; done
unset LD_PRELOAD
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-list-symbols.XXXXXX")
export XDG_CACHE_HOME=$dir/cache # never the user's
failures=0
fail() { echo "list-symbols: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "list-symbols: ok: $*"; }

# run NAME ARGS...: onnxhook ARGS in $dir/NAME: stdout, stderr, status.
run() {
	local name=$1
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && "$cli" "$@" >stdout 2>stderr)
	echo $? >"$dir/$name/status"
}
status() { cat "$dir/$1/status"; }
# found NAME HOST N: N functions of HOST found, each exactly once (a line per hooked symbol).
found() {
	local name=$1 host=$2 n=$3 out=$dir/$1/stdout
	if [ "$(status "$name")" != 0 ]; then
		fail "$name: status $(status "$name"): $(cat "$dir/$name/stderr")"
	elif ! grep -q "^$host: $n of $n hooked functions found in " "$out"; then
		fail "$name: no '$host: $n of $n' line: $(cat "$out")"
	elif [ "$(sed -n "/^$host: /,/^[^ ]/p" "$out" | grep -c ' found at 0x')" != "$n" ]; then
		fail "$name: not $n 'found at' lines for $host: $(cat "$out")"
	elif [ "$(sed -n "/^$host: /,/^[^ ]/p" "$out" | grep ' found at 0x' | awk '{ print $4 }' | sort -u | wc -l)" != "$n" ]; then
		fail "$name: two functions at one place: $(cat "$out")"
	else
		ok "$name: $host: $n of $n found"
	fi
}
# refused NAME STATUS REGEX: one stderr line matching REGEX, nothing on stdout, STATUS.
refused() {
	local name=$1
	if [ "$(status "$name")" != "$2" ]; then
		fail "$name: status $(status "$name"), want $2: $(cat "$dir/$name/stderr")"
	elif [ "$(wc -l <"$dir/$name/stderr")" != 1 ] || ! grep -Eq -- "$3" "$dir/$name/stderr"; then
		fail "$name: stderr is not one line matching '$3': $(cat "$dir/$name/stderr")"
	elif [ -s "$dir/$name/stdout" ]; then
		fail "$name: wrote to stdout: $(cat "$dir/$name/stdout")"
	else
		ok "$name: status $2, $(cat "$dir/$name/stderr")"
	fi
}

# The static demo: tinynn's ten functions, with the build's libtinynn.so as the reference.
run static --list-symbols "$static"
found static tinynn 10
grep -q "reference $libtinynn" "$dir/static/stdout" || fail "static: the reference is not $libtinynn"
# Cached the second time (by build-ids), the same answer.
[ "$(ls "$XDG_CACHE_HOME/onnxhook" 2>/dev/null | wc -l)" -ge 1 ] || fail "static: nothing cached in \$XDG_CACHE_HOME"
run static-cached --list-symbols "$static"
cmp -s "$dir/static/stdout" "$dir/static-cached/stdout" || fail "static-cached: another answer"

# The vendor's program: tinynn's functions in the library it loads, named as such.
run vendor --list-symbols "$vendor"
found vendor tinynn 10
grep -q "^tinynn: 10 of 10 hooked functions found in .*/libresnet18-vendor\.so, a library $vendor loads (reference " \
	"$dir/vendor/stdout" || fail "vendor: the library is not named: $(cat "$dir/vendor/stdout")"
# The library file itself.
run vendor-library --list-symbols "$(dirname "$vendor")/libresnet18-vendor.so"
found vendor-library tinynn 10

# A program naming a dynamic linker of its own (PT_INTERP ./fake-ld, a script): never run to
# list its libraries; only the dynamic linker onnxhook itself runs under is.
mkdir -p "$dir/interp"
cp "$vendor" "$dir/interp/program"
printf '#!/bin/sh\ntouch "%s/interp/fake-ld-ran"\n' "$dir" >"$dir/interp/fake-ld"
chmod +x "$dir/interp/fake-ld"
/usr/bin/python3 - "$dir/interp/program" <<'PY' || fail "interp: could not rewrite PT_INTERP"
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
old = b'/lib64/ld-linux-x86-64.so.2\0'
i = b.find(old)
assert i >= 0
b[i:i + len(old)] = b'./fake-ld'.ljust(len(old), b'\0')
open(p, 'wb').write(b)
PY
run interp --list-symbols "$dir/interp/program"
[ "$(status interp)" = 1 ] || fail "interp: status $(status interp), not 1 (nothing found): $(cat "$dir/interp/stderr")"
[ -e "$dir/interp/fake-ld-ran" ] && fail "interp: the program's own PT_INTERP was run"
grep -q "^tinynn: 0 of 10 hooked functions found" "$dir/interp/stdout" ||
	fail "interp: $(cat "$dir/interp/stdout")"

# ONNXHOOK_HOST_CODE and --host-code: a copy of the reference elsewhere is the one used.
mkdir -p "$dir/elsewhere"
cp "$libtinynn" "$dir/elsewhere/libtinynn-copy.so"
ONNXHOOK_HOST_CODE=$dir/elsewhere/libtinynn-copy.so run host-code-env --list-symbols "$static"
found host-code-env tinynn 10
grep -q "reference $dir/elsewhere/libtinynn-copy.so" "$dir/host-code-env/stdout" ||
	fail "host-code-env: ONNXHOOK_HOST_CODE's library not used: $(cat "$dir/host-code-env/stdout")"
run host-code-option --host-code "$dir/elsewhere/libtinynn-copy.so" --list-symbols "$static"
grep -q "reference $dir/elsewhere/libtinynn-copy.so" "$dir/host-code-option/stdout" ||
	fail "host-code-option: --host-code's library not used: $(cat "$dir/host-code-option/stdout")"
ONNXHOOK_HOST_CODE=$dir/elsewhere/missing.so run host-code-missing --list-symbols "$static"
refused host-code-missing 125 'ONNXHOOK_HOST_CODE: .*missing.so: No such file'
run host-code-option-missing --host-code "$dir/elsewhere/missing.so" --list-symbols "$static"
refused host-code-option-missing 125 '--host-code .*missing.so: No such file'

# Linked dynamically: said so, nothing located.
run dynamic --list-symbols "$dynamic"
grep -q "^tinynn: .* links libtinynn.so.0 dynamically" "$dir/dynamic/stdout" ||
	fail "dynamic: $(cat "$dir/dynamic/stdout")"
# Other code: nothing found, status 1.
run other --list-symbols /bin/true
if [ "$(status other)" != 1 ] || ! grep -q "^tinynn: 0 of 10 hooked functions found" "$dir/other/stdout" ||
	! grep -q "none of their code is in /bin/true" "$dir/other/stdout"; then
	fail "other: status $(status other): $(cat "$dir/other/stdout")"
else
	ok "other: /bin/true: nothing found, status 1"
fi

# Files the locator cannot read: one line, status 126 (127 when absent).
files=$dir/files
mkdir -p "$files"
printf '#!/bin/sh\necho a script long enough to pass for a header, and no ELF at all\n' >"$files/script"
: >"$files/empty"
head -c 100 "$static" >"$files/truncated"
cp "$static" "$files/aarch64"
printf '\xb7\x00' | dd of="$files/aarch64" bs=1 seek=18 conv=notrunc status=none # e_machine
cp "$static" "$files/class32"
printf '\x01' | dd of="$files/class32" bs=1 seek=4 conv=notrunc status=none # EI_CLASS
run script --list-symbols "$files/script"
refused script 126 'script: not an ELF file$'
run empty --list-symbols "$files/empty"
refused empty 126 'empty: not an ELF file \(empty\)'
run truncated --list-symbols "$files/truncated"
refused truncated 126 'truncated: a truncated or damaged ELF file'
run aarch64 --list-symbols "$files/aarch64"
refused aarch64 126 'aarch64: an ELF file for another machine'
run class32 --list-symbols "$files/class32"
refused class32 126 'class32: an ELF file of another byte order or class'
run absent --list-symbols "$files/absent"
refused absent 127 'absent: No such file'
# Random bytes behind an ELF header: any answer, never a crash.
for i in 1 2 3 4 5 6 7 8; do
	cp "$static" "$files/garbage"
	size=$(stat -c %s "$files/garbage")
	head -c 2000 /dev/urandom | dd of="$files/garbage" bs=1 seek=$((RANDOM * 7 % (size - 2000))) conv=notrunc status=none
	head -c 200 /dev/urandom | dd of="$files/garbage" bs=1 seek=$((64 + RANDOM % 1000)) conv=notrunc status=none
	run garbage-$i --list-symbols "$files/garbage"
	case $(status garbage-$i) in
	0 | 1 | 126) ;;
	*) fail "garbage-$i: status $(status garbage-$i): $(cat "$dir/garbage-$i/stderr")" ;;
	esac
done

if [ "$darknet" = 1 ]; then
	# Debian's stripped darknet: all 28 layer functions and forward_network, once each.
	run darknet --list-symbols /usr/bin/darknet
	found darknet darknet 28
	for f in forward_network forward_convolutional_layer forward_yolo_layer; do
		[ "$(grep -c "^  $f  *found at 0x" "$dir/darknet/stdout")" = 1 ] || fail "darknet: $f not found once"
	done
	grep -q "^tinynn: 0 of 10" "$dir/darknet/stdout" || fail "darknet: tinynn found in darknet"
fi

if [ "$failures" -eq 0 ]; then
	rm -rf "$dir"
	echo "list-symbols: all passed"
	exit 0
fi
echo "list-symbols: $failures failure(s); files kept in $dir" >&2
exit 1
