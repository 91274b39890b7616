# SPDX-License-Identifier: MIT
# Validates an onnxhook model with Debian's onnx (run by /usr/bin/python3): full checker + our conventions.
"""usage: /usr/bin/python3 check-onnx.py MODEL.onnx [--opset 17] [--ir 8]
                                      [--expect-ops "Conv=3,Relu=1,Reshape=*"] [--expect-initializers N] [--expect-inputs N]
                                      [--allow-debug-outputs]

Runs onnx.checker.check_model(full_check=True), then asserts what onnxhook promises: graph inputs
named input_0.., outputs output_0.., all float32 with a full static shape, ai.onnx at the expected
opset, the expected IR version. Prints the node count per op type. --expect-ops lists the exact
count of every op type the graph may contain (`Op=*`: any count); types not listed must be absent.
--allow-debug-outputs accepts, after output_0.., the extra outputs ONNXHOOK_DEBUG_OUTPUTS=1 adds
(named layer_<i>, optionally with a _suffix), held to the same float32/static-shape rules.
Exit status: 0 OK, 1 check failed, 2 usage error.
"""
import argparse
import collections
import os
import re
import shutil
import sys
import tempfile

try:
    import onnx
    from onnx import TensorProto
except ImportError as e:  # pragma: no cover - environment problem, reported clearly
    sys.stderr.write(
        f"check-onnx: error: cannot import onnx ({e}) with {sys.executable}.\n"
        "  install Debian's module: apt-get install python3-onnx (and run this with /usr/bin/python3)\n")
    sys.exit(1)

# Checked by path (on a copy) from this size of the model file on: protobuf refuses to serialize a
# ModelProto past 2 GiB, and the check of a loaded model holds ~7 copies of it at once (the proto,
# its serialization for the checker, shape inference's input, output and result: 8.6 GB of peak
# RSS for torchvision's vit_l_16, a 1.22 GB file), by path ~3 (3.7 GB), for about twice the time
# (the copy, the model read twice).
BY_PATH = 512 * 1024 ** 2


class CheckFailed(Exception):
    pass


def parse_expect_ops(spec):
    want = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        op, sep, count = item.partition("=")
        op = op.strip()
        count = count.strip()
        if not sep or not op or not (count == "*" or count.isdigit()):
            raise ValueError(f"bad --expect-ops item {item!r} (want Op=N or Op=*)")
        if op in want:
            raise ValueError(f"op {op!r} listed twice in --expect-ops")
        want[op] = None if count == "*" else int(count)
    return want


def external_locations(model):
    locs = set()
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            for kv in t.external_data:
                if kv.key == "location":
                    locs.add(kv.value)
    return locs


def run_checker(path):
    """Full check. Small models in memory; big or external-data ones by path on a private copy,
    since onnx 1.12's full check by path rewrites the file it checks. Returns the model without
    its external data."""
    head = onnx.load(path, load_external_data=False)
    locs = external_locations(head)
    if not locs and os.path.getsize(path) < BY_PATH:
        onnx.checker.check_model(head, full_check=True)
        return head
    if not locs:  # a big model inline: not held here while the checker holds it
        head = None
    src_dir = os.path.dirname(os.path.abspath(path))
    # the copy goes beside the model: in the test's own directory, never $TMPDIR's top level
    with tempfile.TemporaryDirectory(prefix=".check-onnx-",
                                     dir=src_dir if os.access(src_dir, os.W_OK) else None) as tmp:
        copy = os.path.join(tmp, "model.onnx")
        shutil.copyfile(path, copy)
        for loc in locs:
            if os.path.isabs(loc) or ".." in loc.split(os.sep):
                raise CheckFailed(f"external data location {loc!r} is not a plain relative path")
            src = os.path.join(src_dir, loc)
            if not os.path.exists(src):
                raise CheckFailed(f"external data file {src} is missing")
            dst = os.path.join(tmp, loc)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:  # the check rewrites the model file only: its data can be shared, not copied
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        onnx.checker.check_model(copy, full_check=True)
    return head if head is not None else onnx.load(path)


DEBUG_OUTPUT = re.compile(r"layer_[0-9]+(_[A-Za-z0-9_]+)?")


