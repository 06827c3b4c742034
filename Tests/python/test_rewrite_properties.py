"""Properties of the rewrite driver on random graphs (issue: declarative rewrite engine).

For random DAGs of elementwise ops and transposes, the generic rule passes must keep
the model's outputs in onnxruntime, reach a fixed point (a second run changes nothing),
and be deterministic (two runs write byte-identical files).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import support

PASSES = ["--pass", "fold-transposes", "--pass", "eliminate-reshapes", "--pass", "fuse-matmul-add-gemm"]
PERMS = list(itertools.permutations(range(3)))


def random_graph(seed: int) -> onnx.ModelProto:
    """A DAG over [4,4,4] float tensors: Transposes (often in pairs), unary and binary ops."""
    rng = np.random.default_rng(seed)
    values = ["x", "y"]
    nodes = []
    inits = [helper.make_tensor("half", TensorProto.FLOAT, [1], [0.5])]
    for i in range(int(rng.integers(8, 30))):
        out = f"v{i}"
        kind = rng.choice(["transpose", "transpose-pair", "unary", "binary", "const"])
        a = values[int(rng.integers(len(values)))]
        if kind == "transpose":
            nodes.append(helper.make_node("Transpose", [a], [out], perm=list(PERMS[int(rng.integers(6))])))
        elif kind == "transpose-pair":
            p = list(PERMS[int(rng.integers(6))])
            q = list(np.argsort(p)) if rng.random() < 0.5 else list(PERMS[int(rng.integers(6))])
            nodes.append(helper.make_node("Transpose", [a], [out + "_t"], perm=p))
            nodes.append(helper.make_node("Transpose", [out + "_t"], [out], perm=[int(v) for v in q]))
        elif kind == "unary":
            nodes.append(helper.make_node(str(rng.choice(["Relu", "Neg", "Tanh", "Sigmoid"])), [a], [out]))
        elif kind == "binary":
            b = values[int(rng.integers(len(values)))]
            nodes.append(helper.make_node(str(rng.choice(["Add", "Mul", "Sub", "Max"])), [a, b], [out]))
        else:
            nodes.append(helper.make_node("Mul", [a, "half"], [out]))
        values.append(out)
    outputs = sorted(set(rng.choice(values[2:], size=min(3, len(values) - 2), replace=False)))
    t = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 4, 4])  # noqa: E731
    graph = helper.make_graph(nodes, f"random{seed}", [t("x"), t("y")], [t(o) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_keep_outputs_and_reach_a_fixed_point(seed: int, tmp_path: Path):
    model = random_graph(seed)
    src, once, twice, again = (tmp_path / n for n in ("in.onnx", "once.onnx", "twice.onnx", "again.onnx"))
    onnx.save(model, src)
    for args, out in ((PASSES + [src], once), (PASSES + [once], twice), (PASSES + [src], again)):
        proc = support.run_cli(*args, "-o", out)
        assert proc.returncode == 0, support.describe(proc)
    onnx.checker.check_model(onnx.load(once), full_check=True)
    assert once.read_bytes() == again.read_bytes(), "two runs on the same input differ"
    assert once.read_bytes() == twice.read_bytes(), "a second run still changed the graph"
    rng = np.random.default_rng(seed)
    feed = {"x": rng.standard_normal((4, 4, 4)).astype(np.float32), "y": rng.standard_normal((4, 4, 4)).astype(np.float32)}
    for a, b in zip(support.ort_run(src, feed), support.ort_run(once, feed)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    transposes = lambda m: sum(n.op_type == "Transpose" for n in onnx.load(m).graph.node)  # noqa: E731
    assert transposes(once) <= transposes(src)
