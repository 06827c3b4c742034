"""`onnx-rewrite print --full` is ONNX text syntax that onnx's parser reads back to the same model.

Models: node tests with attributes of every kind, multiple outputs and sub-graphs (If, Loop, Scan,
SequenceMap, expanded functions), plus models with initializers and a local function (no node test has
either). For each: the text equals `onnx.printer.to_text` of the original; `onnx.parser.parse_model`
accepts it; the parsed model has the original's nodes (op types, inputs, outputs, attributes,
recursively through sub-graphs), inputs/outputs and types, initializers; and re-printing both gives
the same text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import support

NODE_MODELS = [
    "test_adam_multiple",                          # ai.onnx.preview.training domain, 5 outputs, float attrs
    "test_batchnorm_example_training_mode",        # 3 outputs, float attributes
    "test_constant",                               # tensor attribute
    "test_constantofshape_float_ones",             # tensor attribute, int64 input
    "test_conv_with_strides_padding",              # ints attributes
    "test_dequantizelinear_int4",                  # int4 tensors
    "test_einsum_transpose",                       # string attribute
    "test_if",                                     # graph attributes
    "test_if_opt",                                 # optional types in sub-graphs
    "test_if_seq",                                 # sequence types
    "test_loop11",                                 # Loop body with outer-scope references
    "test_loop16_seq_none",                        # optional sequence, empty inputs
    "test_lstm_with_peepholes",                    # many inputs, empty input names
    "test_range_float_type_positive_delta_expanded",  # expanded function with Loop
    "test_scan9_sum",                              # Scan body
    "test_sequence_map_add_2_sequences",           # SequenceMap body
    "test_split_equal_parts_1d_opset18",           # multiple outputs
    "test_strnormalizer_export_monday_casesensintive_lower",  # strings attribute
    "test_tfidfvectorizer_tf_uniandbigrams_skip5",  # ints + floats attributes
    "test_top_k",                                  # 2 outputs
]


def _with_initializers(src: Path, dst: Path, names: list[str]) -> Path:
    """The node test at `src` with the graph inputs `names` turned into initializers from its data set."""
    test = support.NodeTest(src.parent.name, src.parent, 1e-3, 1e-7)
    model = onnx.load(str(src))
    inputs, _ = next(test.data_sets())
    by_name = dict(zip([i.name for i in model.graph.input], inputs))
    for n in names:
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(by_name[n]), n))
    keep = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.checker.check_model(model, full_check=True)
    dst.write_bytes(model.SerializeToString())
    return dst


FUNCTION_MODEL = """
<ir_version: 10, opset_import: ["" : 21, "local" : 1], producer_name: "tests", doc_string: "with a function">
main (float[2,64] x, float[64,8] w) => (float[2,8] y, float[2,8] z) {
    h = MatMul (x, w)
    y = local.ScaledRelu <alpha: float = 0.5> (h)
    z = Softmax <axis = -1> (y)
}
<domain: "local", opset_import: ["" : 21]>
ScaledRelu <alpha> (a) => (b) {
    s = Constant <value_float: float = @alpha> ()
    r = Relu (a)
    b = Mul (r, s)
}
"""


def _synthetic(folder: Path) -> dict[str, Path]:
    d = support.node_tests_dir()
    out = {
        "conv_initializers": _with_initializers(d / "test_conv_with_strides_padding" / "model.onnx",
                                                folder / "conv_initializers.onnx", ["W"]),
        "gemm_initializers": _with_initializers(d / "test_gemm_all_attributes" / "model.onnx",
                                                folder / "gemm_initializers.onnx", ["b", "c"]),
    }
    f = onnx.parser.parse_model(FUNCTION_MODEL)
    rng = np.random.default_rng(0)
    f.graph.initializer.append(numpy_helper.from_array(rng.standard_normal((64, 8)).astype(np.float32), "w"))
    onnx.checker.check_model(f, full_check=True)
    out["local_function"] = folder / "local_function.onnx"
    out["local_function"].write_bytes(f.SerializeToString())
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    return _synthetic(tmp_path_factory.mktemp("printer"))


CASES = NODE_MODELS + ["conv_initializers", "gemm_initializers", "local_function"]


def _model_path(name: str, synthetic: dict[str, Path]) -> Path:
    return synthetic[name] if name in synthetic else support.node_tests_dir() / name / "model.onnx"


def _cli_text(model: Path) -> str:
    proc = support.run_cli("print", "--full", model)
    assert proc.returncode == 0, support.describe(proc)
    assert proc.stdout.strip(), f"`print --full {model.name}` printed nothing"
    return proc.stdout


def _assert_same_graph(a: onnx.GraphProto, b: onnx.GraphProto, where: str) -> None:
    assert [(i.name, i.type) for i in a.input] == [(i.name, i.type) for i in b.input], f"{where}: inputs differ"
    assert [(o.name, o.type) for o in a.output] == [(o.name, o.type) for o in b.output], f"{where}: outputs differ"
    assert len(a.node) == len(b.node), f"{where}: {len(b.node)} nodes, expected {len(a.node)}"
    for k, (x, y) in enumerate(zip(a.node, b.node)):
        w = f"{where} node {k} ({x.op_type})"
        assert (x.domain, x.op_type) == (y.domain, y.op_type), f"{w}: is {y.domain}.{y.op_type}"
        assert list(x.input) == list(y.input), f"{w}: inputs {list(y.input)}, expected {list(x.input)}"
        assert list(x.output) == list(y.output), f"{w}: outputs {list(y.output)}, expected {list(x.output)}"
        xa = {at.name: at for at in x.attribute}
        ya = {at.name: at for at in y.attribute}
        assert sorted(xa) == sorted(ya), f"{w}: attributes {sorted(ya)}, expected {sorted(xa)}"
        for name, at in xa.items():
            bt = ya[name]
            assert at.type == bt.type, f"{w}: attribute {name} type {bt.type}, expected {at.type}"
            assert at.ref_attr_name == bt.ref_attr_name, f"{w}: attribute {name} reference"
            if at.type == onnx.AttributeProto.GRAPH:
                _assert_same_graph(at.g, bt.g, f"{w}.{name}")
            elif at.type == onnx.AttributeProto.GRAPHS:
                for j, (g1, g2) in enumerate(zip(at.graphs, bt.graphs)):
                    _assert_same_graph(g1, g2, f"{w}.{name}[{j}]")
            elif at.type == onnx.AttributeProto.TENSOR:
                np.testing.assert_array_equal(numpy_helper.to_array(bt.t), numpy_helper.to_array(at.t),
                                              err_msg=f"{w}: attribute {name}")
            elif not at.ref_attr_name:
                va, vb = helper.get_attribute_value(at), helper.get_attribute_value(bt)
                if isinstance(va, float) or (isinstance(va, list) and va and isinstance(va[0], float)):
                    np.testing.assert_allclose(np.asarray(vb, np.float32), np.asarray(va, np.float32),
                                               rtol=1e-6, err_msg=f"{w}: attribute {name}")
                else:
                    assert va == vb, f"{w}: attribute {name} = {vb!r}, expected {va!r}"
    ia = {t.name: t for t in a.initializer}
    ib = {t.name: t for t in b.initializer}
    assert sorted(ia) == sorted(ib), f"{where}: initializers {sorted(ib)}, expected {sorted(ia)}"
    for n, t in ia.items():
        np.testing.assert_array_equal(numpy_helper.to_array(ib[n]), numpy_helper.to_array(t),
                                      err_msg=f"{where}: initializer {n}")


@pytest.mark.parametrize("name", CASES)
def test_print_full_equals_onnx_printer(name: str, synthetic, cli) -> None:  # noqa: ARG001
    model = _model_path(name, synthetic)
    text = _cli_text(model)
    expected = onnx.printer.to_text(onnx.load(str(model)))
    assert text.rstrip("\n") == expected.rstrip("\n"), (
        f"`print --full {model.name}` differs from onnx.printer.to_text:\n--- ours\n{text}\n--- onnx\n{expected}"
    )


@pytest.mark.parametrize("name", CASES)
def test_print_full_parses_back(name: str, synthetic, cli) -> None:  # noqa: ARG001
    model = _model_path(name, synthetic)
    orig = onnx.load(str(model))
    text = _cli_text(model)
    try:
        parsed = onnx.parser.parse_model(text)
    except Exception as e:
        pytest.fail(f"onnx.parser.parse_model rejects `print --full {model.name}`: {e}\n{text}")
    assert parsed.ir_version == orig.ir_version
    assert sorted((o.domain, o.version) for o in parsed.opset_import) == \
        sorted((o.domain, o.version) for o in orig.opset_import)
    _assert_same_graph(orig.graph, parsed.graph, name)
    assert [(f.domain, f.name) for f in parsed.functions] == [(f.domain, f.name) for f in orig.functions]
    assert onnx.printer.to_text(parsed) == onnx.printer.to_text(orig), "re-printed texts differ"


def test_print_full_matches_onnx_printer_on_every_node_test(cli) -> None:  # noqa: ARG001
    """The same check as above over all ~1,900 node tests, as one aggregate (names the first failures)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def one(test: support.NodeTest) -> str | None:
        proc = support.run_cli("print", "--full", test.model)
        if proc.returncode != 0:
            return f"{test.name}: {support.describe(proc)}"
        expected = onnx.printer.to_text(onnx.load(str(test.model)))
        if proc.stdout.rstrip("\n") != expected.rstrip("\n"):
            ours, theirs = proc.stdout.splitlines(), expected.splitlines()
            for i, (a, b) in enumerate(zip(ours, theirs)):
                if a != b:
                    return f"{test.name}: line {i + 1}: ours {a[:160]!r}, onnx {b[:160]!r}"
            return f"{test.name}: {len(ours)} lines, onnx.printer {len(theirs)}"
        return None

    tests = support.node_tests()
    with ThreadPoolExecutor(min(4, max(2, os.cpu_count() or 2))) as pool:
        failures = [f for f in pool.map(one, tests) if f]
    if failures:
        pytest.fail(f"`print --full` differs from onnx.printer.to_text on {len(failures)} of {len(tests)} node "
                    "tests:\n" + "\n".join(failures[:20]), pytrace=False)
