"""`--pass legalize-opset`: lowering dynamo exports (IR 10, opset 18-20) to opset 17 / IR 8.

1. Every fixture converts: checker full_check passes, default opset 17, IR <= 8, every op
   exists at opset 17, and onnxruntime reproduces `outputs.npz` within 1e-5.
2. ONNX backend node tests whose model is opset >= 18 and whose op changed after 17: each
   converts to 17 and onnxruntime gives the test's expected outputs, or the pass reports
   the node as not lowerable and leaves the model unchanged; the families the pass exists
   for (Gelu, Reduce*, Split, Pad, ScatterND/ScatterElements) must all convert.
3. Model-local functions are inlined (with attribute references bound).
4. Errors: computed axes exit 1 naming the node; `--strict` turns an unlowerable op into
   an error.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import defs
from onnx import helper as h
from onnx import numpy_helper

import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
TARGET = 17


def default_opset(m: onnx.ModelProto) -> int:
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)


def ops_missing_at(m: onnx.ModelProto, opset: int) -> list[str]:
    """Default-domain ops of the model (and its sub-graphs) with no schema at `opset`."""
    missing = []

    def visit(g: onnx.GraphProto) -> None:
        for n in g.node:
            if n.domain in ("", "ai.onnx"):
                try:
                    s = defs.get_schema(n.op_type, opset)
                    if s.since_version > opset:
                        missing.append(n.op_type)
                except defs.SchemaError:
                    missing.append(n.op_type)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
                for sub in a.graphs:
                    visit(sub)

    visit(m.graph)
    return missing


def convert(src: Path, dst: Path, *extra: str) -> tuple[onnx.ModelProto, str]:
    proc = support.run_cli(src, "-o", dst, "--pass", "legalize-opset", *extra)
    assert proc.returncode == 0, support.describe(proc)
    return onnx.load(dst), proc.stderr


# ---------------------------------------------------------------------------------------------
# 1. Fixtures


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_lowers_to_opset_17(fixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    m, _ = convert(fixture / "model.onnx", out)
    assert support.checker_error(out) is None, support.checker_error(out)
    assert default_opset(m) == TARGET
    assert m.ir_version <= 8
    assert not m.functions
    assert ops_missing_at(m, TARGET) == []
    feeds = dict(np.load(fixture / "inputs.npz"))
    expected = np.load(fixture / "outputs.npz")
    names = [o.name for o in m.graph.output]
    actual = support.ort_run(out, feeds)
    for name, a in zip(names, actual):
        e = expected[name]
        assert a.shape == e.shape, f"{name}: shape {a.shape}, expected {e.shape}"
        diff = float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64)))) if a.size else 0.0
        assert diff <= 1e-5, f"{name}: max abs diff {diff}"


def test_dynamo_fixture_ops_lowered(tmp_path: Path) -> None:
    """The ops the pass exists for are gone or in their opset-17 form."""
    m, log = convert(support.FIXTURES_DIR / "mllama-vision-dynamo" / "model.onnx", tmp_path / "v.onnx")
    ops = [n.op_type for n in m.graph.node]
    assert "Gelu" not in ops and ops.count("Erf") == 3, log
    for n in m.graph.node:
        if n.op_type == "ScatterND":
            assert all(a.name != "reduction" for a in n.attribute)
    m, _ = convert(support.FIXTURES_DIR / "llama-dynamo" / "model.onnx", tmp_path / "l.onnx")
    means = [n for n in m.graph.node if n.op_type == "ReduceMean"]
    assert means and all(len(n.input) == 1 and any(a.name == "axes" for a in n.attribute) for n in means)
    m, _ = convert(support.FIXTURES_DIR / "phi3-dynamo" / "model.onnx", tmp_path / "p.onnx")
    splits = [n for n in m.graph.node if n.op_type == "Split"]
    assert splits and all(len(n.input) == 2 and all(a.name != "num_outputs" for a in n.attribute) for n in splits)


def test_already_at_target_is_untouched(tmp_path: Path) -> None:
    src = support.FIXTURES_DIR / "llama-ts" / "model.onnx"
    m, log = convert(src, tmp_path / "m.onnx")
    assert "already at opset 17" in log
    assert default_opset(m) == 17 and len(m.graph.node) == len(onnx.load(src).graph.node)


# ---------------------------------------------------------------------------------------------
# 2. ONNX backend node tests

# Families the pass must convert (the reduction tests with max/min and wrap padding are
# the known exceptions: they cannot exist below opset 18 / 19).
MUST_CONVERT = re.compile(r"^test_(gelu|reduce_|split_|constant_pad|edge_pad|reflect_pad|scatternd|scatter_elements)")
CANNOT_CONVERT = re.compile(r"(_max$|_min$|wrap_pad|_max_|_min_)")
# Inputs the lowering needs as constants: the node tests feed them as graph inputs.
CONSTANT_SLOTS = {"Split": [1], "Pad": [1, 3], "Squeeze": [1], "Unsqueeze": [1]}


def affected_node_tests() -> list[support.NodeTest]:
    out = []
    for t in support.node_tests():
        m = onnx.load(t.model, load_external_data=False)
        opset = default_opset(m)
        if opset <= TARGET or len(m.graph.node) != 1:
            continue
        n = m.graph.node[0]
        if n.domain not in ("", "ai.onnx"):
            continue
        try:
            since = defs.get_schema(n.op_type, opset).since_version
        except defs.SchemaError:
            continue
        if since > TARGET:
            out.append(t)
    return out


def freeze_constant_inputs(m: onnx.ModelProto, inputs: list) -> tuple[onnx.ModelProto, dict]:
    """The node test's model with axes/split/pads inputs turned into initializers."""
    n = m.graph.node[0]
    slots = CONSTANT_SLOTS.get(n.op_type, [1] if n.op_type.startswith("Reduce") else [])
    frozen = {n.input[i] for i in slots if i < len(n.input) and n.input[i]}
    feeds = {}
    keep = []
    for vi, value in zip(m.graph.input, inputs):
        if vi.name in frozen:
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
        else:
            keep.append(vi)
            feeds[vi.name] = value
    del m.graph.input[:]
    m.graph.input.extend(keep)
    return m, feeds


