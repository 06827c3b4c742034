"""`onnx-rewrite verify`: equal models pass, a changed weight is caught, bad input is named."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import support

LLAMA = support.FIXTURES_DIR / "llama-ts"


def verify(*args):
    env_python = ["--python", sys.executable]  # the test venv has onnxruntime and numpy
    return support.run_cli("verify", *env_python, *args)


def test_verify_accepts_a_rewrite_that_keeps_outputs(tmp_path: Path):
    out = tmp_path / "static.onnx"
    support.roundtrip(LLAMA / "model.onnx", out, "--pass", "static-shape", "--dim", "batch_size=2", "--dim", "sequence_length=8")
    proc = verify(LLAMA / "model.onnx", out, "--inputs", LLAMA / "inputs.npz")
    assert proc.returncode == 0, support.describe(proc)
    assert proc.stdout.startswith("logits: ok max abs diff"), proc.stdout
    # Random inputs need the symbolic dims bound.
    proc = verify(LLAMA / "model.onnx", out)  # random inputs shaped like the static model's
    assert proc.returncode == 0, support.describe(proc)
    proc = verify(LLAMA / "model.onnx", LLAMA / "model.onnx", "--dim", "batch_size=1", "--dim", "sequence_length=4")
    assert proc.returncode == 0, support.describe(proc)


def test_verify_reports_a_changed_weight(tmp_path: Path):
    model = onnx.load(LLAMA / "model.onnx")
    weight = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    changed = numpy_helper.to_array(weight).copy()
    changed *= 1.5  # every element: whichever rows the inputs reach
    weight.CopyFrom(numpy_helper.from_array(changed, weight.name))
    out = tmp_path / "changed.onnx"
    onnx.save(model, out)
    proc = verify(LLAMA / "model.onnx", out, "--inputs", LLAMA / "inputs.npz")
    assert proc.returncode == 1, support.describe(proc)
    assert "logits: MISMATCH max abs diff" in proc.stdout, proc.stdout


def test_verify_names_what_is_missing(tmp_path: Path):
    proc = verify(LLAMA / "model.onnx", LLAMA / "model.onnx")
    assert proc.returncode == 2
    assert "symbolic dimension 'batch_size'" in proc.stderr and "--dim batch_size=N" in proc.stderr
    proc = verify(LLAMA / "model.onnx", tmp_path / "absent.onnx")
    assert proc.returncode == 2 and "absent.onnx: no such file" in proc.stderr
    proc = support.run_cli("verify", "--python", tmp_path / "no-python", LLAMA / "model.onnx", LLAMA / "model.onnx")
    assert proc.returncode != 0 and "not found" in proc.stderr, support.describe(proc)


def test_verify_runs_a_folder_of_tiles_against_the_whole_model(tmp_path: Path):
    tiles = tmp_path / "tiles"
    feed = dict(np.load(LLAMA / "inputs.npz"))
    proc = support.run_cli("tile", LLAMA / "model.onnx", "--out", tiles, *support.input_shape_args(feed))
    assert proc.returncode == 0, support.describe(proc)
    proc = verify(LLAMA / "model.onnx", tiles, "--inputs", LLAMA / "inputs.npz")
    assert proc.returncode == 0, support.describe(proc)
    assert "logits: ok" in proc.stdout
    # Random inputs take the tiles' static shapes from the manifest.
    proc = verify(LLAMA / "model.onnx", tiles)
    assert proc.returncode == 0 and "logits: ok" in proc.stdout, support.describe(proc)
    # A tile that computes something else is caught.
    block = onnx.load(tiles / "block_1.onnx")
    weight = next(t for t in block.graph.initializer if len(t.dims) == 2)
    array = numpy_helper.to_array(weight).copy()
    array *= 1.5
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(block, tiles / "block_1.onnx")
    proc = verify(LLAMA / "model.onnx", tiles, "--inputs", LLAMA / "inputs.npz")
    assert proc.returncode == 1 and "logits: MISMATCH" in proc.stdout, support.describe(proc)


def test_verify_says_when_a_folder_is_not_tiles(tmp_path: Path):
    proc = verify(LLAMA / "model.onnx", tmp_path)
    assert proc.returncode == 2 and "manifest.json" in proc.stderr and "Traceback" not in proc.stderr, support.describe(proc)
