"""`--pass kv-cache-io`: decode graphs whose present.N.* outputs return only the new tokens' K/V.

Checked on every KV fixture in onnxruntime against the original export: logits unchanged, each
present output equal to the original's last `sequence` positions, and a decode loop driven by a
runtime-owned cache (the test appends the returned K/V itself) matching the original step by step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from support import FIXTURES_DIR, checker_error, describe, ort_run, ort_session, run_cli

KV_FIXTURES = [f"{arch}-kv-{exporter}" for arch in ("llama", "phi3", "falcon", "gptbigcode")
               for exporter in ("ts", "dynamo")]
TOLERANCE = 1e-5


def rewrite(fixture: str, out: Path, *options: str) -> Path:
    proc = run_cli(FIXTURES_DIR / fixture / "model.onnx", "-o", out, "--pass", "kv-cache-io", *options)
    assert proc.returncode == 0, describe(proc)
    assert checker_error(out) is None, checker_error(out)
    return out


def feeds(fixture: str) -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES_DIR / fixture / "inputs.npz"))


def output_names(path: Path) -> list[str]:
    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"shape {a.shape} vs {b.shape}"
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_new_kv_output(fixture: str, tmp_path: Path) -> None:
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "new.onnx", "--kv-output", "new")
    names = output_names(original)
    assert output_names(out) == names, "outputs keep their names and order"
    inputs = feeds(fixture)
    sequence = inputs["input_ids"].shape[1]
    expected = dict(zip(names, ort_run(original, inputs)))
    actual = dict(zip(names, ort_run(out, inputs)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    presents = [n for n in names if n.startswith("present.")]
    assert presents, f"{fixture}: no present outputs"
    for name in presents:
        assert actual[name].shape[2] == sequence, f"{name}: {actual[name].shape}"
        assert max_diff(actual[name], expected[name][:, :, -sequence:, :]) <= TOLERANCE, name
    # The declared shape is [batch, kv_heads, sequence, head_dim], sequence as input_ids has it.
    model = onnx.load(str(out), load_external_data=False)
    ids_dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    ids = next(i for i in model.graph.input if i.name == "input_ids")
    seq_dim = ids.type.tensor_type.shape.dim[1]
    for o in model.graph.output:
        if o.name in presents:
            dim = o.type.tensor_type.shape.dim[2]
            assert (dim.dim_param, dim.dim_value) == (seq_dim.dim_param, seq_dim.dim_value), (o.name, ids_dims)


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_full_kv_output_keeps_model(fixture: str, tmp_path: Path) -> None:
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "full.onnx", "--kv-output", "full")
    inputs = feeds(fixture)
    for a, e in zip(ort_run(out, inputs), ort_run(original, inputs)):
        assert max_diff(a, e) <= TOLERANCE


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_decode_loop_with_runtime_owned_cache(fixture: str, tmp_path: Path) -> None:
    """Three one-token steps: the test keeps the cache and appends what the model returns."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "new.onnx")
    names = output_names(original)
    ref_session, new_session = ort_session(original), ort_session(out)
    ref_feeds = feeds(fixture)
    new_feeds = dict(ref_feeds)
    batch = ref_feeds["input_ids"].shape[0]
    rng = np.random.default_rng(0)
    for step in range(3):
        ref = dict(zip(names, ref_session.run(None, ref_feeds)))
        got = dict(zip(names, new_session.run(None, new_feeds)))
        assert max_diff(got["logits"], ref["logits"]) <= TOLERANCE, f"step {step}"
        token = rng.integers(1, 200, size=(batch, 1), dtype=np.int64)
        mask = np.concatenate([ref_feeds["attention_mask"], np.ones((batch, 1), np.int64)], axis=1)
        next_ref = {"input_ids": token, "attention_mask": mask}
        next_new = {"input_ids": token, "attention_mask": mask}
        for name in names:
            if not name.startswith("present."):
                continue
            past = "past_key_values." + name[len("present."):]
            next_ref[past] = ref[name]
            next_new[past] = np.concatenate([new_feeds[past], got[name]], axis=2)
            assert max_diff(next_new[past], ref[name]) <= TOLERANCE, f"step {step}: {name}"
        ref_feeds, new_feeds = next_ref, next_new