def test_node_tests_lower_to_opset_17(tmp_path: Path) -> None:
    tests = affected_node_tests()
    converted, reported, skipped, failures = [], [], [], []
    for t in tests:
        data = list(t.data_sets())
        if not data:
            continue
        inputs, expected = data[0]
        m, feeds = freeze_constant_inputs(onnx.load(t.model), inputs)
        src = tmp_path / f"{t.name}.onnx"
        onnx.save(m, src)
        dst = tmp_path / f"{t.name}.out.onnx"
        proc = support.run_cli(src, "-o", dst, "--pass", "legalize-opset")
        if proc.returncode != 0:
            failures.append(f"{t.name}: {support.describe(proc)}")
            continue
        out = onnx.load(dst)
        if default_opset(out) != TARGET:
            # Not lowerable: reported, model untouched.
            if "cannot be lowered" not in proc.stderr:
                failures.append(f"{t.name}: left at opset {default_opset(out)} without a report")
            elif MUST_CONVERT.match(t.name) and not CANNOT_CONVERT.search(t.name):
                failures.append(f"{t.name}: not lowered: {proc.stderr.strip()}")
            reported.append(t.name)
            continue
        if (error := support.checker_error(dst)) is not None or ops_missing_at(out, TARGET):
            failures.append(f"{t.name}: {error or ops_missing_at(out, TARGET)}")
            continue
        try:
            support.assert_outputs_close(support.ort_run(src, feeds), expected, t.rtol, t.atol)
        except Exception:
            skipped.append(t.name)  # onnxruntime cannot run (or does not pass) the original test
            continue
        try:
            support.assert_outputs_close(support.ort_run(dst, feeds), expected, t.rtol, t.atol)
            converted.append(t.name)
        except Exception as e:  # a failed check, or onnxruntime rejecting the converted model
            failures.append(f"{t.name}: {str(e).splitlines()[0]}")
    print(f"\nlegalize-opset node tests: {len(tests)} affected, {len(reported)} reported as not lowerable, "
          f"{len(converted)} lowered and pass, {len(skipped)} lowered but not runnable in onnxruntime originally")
    assert not failures, "\n".join(failures)
    must = [n for n in converted if MUST_CONVERT.match(n)]
    assert len(must) >= 50, f"only {len(must)} Gelu/Reduce/Split/Pad/Scatter tests converted"