def check_io(values, prefix, what, debug=False, batch=None):
    names = [v.name for v in values]
    main = len(names)
    if debug:  # output_0.. first, then only debug outputs
        main = next((i for i, n in enumerate(names) if not re.fullmatch(rf"{prefix}_[0-9]+", n)), main)
        extra = [n for n in names[main:] if not DEBUG_OUTPUT.fullmatch(n)]
        if extra:
            raise CheckFailed(f"graph {what}s after {prefix}_0..{main - 1} must be debug outputs "
                              f"layer_<i>, found {extra[:10]}")
        if len(set(names)) != len(names):
            raise CheckFailed(f"graph {what} names repeat")
    want = [f"{prefix}_{i}" for i in range(main)]
    if not values or main == 0:
        raise CheckFailed(f"the graph has no {what}s" + (f" named {prefix}_N" if values else ""))
    if names[:main] != want:
        raise CheckFailed(f"graph {what}s are {names[:main]}, expected {want}")
    for v in values:
        if not v.type.HasField("tensor_type"):
            raise CheckFailed(f"{what} {v.name} is not a tensor")
        tt = v.type.tensor_type
        if tt.elem_type != TensorProto.FLOAT:
            raise CheckFailed(f"{what} {v.name} has elem_type "
                              f"{TensorProto.DataType.Name(tt.elem_type)}, expected FLOAT")
        if not tt.HasField("shape"):
            raise CheckFailed(f"{what} {v.name} has no shape")
        dims = [d.dim_value if d.WhichOneof("value") == "dim_value" else (d.dim_param or "?")
                for d in tt.shape.dim]
        if batch is not None:
            if not dims or dims[0] != batch:
                raise CheckFailed(f"{what} {v.name} has shape {dims}: dim 0 must be the symbolic '{batch}'")
            dims = [1] + dims[1:]  # the rest must be static
        if not all(isinstance(d, int) and d >= 1 for d in dims):
            raise CheckFailed(f"{what} {v.name} has shape {dims}: every dim must be a static dim_value")
        if not dims:
            raise CheckFailed(f"{what} {v.name} has rank 0")
        yield v.name, dims


def main():
    ap = argparse.ArgumentParser(description="Validate an onnxhook model.")
    ap.add_argument("model")
    ap.add_argument("--opset", type=int, default=17, help="expected ai.onnx opset (default 17)")
    ap.add_argument("--ir", type=int, default=8, help="expected IR version (default 8)")
    ap.add_argument("--expect-ops", default=None, help='exact op counts, e.g. "Conv=3,Relu=1,Reshape=*"')
    ap.add_argument("--expect-initializers", type=int, default=None, help="exact initializer count")
    ap.add_argument("--expect-inputs", type=int, default=None, help="exact graph input count")
    ap.add_argument("--allow-debug-outputs", action="store_true",
                    help="accept the layer_<i> outputs of ONNXHOOK_DEBUG_OUTPUTS=1 after output_0..")
    ap.add_argument("--dynamic-batch", action="store_true",
                    help="dim 0 of every graph input and output is the symbolic 'batch'")
    args = ap.parse_args()
    try:
        want_ops = parse_expect_ops(args.expect_ops) if args.expect_ops is not None else None
    except ValueError as e:
        ap.error(str(e))

    name = args.model
    if not os.path.isfile(name):
        raise CheckFailed(f"{name} does not exist")
    try:
        model = run_checker(name)
    except CheckFailed:
        raise
    except Exception as e:  # checker/shape-inference errors come as several exception types
        raise CheckFailed(f"onnx checker rejected the model: {type(e).__name__}: {e}") from e

    if model.ir_version != args.ir:
        raise CheckFailed(f"ir_version is {model.ir_version}, expected {args.ir}")
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    if opsets.get("ai.onnx") != args.opset:
        raise CheckFailed(f"opset_import is {opsets}, expected ai.onnx version {args.opset}")

    g = model.graph
    batch = "batch" if args.dynamic_batch else None
    inputs = list(check_io([v for v in g.input if v.name not in {t.name for t in g.initializer}],
                           "input", "input", batch=batch))
    outputs = list(check_io(g.output, "output", "output", debug=args.allow_debug_outputs, batch=batch))

    counts = collections.Counter(n.op_type for n in g.node)
    init_bytes = sum(len(t.raw_data) or 4 * len(t.float_data) or 8 * len(t.int64_data)
                     for t in g.initializer)
    print(f"check-onnx: {name}: ir {model.ir_version}, opset {opsets}, {len(g.node)} nodes, "
          f"{len(g.initializer)} initializers (~{init_bytes} bytes inline)")
    for n, dims in inputs:
        print(f"check-onnx:   {n} {dims}")
    shown = [o for o in outputs if not DEBUG_OUTPUT.fullmatch(o[0])]
    for n, dims in shown:
        print(f"check-onnx:   {n} {dims}")
    if len(shown) != len(outputs):
        print(f"check-onnx:   + {len(outputs) - len(shown)} debug outputs layer_*")
    for op in sorted(counts):
        print(f"check-onnx:   {op:<20} {counts[op]}")

    errors = []
    if want_ops is not None:
        for op in sorted(set(counts) | set(want_ops)):
            if op not in want_ops:
                errors.append(f"{op}: {counts[op]} node(s), expected none")
            elif want_ops[op] is not None and counts.get(op, 0) != want_ops[op]:
                errors.append(f"{op}: {counts.get(op, 0)} node(s), expected {want_ops[op]}")
    if args.expect_initializers is not None and len(g.initializer) != args.expect_initializers:
        errors.append(f"{len(g.initializer)} initializers, expected {args.expect_initializers}")
    n_inputs = len([v for v in g.input if v.name not in {t.name for t in g.initializer}])
    if args.expect_inputs is not None and n_inputs != args.expect_inputs:
        errors.append(f"{n_inputs} graph inputs, expected {args.expect_inputs}")
    if errors:
        raise CheckFailed("unexpected graph: " + "; ".join(errors))
    print("check-onnx: OK")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        sys.stderr.write(f"check-onnx: error: {e}\n")
        sys.exit(1)
