# SPDX-License-Identifier: MIT
"""A hand-written model for the torch host's end-to-end test: a dilated depthwise convolution,
batch norm, a squeeze-and-excitation block (sigmoid times a broadcast), an in-place add, a concat,
max and average pooling, a linear layer and a softmax. Run by /usr/bin/python3 (Debian's torch).

usage: handmade.py OUTDIR [--mode eager|script|trace|load] [--runs N] [--grad] [--unmapped]
       handmade.py --save MODEL.pt
Writes OUTDIR/input_<k>.bin and OUTDIR/output_<k>.bin (raw float32) for each forward k = 1..N,
each on its own random input. --mode script/trace run it under TorchScript (torch.jit.script /
torch.jit.trace); load saves it with torch.jit.save and runs what torch.jit.load returns.
Without --grad the forwards run under torch.no_grad(). --save only writes the scripted model (for
demo/torch's torchscript-run). --unmapped adds an op the torch host has no mapping for (cumsum)."""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import forwards


class SE(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Linear(c, c // r)
        self.fc2 = nn.Linear(c // r, c)

    def forward(self, x):
        n, c = x.shape[0], x.shape[1]
        s = F.adaptive_avg_pool2d(x, 1).flatten(1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s.view(n, c, 1, 1)


class Handmade(nn.Module):
    def __init__(self, unmapped=False):
        super().__init__()
        self.unmapped = unmapped
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16)
        self.bn2 = nn.BatchNorm2d(16)
        self.se = SE(16)
        self.side = nn.Conv2d(16, 8, 1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(24 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.stem(x)))
        y = self.bn2(self.dw(x))
        y = self.se(y)
        y += x                      # in-place add
        y = F.relu(y)
        z = self.side(y)
        y = torch.cat([y, z], 1)    # 24 channels
        y = F.max_pool2d(y, 2)
        y = F.avg_pool2d(y, 2)
        y = self.drop(y.flatten(1))
        if self.unmapped:
            y = torch.cumsum(y, 1)
        return F.softmax(self.fc(y), dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir', nargs='?')
    ap.add_argument('--save')
    ap.add_argument('--mode', default='eager', choices=['eager', 'script', 'trace', 'load'])
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--grad', action='store_true')
    ap.add_argument('--unmapped', action='store_true')
    a = ap.parse_args()
    torch.manual_seed(0)
    m = Handmade(a.unmapped)
    # batch-norm statistics that are not the identity
    with torch.no_grad():
        for bn in (m.bn1, m.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    m.eval()
    if a.save:
        torch.jit.save(torch.jit.script(m), a.save)
        return 0
    example = torch.randn(1, 3, 16, 16)
    if a.mode == 'script':
        m = torch.jit.script(m)
    elif a.mode == 'trace':
        m = torch.jit.trace(m, example)
    elif a.mode == 'load':
        path = os.path.join(a.outdir, 'handmade.pt')
        torch.jit.save(torch.jit.script(m), path)
        m = torch.jit.load(path)
    forwards.run(m, a.outdir, a.runs, lambda k: torch.randn(1, 3, 16, 16), grad=a.grad)
    return 0


if __name__ == '__main__':
    sys.exit(main())
