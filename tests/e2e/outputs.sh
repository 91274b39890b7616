#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: special output places, with the command and with the bare preload. /dev/stdout on a
# file or a pipe, /dev/fd/N: written into, the model whole, /dev/stdout still the link it was; a
# new name in /dev, a terminal, a directory: refused before the program runs (the bare preload
# falls back to $TMPDIR); nothing is ever created in /dev. Names of 246-255 bytes work; a
# "<name>.data" past NAME_MAX keeps the weights inline, with one error line.
# Everything runs in a private mount namespace (unshare --mount: root, as CI is) whose /dev is a
# tmpfs of its own holding the device nodes the programs need, bound from the real ones: the
# machine's /dev is never written, even by a regression.
# usage: outputs.sh ONNXHOOK PRELOAD SEEDNET
set -u
if [ "${ONNXHOOK_OUTPUTS_IN_NS:-}" != 1 ]; then
	ONNXHOOK_OUTPUTS_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
	echo "outputs: FAIL: cannot make a private mount namespace (unshare --mount needs root)" >&2
	exit 1
fi
unset ONNXHOOK_OUTPUTS_IN_NS
cli=$(realpath "$1") preload=$(realpath "$2") seednet=$(realpath "$3")
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/e2e/preload-env.sh" "$preload"
python=/usr/bin/python3
for v in $(compgen -e | grep '^ONNXHOOK_'); do unset "$v"; done
unset LD_PRELOAD
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-outputs.XXXXXX")
export TMPDIR=$dir/tmp # the preload's fallback, and anything else's temporaries
mkdir -p "$TMPDIR"
failures=0
fail() { echo "outputs: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "outputs: ok: $*"; }

# This namespace's /dev: a tmpfs with the real device nodes bound in and the usual links.
fake=$dir/dev
mkdir -p "$fake"
mount -t tmpfs -o size=1m,mode=755 onnxhook-test-dev "$fake" || { fail "mount tmpfs"; exit 1; }
for n in null zero full random urandom tty; do
	touch "$fake/$n" && mount --bind "/dev/$n" "$fake/$n" || fail "bind /dev/$n"
done
ln -s /proc/self/fd "$fake/fd"
ln -s /proc/self/fd/0 "$fake/stdin"
ln -s /proc/self/fd/1 "$fake/stdout"
ln -s /proc/self/fd/2 "$fake/stderr"
mkdir "$fake/shm" "$fake/pts"
# Terminals of its own: a private devpts instance.
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$fake/pts" && ln -s pts/ptmx "$fake/ptmx" ||
	fail "mount devpts"
touch "$fake/.onnxhook-test-dev"
mount --move "$fake" /dev || { fail "mount --move to /dev"; exit 1; }
[ -e /dev/.onnxhook-test-dev ] || { fail "/dev is not the test's"; exit 1; }
ls -lA /dev >"$dir/dev.before"
dev_unchanged() { # WHAT: /dev holds what it held, /dev/stdout still a link
	ls -lA /dev >"$dir/dev.now"
	if ! diff -q "$dir/dev.before" "$dir/dev.now" >/dev/null || [ ! -L /dev/stdout ]; then
		fail "$1: /dev changed: $(diff "$dir/dev.before" "$dir/dev.now")"
		ls -lA /dev >"$dir/dev.before"
	fi
}
no_fallback() { # WHAT: nothing went to $TMPDIR
	[ -z "$(ls -A "$TMPDIR")" ] || fail "$1: written to \$TMPDIR: $(ls -A "$TMPDIR")"
	rm -rf "${TMPDIR:?}"/*
}
checks=0
check_model() { # MODEL WHAT (the checker's report in $dir/checks: nothing beside the model)
	checks=$((checks + 1))
	mkdir -p "$dir/checks"
	if "$python" "$src/tests/e2e/check-onnx.py" "$1" --expect-ops Add=1,Conv=3,Relu=1 >"$dir/checks/$checks" 2>&1; then
		return 0
	fi
	fail "$2: $(cat "$dir/checks/$checks")"
	return 1
}
# run NAME CMD...: in a fresh $dir/NAME; stdout is the file 'out' there, stderr 'err'.
run() {
	local name=$1
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && "$@" >out 2>err </dev/null)
	echo $? >"$dir/$name/status"
}
(cd "$dir" && "$seednet" >ref.out 2>ref.err)
ref_len=$(stat -c %s "$dir/ref.out")
# split NAME: 'out' is the model, then the program's own stdout (flushed at exit, after the
# model is written); the model part goes to model.onnx.
split_out() {
	local w=$dir/$1 len
	len=$(stat -c %s "$w/out")
	head -c $((len - ref_len)) "$w/out" >"$w/model.onnx"
	tail -c "$ref_len" "$w/out" | cmp -s - "$dir/ref.out"
}

# 1. -o /dev/stdout with stdout on a file: written into it (before: renamed over /dev/stdout).
run stdout-file "$cli" -q -o /dev/stdout "$seednet"
if [ "$(cat "$dir/stdout-file/status")" = 0 ] && [ ! -s "$dir/stdout-file/err" ] && split_out stdout-file &&
	check_model "$dir/stdout-file/model.onnx" "-o /dev/stdout > file"; then
	ok "-o /dev/stdout > file: the model, then the program's stdout; nothing on stderr"
else
	fail "-o /dev/stdout > file: status $(cat "$dir/stdout-file/status"), $(stat -c %s "$dir/stdout-file/out") bytes, stderr: $(cat "$dir/stdout-file/err")"
fi
dev_unchanged "-o /dev/stdout > file"
no_fallback "-o /dev/stdout > file"
# The same, bare preload; and a pipe (| cat), streamed.
run stdout-preload env LD_PRELOAD="$hook_preload" ONNXHOOK_LOG=quiet ONNXHOOK_OUTPUT=/dev/stdout "$seednet"
split_out stdout-preload && check_model "$dir/stdout-preload/model.onnx" "bare preload, /dev/stdout > file" &&
	ok "bare preload: ONNXHOOK_OUTPUT=/dev/stdout > file" ||
	fail "bare preload, /dev/stdout > file: $(cat "$dir/stdout-preload/err")"
dev_unchanged "bare preload, /dev/stdout > file"
run stdout-pipe sh -c '"$0" -q -o /dev/stdout "$1" | cat' "$cli" "$seednet"
split_out stdout-pipe && check_model "$dir/stdout-pipe/model.onnx" "-o /dev/stdout | cat" &&
	ok "-o /dev/stdout | cat: streamed into the pipe" || fail "-o /dev/stdout | cat: $(cat "$dir/stdout-pipe/err")"
dev_unchanged "-o /dev/stdout | cat"
# A pipe whose reader is gone: no SIGPIPE for the program (its status stays its own), one error
# line, and the model goes to $TMPDIR.
mkdir -p "$dir/gone"
(cd "$dir/gone" && "$python" -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
st = subprocess.run([sys.argv[1], "-o", "/dev/fd/%d" % w, sys.argv[2]], pass_fds=[w],
                    stdout=open("out", "w"), stderr=open("err", "w")).returncode
open("status", "w").write("%d\n" % st)
' "$cli" "$seednet")
alt=$(ls "$TMPDIR"/*.onnx 2>/dev/null)
if [ "$(cat "$dir/gone/status")" = 0 ] && cmp -s "$dir/gone/out" "$dir/ref.out" &&
	grep -q '^onnxhook: error: cannot write /dev/fd/[0-9]*: Broken pipe$' "$dir/gone/err" && [ -n "$alt" ] &&
	grep -q "^onnxhook: wrote ${alt#"$dir/gone/"}\$" "$dir/gone/err"; then
	ok "a pipe whose reader is gone: no SIGPIPE, status 0, the model in \$TMPDIR"
else
	fail "gone reader: status $(cat "$dir/gone/status"), \$TMPDIR: $(ls -A "$TMPDIR"), stderr: $(cat "$dir/gone/err")"
fi
rm -rf "${TMPDIR:?}"/*

# 2. A descriptor of its own: the model alone, the program's stdout apart.
mkdir -p "$dir/fd3"
(cd "$dir/fd3" && "$cli" -o /dev/fd/3 "$seednet" 3>m.onnx >out 2>err; echo $? >status)
if [ "$(cat "$dir/fd3/status")" = 0 ] && cmp -s "$dir/fd3/out" "$dir/ref.out" &&
	grep -q '^onnxhook: wrote /dev/fd/3$' "$dir/fd3/err" && check_model "$dir/fd3/m.onnx" "-o /dev/fd/3 3>m.onnx"; then
	ok "-o /dev/fd/3 3>m.onnx: the model alone"
else
	fail "-o /dev/fd/3: status $(cat "$dir/fd3/status"), stderr: $(cat "$dir/fd3/err")"
fi
# --test-data has no place beside a descriptor: a warning, nothing created; --external-data
# always cannot be followed: one error line, weights inline; the picture to another descriptor.
mkdir -p "$dir/fd3-extras"
(cd "$dir/fd3-extras" && "$cli" -o /dev/fd/3 --test-data --external-data always --dot /dev/fd/4 "$seednet" \
	3>m.onnx 4>g.dot >out 2>err; echo $? >status)
w=$dir/fd3-extras
if [ "$(cat "$w/status")" = 0 ] && check_model "$w/m.onnx" "-o /dev/fd/3 --external-data always" &&
	grep -q '^onnxhook: warning: no test data written: the model went to /dev/fd/3, not a file in a directory$' "$w/err" &&
	grep -q '^onnxhook: error: /dev/fd/3: ONNXHOOK_EXTERNAL_DATA=always not followed: a device, FIFO or descriptor has no place beside it for a data file (external data cannot go to a pipe); its weights are inside the model$' "$w/err" &&
	grep -q '^digraph onnxhook' "$w/g.dot" && [ "$(ls -A "$w" | tr '\n' ' ')" = "err g.dot m.onnx out status " ]; then
	ok "descriptors: no test data beside them, external data inline with one error line, the picture too"
else
	fail "descriptor extras: status $(cat "$w/status"), files: $(ls -A "$w"), stderr: $(cat "$w/err")"
fi
dev_unchanged "descriptors"
no_fallback "descriptors"

# 3. Refused before the program runs: a new name in /dev, a terminal, a directory, a descriptor
#    not open for writing; the bare preload falls back to $TMPDIR with the same reason.
i=0
while IFS='|' read -r path want; do
	i=$((i + 1))
	run "refused$i" "$cli" -o "$path" touch ran
	if [ "$(cat "$dir/refused$i/status")" = 125 ] && [ ! -e "$dir/refused$i/ran" ] &&
		[ "$(grep error "$dir/refused$i/err")" = "onnxhook: error: cannot write the model to $path: $want" ]; then
		ok "-o $path: refused, $want"
	else
		fail "-o $path: status $(cat "$dir/refused$i/status"), stderr: $(cat "$dir/refused$i/err")"
	fi
done <<EOF
/dev/m.onnx|is in /dev, /proc or /sys, where onnxhook creates or replaces no file (a device, FIFO or descriptor there is written into)
/proc/self/m.onnx|is in /dev, /proc or /sys, where onnxhook creates or replaces no file (a device, FIFO or descriptor there is written into)
/dev/stdin|is a descriptor that is not open for writing
/dev|is a directory
EOF
run refused-dot "$cli" --dot /dev/g.dot touch ran
[ "$(cat "$dir/refused-dot/status")" = 125 ] && grep -q '^onnxhook: error: cannot write the Graphviz file to /dev/g.dot: is in /dev' "$dir/refused-dot/err" &&
	ok "--dot /dev/g.dot: refused" || fail "--dot /dev/g.dot: $(cat "$dir/refused-dot/err")"
mkdir -p "$dir/pty"
if "$python" - "$cli" "$dir/pty" <<'PY'; then
import os, pty, subprocess, sys
m, s = pty.openpty()
err = open(sys.argv[2] + "/err", "w")
st = subprocess.run([sys.argv[1], "-o", "/dev/stdout", "true"], stdout=s, stderr=err).returncode
err.close()
got = open(sys.argv[2] + "/err").read()
want = "onnxhook: error: cannot write the model to /dev/stdout: is a terminal: redirect it to a file (> model.onnx) or a pipe\n"
sys.exit(0 if st == 125 and got == want else 1)
PY
	ok "-o /dev/stdout on a terminal: refused"
else
	fail "-o /dev/stdout on a terminal: $(cat "$dir/pty/err" 2>/dev/null)"
fi
run cwd-dev sh -c 'cd /dev && exec "$0" "$1"' "$cli" "$seednet"
[ "$(cat "$dir/cwd-dev/status")" = 125 ] && grep -q '^onnxhook: error: the working directory is in /dev' "$dir/cwd-dev/err" &&
	ok "the default name in /dev: refused" || fail "working directory /dev: $(cat "$dir/cwd-dev/err")"
dev_unchanged "refusals"
no_fallback "refusals"
# The bare preload: one error line, the model in $TMPDIR, nothing in /dev, the program's status.
for p in /dev/m.onnx default; do
	name=preload-${p//\//_}
	if [ "$p" = default ]; then
		run "$name" sh -c 'cd /dev && exec env LD_PRELOAD="$0" "$1"' "$hook_preload" "$seednet"
	else
		run "$name" env LD_PRELOAD="$hook_preload" ONNXHOOK_OUTPUT="$p" "$seednet"
	fi
	alt=$(ls "$TMPDIR"/*.onnx 2>/dev/null)
	if [ "$(cat "$dir/$name/status")" = 0 ] && [ -n "$alt" ] && check_model "$alt" "bare preload, $p" &&
		grep -q "^onnxhook: error: cannot write .*: is in /dev, /proc or /sys" "$dir/$name/err" &&
		grep -q "^onnxhook: wrote $alt: " "$dir/$name/err"; then
		ok "bare preload, $p: refused, the model in \$TMPDIR"
	else
		fail "bare preload, $p: status $(cat "$dir/$name/status"), \$TMPDIR: $(ls -A "$TMPDIR"), stderr: $(cat "$dir/$name/err")"
	fi
	rm -rf "${TMPDIR:?}"/*
	dev_unchanged "bare preload, $p"
done

# 4. Long names: every valid name works (a temporary name of 246+ bytes passed NAME_MAX).
for n in 246 255; do
	name=$(printf 'z%.0s' $(seq $((n - 5)))).onnx
	run "long$n" "$cli" -q -o "$name" --dot "${name%.onnx}.dot" "$seednet"
	if [ "$(cat "$dir/long$n/status")" = 0 ] && [ ! -s "$dir/long$n/err" ] && check_model "$dir/long$n/$name" "$n-byte name" &&
		[ "$(ls -A "$dir/long$n" | wc -l)" = 5 ]; then
		ok "a $n-byte name: written, with its picture, nothing else"
	else
		fail "$n-byte name: status $(cat "$dir/long$n/status"), files: $(ls -A "$dir/long$n"), stderr: $(cat "$dir/long$n/err")"
	fi
done
no_fallback "long names"
name=$(printf 'z%.0s' $(seq 246)).onnx # 251 bytes: "<name>.data" would be 256
run long-data "$cli" -o "$name" --external-data always "$seednet"
if [ "$(cat "$dir/long-data/status")" = 0 ] && check_model "$dir/long-data/$name" "251-byte name, external data" &&
	grep -q "^onnxhook: error: $name: ONNXHOOK_EXTERNAL_DATA=always not followed: the data file's name, 256 bytes with \"\.data\", would pass NAME_MAX (255 bytes); its weights are inside the model$" "$dir/long-data/err" &&
	[ "$(ls -A "$dir/long-data" | wc -l)" = 4 ]; then
	ok "a 251-byte name with --external-data always: inline, one error line"
else
	fail "251-byte name, external data: files: $(ls -A "$dir/long-data"), stderr: $(cat "$dir/long-data/err")"
fi
no_fallback "long names"

if [ "$failures" -gt 0 ]; then
	echo "outputs: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
