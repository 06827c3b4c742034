"""The CLI surface: inspect (text and JSON), passes, --help of every subcommand, usage errors."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import support


def _small_mlp(path: Path) -> Path:
    """A two-layer MLP: 2 MatMul, 2 Add, 1 Relu; 4 initializers, 64*128 + 128 + 128*10 + 10 parameters."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((64, 128)).astype(np.float32), "fc1.weight"),
        numpy_helper.from_array(rng.standard_normal((128,)).astype(np.float32), "fc1.bias"),
        numpy_helper.from_array(rng.standard_normal((128, 10)).astype(np.float32), "fc2.weight"),
        numpy_helper.from_array(rng.standard_normal((10,)).astype(np.float32), "fc2.bias"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["h0"], name="fc1/MatMul"),
        helper.make_node("Add", ["h0", "fc1.bias"], ["h1"], name="fc1/Add"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "fc2.weight"], ["h3"], name="fc2/MatMul"),
        helper.make_node("Add", ["h3", "fc2.bias"], ["y"], name="fc2/Add"),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="tests")
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A fixture model without sub-graphs if there is one, else a small MLP."""
    for m in sorted(support.FIXTURES_DIR.glob("*/model.onnx")):
        proto = onnx.load(str(m), load_external_data=False)
        if not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for n in proto.graph.node for a in n.attribute) and not proto.functions:
            return m
    return _small_mlp(tmp_path_factory.mktemp("cli") / "mlp.onnx")


def _expected(model: Path) -> tuple[collections.Counter, int, int]:
    proto = onnx.load(str(model), load_external_data=False)
    ops = collections.Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                              for n in proto.graph.node)
    params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    return ops, params, len(proto.graph.node)


def test_inspect_text(model: Path, cli) -> None:  # noqa: ARG001
    proc = support.run_cli("inspect", model)
    assert proc.returncode == 0, support.describe(proc)
    ops, params, _ = _expected(model)
    out = proc.stdout
    for op, count in ops.items():
        assert any(line.split() == [op, str(count)] for line in out.splitlines()), \
            f"`inspect` should list {op} {count} times:\n{out}"
    assert str(params) in out, f"`inspect` should give the parameter count {params}:\n{out}"


def test_inspect_json(model: Path, cli) -> None:  # noqa: ARG001
    proc = support.run_cli("inspect", model, "--json")
    assert proc.returncode == 0, support.describe(proc)
    data = json.loads(proc.stdout)
    ops, params, nodes = _expected(model)
    assert data["op_types"] == dict(ops)
    assert data["parameters"] == params
    assert data["nodes"] == nodes
    proto = onnx.load(str(model), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    assert [i["name"] for i in data["inputs"]] == [i.name for i in proto.graph.input if i.name not in inits]
    assert [o["name"] for o in data["outputs"]] == [o.name for o in proto.graph.output]
    assert data["ir_version"] == proto.ir_version


def test_passes(cli) -> None:  # noqa: ARG001
    proc = support.run_cli("passes")
    assert proc.returncode == 0, support.describe(proc)
    assert proc.stdout.strip(), "`passes` prints the list (or says there is none)"


@pytest.mark.parametrize("args", [
    ["--help"], ["rewrite", "--help"], ["inspect", "--help"], ["print", "--help"], ["passes", "--help"],
    ["help", "inspect"],
], ids=lambda a: " ".join(a))
def test_help(args: list[str], cli) -> None:  # noqa: ARG001
    proc = support.run_cli(*args)
    assert proc.returncode == 0, support.describe(proc)
    text = proc.stdout + proc.stderr
    assert "USAGE" in text.upper(), text


def test_version(cli) -> None:  # noqa: ARG001
    proc = support.run_cli("--version")
    assert proc.returncode == 0, support.describe(proc)
    assert proc.stdout.strip()


def test_unknown_pass_is_a_usage_error(model: Path, tmp_path: Path, cli) -> None:  # noqa: ARG001
    proc = support.run_cli(model, "-o", tmp_path / "out.onnx", "--pass", "no-such-pass")
    assert 1 <= proc.returncode <= 127, support.describe(proc)
    assert "no-such-pass" in proc.stderr, support.describe(proc)
    assert not (tmp_path / "out.onnx").exists()


def test_missing_output_option_is_a_usage_error(model: Path, cli) -> None:  # noqa: ARG001
    proc = support.run_cli(model)
    assert 1 <= proc.returncode <= 127, support.describe(proc)
    assert proc.stderr.strip(), "a usage error says what is wrong"


def test_print_elides_large_tensors(model: Path, cli) -> None:  # noqa: ARG001
    """Without --full, initializers over 32 elements show only type and shape; with it, every value."""
    short = support.run_cli("print", model)
    full = support.run_cli("print", model, "--full")
    assert short.returncode == 0 and full.returncode == 0, support.describe(short) + support.describe(full)
    assert short.stdout.strip() and full.stdout.strip()
    assert len(short.stdout) < len(full.stdout), "--full prints the tensor values the default elides"
    proto = onnx.load(str(model))
    expected_full = onnx.printer.to_text(proto)
    assert full.stdout.rstrip("\n") == expected_full.rstrip("\n"), "`print --full` should equal onnx.printer.to_text"


def test_rewrite_default_subcommand_equals_explicit(model: Path, tmp_path: Path, cli) -> None:  # noqa: ARG001
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    support.roundtrip(model, a)
    proc = support.run_cli("rewrite", model, "-o", b)
    assert proc.returncode == 0, support.describe(proc)
    assert a.read_bytes() == b.read_bytes()
