#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end: the onnxhook command, from the build tree and from a `meson install --destdir` tree:
# library lookup, options, checks before running, exit status, LD_PRELOAD kept, summary, report,
# --list-symbols, the man page.
# usage: cli.sh ONNXHOOK PRELOAD SEEDNET MANPAGE|- EXITS   (MESON_BUILD_ROOT: the build to install)
set -u
cli=$(realpath "$1") preload=$(realpath "$2") seednet=$(realpath "$3") man=$4 exits=$(realpath "$5")
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/e2e/preload-env.sh" "$preload" # ASAN_OPTIONS for a sanitized build
python=/usr/bin/python3
for v in $(compgen -e | grep '^ONNXHOOK_'); do unset "$v"; done
unset LD_PRELOAD
dir=$(mktemp -d "${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/onnxhook-cli.XXXXXX")
failures=0
fail() { echo "cli: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "cli: ok: $*"; }

# run NAME CMD...: CMD in a fresh $dir/NAME, its stdout, stderr and status kept there.
run() {
	local name=$1
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && "$@" >stdout 2>stderr)
	echo $? >"$dir/$name/status"
}
status() { cat "$dir/$1/status"; }
err() { cat "$dir/$1/stderr"; }
# expect NAME STATUS REGEX [what]: the status, and a line of stderr matching REGEX
expect() {
	if [ "$(status "$1")" != "$2" ]; then
		fail "${4:-$1}: status $(status "$1"), want $2; stderr: $(err "$1")"
	elif ! grep -Eq -- "$3" "$dir/$1/stderr"; then
		fail "${4:-$1}: no stderr line matches '$3'; stderr: $(err "$1")"
	else
		ok "${4:-$1}: status $2, $(grep -E -m1 -- "$3" "$dir/$1/stderr")"
	fi
}
# died NAME CMD...: how CMD ended for a parent that is no shell (a shell shows 128+N either way),
# in $dir/NAME/how: "signal N" ("signal N core" when it dumped a core) or "exit N". The core
# limit is raised to the hard one first, so that a core of the command's own would show.
died() {
	local name=$1
	shift
	mkdir -p "$dir/$name"
	(cd "$dir/$name" && "$python" -c '
import os, resource, signal, sys
hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
st = os.waitpid(pid, 0)[1]
with open("how", "w") as f:
    if os.WIFSIGNALED(st):
        f.write("signal %d%s\n" % (os.WTERMSIG(st), " core" if os.WCOREDUMP(st) else ""))
    else:
        f.write("exit %d\n" % os.WEXITSTATUS(st))
' "$@" >stdout 2>stderr)
}
how() { cat "$dir/$1/how" 2>/dev/null; }
check_model() { # model [check-onnx options]: the full checker and our conventions
	local m=$1
	shift
	if "$python" "$src/tests/e2e/check-onnx.py" "$m" "$@" >"$m.check" 2>&1; then
		ok "$m passes the full checker ($(tail -n 1 "$m.check"))"
	else
		fail "$m: $(cat "$m.check")"
	fi
}
[ -x "$python" ] && "$python" -c 'import onnx' 2>/dev/null ||
	fail "$python cannot import onnx: apt-get install python3-onnx"

# 1. --help (the man page's source) lists every variable the preload reads; --version.
run help "$cli" --help
for v in $(grep -o '"ONNXHOOK_[A-Z_]*"' "$src/src/config.c" | tr -d '"' | sort -u) ONNXHOOK_LIBRARY; do
	grep -q "^  $v=" "$dir/help/stdout" || fail "--help does not describe $v"
done
for s in '^Usage: onnxhook ' '^Options:$' '^Environment:$' '^Examples:$' '--list-symbols'; do
	grep -q -- "$s" "$dir/help/stdout" || fail "--help lacks '$s'"
done
[ "$(status help)" = 0 ] && ok "--help: $(wc -l <"$dir/help/stdout") lines, every ONNXHOOK_ variable"
run version "$cli" --version
if [ "$(status version)" = 0 ] && grep -Eqx 'onnxhook [0-9]+\.[0-9]+\.[0-9]+' "$dir/version/stdout"; then
	ok "--version: $(cat "$dir/version/stdout")"
else
	fail "--version: status $(status version), $(cat "$dir/version/stdout")"
fi

# 2. From the build tree: this build's library; the model; the summary; the app untouched.
run lib-build "$cli" --print-library
[ "$(cat "$dir/lib-build/stdout")" = "$preload" ] && ok "build tree preloads $preload" ||
	fail "build tree: --print-library says '$(cat "$dir/lib-build/stdout")', want $preload"
run plain "$seednet"
mkdir -p "$dir/tmpdir"
run build env TMPDIR="$dir/tmpdir" "$cli" -o m.onnx "$seednet"
expect build 0 '^onnxhook: wrote m\.onnx$' "trace from the build tree"
grep -q '^onnxhook:   5 nodes: Conv 3, Relu 1, Add 1$' "$dir/build/stderr" &&
	grep -q '^onnxhook:   1 input, 1 output$' "$dir/build/stderr" &&
	grep -Eq '^onnxhook:   28 parameters, [0-9.]+ KB, written in [0-9.]+ s$' "$dir/build/stderr" ||
	fail "summary block: $(err build)"
grep -v '^onnxhook: ' "$dir/build/stderr" | grep -q . && fail "stderr lines not from onnxhook: $(err build)"
cmp -s "$dir/build/stdout" "$dir/plain/stdout" || fail "the app's stdout changed under onnxhook"
[ -f "$dir/build/m.onnx" ] && check_model "$dir/build/m.onnx" --expect-ops Add=1,Conv=3,Relu=1
[ -z "$(ls -A "$dir/tmpdir")" ] || fail "report file left behind in \$TMPDIR: $(ls -A "$dir/tmpdir")"

# 3. Installed: meson install --destdir, then the staged command runs the staged resnet18 with
#    nothing else set (the app finds libtinynn by its $ORIGIN rpath), and so does a moved copy.
stage=$dir/stage
if ! meson install -C "$MESON_BUILD_ROOT" --no-rebuild --destdir "$stage" --quiet >"$dir/install.log" 2>&1; then
	fail "meson install --destdir: $(cat "$dir/install.log")"
fi
scli=$(find "$stage" -path '*/bin/onnxhook' -type f | head -n 1)
slib=$(find "$stage" -name libonnxhook.so -type f | head -n 1)
stiny=$(find "$stage" -name libtinynn.so.0 | head -n 1)
sman=$(find "$stage" -path '*/man1/onnxhook.1' -type f | head -n 1)
if [ -z "$scli" ] || [ -z "$slib" ] || [ -z "$stiny" ]; then
	fail "staged tree lacks bin/onnxhook, libonnxhook.so or libtinynn.so.0: $(find "$stage" -type f | head -n 30)"
else
	sbin=$(dirname "$scli")
	# The hosts built as modules are installed beside the library, where it looks for them.
	for m in "$MESON_BUILD_ROOT"/preload/onnxhook/libonnxhook-*.so; do
		[ -e "$m" ] || continue
		[ -f "$(dirname "$slib")/onnxhook/$(basename "$m")" ] && ok "staged tree has onnxhook/$(basename "$m")" ||
			fail "staged tree lacks onnxhook/$(basename "$m") beside $slib"
	done
	run lib-stage "$scli" --print-library
	[ "$(cat "$dir/lib-stage/stdout")" = "$(realpath "$slib")" ] && ok "staged command preloads $slib" ||
		fail "staged: --print-library says '$(cat "$dir/lib-stage/stdout")', want $slib"
	run staged env -u LD_LIBRARY_PATH "$scli" -o m.onnx "$sbin/resnet18" --size 64
	expect staged 0 '^onnxhook: wrote m\.onnx$' "trace with the staged command and resnet18"
	grep -q "^onnxhook:   71 nodes: " "$dir/staged/stderr" || fail "staged resnet18 summary: $(err staged)"
	[ -f "$dir/staged/m.onnx" ] && check_model "$dir/staged/m.onnx" --expect-ops \
		Add=8,BatchNormalization=20,Conv=20,Flatten=1,Gemm=1,GlobalAveragePool=1,MaxPool=1,Relu=17,Reshape=1,Softmax=1
	# verify finds its runner installed beside libonnxhook.so (lib/onnxhook/verify.js).
	run staged-verify env -u LD_LIBRARY_PATH ONNXHOOK_ORT="$src/tests/ort" "$scli" verify "$sbin/resnet18" --size 32
	if [ "$(status staged-verify)" = 0 ] && grep -q 'all 69 layers within tolerance' "$dir/staged-verify/stdout"; then
		ok "staged onnxhook verify: $(tail -n 1 "$dir/staged-verify/stdout")"
	else
		fail "staged onnxhook verify: status $(status staged-verify): $(err staged-verify)"
	fi
	# Relocated: the path from bin to lib is relative.
	cp -a "$stage" "$dir/moved"
	mcli=$dir/moved${scli#"$stage"} mlib=$dir/moved${slib#"$stage"}
	run lib-moved "$mcli" --print-library
	[ "$(cat "$dir/lib-moved/stdout")" = "$(realpath "$mlib")" ] && ok "a moved tree preloads its own library" ||
		fail "moved: --print-library says '$(cat "$dir/lib-moved/stdout")', want $mlib"
	# Alone, without its library: a clear error; ONNXHOOK_LIBRARY names one.
	mkdir -p "$dir/alone/bin" && cp "$scli" "$dir/alone/bin/"
	run alone "$dir/alone/bin/onnxhook" /bin/true
	expect alone 125 '^onnxhook: error: cannot find libonnxhook\.so' "the command without its library"
	run override env ONNXHOOK_LIBRARY="$slib" "$dir/alone/bin/onnxhook" --print-library
	[ "$(cat "$dir/override/stdout")" = "$(realpath "$slib")" ] && ok "ONNXHOOK_LIBRARY overrides" ||
		fail "ONNXHOOK_LIBRARY: $(cat "$dir/override/stdout") $(err override)"
	run override-bad env ONNXHOOK_LIBRARY="$dir/nonexistent.so" "$cli" /bin/true
	expect override-bad 125 '^onnxhook: error: ONNXHOOK_LIBRARY=' "ONNXHOOK_LIBRARY naming no file"
fi
# ONNXHOOK_LIBRARY naming something that is not ours: one line, 125, nothing run (ld.so would
# print its own error and the run would record nothing).
tiny=$(ldd "$seednet" | awk '/libtinynn/ { print $3 }')
i=0
while IFS='|' read -r lib want; do
	i=$((i + 1))
	run "notours$i" env ONNXHOOK_LIBRARY="$lib" "$cli" touch ran
	expect "notours$i" 125 "^onnxhook: error: ONNXHOOK_LIBRARY=$lib: $want; set ONNXHOOK_LIBRARY to onnxhook's libonnxhook\.so$" \
		"ONNXHOOK_LIBRARY=$lib"
	[ "$(grep -c . "$dir/notours$i/stderr")" = 1 ] && [ ! -e "$dir/notours$i/ran" ] ||
		fail "ONNXHOOK_LIBRARY=$lib: more than one line, or the program ran: $(err "notours$i")"
done <<EOF
/etc/passwd|not an ELF shared object
$tiny|an ELF shared object whose soname is 'libtinynn\.so\.0', not libonnxhook\.so
EOF

# 4. Exit status: the program's own; a program killed by signal N kills onnxhook with N (a shell
#    shows 128+N), with no core of onnxhook's own; a signal sent to onnxhook goes on.
run exit3 "$cli" -q -- sh -c 'exit 3'
[ "$(status exit3)" = 3 ] && ok "exit 3 comes through" || fail "exit 3: status $(status exit3)"
died exit3-raw "$cli" -q -- sh -c 'exit 3'
[ "$(how exit3-raw)" = "exit 3" ] && ok "exit 3, seen without a shell" || fail "exit 3 without a shell: $(how exit3-raw)"
run killed "$cli" -- sh -c 'kill -KILL $$'
expect killed 137 '^onnxhook: sh was killed by SIGKILL$' "killed by SIGKILL"
# A traced program killed by SIGKILL: nothing can catch it; --dump-after-pass is what helps, and
# with it the model written when the second pass began is summarized once.
run killed-traced "$cli" -o m.onnx "$exits" pass2-sigkill
expect killed-traced 137 '^onnxhook: no model written: nothing can catch SIGKILL; --dump-after-pass writes the model as soon as the captured pass ends, so that a later kill loses nothing$' \
	"a traced program killed by SIGKILL: the hint"
grep -q -- --dump-on-crash "$dir/killed-traced/stderr" && fail "SIGKILL hint names --dump-on-crash: $(err killed-traced)"
run after-pass "$cli" --dump-after-pass -o m.onnx "$exits" pass2-sigkill
expect after-pass 137 '^onnxhook: .*/exits was killed by SIGKILL$' "--dump-after-pass, then SIGKILL"
[ "$(grep -c '^onnxhook: wrote m\.onnx$' "$dir/after-pass/stderr")" = 1 ] && [ -f "$dir/after-pass/m.onnx" ] &&
	! grep -q 'no model written' "$dir/after-pass/stderr" && check_model "$dir/after-pass/m.onnx" --expect-ops Conv=1,Relu=1 ||
	fail "--dump-after-pass: $(err after-pass)"
run after-pass-exit "$cli" --dump-after-pass -o m.onnx "$exits" pass2
[ "$(status after-pass-exit)" = 0 ] && [ "$(grep -c '^onnxhook: wrote' "$dir/after-pass-exit/stderr")" = 1 ] &&
	ok "--dump-after-pass, then a normal exit: one model, one summary" || fail "--dump-after-pass and exit: $(err after-pass-exit)"
run termed "$cli" -q -- sh -c 'kill -TERM $$'
[ "$(status termed)" = 143 ] && ! grep -q . "$dir/termed/stderr" && ok "SIGTERM: 143, -q: no message" ||
	fail "SIGTERM: status $(status termed), stderr: $(err termed)"
for sig in KILL TERM; do
	died "raw-$sig" "$cli" -q -- sh -c "kill -$sig \$\$"
	n=$(kill -l "$sig")
	[ "$(how "raw-$sig")" = "signal $n" ] && ok "SIG$sig: onnxhook itself dies of it" ||
		fail "SIG$sig: onnxhook ended with '$(how "raw-$sig")', want 'signal $n'; stderr: $(err "raw-$sig")"
done
# A crash: one core at most, the program's (its limit is 0 here), none of onnxhook's. In a
# sanitized build the preload's ASan would turn the program's SIGSEGV into an exit 1: handle_segv=0
# for the program only (a sanitized onnxhook keeps ASan's handler, and must still die of it).
died segv "$cli" -- env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0" sh -c 'ulimit -c 0; kill -SEGV $$'
if [ "$(how segv)" = "signal $(kill -l SEGV)" ] && ! compgen -G "$dir/segv/core*" >/dev/null &&
	grep -q '^onnxhook: env was killed by SIGSEGV$' "$dir/segv/stderr"; then
	ok "SIGSEGV: onnxhook dies of it, no core of its own"
else
	fail "SIGSEGV: '$(how segv)', files: $(cd "$dir/segv" && echo *), stderr: $(err segv)"
fi
# Ctrl-C stops a shell loop: bash goes on after a child that exits normally, even with 130.
mkdir -p "$dir/loop"
(cd "$dir/loop" && "$python" -c '
import os, signal, subprocess, sys, time
p = subprocess.Popen(["bash", "-c", "for i in 1 2; do \"$0\" -q -- sh -c \"echo \\$\\$ >>pids; sleep 5\"; echo next; done",
                      sys.argv[1]], stdout=open("stdout", "w"), stderr=open("stderr", "w"), start_new_session=True)
for _ in range(100):
    if os.path.exists("pids") and os.path.getsize("pids"):
        break
    time.sleep(0.05)
time.sleep(0.2)
os.killpg(p.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
try:
    rc = p.wait(timeout=4)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rc = "still running"
with open("how", "w") as f:
    print(rc, file=f)
' "$cli")
if [ "$(how loop)" = -2 ] && ! grep -q next "$dir/loop/stdout" && [ "$(grep -c . "$dir/loop/pids")" = 1 ]; then
	ok "Ctrl-C stops a bash loop running onnxhook"
else
	fail "Ctrl-C in a bash loop: bash ended with '$(how loop)', $(grep -c . "$dir/loop/pids" 2>/dev/null) run(s), stdout: $(cat "$dir/loop/stdout"), stderr: $(cat "$dir/loop/stderr")"
fi
mkdir -p "$dir/forward"
(cd "$dir/forward" && exec "$cli" -q -- sh -c 'trap "echo got-term >>log; exit 7" TERM; echo $$ >pid; while :; do sleep 0.1; done') &
onnxhook_pid=$!
for _ in $(seq 50); do [ -s "$dir/forward/pid" ] && break; sleep 0.1; done
kill -TERM "$onnxhook_pid"
wait "$onnxhook_pid"
st=$?
[ "$st" = 7 ] && grep -q got-term "$dir/forward/log" 2>/dev/null && ok "SIGTERM sent to onnxhook reaches the program" ||
	fail "SIGTERM to onnxhook: status $st, program's log: $(cat "$dir/forward/log" 2>/dev/null)"
# An ignored signal stays ignored for the program (nohup, a background job's SIGINT).
run ignored bash -c "trap '' HUP; exec '$cli' -q -- sh -c 'kill -HUP \$\$; echo survived'"
grep -q survived "$dir/ignored/stdout" && ok "an ignored SIGHUP stays ignored" || fail "ignored SIGHUP: $(err ignored)"

# 5. LD_PRELOAD: an existing value is kept, ours after it, not added twice; ld.so loads both.
# A sanitized onnxhook needs libasan first in an LD_PRELOAD it is started with; and the sanitized
# preload crashes in ASan's start-up when another library sits between them (preload/dl.c), so
# there libasan itself is the existing entry.
asan_first=${asan_lib:+$asan_lib:}
existing=${asan_lib:-libm.so.6}
run keep env LD_PRELOAD="$existing" "$cli" -q -- sh -c 'echo "$LD_PRELOAD"; cat /proc/$$/maps'
value=$(head -n 1 "$dir/keep/stdout")
if [ "$value" = "$existing:$preload" ] && grep -q "$preload" "$dir/keep/stdout" && ! grep -q . "$dir/keep/stderr"; then
	ok "LD_PRELOAD kept: $value"
else
	fail "LD_PRELOAD: '$value', stderr: $(err keep)"
fi
run twice env LD_PRELOAD="$asan_first$preload" "$cli" -q -- sh -c 'echo "$LD_PRELOAD"'
[ "$(grep -o libonnxhook "$dir/twice/stdout" | wc -l)" = 1 ] && ok "ours is not added twice" ||
	fail "LD_PRELOAD with ours already: $(cat "$dir/twice/stdout")"

# 6. Checks before running: not found, not executable, static, setuid, setgid; none runs.
run notfound "$cli" no-such-program-onnxhook
expect notfound 127 '^onnxhook: error: no-such-program-onnxhook: command not found$'
run nofile "$cli" ./no-such-file
expect nofile 127 '^onnxhook: error: \./no-such-file: No such file or directory$'
mkdir -p "$dir/bin"
touch "$dir/bin/noexec" && chmod 644 "$dir/bin/noexec"
run noexec "$cli" "$dir/bin/noexec"
expect noexec 126 'noexec: Permission denied$'
run isdir "$cli" "$dir/bin"
expect isdir 126 'is a directory$'
printf '#include <stdio.h>\nint main(int c, char **v) { if (c > 1) fclose(fopen(v[1], "w")); return 0; }\n' >"$dir/touch.c"
for kind in static static-pie; do
	if ! cc -"$kind" -o "$dir/bin/$kind" "$dir/touch.c" 2>"$dir/bin/$kind.log"; then
		# -static needs libc.a (libc6-dev, which gcc depends on): a precondition CI has.
		[ "$kind" = static ] && fail "cc -static: $(cat "$dir/bin/$kind.log")"
		[ "$kind" = static-pie ] && echo "cli: note: cc cannot link -static-pie; that case is not tried"
		continue
	fi
	run "$kind" "$cli" "$dir/bin/$kind" ran
	expect "$kind" 126 "is statically linked: LD_PRELOAD cannot reach it" "$kind program"
	[ -e "$dir/$kind/ran" ] && fail "$kind program ran"
done
cp /usr/bin/touch "$dir/bin/suid" && chmod u+s "$dir/bin/suid"
run suid "$cli" "$dir/bin/suid" ran
expect suid 126 'is set-user-ID: the dynamic linker ignores LD_PRELOAD' "setuid program"
cp /usr/bin/touch "$dir/bin/sgid" && chmod g+s "$dir/bin/sgid"
run sgid "$cli" "$dir/bin/sgid" ran
expect sgid 126 'is set-group-ID: the dynamic linker ignores LD_PRELOAD' "setgid program"
[ -e "$dir/suid/ran" ] || [ -e "$dir/sgid/ran" ] && fail "a setuid/setgid program ran"
# A dynamic program that links no host: a note, and it runs.
run true "$cli" /bin/true
expect true 0 '^onnxhook: note: /bin/true does not link libtinynn\.so\.0.*; tracing anyway \(it may load one at run time, or be a launcher script\)$' \
	"a program linking no host"
grep -q '^onnxhook: no model written: /bin/true made no call to a hooked function' "$dir/true/stderr" ||
	fail "no 'no model written' line: $(err true)"
run true-quiet "$cli" -q /bin/true
[ "$(status true-quiet)" = 0 ] && ! grep -q . "$dir/true-quiet/stderr" && ok "-q: nothing on stderr" ||
	fail "-q /bin/true: $(err true-quiet)"
# A launcher script: run as is, its children traced.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$seednet" >"$dir/bin/launch.sh" && chmod +x "$dir/bin/launch.sh"
run script "$cli" -o s.onnx "$dir/bin/launch.sh"
expect script 0 '^onnxhook: wrote s\.onnx$' "a launcher script"

# 7. --list-symbols: grouped per host, and exactly what the preload exports.
run symbols "$cli" --list-symbols
grep -q '^tinynn (libtinynn\.so\.0):$' "$dir/symbols/stdout" && grep -q '^  tnn_conv2d$' "$dir/symbols/stdout" ||
	fail "--list-symbols: $(cat "$dir/symbols/stdout")"
if nm -D "$preload" | grep -q forward_network; then
	grep -q '^darknet (libdarknet\.so):$' "$dir/symbols/stdout" || fail "--list-symbols lacks darknet"
fi
grep '^  ' "$dir/symbols/stdout" | tr -d ' ' | sort -u >"$dir/symbols/listed"
nm -D --defined-only "$preload" | awk '$2 ~ /^[TWDBRVi]$/ { print $3 }' | sed 's/@.*//' | sort -u >"$dir/symbols/exported"
diff -u "$dir/symbols/exported" "$dir/symbols/listed" >"$dir/symbols/diff" &&
	ok "--list-symbols: $(wc -l <"$dir/symbols/listed") symbols in $(grep -c ':$' "$dir/symbols/stdout") groups, as exported" ||
	fail "--list-symbols differs from the preload's exports: $(cat "$dir/symbols/diff")"

# 8. Invalid values and usage: status 125, one clear error, the program not run.
i=0
while IFS='|' read -r want args; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	run "bad$i" $args
	expect "bad$i" 125 "$want" "${args#"$cli" }"
	[ -e "$dir/bad$i/ran" ] && fail "${args#"$cli" }: the program ran"
done <<EOF
^onnxhook: error: invalid --opset '9': expected an opset from 13 to 17$|$cli --opset 9 touch ran
^onnxhook: error: invalid --pass '0': expected a pass number from 1, or all$|$cli --pass=0 touch ran
^onnxhook: error: invalid --external-data 'sometimes': expected auto, always or never$|$cli --external-data sometimes touch ran
^onnxhook: error: invalid --output 'm%q\.onnx': expected a path where %|$cli -o m%q.onnx touch ran
^onnxhook: error: invalid --output 'dir/': expected a file path|$cli --output=dir/ touch ran
^onnxhook: error: option '--pass' needs a value$|$cli --pass
^onnxhook: error: unknown option '--bogus'$|$cli --bogus touch ran
^onnxhook: error: unknown option '-x'$|$cli -x touch ran
^onnxhook: error: option '--quiet=1' takes no value$|$cli --quiet=1 touch ran
^onnxhook: error: no PROGRAM to run$|$cli -q
^onnxhook: error: invalid ONNXHOOK_LOG='loud': expected info, quiet or debug \(from the environment\)$|env ONNXHOOK_LOG=loud $cli touch ran
^onnxhook: error: invalid ONNXHOOK_DUMP_AFTER_PASS='yes': expected 0 or 1 \(from the environment\)$|env ONNXHOOK_DUMP_AFTER_PASS=yes $cli touch ran
EOF
run empty "$cli" -o '' touch ran
expect empty 125 "^onnxhook: error: --output needs a value$" "-o ''"

# 9. The options reach the preload as its variables; values the model shows.
run vars "$cli" -q -o x.onnx --pass all --dynamic-batch --opset 13 --external-data never --no-stack \
	--dot g.dot --test-data --dump-on-signal --dump-on-crash --dump-after-pass -- sh -c 'env | grep ^ONNXHOOK_ | sort'
want="ONNXHOOK_BATCH=dynamic ONNXHOOK_DOT=g.dot ONNXHOOK_DUMP_AFTER_PASS=1 ONNXHOOK_DUMP_ON_CRASH=1 ONNXHOOK_DUMP_ON_SIGNAL=1
ONNXHOOK_EXTERNAL_DATA=never ONNXHOOK_LOG=quiet ONNXHOOK_OPSET=13 ONNXHOOK_OUTPUT=x.onnx ONNXHOOK_PASS=all
ONNXHOOK_STACK=0 ONNXHOOK_TEST_DATA=1"
got=$(grep -v '^ONNXHOOK_REPORT=' "$dir/vars/stdout" | tr '\n' ' ')
[ "$got" = "$(echo $want) " ] && ok "options set: $got" || fail "options -> variables: '$got', want '$(echo $want)'"
grep -q '^ONNXHOOK_REPORT=/' "$dir/vars/stdout" || fail "ONNXHOOK_REPORT not set for the program"
run opset "$cli" -q --opset 13 -o m.onnx "$seednet"
[ "$(status opset)" = 0 ] && [ -f "$dir/opset/m.onnx" ] && check_model "$dir/opset/m.onnx" --opset 13
run verbose "$cli" -v -o m.onnx "$seednet"
grep -q '^onnxhook: tnn_conv2d -> ' "$dir/verbose/stderr" && ok "-v: one line per recorded call" ||
	fail "-v: $(err verbose)"
run quiet "$cli" -q -o m.onnx "$seednet"
[ "$(status quiet)" = 0 ] && [ -f "$dir/quiet/m.onnx" ] && ! grep -q . "$dir/quiet/stderr" &&
	ok "-q: model written, nothing on stderr" || fail "-q: $(err quiet)"

# 10. ONNXHOOK_REPORT: the preload alone appends one line per model instead of its summary;
#     processes writing at once give whole lines; the command copies the lines to a user's file.
run report sh -c "LD_PRELOAD='$hook_preload' ONNXHOOK_REPORT=\$PWD/r.txt ONNXHOOK_OUTPUT=m%p.onnx '$seednet' &
	LD_PRELOAD='$hook_preload' ONNXHOOK_REPORT=\$PWD/r.txt ONNXHOOK_OUTPUT=m%p.onnx '$seednet' & wait"
lines=$(grep -c . "$dir/report/r.txt" 2>/dev/null)
good=$(grep -cP "^v=1\tpid=[0-9]+\tpath=\Q$dir/report/m\E[0-9]+\.onnx\tnodes=5\tops=Conv:3,Relu:1,Add:1\tinputs=1\toutputs=1\tparameters=28\tbytes=[0-9]+\tdata_bytes=0\tseconds=[0-9.]+\tincomplete=0$" \
	"$dir/report/r.txt" 2>/dev/null)
if [ "$lines" = 2 ] && [ "$good" = 2 ] && ! grep -q . "$dir/report/stderr"; then
	ok "ONNXHOOK_REPORT: 2 processes, 2 whole lines, no summary on stderr"
else
	fail "ONNXHOOK_REPORT: $lines line(s), $good well-formed: $(cat "$dir/report/r.txt" 2>/dev/null); stderr: $(err report)"
fi
run copy env ONNXHOOK_REPORT="$dir/copy.txt" "$cli" -o m.onnx "$seednet"
grep -qP "^v=1\tpid=[0-9]+\tpath=\Q$dir/copy/m.onnx\E\t" "$dir/copy.txt" 2>/dev/null &&
	grep -q '^onnxhook: wrote m\.onnx$' "$dir/copy/stderr" && ok "the user's ONNXHOOK_REPORT gets the lines too" ||
	fail "user's ONNXHOOK_REPORT: $(cat "$dir/copy.txt" 2>/dev/null); stderr: $(err copy)"
# A path with a tab and a % in it survives the escaping.
run odd "$cli" -o "$(printf 'a\tb%%%%.onnx')" "$seednet"
expect odd 0 "^onnxhook: wrote a.b%\.onnx$" "a model path with a tab and a %"

# 11. The man page: generated, valid, complete, installed.
if [ "$man" = - ] || [ ! -f "$man" ]; then
	fail "no man page was built: apt-get install help2man (tools/setup.sh does)"
else
	warnings=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
	[ -z "$warnings" ] && ok "groff -man -ww: no warnings" || fail "groff warnings: $warnings"
	# (groff-base: tools/setup.sh installs it with help2man)
	groff -man -Tutf8 -P-cbou "$man" >"$dir/man.txt" 2>"$dir/man.err" || fail "groff: $(cat "$dir/man.err")"
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT EXAMPLES 'SEE ALSO'; do
		grep -q "^$s" "$dir/man.txt" || fail "man page lacks the $s section"
	done
	for v in $(grep -o '"ONNXHOOK_[A-Z_]*"' "$src/src/config.c" | tr -d '"' | sort -u); do
		grep -q "$v" "$dir/man.txt" || fail "man page lacks $v"
	done
	grep -q -- '--list-symbols' "$dir/man.txt" && ok "man page: $(wc -l <"$dir/man.txt") lines, every section and variable"
	[ -n "$sman" ] && cmp -s "$sman" "$man" && ok "man page installed: ${sman#"$stage"}" ||
		fail "man page not installed to man1 (found: '${sman}')"
fi

if [ "$failures" -gt 0 ]; then
	echo "cli: $failures failure(s); work dir kept: $dir" >&2
	exit 1
fi
rm -rf "$dir"
