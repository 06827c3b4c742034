"""`scatternd-to-concat` and `gathernd-to-gather` on every fixture that has either op.

After `static-shape` (the indices are built from shapes) and `legalize-opset`: no ScatterND
or GatherND left, the checker's full check passes, outputs equal `outputs.npz` (<= 1e-5),
and the GatherND → Gather rewrite is bit-exact. `--strict` turns a kept op into an error.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest

import support

FIXTURES = sorted(
    p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx")
    if {"ScatterND", "GatherND"} & set(json.loads((p.parent / "meta.json").read_text()).get("op_types", {})))


def shape_args(fixture: Path) -> list[str]:
    shapes = json.loads((fixture / "meta.json").read_text())["input_shapes"]
    return [a for k, v in shapes.items() for a in ("--input-shape", f"{k}=" + ",".join(map(str, v)))]


def test_fixtures_with_scatter_or_gather_exist():
    names = {p.name for p in FIXTURES}
    assert {"llama-ts-446", "mllama-vision-dynamo", "falcon-dynamo"} <= names, names


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_no_scatter_or_gather_left(fixture: Path, tmp_path: Path):
    feed = dict(np.load(fixture / "inputs.npz"))
    base, out = tmp_path / "base.onnx", tmp_path / "out.onnx"
    support.roundtrip(fixture / "model.onnx", base, "--pass", "static-shape", "--pass", "legalize-opset", *shape_args(fixture))
    proc = support.run_cli(base, "-o", out, "--pass", "scatternd-to-concat", "--pass", "gathernd-to-gather", "--strict")
    assert proc.returncode == 0, support.describe(proc)
    model = onnx.load(out)
    ops = [n.op_type for n in model.graph.node]
    assert "ScatterND" not in ops and "GatherND" not in ops
    onnx.checker.check_model(model, full_check=True)
    reference = np.load(fixture / "outputs.npz")
    before = support.ort_run(base, feed)
    after = support.ort_run(out, feed)
    for vi, b, a in zip(model.graph.output, before, after):
        assert float(np.abs(a - reference[vi.name]).max()) <= 1e-5, vi.name
        if "GatherND" in {n.op_type for n in onnx.load(base).graph.node} and "ScatterND" not in ops:
            np.testing.assert_array_equal(a, b)  # Gather reads exactly the slices GatherND did


def test_strict_names_a_scatter_it_cannot_rewrite(tmp_path: Path):
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(onnx.parser.parse_model("""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[4,3] x, float[2,3] u) => (float[4,3] y) <int64[2,1] idx = {0, 2}> {
          y = ScatterND (x, idx, u)
        }"""), src)
    proc = support.run_cli(src, "-o", out, "--pass", "scatternd-to-concat")
    assert proc.returncode == 0 and "y: ScatterND kept: indices are not one contiguous block" in proc.stderr, support.describe(proc)
    strict_out = tmp_path / "strict.onnx"
    proc = support.run_cli(src, "-o", strict_out, "--pass", "scatternd-to-concat", "--strict")
    assert proc.returncode == 1, support.describe(proc)
    assert "error:" in proc.stderr and "y: scatternd-to-concat: indices are not one contiguous block" in proc.stderr
    assert not strict_out.exists()


@pytest.mark.parametrize("op,text", [
    ("scatternd-to-concat", """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[5,3] x, int64[2,1] idx, float[2,3] u) => (float[5,3] y) {
          y = ScatterND (x, idx, u)
        }"""),
    ("gathernd-to-gather", """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[6,2,3] x, int64[1,1] idx) => (float[1,2,3] y) {
          y = GatherND (x, idx)
        }"""),
])
def test_strict_names_runtime_indices(op: str, text: str, tmp_path: Path):
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(onnx.parser.parse_model(text), src)
    proc = support.run_cli(src, "-o", out, "--pass", op)
    assert proc.returncode == 0 and "indices are not constant" in proc.stderr, support.describe(proc)
    assert [n.op_type for n in onnx.load(out).graph.node] == [onnx.load(src).graph.node[0].op_type]
    strict_out = tmp_path / "strict.onnx"
    proc = support.run_cli(src, "-o", strict_out, "--pass", op, "--strict")
    assert proc.returncode == 1, support.describe(proc)
    assert f"y: {op}: indices are not constant" in proc.stderr, support.describe(proc)
    assert not strict_out.exists()
