"""Checks the native constant evaluator against the ONNX backend node tests.

For every node test, the test inputs become initializers and `onnx-rewrite --pass
fold-constants` must either fold the graph outputs into initializers equal to the
test's expected outputs, or leave the node alone (an op or type the evaluator does
not handle). A fold with a wrong value fails the test. Per-op counts are printed and,
with ONNX_REWRITE_RECORD_REPORTS=1, written to Tests/Reports/constant-folding.md.

    ONNX_REWRITE_BIN=.build/debug/onnx-rewrite pytest Tests/python/test_constant_folding.py -q   # ONNX_REWRITE_FOLD_FILTER=Op narrows it
"""
import collections
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ONNX_REWRITE_BIN", str(ROOT / ".build/debug/onnx-rewrite"))
# Element types the evaluator holds; others are expected to stay unfolded.
FOLDABLE = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
            onnx.TensorProto.BFLOAT16, onnx.TensorProto.INT8, onnx.TensorProto.UINT8,
            onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
            onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64,
            onnx.TensorProto.BOOL, onnx.TensorProto.STRING}


def constant_model(case):
    """The test model with every graph input turned into an initializer of its test value."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, expected = case.data_sets[0]
    g = model.graph
    if len(g.input) != len(inputs):
        return None, None
    for vi, value in zip(list(g.input), inputs):
        if isinstance(value, np.generic):  # Range and friends take numpy scalars
            value = np.asarray(value)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        if not isinstance(value, np.ndarray) or vi.type.WhichOneof("value") != "tensor_type":
            return None, None
        if vi.type.tensor_type.elem_type not in FOLDABLE:
            return None, None
        g.initializer.append(numpy_helper.from_array(value, vi.name))
    del g.input[:]
    return model, expected


# A few units in the last place of each type: the evaluator rounds once per kernel, a
# reference that rounds after every numpy step may differ by that much in half precision.
TOLERANCE = {np.dtype(np.float16): (4e-3, 1e-3), np.dtype(np.float32): (1e-4, 1e-6), np.dtype(np.float64): (1e-6, 1e-9)}


def compare(got, want):
    if isinstance(want, onnx.TensorProto):
        want = numpy_helper.to_array(want)
    want = np.asarray(want)
    if want.dtype == object or want.dtype.kind in "biuSU":
        np.testing.assert_array_equal(got, want)
    else:
        # ml_dtypes' bfloat16 has 8 significant bits.
        rtol, atol = TOLERANCE.get(want.dtype, (2e-2, 1e-2))
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"


def run_case(case, tmp):
    model, expected = constant_model(case)
    if model is None:
        return case, "skipped", "inputs are not plain tensors"
    src = os.path.join(tmp, case.name + ".onnx")
    out = os.path.join(tmp, case.name + ".out.onnx")
    onnx.save(model, src)
    r = subprocess.run([BIN, src, "-o", out, "--pass", "fold-constants"], capture_output=True, text=True)
    if r.returncode != 0:
        return case, "error", r.stderr.strip()
    folded = onnx.load(out)
    inits = {t.name: t for t in folded.graph.initializer}
    outs = [o.name for o in folded.graph.output]
    if not all(name in inits for name in outs):
        return case, "not folded", ""
    try:
        for name, want in zip(outs, expected):
            compare(numpy_helper.to_array(inits[name]), want)
        onnx.checker.check_model(folded, full_check=True)
    except AssertionError as e:
        return case, "wrong", str(e).splitlines()[0:6]
    except Exception as e:  # noqa: BLE001 - any checker failure is a failure
        return case, "wrong", f"{type(e).__name__}: {e}"
    return case, "folded", ""


def op_of(case):
    ops = {n.op_type for n in case.model.graph.node}
    return ops.pop() if len(ops) == 1 else "(multi-node)"


def test_constant_folding_matches_node_tests():
    k = os.environ.get("ONNX_REWRITE_FOLD_FILTER", "")
    cases = [c for c in collect_testcases() if c.kind == "node" and c.data_sets]
    if k:
        cases = [c for c in cases if k.lower() in c.name.lower() or k == op_of(c)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: run_case(c, tmp), cases))
    per_op = collections.defaultdict(collections.Counter)
    failures = []
    for case, status, detail in results:
        per_op[op_of(case)][status] += 1
        if status in ("wrong", "error"):
            failures.append(f"{case.name}: {status}: {detail}")
    lines = ["| op | folded | not folded | skipped | wrong/error |", "|---|---|---|---|---|"]
    for op in sorted(per_op):
        c = per_op[op]
        if c["folded"] or c["wrong"] or c["error"]:
            lines.append(f"| {op} | {c['folded']} | {c['not folded']} | {c['skipped']} | {c['wrong'] + c['error']} |")
    total = collections.Counter()
    for c in per_op.values():
        total.update(c)
    summary = (f"{len(results)} node tests: {total['folded']} folded and equal to the expected outputs, "
               f"{total['not folded']} not folded, {total['skipped']} skipped, {total['wrong'] + total['error']} wrong")
    print("\n" + summary + "\n" + "\n".join(lines))
    if os.environ.get("ONNX_REWRITE_RECORD_REPORTS") == "1":
        report = ROOT / "Tests/Reports/constant-folding.md"
        report.parent.mkdir(exist_ok=True)
        report.write_text(f"# Constant folding vs ONNX node tests (onnx {onnx.__version__})\n\n{summary}\n\n" + "\n".join(lines) + "\n")
    assert not failures, f"{len(failures)} wrong folds:\n" + "\n".join(failures[:40])
    assert total["folded"] > 0 or k, "nothing was folded"