def positions_after(past: np.ndarray, batch: int, sequence: int) -> np.ndarray:
    """What every KV fixture computes inside: cache_position = past_len + arange(sequence), the
    same for every row (the exports derive it from the cache length, not from attention_mask:
    none has a CumSum), so left-padded rows get the same positions."""
    return np.broadcast_to(past.shape[2] + np.arange(sequence), (batch, sequence)).astype(np.int64).copy()


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_positions_input(fixture: str, tmp_path: Path) -> None:
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "positions.onnx", "--kv-output", "new", "--positions", "input")
    model = onnx.load(str(out), load_external_data=False)
    position_input = next(i for i in model.graph.input if i.name == "position_ids")
    assert position_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
    ids = next(i for i in model.graph.input if i.name == "input_ids")
    assert position_input.type.tensor_type.shape == ids.type.tensor_type.shape
    inputs = feeds(fixture)
    batch, sequence = inputs["input_ids"].shape
    names = output_names(original)
    expected = dict(zip(names, ort_run(original, inputs)))
    inputs["position_ids"] = positions_after(inputs["past_key_values.0.key"], batch, sequence)
    actual = dict(zip(names, ort_run(out, inputs)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    for name in names:
        if name.startswith("present."):
            assert max_diff(actual[name], expected[name][:, :, -sequence:, :]) <= TOLERANCE, name
    # The input is really what positions the tokens: other positions give other logits.
    inputs["position_ids"] = inputs["position_ids"] + 3
    moved = ort_run(out, inputs)[0]
    assert max_diff(moved, expected["logits"]) > 1e-4


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_decode_loop_with_positions_input(fixture: str, tmp_path: Path) -> None:
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "positions.onnx", "--positions", "input")
    names = output_names(original)
    ref_session, new_session = ort_session(original), ort_session(out)
    ref_feeds = feeds(fixture)
    cache = {k: v for k, v in ref_feeds.items() if k.startswith("past_key_values.")}
    batch = ref_feeds["input_ids"].shape[0]
    rng = np.random.default_rng(2)
    for step in range(3):
        sequence = ref_feeds["input_ids"].shape[1]
        new_feeds = {"input_ids": ref_feeds["input_ids"], "attention_mask": ref_feeds["attention_mask"], **cache,
                     "position_ids": positions_after(cache["past_key_values.0.key"], batch, sequence)}
        ref = dict(zip(names, ref_session.run(None, ref_feeds)))
        got = dict(zip(names, new_session.run(None, new_feeds)))
        assert max_diff(got["logits"], ref["logits"]) <= TOLERANCE, f"step {step}"
        token = rng.integers(1, 200, size=(batch, 1), dtype=np.int64)
        mask = np.concatenate([ref_feeds["attention_mask"], np.ones((batch, 1), np.int64)], axis=1)
        ref_feeds = {"input_ids": token, "attention_mask": mask}
        for name in names:
            if name.startswith("present."):
                past = "past_key_values." + name[len("present."):]
                ref_feeds[past] = ref[name]
                cache[past] = np.concatenate([cache[past], got[name]], axis=2)


def test_bad_positions_value_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(FIXTURES_DIR / "llama-kv-ts" / "model.onnx", "-o", tmp_path / "out.onnx",
                   "--pass", "kv-cache-io", "--positions", "mask")
    assert proc.returncode != 0 and "--positions mask" in proc.stderr, describe(proc)


def hf_bias(mask: np.ndarray, sequence: int) -> np.ndarray:
    """HF's 4-D mask as an additive bias: query i (absolute position past + i) may attend key j
    when j <= past + i and attention_mask[b, j] == 1; 0 there, float32 lowest elsewhere."""
    batch, total = mask.shape
    query = (total - sequence) + np.arange(sequence)[:, None]
    allowed = (np.arange(total)[None, :] <= query)[None] & (mask[:, None, :] == 1)
    return np.where(allowed, 0, np.finfo(np.float32).min).astype(np.float32)[:, None]


@pytest.mark.parametrize("options", [("--mask", "bias"), ("--positions", "input", "--mask", "bias")],
                         ids=["bias", "positions+bias"])
@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_mask_bias(fixture: str, options: tuple[str, ...], tmp_path: Path) -> None:
    """Row 1 of every fixture's feed is left-padded by 2: padding goes through the bias too."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "bias.onnx", *options)
    model = onnx.load(str(out), load_external_data=False)
    inputs_declared = {i.name: i for i in model.graph.input}
    assert "attention_mask" not in inputs_declared
    bias_type = inputs_declared["attention_bias"].type.tensor_type
    assert bias_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in bias_type.shape.dim] == \
        ["batch_size", 1, "sequence_length", "total_sequence_length"]
    inputs = feeds(fixture)
    batch, sequence = inputs["input_ids"].shape
    names = output_names(original)
    expected = dict(zip(names, ort_run(original, inputs)))
    inputs["attention_bias"] = hf_bias(inputs.pop("attention_mask"), sequence)
    if "position_ids" in inputs_declared:
        inputs["position_ids"] = positions_after(inputs["past_key_values.0.key"], batch, sequence)
    actual = dict(zip(names, ort_run(out, inputs)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    for name in names:
        if name.startswith("present."):
            assert max_diff(actual[name], expected[name][:, :, -sequence:, :]) <= TOLERANCE, name


BUFFER = 8  # fixed past length of the static decode graph: the runtime's KV buffer slots


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_fixed_buffer_decode_loop(fixture: str, layout: str, tmp_path: Path) -> None:
    """The runtime's view: a static one-token graph over a fixed BUFFER-slot cache. The test
    owns the buffer, writes each step's new K/V at slot `position`, passes position_ids and
    a bias masking unfilled slots and padding; logits match the original step by step.
    With bshd the buffer is [batch, BUFFER, kv_heads, head_dim] and a slot is axis 1."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    reference = feeds(fixture)
    batch = reference["input_ids"].shape[0]
    out = tmp_path / "static.onnx"
    proc = run_cli(original, "-o", out, "--pass", "kv-cache-io", "--positions", "input", "--mask", "bias",
                   "--kv-layout", layout,
                   "--pass", "static-shape", "--dim", f"batch_size={batch}", "--dim", "sequence_length=1",
                   "--dim", f"past_sequence_length={BUFFER}", "--dim", f"total_sequence_length={BUFFER + 1}")
    assert proc.returncode == 0, describe(proc)
    assert checker_error(out) is None, checker_error(out)
    before = [n.op_type for n in onnx.load(str(original), load_external_data=False).graph.node]
    after = [n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node]
    for op in ("Shape", "Range", "ScatterND"):
        assert after.count(op) == 0, f"{op} left: {after.count(op)}"
    # bshd adds one Transpose per past input and at most one per present output.
    layout_transposes = 2 * sum(n.startswith("present.") for n in output_names(original)) if layout == "bshd" else 0
    assert after.count("Transpose") <= before.count("Transpose") + layout_transposes

    names = output_names(original)
    pasts = [k for k in reference if k.startswith("past_key_values.")]
    past_len = reference[pasts[0]].shape[2]
    ref_cache = {k: reference[k] for k in pasts}
    ref_mask = reference["attention_mask"][:, :past_len]  # row 1 left-padded by 2
    buffer = {}
    for k in pasts:
        b, heads, _, dim = reference[k].shape
        buffer[k] = np.zeros((b, heads, BUFFER, dim), np.float32)
        buffer[k][:, :, :past_len] = reference[k]
    position = past_len
    ref_session, session = ort_session(original), ort_session(out)
    rng = np.random.default_rng(3)
    for step in range(BUFFER - past_len):
        token = rng.integers(1, 200, size=(batch, 1), dtype=np.int64)
        mask = np.concatenate([ref_mask, np.ones((batch, 1), np.int64)], axis=1)
        ref = dict(zip(names, ref_session.run(None, {"input_ids": token, "attention_mask": mask, **ref_cache})))
        # Keys are the BUFFER slots then the new token: filled, unpadded slots and itself attend.
        allowed = np.zeros((batch, BUFFER + 1), bool)
        allowed[:, :position] = ref_mask == 1
        allowed[:, BUFFER] = True
        bias = np.where(allowed, 0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        fed = buffer if layout == "bhsd" else {k: np.ascontiguousarray(v.transpose(0, 2, 1, 3)) for k, v in buffer.items()}
        got = dict(zip(names, session.run(None, {
            "input_ids": token, "position_ids": np.full((batch, 1), position, np.int64),
            "attention_bias": bias, **fed})))
        assert max_diff(got["logits"], ref["logits"]) <= TOLERANCE, f"step {step}"
        for name in names:
            if name.startswith("present."):
                past = "past_key_values." + name[len("present."):]
                new = got[name] if layout == "bhsd" else got[name].transpose(0, 2, 1, 3)
                assert new.shape[2] == 1, f"{name}: {got[name].shape}"
                buffer[past][:, :, position] = new[:, :, 0]
                ref_cache[past] = ref[name]
        ref_mask = mask
        position += 1


def test_prefill_model_is_rejected(tmp_path: Path) -> None:
    proc = run_cli(FIXTURES_DIR / "llama-ts" / "model.onnx", "-o", tmp_path / "out.onnx", "--pass", "kv-cache-io")
    assert proc.returncode == 1, describe(proc)
    assert "kv-cache-io" in proc.stderr and "no KV cache found" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.onnx").exists()


def test_bad_kv_output_value_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(FIXTURES_DIR / "llama-kv-ts" / "model.onnx", "-o", tmp_path / "out.onnx",
                   "--pass", "kv-cache-io", "--kv-output", "half")
    assert proc.returncode != 0 and "--kv-output half" in proc.stderr, describe(proc)


@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_static_decode_step_has_no_shape_ops(fixture: str, tmp_path: Path) -> None:
    """kv-cache-io + static-shape at batch 1, one token, past 15: no Shape/Range/ScatterND left,
    no more Transposes than the export, and the same results as the original at that shape."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = tmp_path / "static.onnx"
    proc = run_cli(original, "-o", out, "--pass", "kv-cache-io", "--pass", "static-shape",
                   "--dim", "batch_size=1", "--dim", "sequence_length=1",
                   "--dim", "past_sequence_length=15", "--dim", "total_sequence_length=16")
    assert proc.returncode == 0, describe(proc)
    assert checker_error(out) is None, checker_error(out)
    before = [n.op_type for n in onnx.load(str(original), load_external_data=False).graph.node]
    after = [n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node]
    for op in ("Shape", "Range", "ScatterND"):
        assert after.count(op) == 0, f"{op} left: {after.count(op)}"
    assert after.count("Transpose") <= before.count("Transpose")

    reference = feeds(fixture)
    rng = np.random.default_rng(1)
    inputs = {"input_ids": np.array([[7]], np.int64), "attention_mask": np.ones((1, 16), np.int64)}
    for name, value in reference.items():
        if name.startswith("past_key_values."):
            shape = (1, value.shape[1], 15, value.shape[3])
            inputs[name] = rng.standard_normal(shape).astype(np.float32)
    names = output_names(original)
    expected = dict(zip(names, ort_run(original, inputs)))
    actual = dict(zip(names, ort_run(out, inputs)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    for name in names:
        if name.startswith("present."):
            assert max_diff(actual[name], expected[name][:, :, -1:, :]) <= TOLERANCE, name


def to_bshd(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 2, 1, 3))


@pytest.mark.parametrize("options", [(), ("--kv-output", "full"), ("--positions", "input", "--mask", "bias")],
                         ids=["new", "full", "positions+bias"])
@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_kv_layout_bshd(fixture: str, options: tuple[str, ...], tmp_path: Path) -> None:
    """Caches in and out as [batch, sequence, kv_heads, head_dim]: the same results as the
    original once the caches are transposed, and the declared shapes say so."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    out = rewrite(fixture, tmp_path / "bshd.onnx", "--kv-layout", "bshd", *options)
    names = output_names(original)
    assert output_names(out) == names
    original_model = onnx.load(str(original), load_external_data=False)
    model = onnx.load(str(out), load_external_data=False)

    def dims(info: onnx.ValueInfoProto) -> list:
        return [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]

    before = {i.name: dims(i) for i in list(original_model.graph.input) + list(original_model.graph.output)}
    after = {i.name: dims(i) for i in list(model.graph.input) + list(model.graph.output)}
    sequence_dim = after["input_ids"][1]
    for name in names:
        if name.startswith("present."):
            b, heads, _, dim = before[name]
            past = "past_key_values." + name[len("present."):]
            assert after[past] == [b, before[past][2], heads, dim], past
            total = before[name][2] if "full" in options else sequence_dim
            assert after[name] == [b, total, heads, dim], name

    inputs = feeds(fixture)
    batch, sequence = inputs["input_ids"].shape
    expected = dict(zip(names, ort_run(original, inputs)))
    fed = {k: to_bshd(v) if k.startswith("past_key_values.") else v for k, v in inputs.items()}
    if "--positions" in options:
        fed["position_ids"] = positions_after(inputs["past_key_values.0.key"], batch, sequence)
        fed["attention_bias"] = hf_bias(fed.pop("attention_mask"), sequence)
    actual = dict(zip(names, ort_run(out, fed)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    for name in names:
        if name.startswith("present."):
            want = expected[name] if "full" in options else expected[name][:, :, -sequence:, :]
            assert max_diff(actual[name], to_bshd(want)) <= TOLERANCE, name


def test_bad_kv_layout_value_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(FIXTURES_DIR / "llama-kv-ts" / "model.onnx", "-o", tmp_path / "out.onnx",
                   "--pass", "kv-cache-io", "--kv-layout", "bhds")
    assert proc.returncode != 0 and "--kv-layout bhds" in proc.stderr, describe(proc)


# Fixtures whose bshd graph has fewer Transposes than bhsd after each pipeline. Llama and Phi-3:
# K and V are concatenated on axis 1 before the heads-first Transpose, rotary runs on bshd, and
# K's two Transposes meet (across repeat_kv only where attention-permutes sees static shapes).
# Falcon's computed no-op Reshapes after the heads Transpose and GPTBigCode's fused key_value
# Split keep the export's Transposes: equal there.
FEWER_TRANSPOSES = {
    "static-shape": {"phi3-kv-ts", "phi3-kv-dynamo"},
    "npu": {"llama-kv-ts", "llama-kv-dynamo", "phi3-kv-ts", "phi3-kv-dynamo"},
}


@pytest.mark.parametrize("pipeline", ["static-shape", "npu"])
@pytest.mark.parametrize("fixture", KV_FIXTURES)
def test_kv_layout_bshd_transposes(fixture: str, pipeline: str, tmp_path: Path) -> None:
    """The fixed-buffer graph (positions + bias, past BUFFER): bshd has no more Transposes than
    bhsd (fewer where listed), passes the full check, and gives the same outputs."""
    original = FIXTURES_DIR / fixture / "model.onnx"
    reference = feeds(fixture)
    batch = reference["input_ids"].shape[0]
    outs, counts = {}, {}
    for layout in ("bhsd", "bshd"):
        out = outs[layout] = tmp_path / f"{layout}.onnx"
        proc = run_cli(original, "-o", out, "--pass", "kv-cache-io", "--positions", "input", "--mask", "bias",
                       "--kv-layout", layout, "--pass", pipeline,
                       "--dim", f"batch_size={batch}", "--dim", "sequence_length=1",
                       "--dim", f"past_sequence_length={BUFFER}", "--dim", f"total_sequence_length={BUFFER + 1}")
        assert proc.returncode == 0, describe(proc)
        model = onnx.load(str(out))
        onnx.checker.check_model(model, full_check=True)
        counts[layout] = [n.op_type for n in model.graph.node].count("Transpose")
    assert counts["bshd"] <= counts["bhsd"], counts
    if fixture in FEWER_TRANSPOSES[pipeline]:
        assert counts["bshd"] < counts["bhsd"], counts

    rng = np.random.default_rng(4)
    inputs = {"input_ids": rng.integers(1, 200, size=(batch, 1), dtype=np.int64),
              "position_ids": np.full((batch, 1), 5, np.int64),
              "attention_bias": np.zeros((batch, 1, 1, BUFFER + 1), np.float32)}
    inputs["attention_bias"][:, :, :, 5:BUFFER] = np.finfo(np.float32).min
    for name, value in reference.items():
        if name.startswith("past_key_values."):
            inputs[name] = rng.standard_normal((batch, value.shape[1], BUFFER, value.shape[3])).astype(np.float32)
    names = output_names(original)
    expected = dict(zip(names, ort_run(outs["bhsd"], inputs)))
    fed = {k: to_bshd(v) if k.startswith("past_key_values.") else v for k, v in inputs.items()}
    actual = dict(zip(names, ort_run(outs["bshd"], fed)))
    assert max_diff(actual["logits"], expected["logits"]) <= TOLERANCE
    for name in names:
        if name.startswith("present."):
            assert max_diff(actual[name], to_bshd(expected[name])) <= TOLERANCE, name
