# SPDX-License-Identifier: MIT
"""A torchvision 0.14 classification model with random weights (no download), in eval mode, run
for the torch host's end-to-end tests and the benchmark. Run by /usr/bin/python3.

usage: vision.py MODEL OUTDIR [--size S] [--runs N] [--mode eager|script|trace]
Writes OUTDIR/input_<k>.bin and OUTDIR/output_<k>.bin (raw float32) per forward k = 1..N, each on
its own random input of 1x3xSxS, under torch.no_grad()."""
import argparse
import sys

import torch
import torchvision

import forwards


def build(name, size):
    kw = {'weights': None}
    if name.startswith('vit_'):
        kw['image_size'] = size
    if name.startswith('inception') or name == 'googlenet':
        kw['aux_logits'] = False
        kw['init_weights'] = True
    m = torchvision.models.get_model(name, **kw).eval()
    # batch-norm statistics that are not the identity; no parameter left at zero (ViT's head
    # starts at zero: every output would be 0)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0, 0.02)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('outdir')
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--mode', default='eager', choices=['eager', 'script', 'trace'])
    a = ap.parse_args()
    torch.manual_seed(0)
    m = build(a.model, a.size)
    if a.mode == 'script':
        m = torch.jit.script(m)
    elif a.mode == 'trace':
        m = torch.jit.trace(m, torch.randn(1, 3, a.size, a.size))
    forwards.run(m, a.outdir, a.runs, lambda k: torch.randn(1, 3, a.size, a.size))
    return 0


if __name__ == '__main__':
    sys.exit(main())