# ---------------------------------------------------------------------------------------------
# 3. Model-local functions


def function_model() -> onnx.ModelProto:
    # custom.ScaledGelu(x) = Gelu(x * alpha) with approximate from the call; ReduceMean
    # with axes as an input inside the function body.
    body = [
        h.make_node("Constant", [], ["a"], value_float=1.0),
        h.make_node("Mul", ["x", "alpha_t"], ["xs"]),
        h.make_node("Gelu", ["xs"], ["g"]),
        h.make_node("Constant", [], ["axes"], value_ints=[-1]),
        h.make_node("ReduceMean", ["g", "axes"], ["m"], keepdims=1),
        h.make_node("Sub", ["g", "m"], ["y"]),
    ]
    body[2].attribute.append(onnx.AttributeProto(name="approximate", ref_attr_name="mode", type=onnx.AttributeProto.STRING))
    f = h.make_function(
        "custom", "ScaledGelu", ["x", "alpha_t"], ["y"], body, [h.make_opsetid("", 20)], attributes=["mode"])
    g = h.make_graph(
        [h.make_node("ScaledGelu", ["x", "s"], ["t"], domain="custom", name="call0", mode="tanh"),
         h.make_node("ScaledGelu", ["t", "s"], ["y"], domain="custom", name="call1", mode="none")],
        "g", [h.make_tensor_value_info("x", T.FLOAT, [2, 5])], [h.make_tensor_value_info("y", T.FLOAT, [2, 5])],
        [numpy_helper.from_array(np.array(1.5, np.float32), "s")])
    return h.make_model(
        g, functions=[f], opset_imports=[h.make_opsetid("", 20), h.make_opsetid("custom", 1)], ir_version=10)


def test_functions_are_inlined(tmp_path: Path) -> None:
    src = tmp_path / "f.onnx"
    onnx.save(function_model(), src)
    assert support.checker_error(src) is None
    m, _ = convert(src, tmp_path / "out.onnx")
    assert support.checker_error(tmp_path / "out.onnx") is None
    assert not m.functions and default_opset(m) == TARGET and m.ir_version == 8
    ops = [n.op_type for n in m.graph.node]
    assert "ScaledGelu" not in ops and "Gelu" not in ops
    assert ops.count("Tanh") == 1 and ops.count("Erf") == 1  # the call's attribute chose each formula
    x = {"x": np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)}
    before, after = support.ort_run(src, x), support.ort_run(tmp_path / "out.onnx", x)
    assert float(np.max(np.abs(before[0] - after[0]))) <= 1e-5


# ---------------------------------------------------------------------------------------------
# 4. Errors


def test_computed_axes_is_an_error(tmp_path: Path) -> None:
    g = h.make_graph(
        [h.make_node("ReduceMean", ["x", "axes"], ["y"], name="rms/mean")], "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 3]), h.make_tensor_value_info("axes", T.INT64, [1])],
        [h.make_tensor_value_info("y", T.FLOAT, [2, 1])])
    src = tmp_path / "m.onnx"
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 18)], ir_version=8), src)
    proc = support.run_cli(src, "-o", tmp_path / "out.onnx", "--pass", "legalize-opset")
    assert proc.returncode == 1, support.describe(proc)
    assert re.search(r"^error: .*rms/mean: legalize-opset: ReduceMean: axes is not a constant", proc.stderr, re.M), proc.stderr
    assert not (tmp_path / "out.onnx").exists()


