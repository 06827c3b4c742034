"""Bad input files: one `error:` line naming the file, exit code 1..127, and nothing written.

Each case builds its files in tmp_path and writes to an empty folder `out/`, which must still be
empty afterwards (no output file, no data file, no temp file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import support

W_SHAPE = (64, 64)  # 16 KiB of float32: above the 1 KiB external-data threshold


def _graph(initializers: list[TensorProto]) -> onnx.GraphProto:
    return helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "bad_inputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, W_SHAPE[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, W_SHAPE[1]])],
        initializers,
    )


def _weights() -> np.ndarray:
    return np.arange(np.prod(W_SHAPE), dtype=np.float32).reshape(W_SHAPE)


def write_model(path: Path, ir_version: int = 10) -> Path:
    """A valid single-file model (MatMul by a 16 KiB initializer)."""
    model = helper.make_model(_graph([numpy_helper.from_array(_weights(), "w")]),
                              opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = ir_version
    path.write_bytes(model.SerializeToString())
    return path


def write_external_model(path: Path, location: str, offset: int = 0, length: int | None = None,
                         data: bytes | None = None) -> Path:
    """A model whose initializer `w` is external at `location` (written by hand, unchecked).

    `data` (default: the weights) is written to `location` relative to the model's folder unless
    the location is absolute or `data` is b"" (then nothing is written).
    """
    raw = _weights().tobytes()
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(W_SHAPE))
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset), "length": str(len(raw) if length is None else length)}
    for k, v in entries.items():
        w.external_data.add(key=k, value=v)
    model = helper.make_model(_graph([w]), opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())
    if data is None:
        data = raw
    if data and not os.path.isabs(location):
        target = path.parent / location
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


# Each case: (name, builder(tmp) -> model path). The builder lays out tmp/model/... as it likes.
CASES: dict[str, Callable[[Path], Path]] = {}


def case(name: str):
    def register(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES[name] = fn
        return fn
    return register


@case("truncated")
def _truncated(d: Path) -> Path:
    full = write_model(d / "full.onnx").read_bytes()
    p = d / "truncated.onnx"
    p.write_bytes(full[: len(full) // 2])
    return p


@case("random-bytes")
def _random(d: Path) -> Path:
    p = d / "random.onnx"
    data = np.random.default_rng(1234).bytes(4096)
    p.write_bytes(data)
    with pytest.raises(Exception):  # precondition: not a valid protobuf message for onnx either
        onnx.load_from_string(data)
    return p


@case("empty-file")
def _empty(d: Path) -> Path:
    p = d / "empty.onnx"
    p.write_bytes(b"")
    return p


@case("missing-file")
def _missing(d: Path) -> Path:
    return d / "does-not-exist.onnx"


@case("ir-version-99")
def _future_ir(d: Path) -> Path:
    return write_model(d / "future.onnx", ir_version=99)


@case("external-parent-dir")
def _escape_parent(d: Path) -> Path:
    (d / "outside.bin").write_bytes(_weights().tobytes())  # exists, so only the escape can be the error
    (d / "m").mkdir()
    return write_external_model(d / "m" / "escape.onnx", "../outside.bin", data=b"")


@case("external-absolute-path")
def _absolute(d: Path) -> Path:
    return write_external_model(d / "absolute.onnx", "/etc/passwd", length=64)


@case("external-symlink-outside")
def _symlink(d: Path) -> Path:
    (d / "elsewhere").mkdir()
    (d / "elsewhere" / "weights.bin").write_bytes(_weights().tobytes())
    (d / "m").mkdir()
    (d / "m" / "weights.bin").symlink_to(d / "elsewhere" / "weights.bin")
    return write_external_model(d / "m" / "symlink.onnx", "weights.bin", data=b"")


@case("external-offset-past-end")
def _offset(d: Path) -> Path:
    size = _weights().nbytes
    return write_external_model(d / "offset.onnx", "weights.bin", offset=size + 4096, length=16)


@case("external-length-past-end")
def _length(d: Path) -> Path:
    size = _weights().nbytes
    return write_external_model(d / "length.onnx", "weights.bin", offset=1024, length=size)


@case("external-file-missing")
def _missing_data(d: Path) -> Path:
    return write_external_model(d / "nodata.onnx", "weights.bin", data=b"")


def assert_clean_error(proc, model_name: str, out_dir: Path) -> None:
    desc = support.describe(proc)
    assert 1 <= proc.returncode <= 127, f"exit code must be 1..127 (not a signal/crash): {desc}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr must be exactly one line: {desc}"
    assert lines[0].startswith("error: "), f"stderr must start with 'error: ': {desc}"
    assert model_name in lines[0], f"the error must name {model_name!r}: {desc}"
    assert "Traceback" not in proc.stderr and "Fatal error" not in proc.stderr, desc
    left = support.leftovers(out_dir)
    assert not left, f"files left in the output folder after a failure: {left}; {desc}"


@pytest.mark.parametrize("external", [False, True], ids=["single-file", "external-data"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rewrite_rejects(name: str, external: bool, tmp_path: Path, cli) -> None:  # noqa: ARG001
    model = CASES[name](tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    extra = ["--external-data"] if external else []
    proc = support.run_cli(model, "-o", out_dir / "result.onnx", *extra, timeout=60)
    assert_clean_error(proc, model.name, out_dir)


MODEL_FILE_CASES = ["truncated", "random-bytes", "empty-file", "missing-file", "ir-version-99"]


@pytest.mark.parametrize("command", ["inspect", "print"])
@pytest.mark.parametrize("name", MODEL_FILE_CASES)
def test_read_commands_reject(name: str, command: str, tmp_path: Path, cli) -> None:  # noqa: ARG001
    model = CASES[name](tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = support.run_cli(command, model, timeout=60, cwd=out_dir)
    assert proc.stdout == "", f"nothing on stdout for a bad model: {support.describe(proc)}"
    assert_clean_error(proc, model.name, out_dir)


def test_print_full_rejects_escaping_external_data(tmp_path: Path, cli) -> None:  # noqa: ARG001
    model = CASES["external-parent-dir"](tmp_path)
    out_dir = tmp_path / "cwd"
    out_dir.mkdir()
    proc = support.run_cli("print", "--full", model, timeout=60, cwd=out_dir)
    assert proc.stdout == "", f"nothing on stdout for a bad model: {support.describe(proc)}"
    assert_clean_error(proc, model.name, out_dir)


def test_output_folder_missing(tmp_path: Path, cli) -> None:  # noqa: ARG001
    model = write_model(tmp_path / "ok.onnx")
    target = tmp_path / "no" / "such" / "folder" / "result.onnx"
    proc = support.run_cli(model, "-o", target, timeout=60)
    desc = support.describe(proc)
    assert 1 <= proc.returncode <= 127, desc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), desc
    assert "result.onnx" in lines[0] or "folder" in lines[0], f"the error must name the output path: {desc}"
    assert not (tmp_path / "no").exists(), "the CLI must not create the missing folders"
    assert support.leftovers(tmp_path, keep=["ok.onnx"]) == [], support.leftovers(tmp_path, keep=["ok.onnx"])


def test_good_model_is_accepted(tmp_path: Path, cli) -> None:  # noqa: ARG001
    """The builders above make valid models when not broken on purpose (so each case tests one fault)."""
    single = write_model(tmp_path / "ok.onnx")
    (tmp_path / "ext").mkdir()
    ext = write_external_model(tmp_path / "ext" / "ok.onnx", "weights.bin")
    for model in (single, ext):
        onnx.checker.check_model(str(model), full_check=True)
        out = tmp_path / f"out-{model.parent.name}.onnx"
        support.roundtrip(model, out)
        a = onnx.load(str(model))
        b = onnx.load(str(out))
        np.testing.assert_array_equal(numpy_helper.to_array(b.graph.initializer[0]), _weights())
        assert a.graph.node == b.graph.node
