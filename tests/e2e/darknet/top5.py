# SPDX-License-Identifier: MIT
"""usage: /usr/bin/python3 top5.py ORT.bin PRINTED DATA

ORT.bin: onnxruntime's output of a darknet classifier model (raw float32); PRINTED: what
`darknet classifier predict DATA ...` printed on stdout ("%5.2f%%: label" lines); DATA: its .data
file (names=, top=). Exit 0 when onnxruntime's top-k are the printed labels, in order, with the
printed percentages (to the printed 2 decimals), else 1."""
import sys

import numpy as np

if len(sys.argv) != 4:
    sys.exit(__doc__)
ort = np.fromfile(sys.argv[1], dtype="<f4")
printed = [l.rstrip("\n") for l in open(sys.argv[2]) if "%: " in l]
conf = dict((k.strip(), v.strip()) for k, v in (l.split("=", 1) for l in open(sys.argv[3]) if "=" in l))
names = [l.rstrip("\n") for l in open(conf["names"])]
top = int(conf.get("top", "1"))
if len(printed) != top:
    sys.exit(f"top5: the program printed {len(printed)} lines, not {top}")
for i, line in zip(np.argsort(-ort, kind="stable")[:top], printed):
    pct, label = line.split("%: ", 1)
    if names[i] != label or abs(float(ort[i]) * 100 - float(pct)) > 0.0051:
        sys.exit(f"top5: onnxruntime {ort[i] * 100:5.2f}%: {names[i]}; the program: {line}")
    print(f"top5: onnxruntime {ort[i] * 100:5.2f}%: {names[i]}")
