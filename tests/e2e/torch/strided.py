# SPDX-License-Identifier: MIT
"""Strided tensors for the torch host's end-to-end test: ops reading views that are not
contiguous (a transpose, a permute, a channel shuffle, a stepped slice, an inner-axis slice, an
expanded tensor) must find the value those views look at. Run by /usr/bin/python3.

usage: strided.py OUTDIR [--runs N]
Writes OUTDIR/input_<k>.bin and OUTDIR/output_<k>.bin (raw float32) per forward k = 1..N."""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import forwards


class Strided(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 8)
        self.scale = nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x):
        y = F.relu(self.conv(x))                          # 1x8x8x8
        n, c, h, w = y.shape
        s = y.view(n, 2, c // 2, h, w).transpose(1, 2)    # channel shuffle: a strided view
        s = s.contiguous().view(n, c, h, w)               # the copy of a strided view
        p = y.permute(0, 2, 3, 1)                         # NHWC view
        q = self.fc(p)                                    # linear on a permuted tensor
        q = q.permute(0, 3, 1, 2)                         # back, still a view
        z = s + q                                         # add of a strided view
        z = z * self.scale.expand(c, h, w)                # an expanded parameter
        a = z[:, :, ::2, :]                               # a stepped slice (every other row)
        b = z[:, 2:6, 1::2, :]                            # an inner channel range, stepped
        m = torch.matmul(a.transpose(2, 3), b[:, :1].expand(n, c, h // 2, w))  # transposed reads
        return torch.cat([m.flatten(1), F.softmax(b.mean((2, 3)), 1)], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--runs', type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    m = Strided().eval()
    forwards.run(m, a.outdir, a.runs, lambda k: torch.randn(1, 4, 8, 8))
    return 0


if __name__ == '__main__':
    sys.exit(main())
