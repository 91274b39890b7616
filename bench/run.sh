#!/bin/sh
# SPDX-License-Identifier: MIT
# The benchmarks of issue #6: per-call overhead, whole runs, dump speed, growth; prints one table.
#
# usage: bench/run.sh [--quick | --smoke] [--runs N] [--build DIR] [--out FILE] [--no-callgrind]
#   (default)      the full table, written to bench/results.md as well (about 5-8 minutes on 2 cores)
#   --quick        smaller counts and 3 runs (about 2 minutes); writes bench/results-quick.md
#   --smoke        tiny sizes, 1 run, checks that every program runs and prints parsable output
#                  and that the traced programs write models; no thresholds (meson test --suite bench)
#   --runs N       runs per figure (default 5; 3 for the slowest rows)
#   --build DIR    meson build dir to use, set up and compiled if needed (default build-bench)
#   --out FILE     where the table goes (default as above; --smoke: a temporary file)
#   --no-callgrind skip the instruction counts (valgrind)
# The programs may also come from the environment (BENCH_CALLS, BENCH_CHAIN, BENCH_PRELOAD,
# BENCH_RUNSTAT, BENCH_RESNET18, BENCH_DARKNET_RUN, BENCH_DARKNET_WEIGHTS, BENCH_LOCATE,
# BENCH_TINYNN, BENCH_RESNET18_STATIC): the meson test does so.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mode=full runs='' build='' out='' callgrind=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) mode=quick; shift ;;
	--smoke) mode=smoke; shift ;;
	--runs) runs=${2:?--runs wants a number}; shift 2 ;;
	--build) build=${2:?--build wants a directory}; shift 2 ;;
	--out) out=${2:?--out wants a file}; shift 2 ;;
	--no-callgrind) callgrind=0; shift ;;
	-h|--help) sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# Nothing of the caller's preloading or tracing settings may leak into the measurements.
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(ONNXHOOK_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done

# ---- sizes -------------------------------------------------------------------------------
case $mode in
full)
	R=${runs:-5} RS=${runs:-3} RP=${runs:-21}
	N_CALLS=1000000 N_REC=1000000 N_LTRACE=10000 N_UFTRACE=100000
	CHAIN_SIZES="1 10 100 1000 10000" R18_ARGS="--size 224" DN_CFGS="resnet50 yolov3-tiny"
	;;
quick)
	R=${runs:-3} RS=${runs:-3} RP=${runs:-9}
	N_CALLS=1000000 N_REC=100000 N_LTRACE=3000 N_UFTRACE=30000
	CHAIN_SIZES="1 10 100 1000 10000" R18_ARGS="--size 224" DN_CFGS="resnet50 yolov3-tiny"
	;;
smoke)
	R=${runs:-1} RS=${runs:-1} RP=${runs:-1}
	N_CALLS=2000 N_REC=2000 N_LTRACE=20 N_UFTRACE=200
	CHAIN_SIZES="1 10" R18_ARGS="--size 32" DN_CFGS="smoke"
	callgrind=0
	;;
esac
case $R$RS in *[!0-9]*) die "--runs wants a number" ;; esac

# ---- programs ----------------------------------------------------------------------------
if [ -z "${BENCH_CALLS:-}" ]; then
	build=${build:-$root/build-bench}
	case $build in /*) ;; *) build=$(pwd)/$build ;; esac
	if [ ! -f "$build/build.ninja" ]; then
		say "meson setup $build"
		meson setup "$build" "$root" >/dev/null
	fi
	say "ninja -C $build -j2"
	ninja -C "$build" -j2 >/dev/null || die "build failed: ninja -C $build"
	BENCH_CALLS=$build/bench/calls BENCH_CHAIN=$build/bench/chain
	BENCH_PRELOAD=$build/preload/libonnxhook.so BENCH_RUNSTAT=$build/tools/runstat
	BENCH_RESNET18=$build/demo/resnet18 BENCH_LOCATE=$build/bench/locate
	BENCH_TINYNN=$build/demo/tinynn/libtinynn.so.0 BENCH_RESNET18_STATIC=$build/demo/resnet18-static
	BENCH_CALLS_STATIC=$build/bench/calls-static BENCH_RESNET18_VENDOR=$build/demo/resnet18-vendor
	if [ -x "$build/demo/darknet/darknet-run" ]; then
		BENCH_DARKNET_RUN=$build/demo/darknet/darknet-run
		BENCH_DARKNET_WEIGHTS=$build/demo/darknet/darknet-weights
	fi
fi
CALLS=$BENCH_CALLS CHAIN=$BENCH_CHAIN PRELOAD=$BENCH_PRELOAD RUNSTAT=$BENCH_RUNSTAT
RESNET18=$BENCH_RESNET18 DN_RUN=${BENCH_DARKNET_RUN:-} DN_WEIGHTS=${BENCH_DARKNET_WEIGHTS:-}
CALLS_STATIC=${BENCH_CALLS_STATIC:-} R18_VENDOR=${BENCH_RESNET18_VENDOR:-}
LOCATE=${BENCH_LOCATE:-} TINYNN=${BENCH_TINYNN:-} R18_STATIC=${BENCH_RESNET18_STATIC:-}
for p in "$CALLS" "$CHAIN" "$RUNSTAT" "$RESNET18" "$LOCATE" "$R18_STATIC"; do
	[ -x "$p" ] || die "$p is not an executable file"
done
[ -f "$PRELOAD" ] || die "$PRELOAD does not exist"
# A preload built with ASan (the sanitizer test run) must follow libasan in LD_PRELOAD.
set -- "$PRELOAD" # (the options were parsed above; dash's "." passes no arguments)
. "$root/tests/e2e/preload-env.sh"
PRELOAD=$hook_preload
cache=$(dirname "$CALLS")/cache # darknet weights, generated once per build dir
tmp=$(mktemp -d "${TMPDIR:-/tmp}/onnxhook-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
log=$tmp/log

case $mode in
full) out=${out:-$here/results.md} ;;
quick) out=${out:-$here/results-quick.md} ;;
smoke) out=${out:-$tmp/results.md} ;;
esac

# ---- helpers -----------------------------------------------------------------------------
# kv KEY LINE: the value of KEY=... in a line of key=value words.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
num() { # num VALUE WHAT: VALUE must be a number
	case $1 in '' | *[!0-9.e+-]*) die "$2: not a number: '$1' (log: $(tail -n 3 "$log" 2>/dev/null))" ;; esac
	printf '%s\n' "$1"
}
# stats FILE: "min median" of the numbers in FILE, one a line.
stats() {
	sort -g "$1" | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "nan nan"; exit }
		m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.9g %.9g\n", a[1], m }'
}
calc() { awk "BEGIN { printf \"$1\\n\", $2 }"; }
med() { stats "$1" | cut -d' ' -f2; }
mn() { stats "$1" | cut -d' ' -f1; }
# The preload's summary line: "onnxhook: wrote P: N nodes (...), ..., X.XXM parameters, Y MB, Z s"
# (below a million, the parameters are counted exactly: "855 parameters, 4.6 KB")
summary_nodes() { sed -n 's/^onnxhook: wrote .*: \([0-9]*\) nodes .*/\1/p' "$1" | head -n 1; }
summary_dump_s() { sed -n 's/^onnxhook: wrote .*, \([0-9.]*\) s\( (.*)\)\{0,1\}$/\1/p' "$1" | head -n 1; }
summary_params_m() {
	sed -n 's/^onnxhook: wrote .*, \([0-9.]*[MG]\{0,1\}\) parameters, .*/\1/p' "$1" | head -n 1 |
		awk '{ v = $1 + 0; if ($1 ~ /G$/) v *= 1000; else if ($1 !~ /M$/) v /= 1e6; printf "%.9g\n", v }'
}
hooked() { env LD_PRELOAD="$PRELOAD" "$@"; }

