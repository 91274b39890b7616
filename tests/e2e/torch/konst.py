# SPDX-License-Identifier: MIT
"""Constants the program computes, for the torch host's end-to-end test: an attention-style mask
built at every forward with new_zeros and slice assignments, a parameter gathered by an int64
index made with arange at construction, a parameter computed from torch.ones at construction,
a clamped and exponentiated parameter; they must become initializers, while the model's input,
made here from torch.ones (as a quick export script would), stays the one graph input. Also pad
(constant, negative, reflect, replicate), roll, a Gather of a graph value, normalize. Run by
/usr/bin/python3.

usage: konst.py OUTDIR [--runs N]
Writes OUTDIR/input_<k>.bin and OUTDIR/output_<k>.bin (raw float32) per forward k = 1..N."""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import forwards


class Konst(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.table = nn.Parameter(torch.randn(7, 8))
        r = torch.arange(4)
        self.register_buffer('index', r[:, None] - r[None, :] + 3)  # 4x4 in [0, 7)
        self.logit = nn.Parameter(torch.log(10 * torch.ones(8, 1, 1)))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.conv(x)                                       # 1x8x8x8
        y = F.pad(y, (0, 2, 1, 1))                             # 1x8x10x10
        y = torch.roll(y, shifts=(-2, 3), dims=(2, 3))
        mask = y.new_zeros((10, 10))                           # built at every forward
        mask[:5, :] = 1
        mask[:, 5:] += 2
        mask = mask.masked_fill(mask != 0, -1.5)
        y = y + mask
        bias = self.table[self.index].permute(2, 0, 1)         # 8x4x4, a gathered parameter
        y = y[:, :, 3:7, 2:6] + bias                           # 1x8x4x4
        y = y * torch.clamp(self.logit, max=2.0).exp()
        y = F.normalize(y, dim=1)
        y = F.pad(y, (1, 1, 2, 0), mode='reflect')             # 1x8x6x6
        y = F.pad(y, (-1, 1, 1, -2), mode='replicate')         # 1x8x5x6
        y = y[:, :, self.index[0]]                             # Gather rows 3, 2, 1, 0: 1x8x4x6
        return self.fc(y.mean((2, 3)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--runs', type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    m = Konst().eval()
    # an input made from torch.ones
    forwards.run(m, a.outdir, a.runs, lambda k: torch.ones(1, 3, 8, 8).cumsum(-1) * (0.1 * k))
    return 0


if __name__ == '__main__':
    sys.exit(main())
