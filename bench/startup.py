# SPDX-License-Identifier: MIT
"""What preloading libonnxhook.so costs a program that records nothing at start-up: wall time
and peak RSS of /bin/true, `python3 -c pass` and `python3 -c "import torch"` with no preload and
with each library given, runs alternating (load from elsewhere hits all alike), and what each
library loads (ldd). Run by /usr/bin/python3; ratios, no thresholds.

usage: startup.py [--runs N] [--label NAME=LIB]... [LIB]
  LIB            the preload (default: build/preload/libonnxhook.so beside this script's tree)
  --label N=LIB  another preload to compare, e.g. before=/tmp/old/libonnxhook.so (a build of an
                 earlier commit); its column shows its time over LIB's as well
  --runs N       runs per program and column (default 40; 10 for import torch)
  --runstat P    tools/runstat (default build/tools/runstat), which times each run"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
PY = '/usr/bin/python3'
RUNSTAT = os.path.join(here, '..', 'build', 'tools', 'runstat')
PROGRAMS = [('/bin/true', ['/bin/true'], 1),
            ('python3 -c pass', [PY, '-c', 'pass'], 1),
            ('python3 -c "import torch"', [PY, '-c', 'import torch'], 4)]


def run_once(argv, lib, tmp):
    """Wall time (s) and peak RSS (KiB) of argv as tools/runstat measures them: its child is
    forked from a small process (a child forked from this one would count our RSS too)."""
    env = {k: v for k, v in os.environ.items()
           if k != 'LD_PRELOAD' and not k.startswith('ONNXHOOK_')}
    if lib:
        env['LD_PRELOAD'] = lib
    stat, err = os.path.join(tmp, 'stat'), os.path.join(tmp, 'stderr')
    with open(err, 'w') as e:
        r = subprocess.run([RUNSTAT, '-o', stat, '--'] + argv, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=e)
    msg = open(err, errors='replace').read()
    if r.returncode != 0 or msg.strip():
        sys.exit('startup: %s with LD_PRELOAD=%s: status %d: %s' % (' '.join(argv), lib, r.returncode, msg))
    f = dict(kv.split('=') for kv in open(stat).read().split())
    return float(f['wall_s']), int(f['maxrss_kib'])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('lib', nargs='?', default=os.path.join(here, '..', 'build', 'preload', 'libonnxhook.so'))
    ap.add_argument('--label', action='append', default=[])
    ap.add_argument('--runs', type=int, default=40)
    ap.add_argument('--runstat', default=RUNSTAT)
    a = ap.parse_args()
    globals()['RUNSTAT'] = a.runstat
    cols = [('no preload', None), ('onnxhook', os.path.realpath(a.lib))]
    for lb in a.label:
        name, _, lib = lb.partition('=')
        cols.append((name, os.path.realpath(lib)))
    for _, lib in cols[1:]:
        if not os.path.isfile(lib):
            sys.exit('startup: no %s' % lib)

    print('# Start-up cost of the preload (bench/startup.py)\n')
    print('- date: %s UTC; load average at start: %s' % (
        time.strftime('%Y-%m-%d %H:%M', time.gmtime()), ' '.join(open('/proc/loadavg').read().split()[:3])))
    print('- each figure: min / median of the runs (ms), peak RSS median (MB); ratios of medians\n')
    for name, lib in cols[1:]:
        out = subprocess.run(['ldd', lib], capture_output=True, text=True).stdout
        libs = [ln.split()[0] for ln in out.splitlines() if ln.strip() and 'linux-vdso' not in ln]
        print('- `ldd` %s (%s): %d libraries: %s' % (name, lib, len(libs), ' '.join(libs)))
    print()
    head = '| program | runs | ' + ' | '.join('%s ms min / med, RSS MB' % c[0] for c in cols)
    head += ' | ' + ' | '.join('%s / no preload' % c[0] for c in cols[1:])
    if len(cols) > 2:
        head += ' | ' + ' | '.join('%s / onnxhook' % c[0] for c in cols[2:])
    print(head + ' |')
    print('|' + '---|' * (head.count('|')))
    tmp = tempfile.TemporaryDirectory(prefix='onnxhook-startup-')
    for title, argv, div in PROGRAMS:
        n = max(3, a.runs // div)
        res = {c[0]: [] for c in cols}
        for _, lib in cols:  # warm the page cache
            run_once(argv, lib, tmp.name)
        for i in range(n):
            order = cols if i % 2 == 0 else cols[::-1]
            for name, lib in order:
                res[name].append(run_once(argv, lib, tmp.name))
        med = {k: statistics.median(w for w, _ in v) for k, v in res.items()}
        cells = ['%.1f / %.1f, %.1f' % (1e3 * min(w for w, _ in res[c[0]]), 1e3 * med[c[0]],
                                          statistics.median(r for _, r in res[c[0]]) / 1024)
                 for c in cols]
        cells += ['%.2fx' % (med[c[0]] / med['no preload']) for c in cols[1:]]
        cells += ['%.2fx' % (med[c[0]] / med['onnxhook']) for c in cols[2:]]
        print('| %s | %d | %s |' % (title, n, ' | '.join(cells)))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