table=$tmp/table.md
emit() { printf '%s\n' "$*" >>"$table"; }
emit_fig() { printf '%s' "$*" >>"$table"; }

# (Shell variables are global: each function uses its own prefix.)
calls_one() { # calls_one FILE MODE COUNT WRAPPER...: one run's ns a call appended to FILE
	co_f=$1 co_m=$2 co_c=$3
	shift 3
	co_line=$("$@" "$CALLS" "$co_m" "$co_c" 2>>"$log") || true
	num "$(kv ns_per_call "$co_line")" "calls $co_m $co_c ($*)" >>"$co_f"
}
calls_runs() { # calls_runs FILE RUNS MODE COUNT WRAPPER... (WRAPPER runs "$CALLS MODE COUNT")
	cr_f=$1 cr_n=$2 cr_m=$3 cr_c=$4
	shift 4
	: >"$cr_f"
	cr_i=0
	while [ "$cr_i" -lt "$cr_n" ]; do
		calls_one "$cr_f" "$cr_m" "$cr_c" "$@"
		cr_i=$((cr_i + 1))
	done
}
# calls_pair FILE MODE COUNT ENV...: FILE.native (no preload) and FILE.pass (preloaded with ENV,
# capture finished), RP runs each, alternating; FILE.diff: each pair's difference (pass - native),
# so that the machine's load, which drifts over seconds on a shared machine, mostly cancels.
# over FILE KEY MEDIAN NATIVE-MEDIAN: a row's ns over native (FILE.KEY's runs): for the
# pass-through, the median of the paired differences; else the difference of the medians.
over() {
	if [ "$2" = pass ] && [ -s "$1.diff" ]; then
		calc '%.1f' "$(med "$1.diff")"
	else
		calc '%.1f' "$3 - $4"
	fi
}
calls_pair() {
	cp_f=$1 cp_m=$2 cp_c=$3
	shift 3
	: >"$cp_f.native"
	: >"$cp_f.pass"
	: >"$cp_f.diff"
	cp_i=0
	while [ "$cp_i" -lt "$RP" ]; do
		calls_one "$cp_f.native" "$cp_m" "$cp_c" env
		calls_one "$cp_f.pass" "$cp_m" "$cp_c" hooked "$@"
		calc '%.9g' "$(tail -n 1 "$cp_f.pass") - $(tail -n 1 "$cp_f.native")" >>"$cp_f.diff"
		cp_i=$((cp_i + 1))
	done
}

# ---- header ------------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain -- src preload demo proto 2>/dev/null | head -n 1)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
say "mode $mode, $R runs a figure ($RS for the slow rows); log in $log"
: >"$table"
emit "# onnxhook benchmarks"
emit ""
emit "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
emit "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit${dirty:+ (plus uncommitted changes in src/, preload/ or demo/)}"
emit "- command: \`bench/run.sh$( [ "$mode" = full ] || printf ' --%s' "$mode")\`; each figure: min / median of $R runs ($RS for recording and ltrace rows; $RP for pass-through rows and their native rows, alternating)"
emit "- load average at start: $load0 (load from other users makes timings noisy: re-run on a quiet machine)"
emit ""