def col2im_model() -> onnx.ModelProto:
    g = h.make_graph(
        [h.make_node("Col2Im", ["x", "image", "block"], ["y"], name="fold")], "g",
        [h.make_tensor_value_info("x", T.FLOAT, [1, 4, 4])], [h.make_tensor_value_info("y", T.FLOAT, [1, 1, 3, 3])],
        [numpy_helper.from_array(np.array([3, 3], np.int64), "image"),
         numpy_helper.from_array(np.array([2, 2], np.int64), "block")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 18)], ir_version=8)


def test_unlowerable_op_is_reported_and_model_kept(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    onnx.save(col2im_model(), src)
    m, log = convert(src, tmp_path / "out.onnx")
    assert "fold (Col2Im): exists from opset 18 on; no lowering to opset 17 is known" in log
    assert "stays at opset 18" in log
    assert default_opset(m) == 18 and support.checker_error(tmp_path / "out.onnx") is None


def test_unlowerable_op_with_strict_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    onnx.save(col2im_model(), src)
    proc = support.run_cli(src, "-o", tmp_path / "out.onnx", "--pass", "legalize-opset", "--strict")
    assert proc.returncode == 1, support.describe(proc)
    assert re.search(r"^error: .*fold: legalize-opset: Col2Im: exists from opset 18 on", proc.stderr, re.M), proc.stderr


def test_target_opset_option(tmp_path: Path) -> None:
    """--target-opset 12: Split sizes and Reduce axes become attributes, IR 7."""
    g = h.make_graph(
        [h.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2),
         h.make_node("ReduceSum", ["a", "axes"], ["s"], keepdims=0),
         h.make_node("ReduceMax", ["b"], ["m"], keepdims=0, noop_with_empty_axes=0)], "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 5])],
        [h.make_tensor_value_info("s", T.FLOAT, [2]), h.make_tensor_value_info("m", T.FLOAT, [])],
        [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    src = tmp_path / "m.onnx"
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 18)], ir_version=8), src)
    m, _ = convert(src, tmp_path / "out.onnx", "--target-opset", "12")
    assert support.checker_error(tmp_path / "out.onnx") is None
    assert default_opset(m) == 12 and m.ir_version == 7
    split = next(n for n in m.graph.node if n.op_type == "Split")
    assert [list(a.ints) for a in split.attribute if a.name == "split"] == [[3, 2]] and len(split.input) == 1
    x = {"x": np.arange(10, dtype=np.float32).reshape(2, 5)}
    for a, e in zip(support.ort_run(tmp_path / "out.onnx", x), support.ort_run(src, x)):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("target,ir", [(19, 9), (18, 8), (13, 7), (11, 6)])
def test_other_targets_after_static_shape(target: int, ir: int, tmp_path: Path) -> None:
    """Targets above and below 17; below 14 the views' allowzero=1 needs constant shapes.
    (Phi-3 below 17: it has no LayerNormalization, which exists from opset 17 only.)"""
    fixture = support.FIXTURES_DIR / ("falcon-dynamo" if target >= 17 else "phi3-dynamo")
    out = tmp_path / "m.onnx"
    static = ["--input-shape", "input_ids=2,8", "--input-shape", "attention_mask=2,8", "--pass", "static-shape"]
    proc = support.run_cli(fixture / "model.onnx", "-o", out, *(static if target < 14 else []),
                           "--pass", "legalize-opset", "--target-opset", target)
    assert proc.returncode == 0, support.describe(proc)
    m = onnx.load(out)
    assert default_opset(m) == target and m.ir_version == ir
    assert support.checker_error(out) is None and ops_missing_at(m, target) == []
    feeds = dict(np.load(fixture / "inputs.npz"))
    got = support.ort_run(out, feeds)[0]
    assert float(np.max(np.abs(got - np.load(fixture / "outputs.npz")["logits"]))) <= 1e-5


