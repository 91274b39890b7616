# SPDX-License-Identifier: MIT
"""The forwards of the torch host's end-to-end programs, and what they leave for the checks."""
import os

import torch


def run(m, outdir, runs, make_input, grad=False):
    """Runs m on make_input(k) for k = 1..runs (under no_grad unless grad) and writes the input and
    output of each forward to OUTDIR/input_<k>.bin and OUTDIR/output_<k>.bin (raw float32)."""
    for k in range(1, runs + 1):
        x = make_input(k)
        with torch.set_grad_enabled(grad):
            y = m(x)
        x.numpy().tofile(os.path.join(outdir, f'input_{k}.bin'))
        (y.detach() if grad else y).numpy().tofile(os.path.join(outdir, f'output_{k}.bin'))