# ---- 1. per-call overhead ----------------------------------------------------------------
say "1. per-call overhead"
emit "## 1. Per-call overhead (\`bench/calls\`, tnn_relu / tnn_add on 1x1x1x4)"
emit ""
emit "| call | how | calls/run | ns/call min | ns/call median | over native, ns (median; pass-through: of paired runs) | x native (median) |"
emit "|---|---|---:|---:|---:|---:|---:|"
ltrace_ok=0 uftrace_ok=0
command -v ltrace >/dev/null 2>&1 && ltrace_ok=1
command -v uftrace >/dev/null 2>&1 && uftrace_ok=1
rec_env="ONNXHOOK_OUTPUT=$tmp/calls.onnx ONNXHOOK_MAX_NODES=1000000000 CALLS_KILL=1"
for op in relu add; do
	f=$tmp/calls-$op
	calls_pair "$f" "$op" "$N_CALLS" "ONNXHOOK_OUTPUT=$tmp/calls.onnx"
	# shellcheck disable=SC2086 # rec_env: words
	for s in 1 0; do
		calls_runs "$f.all$s" "$RS" "$op" "$N_REC" hooked $rec_env ONNXHOOK_PASS=all "ONNXHOOK_STACK=$s"
		calls_runs "$f.chain$s" "$RS" "$op-chain" "$N_REC" hooked $rec_env "ONNXHOOK_STACK=$s"
	done
	[ "$ltrace_ok" = 1 ] && calls_runs "$f.ltrace" "$RS" "$op" "$N_LTRACE" ltrace -o /dev/null -e "tnn_$op"
	[ "$uftrace_ok" = 1 ] && calls_runs "$f.uftrace" "$RS" "$op" "$N_UFTRACE" \
		uftrace record --force -d "$tmp/uftrace.data"
	rm -rf "$tmp/uftrace.data" "$tmp/uftrace.data.old" "$tmp/calls.onnx"
	nat=$(med "$f.native")
	eval "over_$op=\$(over \"\$f\" pass 0 0)"
	for row in "native:no preload:$N_CALLS" \
		"pass:hooked, capture finished (pass-through):$N_CALLS" \
		"all1:hooked, recording every call (ONNXHOOK_PASS=all), stack on:$N_REC" \
		"all0:hooked, recording every call (ONNXHOOK_PASS=all), stack off:$N_REC" \
		"chain1:hooked, recording one long pass (ring of 1024 buffers), stack on:$N_REC" \
		"chain0:hooked, recording one long pass (ring of 1024 buffers), stack off:$N_REC" \
		"ltrace:ltrace -e tnn_$op:$N_LTRACE" \
		"uftrace:uftrace record --force (PLT):$N_UFTRACE"; do
		key=${row%%:*} rest=${row#*:}
		how=${rest%:*} n=${rest##*:}
		[ -s "$f.$key" ] || continue
		set -- $(stats "$f.$key")
		emit "| tnn_$op | $how | $n | $(calc '%.1f' "$1") | $(calc '%.1f' "$2") | $(over "$f" "$key" "$2" "$nat") | $(calc '%.2f' "$2 / $nat") |"
	done
done
# free: the allocator hooks (alloc.c), malloc(16) + free pairs
f=$tmp/calls-free
calls_pair "$f" free "$N_CALLS" "ONNXHOOK_OUTPUT=$tmp/calls.onnx"
calls_runs "$f.rec" "$R" free-recording "$N_CALLS" hooked "ONNXHOOK_OUTPUT=$tmp/calls.onnx"
rm -f "$tmp/calls.onnx"
nat_free=$(med "$f.native") over_free=$(over "$f" pass 0 0)
for row in "native:no preload" "pass:hooked, capture finished (pass-through)" \
	"rec:hooked, still recording (nothing mapped)"; do
	key=${row%%:*} how=${row#*:}
	set -- $(stats "$f.$key")
	emit "| malloc + free | $how | $N_CALLS | $(calc '%.1f' "$1") | $(calc '%.1f' "$2") | $(over "$f" "$key" "$2" "$nat_free") | $(calc '%.2f' "$2 / $nat_free") |"
done
# The same calls with tinynn linked into the program: the inline hooks (preload/patch-x86_64.c),
# against the same program without the preload.
static_ok=0
if [ -x "$CALLS_STATIC" ] && [ -f "$TINYNN" ]; then
	static_ok=1
	for op in relu add; do
		f=$tmp/static-$op
		st_calls=$CALLS CALLS=$CALLS_STATIC
		calls_pair "$f" "$op" "$N_CALLS" "ONNXHOOK_OUTPUT=$tmp/calls.onnx" "ONNXHOOK_HOST_CODE=$TINYNN"
		CALLS=$st_calls
		rm -f "$tmp/calls.onnx"
		nat=$(med "$f.native")
		eval "sover_$op=\$(over \"\$f\" pass 0 0)"
		for row in "native:linked in (bench/calls-static), no preload" \
			"pass:linked in, inline hook, capture finished (pass-through)"; do
			key=${row%%:*} how=${row#*:}
			set -- $(stats "$f.$key")
			emit "| tnn_$op | $how | $N_CALLS | $(calc '%.1f' "$1") | $(calc '%.1f' "$2") | $(over "$f" "$key" "$2" "$nat") | $(calc '%.2f' "$2 / $nat") |"
		done
	done
fi
[ "$ltrace_ok" = 1 ] || emit "| | ltrace: not installed (tools/setup.sh installs it) | | | | | |"
[ "$uftrace_ok" = 1 ] || emit "| | uftrace: not installed (tools/setup.sh installs it) | | | | | |"
rec_worst=$(cat "$tmp"/calls-*.all1 "$tmp"/calls-*.chain1 | sort -g | tail -n 1)
rec_chain1=$(med "$tmp/calls-relu.chain1")
rec_chain0=$(med "$tmp/calls-relu.chain0")
rec_all1=$(med "$tmp/calls-relu.all1")
rec_all0=$(med "$tmp/calls-relu.all0")
emit ""
emit "Recording rows: the loop alone (the process kills itself after it, so no model is written;"
emit "section 3 measures writing). \"Every call\": each call repeats the pass's first call, so each"
emit "starts a new pass (recorded twice: once found to start a pass and rolled back, then again)."
emit "\"One long pass\": relu/add from buffer i to i+1 of a ring, so every call reads what the"
emit "previous one wrote. relu and add have no weights: no weight copy is included."
emit "\"Linked in\": tinynn's objects inside the program (no library to interpose); the preload locates"
emit "its functions by their code and patches their entries to jump to the hooks (over native: that"
emit "program without the preload)."

# ---- 1c. locating a host linked into a program ----
# The preload's debug line "onnxhook: H: all N functions located in P and hooked (S s)": the time
# from reading the reference to the patched entries, at start-up.
locate_runs() { # locate_runs FILE RUNS PROGRAM [ARGS...] (with $lr_env in the environment)
	lr_f=$1 lr_n=$2
	shift 2
	: >"$lr_f"
	lr_i=0
	while [ "$lr_i" -lt "$lr_n" ]; do
		# shellcheck disable=SC2086 # lr_env: words
		env LD_PRELOAD="$PRELOAD" ONNXHOOK_LOG=debug $lr_env "$@" </dev/null 2>&1 >/dev/null |
			sed -n 's/^onnxhook: \([a-z0-9_]*\): all \([0-9]*\) functions located in .* and hooked (\([0-9.]*\) s)$/\1 \2 \3/p' |
			head -n 1 >>"$lr_f" || true
		lr_i=$((lr_i + 1))
	done
}
say "1c. locating a host linked into a program"
emit ""
emit "### Locating a host linked into a program (start-up, \`ONNXHOOK_LOG=debug\`'s line)"
emit ""
emit "| program | reference | functions located and hooked | locate + patch, ms min | ms median |"
emit "|---|---|---:|---:|---:|"
loc_rows=""
[ "$static_ok" = 1 ] && loc_rows="calls-static"
[ -n "$R18_VENDOR" ] && [ -x "$R18_VENDOR" ] && loc_rows="$loc_rows vendor"
[ -x /usr/bin/darknet ] && [ -f /usr/lib/darknet/libdarknet.so ] && loc_rows="$loc_rows darknet"
for p in $loc_rows; do
	f=$tmp/locate-$p
	case $p in
	calls-static) lr_env="ONNXHOOK_HOST_CODE=$TINYNN ONNXHOOK_OUTPUT=$tmp/l.onnx"
		prog=bench/calls-static ref=libtinynn.so
		locate_runs "$f" "$R" "$CALLS_STATIC" relu 1 ;;
	vendor) lr_env="ONNXHOOK_HOST_CODE=$TINYNN ONNXHOOK_OUTPUT=$tmp/l.onnx"
		prog="demo/resnet18-vendor (in its libresnet18-vendor.so)" ref=libtinynn.so
		locate_runs "$f" "$R" "$R18_VENDOR" --size 32 ;;
	darknet) lr_env="ONNXHOOK_OUTPUT=$tmp/l.onnx"
		prog=/usr/bin/darknet ref=/usr/lib/darknet/libdarknet.so
		locate_runs "$f" "$R" /usr/bin/darknet ;;
	esac
	rm -f "$tmp/l.onnx"
	[ -s "$f" ] || { emit "| $prog | $ref | none (see the log) | | |"; continue; }
	cut -d' ' -f3 "$f" >"$f.s"
	set -- $(stats "$f.s")
	emit "| $prog | $ref | $(head -n 1 "$f" | cut -d' ' -f2) of them ($(head -n 1 "$f" | cut -d' ' -f1)) | $(calc '%.1f' "$1 * 1000") | $(calc '%.1f' "$2 * 1000") |"
	eval "loc_ms_$(printf '%s' "$p" | tr -c 'a-z0-9\n' _)=\$(calc '%.1f' \"\$2 * 1000\")"
done

# ---- 1d. start-up of programs with no host code -------------------------------------------
# Every process under LD_PRELOAD (shells, launchers, python) loads the preload, whose constructor
# locates each host with a reference in the executable: for a program of other code the quick
# reject (.eh_frame_hdr's FDEs) answers without decoding it. Plain and preloaded runs alternate.
say "1d. start-up of programs with no host code"
emit ""
emit "### Start-up of a program with no host code (preloaded vs plain, runs alternating)"
emit ""
emit "| program | runs | plain ms min / med | preloaded ms min / med | preloaded / plain (med) | instructions plain / preloaded (callgrind) | the locator (\`ONNXHOOK_LOG=debug\`) |"
emit "|---|---:|---:|---:|---:|---:|---|"
# su_ir ENV...: the instructions a run executes, whole (callgrind's "Collected"), or "-"
su_ir() {
	if [ "$callgrind" = 1 ] && command -v valgrind >/dev/null 2>&1; then
		env "$@" valgrind --tool=callgrind --callgrind-out-file="$tmp/su.cg" $su 2>&1 >/dev/null </dev/null |
			sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' | head -n 1
	else
		echo -
	fi
}
su_n=$((R * 4))
for su in "/usr/bin/python3 -c pass" "/bin/true"; do
	# shellcheck disable=SC2086 # su: a command and its words
	set -- $su
	[ -x "$1" ] || continue
	: >"$tmp/su-plain"
	: >"$tmp/su-hooked"
	su_i=0
	while [ "$su_i" -lt "$su_n" ]; do
		"$RUNSTAT" -o "$tmp/su.st" -- env LD_PRELOAD= "$@" >/dev/null 2>>"$log" || die "$su failed"
		num "$(kv wall_s "$(cat "$tmp/su.st")")" "$su wall" >>"$tmp/su-plain"
		"$RUNSTAT" -o "$tmp/su.st" -- env LD_PRELOAD="$PRELOAD" "$@" >/dev/null 2>>"$log" ||
			die "$su failed preloaded"
		num "$(kv wall_s "$(cat "$tmp/su.st")")" "$su wall" >>"$tmp/su-hooked"
		su_i=$((su_i + 1))
	done
	su_how=$(env LD_PRELOAD="$PRELOAD" ONNXHOOK_LOG=debug "$@" 2>&1 >/dev/null </dev/null |
		sed -n 's/^onnxhook: locate: \([a-z0-9_]*\): \(quick reject\|whole-code sweep\).*/\1: \2/p' |
		paste -sd ';' - | sed 's/;/; /g')
	su_ir_plain=$(su_ir LD_PRELOAD=) su_ir_hooked=$(su_ir LD_PRELOAD="$PRELOAD")
	set -- $(stats "$tmp/su-plain") $(stats "$tmp/su-hooked")
	emit "| \`$su\` | $su_n | $(calc '%.1f / %.1f' "$1 * 1000, $2 * 1000") | $(calc '%.1f / %.1f' "$3 * 1000, $4 * 1000") | $(calc '%.2f' "$4 / $2") | ${su_ir_plain:--} / ${su_ir_hooked:--} | ${su_how:-no host located} |"
done

# Instruction counts: deterministic, unlike the timings on a shared machine.
if [ "$callgrind" = 1 ] && command -v valgrind >/dev/null 2>&1; then
	say "1b. instruction counts (callgrind)"
	# ir MODE COUNT ENV...: instructions executed inside main() for COUNT calls
	ir() {
		cm=$1 cc=$2
		shift 2
		rm -f "$tmp/cg.out"
		if [ "${ir_whole:-0}" = 1 ]; then
			env "$@" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
				"$CALLS" "$cm" "$cc" >/dev/null 2>>"$log" || true
		else
			env "$@" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" --collect-atstart=no \
				--toggle-collect=main "$CALLS" "$cm" "$cc" >/dev/null 2>>"$log" || true
		fi
		sed -n 's/^summary: //p' "$tmp/cg.out" 2>/dev/null | head -n 1
	}
	# per-call instructions: the slope between two counts (setup and first calls cancel out)
	ir_slope() {
		cm=$1 a=$2 b=$3
		shift 3
		x=$(num "$(ir "$cm" "$a" "$@")" "callgrind $cm $a")
		y=$(num "$(ir "$cm" "$b" "$@")" "callgrind $cm $b")
		calc '%.0f' "($y - $x) / ($b - $a)"
	}
	cg_env="ONNXHOOK_OUTPUT=/dev/null ONNXHOOK_MAX_NODES=1000000000"
	# shellcheck disable=SC2086
	{
		ir_nat=$(ir_slope relu 50000 100000)
		ir_pass=$(ir_slope relu 50000 100000 LD_PRELOAD="$PRELOAD" $cg_env)
		ir_chain1=$(ir_slope relu-chain 5000 10000 LD_PRELOAD="$PRELOAD" $cg_env ONNXHOOK_STACK=1)
		ir_chain0=$(ir_slope relu-chain 5000 10000 LD_PRELOAD="$PRELOAD" $cg_env ONNXHOOK_STACK=0)
		ir_all1=$(ir_slope relu 5000 10000 LD_PRELOAD="$PRELOAD" $cg_env ONNXHOOK_PASS=all ONNXHOOK_STACK=1)
		ir_all0=$(ir_slope relu 5000 10000 LD_PRELOAD="$PRELOAD" $cg_env ONNXHOOK_PASS=all ONNXHOOK_STACK=0)
		ir_free_nat=$(ir_slope free 50000 100000)
		ir_free_pass=$(ir_slope free 50000 100000 LD_PRELOAD="$PRELOAD" $cg_env)
		ir_free_rec=$(ir_slope free-recording 50000 100000 LD_PRELOAD="$PRELOAD" $cg_env)
		# tinynn linked in, stripped (no main to start collecting at): the whole run's count,
		# whose slope still cancels the start-up (the locating and patching included)
		if [ "$static_ok" = 1 ]; then
			ir_whole=1 ir_calls=$CALLS CALLS=$CALLS_STATIC
			ir_snat=$(ir_slope relu 50000 100000)
			ir_spass=$(ir_slope relu 50000 100000 LD_PRELOAD="$PRELOAD" $cg_env "ONNXHOOK_HOST_CODE=$TINYNN")
			ir_whole=0 CALLS=$ir_calls
		fi
	}
	emit ""
	emit "Instructions per tnn_relu call (valgrind --tool=callgrind, slope between two call counts;"
	emit "deterministic, unaffected by the machine's load):"
	emit ""
	emit "| native | pass-through | one long pass, stack on / off | every call a pass, stack on / off |"
	emit "|---:|---:|---:|---:|"
	emit "| $ir_nat | $ir_pass (+$((ir_pass - ir_nat))) | $ir_chain1 / $ir_chain0 | $ir_all1 / $ir_all0 |"
	emit ""
	emit "Instructions per malloc(16) + free pair: native $ir_free_nat, hooked after the capture $ir_free_pass"
	emit "(+$((ir_free_pass - ir_free_nat))), hooked while recording $ir_free_rec (+$((ir_free_rec - ir_free_nat)))."
	[ "$static_ok" = 1 ] &&
		emit "With tinynn linked in (\`bench/calls-static\`): native $ir_snat instructions a tnn_relu call, hooked inline after the capture $ir_spass (+$((ir_spass - ir_snat)): entry jump, thunk, hook, trampoline and jump back)."
fi
emit ""

# ---- 2. whole runs -----------------------------------------------------------------------
say "2. whole runs"
# whole NAME CMD...: RUNS untraced and traced runs, interleaved; files $tmp/w-NAME.*
whole() {
	wh_name=$1
	shift
	wh_w=$tmp/w-$wh_name
	: >"$wh_w.nwall"; : >"$wh_w.nrss"; : >"$wh_w.twall"; : >"$wh_w.trss"; : >"$wh_w.dump"; : >"$wh_w.strip"
	wh_i=0
	while [ "$wh_i" -lt "$R" ]; do
		"$RUNSTAT" -o "$wh_w.st" -- "$@" >/dev/null 2>>"$log" || die "$wh_name failed untraced: $*"
		wh_st=$(cat "$wh_w.st")
		num "$(kv wall_s "$wh_st")" "$wh_name wall" >>"$wh_w.nwall"
		num "$(kv maxrss_kib "$wh_st")" "$wh_name rss" >>"$wh_w.nrss"
		rm -f "$wh_w.onnx"
		"$RUNSTAT" -o "$wh_w.st" -- env LD_PRELOAD="$PRELOAD" ONNXHOOK_OUTPUT="$wh_w.onnx" "$@" \
			>/dev/null 2>"$wh_w.err" || { cat "$wh_w.err" >>"$log"; die "$wh_name failed traced: $*"; }
		grep '^onnxhook: ' "$wh_w.err" >>"$log" || true
		[ -s "$wh_w.onnx" ] || die "$wh_name: traced run wrote no model ($(grep '^onnxhook: ' "$wh_w.err" | head -n 3))"
		wh_st=$(cat "$wh_w.st")
		wh_tw=$(num "$(kv wall_s "$wh_st")" "$wh_name traced wall")
		wh_d=$(num "$(summary_dump_s "$wh_w.err")" "$wh_name: the summary line's write time")
		printf '%s\n' "$wh_tw" >>"$wh_w.twall"
		printf '%s\n' "$wh_d" >>"$wh_w.dump"
		calc '%.6f' "$wh_tw - $wh_d" >>"$wh_w.strip"
		num "$(kv maxrss_kib "$wh_st")" "$wh_name traced rss" >>"$wh_w.trss"
		wh_i=$((wh_i + 1))
	done
	num "$(summary_params_m "$wh_w.err")" "$wh_name: the summary line's parameters" >"$wh_w.params"
	wc -c <"$wh_w.onnx" | tr -d ' ' >"$wh_w.bytes"
}
whole_row() { # whole_row NAME LABEL
	w=$tmp/w-$1
	nw=$(med "$w.nwall") tw=$(med "$w.twall") sw=$(med "$w.strip")
	nr=$(med "$w.nrss") tr=$(med "$w.trss")
	wb=$(calc '%.0f' "$(cat "$w.params") * 4e6")
	eval "ratio_$1=\$(calc '%.3f' \"\$tw / \$nw\") rss_$1=\$(calc '%.3f' \"(\$tr - \$nr) * 1024 / \$wb\")"
	emit "| $2 | $(calc '%.2f' "$(mn "$w.nwall")") / $(calc '%.2f' "$nw") | $(calc '%.2f' "$(mn "$w.twall")") / $(calc '%.2f' "$tw") |" \
		"$(calc '%.3f' "$tw / $nw") | $(calc '%.2f' "$(mn "$w.dump")") / $(calc '%.2f' "$(med "$w.dump")") |" \
		"$(calc '%.3f' "$sw / $nw") | $(calc '%.1f' "$nr / 1024") | $(calc '%.1f' "$tr / 1024") |" \
		"$(calc '%.1f' "($tr - $nr) / 1024") | $(calc '%.1f' "$wb / 1048576") | $(calc '%.2f' "($tr - $nr) * 1024 / $wb") |"
}
whole resnet18 "$RESNET18" $R18_ARGS
dn_names=''
if [ -n "$DN_RUN" ] && [ -x "$DN_RUN" ] && [ -x "$DN_WEIGHTS" ]; then
	mkdir -p "$cache"
	for c in $DN_CFGS; do
		cfg=/usr/share/darknet/cfg/$c.cfg
		if [ "$c" = smoke ]; then # a tiny network of our own: the smoke test stays fast
			cfg=$tmp/smoke.cfg
			printf '%s\n' '[net]' batch=1 width=16 height=16 channels=3 \
				'[convolutional]' batch_normalize=1 filters=8 size=3 stride=1 pad=1 activation=leaky \
				'[maxpool]' size=2 stride=2 \
				'[convolutional]' filters=4 size=1 stride=1 pad=1 activation=linear >"$cfg"
		fi
		[ -f "$cfg" ] || { say "skipping $c: $cfg missing"; continue; }
		wf=$cache/$c.weights
		if [ "$c" = smoke ] || [ ! -s "$wf" ] || [ "$cfg" -nt "$wf" ] || [ "$DN_WEIGHTS" -nt "$wf" ]; then
			say "   darknet-weights $c (once per build dir)"
			"$DN_WEIGHTS" "$cfg" "$wf.tmp" --seed 1 >/dev/null 2>>"$log" || die "darknet-weights $cfg failed"
			mv "$wf.tmp" "$wf"
		fi
		name=$(printf '%s' "$c" | tr -c 'a-zA-Z0-9\n' '_')
		whole "$name" "$DN_RUN" "$cfg" --weights "$wf"
		dn_names="$dn_names $name:$c"
	done
fi
emit "## 2. Whole runs: untraced vs traced (one inference, model written at exit)"
emit ""
emit "| run | untraced wall s (min / med) | traced wall s (min / med) | x | dump s (min / med) | x without the dump | peak RSS untraced MiB | traced MiB | extra MiB | weights MiB | extra / weights |"
emit "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
whole_row resnet18 "resnet18 (tinynn) $R18_ARGS"
for nc in $dn_names; do
	whole_row "${nc%%:*}" "darknet ${nc#*:}.cfg"
done
[ -n "$DN_RUN" ] || emit "| darknet | not built (the darknet feature is off: apt-get install darknet) | | | | | | | | | |"
emit ""
emit "x: median traced / median untraced wall time. Dump: the write time the preload reports in its"
emit "summary line (2 decimals). Weights: parameters x 4 bytes, from the summary line."
emit ""

# ---- 3. dump speed -----------------------------------------------------------------------
say "3. dump speed"
big=resnet18 bigname="resnet18 (tinynn)"
for nc in $dn_names; do
	n=${nc%%:*}
	if [ "$(cat "$tmp/w-$n.bytes")" -gt "$(cat "$tmp/w-$big.bytes")" ]; then
		big=$n bigname="darknet ${nc#*:}.cfg"
	fi
done
model=$tmp/w-$big.onnx
: >"$tmp/cp"
i=0
while [ "$i" -lt "$R" ]; do
	rm -f "$tmp/copy.onnx"
	"$RUNSTAT" -o "$tmp/cp.st" -- cp "$model" "$tmp/copy.onnx" 2>>"$log" || die "cp failed"
	num "$(kv wall_s "$(cat "$tmp/cp.st")")" "cp wall" >>"$tmp/cp"
	i=$((i + 1))
done
rm -f "$tmp/copy.onnx"
dump_med=$(med "$tmp/w-$big.dump") cp_med=$(med "$tmp/cp")
dump_ratio=$(calc '%.2f' "$dump_med / ($cp_med > 0 ? $cp_med : 1e-9)")
fs=$(df -P "$tmp" | awk 'NR == 2 { print $1 }')
emit "## 3. Dump speed"
emit ""
emit "| model | size MB | dump s (min / med) | cp s (min / med) | dump / cp (median) |"
emit "|---|---:|---:|---:|---:|"
emit "| $bigname | $(calc '%.1f' "$(cat "$tmp/w-$big.bytes") / 1e6") | $(calc '%.2f' "$(mn "$tmp/w-$big.dump")") / $(calc '%.2f' "$dump_med") |" \
	"$(calc '%.3f' "$(mn "$tmp/cp")") / $(calc '%.3f' "$cp_med") | $dump_ratio |"
emit ""
emit "Both write the same bytes to the same file system ($fs, under ${TMPDIR:-/tmp}); cp reads the model"
emit "the traced run just wrote. The page cache is not dropped (it would slow down everyone on a shared"
emit "machine), and neither calls fsync: both measure writing into the page cache. cp's time is its"
emit "whole process (fork, exec, copy); the dump's is the preload's own clock, with 2 decimals."
emit ""

# ---- 4. growth ---------------------------------------------------------------------------
say "4. growth"
for L in $CHAIN_SIZES; do
	g=$tmp/g-$L
	: >"$g.nloop"; : >"$g.tloop"; : >"$g.nheap"; : >"$g.theap"; : >"$g.nwall"; : >"$g.twall"
	: >"$g.nrss"; : >"$g.trss"; : >"$g.dump"
	i=0
	while [ "$i" -lt "$R" ]; do
		line=$("$RUNSTAT" -o "$g.st" -- "$CHAIN" "$L" 2>>"$log") || die "chain $L failed"
		st=$(cat "$g.st")
		num "$(kv loop_s "$line")" "chain $L loop_s" >>"$g.nloop"
		num "$(kv heap_bytes "$line")" "chain $L heap" >>"$g.nheap"
		num "$(kv wall_s "$st")" "chain $L wall" >>"$g.nwall"
		num "$(kv maxrss_kib "$st")" "chain $L rss" >>"$g.nrss"
		rm -f "$g.onnx"
		line=$("$RUNSTAT" -o "$g.st" -- env LD_PRELOAD="$PRELOAD" ONNXHOOK_OUTPUT="$g.onnx" "$CHAIN" "$L" \
			2>"$g.err") || { cat "$g.err" >>"$log"; die "chain $L failed traced"; }
		grep '^onnxhook: ' "$g.err" >>"$log" || true
		[ -s "$g.onnx" ] || die "chain $L: no model written"
		nodes=$(summary_nodes "$g.err")
		[ "$nodes" = "$L" ] || die "chain $L: the model has '$nodes' nodes, not $L"
		st=$(cat "$g.st")
		num "$(kv loop_s "$line")" "chain $L traced loop_s" >>"$g.tloop"
		num "$(kv heap_bytes "$line")" "chain $L traced heap" >>"$g.theap"
		num "$(kv wall_s "$st")" "chain $L traced wall" >>"$g.twall"
		num "$(kv maxrss_kib "$st")" "chain $L traced rss" >>"$g.trss"
		num "$(summary_dump_s "$g.err")" "chain $L dump" >>"$g.dump"
		i=$((i + 1))
	done
	# deltas traced - native: recording time of the loop (min: least disturbed), heap, wall, rss
	echo "$(calc '%.9f' "$(mn "$g.tloop") - $(mn "$g.nloop")") $(calc '%.0f' "$(med "$g.theap") - $(med "$g.nheap")")" \
		"$(calc '%.6f' "$(med "$g.twall") - $(med "$g.nwall")") $(calc '%.0f' "$(med "$g.trss") - $(med "$g.nrss")")" >"$g.delta"
done
base=${CHAIN_SIZES%% *}
set -- $(cat "$tmp/g-$base.delta")
b_t=$1 b_h=$2 b_w=$3 b_r=$4
emit "## 4. Growth: a chain of L layers (\`bench/chain L\`: 1x1 conv 8->8 with its own weights, relu, ...)"
emit ""
emit "| L | loop native ms (min) | loop traced ms (min) | recording us/layer | recorder heap B/layer | wall traced - native ms (med) | peak RSS traced - native KiB (med) | dump s (med) |"
emit "|---:|---:|---:|---:|---:|---:|---:|---:|"
: >"$tmp/per-t"; : >"$tmp/per-h"
for L in $CHAIN_SIZES; do
	g=$tmp/g-$L
	set -- $(cat "$g.delta")
	if [ "$L" = "$base" ]; then
		pt="(base)" ph="(base: $2 B)"
	else
		pt=$(calc '%.3f' "($1 - $b_t) * 1e6 / ($L - $base)")
		ph=$(calc '%.0f' "($2 - $b_h) / ($L - $base)")
		# The ratio: sizes of 100 layers and more (below, the fixed first-call costs' noise of
		# about 0.1 ms is more than the layers' own time).
		if [ "$L" -ge 100 ] || [ "$mode" = smoke ]; then
			echo "$pt" >>"$tmp/per-t"
			echo "$ph" >>"$tmp/per-h"
		fi
	fi
	emit "| $L | $(calc '%.3f' "$(mn "$g.nloop") * 1e3") | $(calc '%.3f' "$(mn "$g.tloop") * 1e3") | $pt | $ph |" \
		"$(calc '%.1f' "$3 * 1e3") | $(calc '%.0f' "$4") | $(calc '%.2f' "$(med "$g.dump")") |"
done
lin_t=nan lin_h=nan
if [ -s "$tmp/per-t" ]; then
	lin_t=$(sort -g "$tmp/per-t" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f", (lo > 0 ? hi / lo : 0) }')
	lin_h=$(sort -g "$tmp/per-h" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f", (lo > 0 ? hi / lo : 0) }')
fi
emit ""
emit "Per layer: (delta(L) - delta($base)) / (L - $base), the cost of the layers beyond a $base-layer chain"
emit "(so fixed costs, e.g. loading the preload and the recorder's first allocations, cancel out)."
emit "Largest / smallest per-layer cost (L >= 100): recording time $lin_t, recorder heap $lin_h."
emit "The recorder's arrays and hash tables double when full, so the heap per layer steps with"
emit "where L falls between powers of two (up to 2x slack); the instruction count per layer is flat."
emit "Recorder heap: malloc'd bytes in use after the loop (mallinfo2), traced minus native; it"
emit "includes the weight copies (288 B per conv, 144 B per layer). Wall and RSS deltas include the dump."
emit ""

# ---- 5. the locator ----------------------------------------------------------------------
say "5. locator"
emit "## 5. Locator: a host's functions found in a stripped program by their code (\`bench/locate\`)"
emit ""
emit "| host in program | found | uncached wall s (min / med) | uncached CPU s (min) | first cached run s (writes) | cached wall s (min / med) | cached CPU s (min) | uncached / cached (med) |"
emit "|---|---:|---:|---:|---:|---:|---:|---:|"
"$LOCATE" --runs "$R" tinynn "$TINYNN" "$R18_STATIC" >>"$table" 2>>"$log" || die "bench/locate tinynn failed"
loc_dn=nan
if [ -x /usr/bin/darknet ] && [ -f /usr/lib/darknet/libdarknet.so ]; then
	row=$("$LOCATE" --runs "$R" darknet /usr/lib/darknet/libdarknet.so /usr/bin/darknet 2>>"$log") ||
		die "bench/locate darknet failed"
	emit "$row"
	loc_dn=$(printf '%s\n' "$row" | awk -F'|' '{ split($4, a, "/"); printf "%.4f", a[2] }')
else
	emit "| darknet in /usr/bin/darknet | not installed (apt-get install darknet) | | | | | | |"
fi
emit ""
emit "Every hooked function of the host (tinynn 10; darknet 28, forward_network included), from opening"
emit "both files to the last consistency check. Uncached: decoding the program's code (Zydis) is most of it"
emit "(callgrind: 216 M instructions for /usr/bin/darknet, 85% in the decoder; cached: 18 M). Cached: the"
emit "results file of the two build-ids, each found place compared again. The cache is in a temporary"
emit "XDG_CACHE_HOME of the benchmark's own."
emit ""

# ---- targets -----------------------------------------------------------------------------
verdict() { awk "BEGIN { print ($1) ? \"met\" : \"**missed**\" }"; }
emit "## Targets"
emit ""
emit "| target | measured | |"
emit "|---|---|---|"
pr=$over_relu pa=$over_add
emit "| pass-through <= 10 ns over native | relu +$pr ns, add +$pa ns (medians of paired runs) | $(verdict "$pr <= 10 && $pa <= 10") |"
if [ "$static_ok" = 1 ]; then
	sr=$sover_relu sa=$sover_add
	emit "| inline-hook pass-through <= 5 ns over native (tinynn linked in) | relu +$sr ns, add +$sa ns (medians of paired runs) | $(verdict "$sr <= 5 && $sa <= 5") |"
fi
pf=$over_free
emit "| free pass-through <= 5 ns over native | +$pf ns a malloc + free pair (medians of paired runs) | $(verdict "$pf <= 5") |"
emit "| recording <= 1 us per call (stack on) | relu: one pass $(calc '%.2f' "$rec_chain1 / 1000") us, every call a pass $(calc '%.2f' "$rec_all1 / 1000") us; worst run of all rows $(calc '%.2f' "$rec_worst / 1000") us | $(verdict "$rec_chain1 <= 1000 && $rec_all1 <= 1000") |"
emit "| (recording, stack off) | relu: one pass $(calc '%.2f' "$rec_chain0 / 1000") us, every call a pass $(calc '%.2f' "$rec_all0 / 1000") us | $(verdict "$rec_chain0 <= 1000 && $rec_all0 <= 1000") |"
for nc in resnet18:resnet18 $dn_names; do
	n=${nc%%:*}
	eval "r=\$ratio_$n m=\$rss_$n"
	emit "| ${nc#*:}: traced <= 1.05x untraced | ${r}x | $(verdict "$r <= 1.05") |"
	emit "| ${nc#*:}: extra peak RSS <= 1.2x weights | ${m}x | $(verdict "$m <= 1.2") |"
done
emit "| dump <= 1.5x cp ($bigname) | ${dump_ratio}x | $(verdict "$dump_ratio <= 1.5") |"
emit "| locating darknet's 28 functions in /usr/bin/darknet <= 0.3 s (uncached) | ${loc_dn} s (median) | $(verdict "$loc_dn <= 0.3") |"
emit "| growth linear (largest / smallest per-layer cost) | time $lin_t, heap $lin_h | $(verdict "$lin_t > 0 && $lin_t <= 2 && $lin_h > 0 && $lin_h <= 1.5") |"
emit ""
emit "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $(( $(date +%s) - start )) s."

# The misses' analysis (profiles and plans) is written by hand and follows the full table.
[ "$mode" = full ] && [ -f "$here/analysis.md" ] && cat "$here/analysis.md" >>"$table"

# ---- output ------------------------------------------------------------------------------
cat "$table"
if [ "$mode" != smoke ] || [ -n "$out" ]; then
	# The PyTorch section (bench/torch-vs-export.py, run on its own) stays.
	if [ -f "$out" ] && grep -q '^## PyTorch' "$out"; then
		sed -n '/^## PyTorch/,$p' "$out" >"$tmp/torch-section"
		{ cat "$table"; echo; cat "$tmp/torch-section"; } >"$table.new" && mv "$table.new" "$table"
	fi
	cp "$table" "$out"
	say "table written to $out"
fi
