"""`attention-permutes` alone on every fixture, with and without `static-shape` before it.

The npu pipeline test checks the pass inside `--pass npu`; this one checks it on its own, so a
regression shows up here with nothing else in the way: never more Transposes than before, at
most 4 per decoder layer on the Llama/Phi-3/Falcon TorchScript prefill exports once shapes are
bound (K's two Transposes merged), the checker's full check, and onnxruntime outputs equal to
the reference (<= 1e-5).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
# The KV exports are not here: their `present.N.key` output pins K's heads-first layout
# between its two Transposes, so nothing can merge without changing a graph output.
FOUR_PER_LAYER = ("llama-ts", "phi3-ts", "falcon-ts", "falcon-ts-nofold", "llama-ts-446", "phi3-ts-446",
                  "falcon-ts-446")


def layers(fixture: Path) -> int:
    meta = json.loads((fixture / "meta.json").read_text())
    return int(meta.get("num_hidden_layers") or meta.get("config", {}).get("num_hidden_layers") or 0)


def transposes(model: onnx.ModelProto) -> int:
    return Counter(n.op_type for n in model.graph.node)["Transpose"]


def rewrite(fixture: Path, out: Path, *passes: str, shapes: list[str]) -> onnx.ModelProto:
    args = [a for p in passes for a in ("--pass", p)]
    proc = support.run_cli(*args, *shapes, fixture / "model.onnx", "-o", out)
    assert proc.returncode == 0, support.describe(proc)
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    return model


def assert_reference_outputs(model: onnx.ModelProto, path: Path, fixture: Path, feed: dict) -> None:
    reference = np.load(fixture / "outputs.npz")
    outputs = support.ort_run(path, feed)
    for vi, value in zip(model.graph.output, outputs):
        diff = float(np.abs(value - reference[vi.name]).max()) if value.size else 0.0
        assert diff <= 1e-5, f"{vi.name} differs by {diff}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_attention_permutes_static(fixture: Path, tmp_path: Path):
    feed = dict(np.load(fixture / "inputs.npz"))
    shapes = support.input_shape_args(feed)
    # The baseline is the model after static-shape, so only attention-permutes is measured.
    bound = rewrite(fixture, tmp_path / "static.onnx", "static-shape", shapes=shapes)
    out = tmp_path / "permuted.onnx"
    model = rewrite(fixture, out, "static-shape", "attention-permutes", shapes=shapes)
    before, after = transposes(bound), transposes(model)
    assert after <= before, f"Transposes {before} -> {after}"
    if fixture.name in FOUR_PER_LAYER:
        n_layers = layers(fixture)
        assert n_layers > 0 and after <= 4 * n_layers, f"{after} Transposes for {n_layers} layers"
    assert_reference_outputs(model, out, fixture, feed)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_attention_permutes_dynamic(fixture: Path, tmp_path: Path):
    """Without bound shapes the pass must stay correct and never add a Transpose."""
    feed = dict(np.load(fixture / "inputs.npz"))
    out = tmp_path / "permuted.onnx"
    model = rewrite(fixture, out, "attention-permutes", shapes=[])
    before = transposes(onnx.load(fixture / "model.onnx", load_external_data=False))
    assert transposes(model) <= before, f"Transposes {before} -> {transposes(model)}"
    assert_reference_outputs(model, out, fixture, feed)