def test_shape_start_end_below_15(tmp_path: Path) -> None:
    g = h.make_graph(
        [h.make_node("Shape", ["x"], ["s"], start=1, end=-1)], "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 4, 5])], [h.make_tensor_value_info("s", T.INT64, [2])])
    src = tmp_path / "m.onnx"
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 15)], ir_version=8), src)
    m, _ = convert(src, tmp_path / "out.onnx", "--target-opset", "14")
    assert support.checker_error(tmp_path / "out.onnx") is None and default_opset(m) == 14
    assert [n.op_type for n in m.graph.node] == ["Shape", "Slice"]
    x = {"x": np.zeros((2, 3, 4, 5), np.float32)}
    assert list(support.ort_run(tmp_path / "out.onnx", x)[0]) == [3, 4]


def test_nested_function_calls_are_inlined(tmp_path: Path) -> None:
    inner = h.make_function("custom", "Twice", ["a"], ["b"], [h.make_node("Add", ["a", "a"], ["b"])],
                            [h.make_opsetid("", 18)])
    outer = h.make_function("custom", "Quad", ["p"], ["q"],
                            [h.make_node("Twice", ["p"], ["t"], domain="custom"),
                             h.make_node("Twice", ["t"], ["q"], domain="custom")],
                            [h.make_opsetid("", 18), h.make_opsetid("custom", 1)])
    g = h.make_graph([h.make_node("Quad", ["x"], ["y"], domain="custom", name="quad")], "g",
                     [h.make_tensor_value_info("x", T.FLOAT, [3])], [h.make_tensor_value_info("y", T.FLOAT, [3])])
    src = tmp_path / "m.onnx"
    onnx.save(h.make_model(g, functions=[inner, outer], ir_version=8,
                           opset_imports=[h.make_opsetid("", 18), h.make_opsetid("custom", 1)]), src)
    m, log = convert(src, tmp_path / "out.onnx")
    assert support.checker_error(tmp_path / "out.onnx") is None
    assert [n.op_type for n in m.graph.node] == ["Add", "Add"] and not m.functions, log
    assert "3 function calls inlined" in log
    x = {"x": np.array([1, 2, 3], np.float32)}
    assert list(support.ort_run(tmp_path / "out.onnx", x)[0]) == [4, 8, 12]


def test_opset_history_matches_onnx() -> None:
    """Sources/Passes/Legalize/OpsetHistory.swift is what its embedded generator prints
    for the installed onnx (regenerate it when onnx is upgraded)."""
    swift = (support.REPO_ROOT / "Sources/Passes/Legalize/OpsetHistory.swift").read_text()
    script = "\n".join(l[3:] if l.startswith("// ") else l[2:] for l in
                       swift.split("// Generator (run with", 1)[1].splitlines()[1:])
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(script, "generator", "exec"), {})
    table = swift.split("static let versions: [String: [Version]] = [\n", 1)[1].split("\n  ]\n}", 1)[0]
    assert buf.getvalue().strip() == table.strip()


def test_layer_normalization_node_tests_below_17(tmp_path: Path) -> None:
    """LayerNormalization (opset 17) becomes its formula for --target-opset 16."""
    tests = [t for t in support.node_tests()
             if t.name.startswith("test_layer_normalization") and not t.name.endswith("_expanded")]
    converted, reported = 0, 0
    for t in tests:
        inputs, expected = next(t.data_sets())
        m = onnx.load(t.model)
        feeds = {vi.name: v for vi, v in zip(m.graph.input, inputs)}
        dst = tmp_path / f"{t.name}.onnx"
        proc = support.run_cli(t.model, "-o", dst, "--pass", "legalize-opset", "--target-opset", "16")
        assert proc.returncode == 0, support.describe(proc)
        out = onnx.load(dst)
        if default_opset(out) != 16:
            # Tests that read Mean/InvStdDev are reported, not lowered.
            assert len(m.graph.output) > 1 and "Mean/InvStdDev" in proc.stderr, proc.stderr
            reported += 1
            continue
        assert support.checker_error(dst) is None, support.checker_error(dst)
        assert "LayerNormalization" not in [n.op_type for n in out.graph.node]
        support.assert_outputs_close(support.ort_run(dst, feeds), expected, t.rtol, t.atol, what=t.name)
        converted += 1
    print(f"\nLayerNormalization node tests: {converted} lowered to opset 16, {reported} reported")
    assert converted >= 10
