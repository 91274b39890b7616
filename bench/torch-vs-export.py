# SPDX-License-Identifier: MIT
"""onnxhook's torch host beside torch.onnx.export, per torchvision model: nodes, parameters, file
size, onnxruntime's max relative error against PyTorch, wall time. Run by /usr/bin/python3
(Debian's torch, torchvision and onnx); onnxruntime is tests/ort's onnxruntime-node.

usage: torch-vs-export.py --preload build/preload/libonnxhook.so [--size 64] [--runs N]
                          [--out results.md] MODEL...
Per model, with random weights (tests/e2e/torch/vision.py, one forward on a 1x3xSxS input):
- export: torch.onnx.export (opset 17) of the model in eval mode; its time is the export call's.
- onnxhook: vision.py run untraced and under the preload, alternately, N times each (default 3);
  its time is the difference of the medians (what tracing added to the program, the model's
  writing at exit included). A program run is seconds of Python and torch start-up, which varies
  by more than tracing adds on a loaded machine: single runs measured that noise.
Both models run in onnxruntime on the input their program used, against that program's output.
Wall times are single runs on whatever machine this is: ratios, not thresholds."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import onnx
import torch

here = os.path.dirname(os.path.abspath(__file__))
e2e = os.path.join(here, '..', 'tests', 'e2e')
sys.path.insert(0, os.path.join(e2e, 'torch'))
import vision  # noqa: E402


def stats(path):
    m = onnx.load(path)
    params = sum(int(__import__('numpy').prod(t.dims)) for t in m.graph.initializer)
    return len(m.graph.node), params, os.path.getsize(path)


def ort_err(model, inp, out):
    r = subprocess.run(['node', os.path.join(e2e, 'ort-compare.js'), '--model', model, '--in', inp,
                        '--expect', out, '--tol', '1'], capture_output=True, text=True)
    g = re.search(r'rel err ([0-9.e+-]+)', r.stdout + r.stderr)
    return g.group(1) if g else 'fail'


def run_vision(name, size, d, env=None):
    t = time.time()
    r = subprocess.run(['/usr/bin/python3', os.path.join(e2e, 'torch', 'vision.py'), name, d,
                        '--size', str(size), '--runs', '1'], env=env, capture_output=True, text=True)
    return time.time() - t, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--preload', required=True)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--out')
    ap.add_argument('models', nargs='+')
    a = ap.parse_args()
    preload = os.path.abspath(a.preload)
    rows = ['| model | nodes (export / onnxhook) | parameters (export / onnxhook) | file MB (export / '
            'onnxhook, ratio) | ORT rel. err (export / onnxhook) | wall s (export / onnxhook) | program s '
            '(untraced / traced) |',
            '|---|---|---|---|---|---|---|']
    for name in a.models:
        with tempfile.TemporaryDirectory() as d:
            torch.manual_seed(0)
            m = vision.build(name, a.size).eval()
            x = torch.randn(1, 3, a.size, a.size)
            with torch.no_grad():
                y = m(x)
            x.numpy().tofile(os.path.join(d, 'x.bin'))
            y.numpy().tofile(os.path.join(d, 'y.bin'))
            exp = os.path.join(d, 'export.onnx')
            t = time.time()
            try:
                torch.onnx.export(m, x, exp, opset_version=17)
                t_exp = time.time() - t
                e_nodes, e_params, e_size = stats(exp)
                e_err = ort_err(exp, os.path.join(d, 'x.bin'), os.path.join(d, 'y.bin'))
            except Exception as e:  # the exporter refuses some models at some sizes
                t_exp, e_nodes, e_params, e_size = time.time() - t, 'fails', '', 0
                e_err = type(e).__name__

            plain, tr = os.path.join(d, 'plain'), os.path.join(d, 'trace')
            os.mkdir(plain)
            os.mkdir(tr)
            ours = os.path.join(d, 'onnxhook.onnx')
            env = dict(os.environ, LD_PRELOAD=preload, ONNXHOOK_OUTPUT=ours, ONNXHOOK_LOG='quiet')
            plains, traces = [], []
            for k in range(a.runs):
                plains.append(run_vision(name, a.size, plain)[0])
                t, r = run_vision(name, a.size, tr, env)
                traces.append(t)
                if r.returncode or not os.path.exists(ours):
                    break
            t_plain, t_trace = statistics.median(plains), statistics.median(traces)
            if r.returncode or not os.path.exists(ours):
                rows.append(f'| {name} | export {e_nodes} / onnxhook failed | | | | |')
                continue
            o_nodes, o_params, o_size = stats(ours)
            o_err = ort_err(ours, os.path.join(tr, 'input_1.bin'), os.path.join(tr, 'output_1.bin'))
            ratio = f'{o_size / e_size:.3f}' if e_size else '-'
            rows.append(f'| {name} | {e_nodes} / {o_nodes} | {e_params} / {o_params} | '
                        f'{e_size / 1e6:.2f} / {o_size / 1e6:.2f} ({ratio}) | '
                        f'{e_err} / {o_err} | {t_exp:.2f} / {max(t_trace - t_plain, 0):.2f} | '
                        f'{t_plain:.2f} / {t_trace:.2f} |')
        print(rows[-1], flush=True)
    text = '\n'.join(rows) + '\n'
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
