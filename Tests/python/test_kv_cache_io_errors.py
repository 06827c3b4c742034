"""kv-cache-io on graphs it cannot rewrite (issue #10): a clear error naming the node, exit 1, and
no output file. Small hand-built decode graphs, each missing one thing the pass needs."""
from __future__ import annotations

from pathlib import Path

import onnx
import onnx.helper as h
import pytest
from onnx import TensorProto

import support

LLAMA_KV = support.FIXTURES_DIR / "llama-kv-ts"


def decode_graph(*, cache: bool = True, positions: str = "range", mask: str = "add") -> onnx.ModelProto:
    """One attention-like step: present = Concat(past, k) on axis 2; optional Range positions into a
    rotary-like Mul; optional Add(scores, mask from attention_mask) before Softmax."""
    f = TensorProto.FLOAT
    nodes = [
        h.make_node("Gather", ["embed", "input_ids"], ["x"], name="embed_gather"),     # [1, 1, 4]
        h.make_node("Unsqueeze", ["x", "one"], ["k"], name="k_heads"),                  # [1, 1, 1, 4]
    ]
    inits = [
        h.make_tensor("embed", f, [8, 4], [0.1 * i for i in range(32)]),
        h.make_tensor("one", TensorProto.INT64, [1], [1]),
        h.make_tensor("zero", TensorProto.INT64, [], [0]),
        h.make_tensor("step", TensorProto.INT64, [], [1]),
        h.make_tensor("freq", f, [1, 1, 1, 4], [1.0, 0.5, 0.25, 0.125]),
    ]
    if cache:
        nodes.append(h.make_node("Concat", ["past_key_values.0.key", "k"], ["present.0.key"], axis=2, name="cache_concat"))
        keys = "present.0.key"
    else:
        nodes.append(h.make_node("Identity", ["k"], ["present.0.key"], name="not_a_cache"))
        keys = "past_key_values.0.key"
    if positions == "range":
        nodes += [
            h.make_node("Shape", ["input_ids"], ["ids_shape"], name="ids_shape"),
            h.make_node("Gather", ["ids_shape", "step"], ["seq"], axis=0, name="seq_len"),
            h.make_node("Range", ["zero", "seq", "step"], ["positions"], name="positions_range"),
            # Positions only counted, never fed to a rotary product or an embedding table.
            h.make_node("ReduceSum", ["positions"], ["position_sum"], keepdims=0, name="not_rotary"),
        ]
    nodes += [
        h.make_node("Mul", ["k", "freq"], ["q"], name="q_scale"),
        h.make_node("Transpose", [keys], ["kt"], perm=[0, 1, 3, 2], name="k_t"),
        h.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
    ]
    if mask == "add":
        nodes += [
            h.make_node("Cast", ["attention_mask"], ["mask_f"], to=f, name="mask_cast"),
            h.make_node("Mul", ["scores", "mask_f"], ["masked"], name="mask_mul_not_add"),
            h.make_node("Softmax", ["masked"], ["probs"], axis=-1, name="softmax"),
        ]
    else:
        nodes.append(h.make_node("Softmax", ["scores"], ["probs"], axis=-1, name="softmax"))
    total = "total" if cache else "past"
    outputs = [h.make_tensor_value_info("probs", f, [1, 1, 1, total]),
               h.make_tensor_value_info("present.0.key", f, [1, 1, "total" if cache else 1, 4])]
    if positions == "range":
        outputs.append(h.make_tensor_value_info("position_sum", TensorProto.INT64, []))
    inputs = [
        h.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 1]),
        h.make_tensor_value_info("past_key_values.0.key", f, [1, 1, "past", 4]),
    ]
    if mask == "add":
        inputs.append(h.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "total"]))
    graph = h.make_graph(nodes, "decode", inputs, outputs, inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def rewrite(model: onnx.ModelProto, tmp_path: Path, *options: str):
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(model, src)
    proc = support.run_cli(src, "-o", out, "--pass", "kv-cache-io", *options)
    return proc, out


def test_the_hand_built_graph_is_a_valid_model():
    onnx.checker.check_model(decode_graph(), full_check=True)


def test_no_recognisable_cache_names_the_graph(tmp_path: Path):
    proc, out = rewrite(decode_graph(cache=False), tmp_path)
    assert proc.returncode == 1, support.describe(proc)
    assert "kv-cache-io" in proc.stderr and "no KV cache found" in proc.stderr and "decode" in proc.stderr
    assert not out.exists()


def test_positions_that_feed_no_rotary_or_embedding_name_the_range(tmp_path: Path):
    proc, out = rewrite(decode_graph(mask="none"), tmp_path, "--positions", "input")
    assert proc.returncode == 1, support.describe(proc)
    assert "positions_range" in proc.stderr and "cannot isolate the position computation" in proc.stderr
    assert not out.exists()


def test_no_position_computation_at_all_names_the_graph(tmp_path: Path):
    proc, out = rewrite(decode_graph(positions="none", mask="none"), tmp_path, "--positions", "input")
    assert proc.returncode == 1, support.describe(proc)
    assert "decode" in proc.stderr and "cannot isolate the position computation" in proc.stderr
    assert not out.exists()


def test_a_mask_not_added_to_the_scores_is_named(tmp_path: Path):
    proc, out = rewrite(decode_graph(positions="none"), tmp_path, "--mask", "bias")
    assert proc.returncode == 1, support.describe(proc)
    assert "--mask bias" in proc.stderr and "Softmax" in proc.stderr
    assert not out.exists()


def test_mask_bias_without_an_attention_mask_input(tmp_path: Path):
    proc, out = rewrite(decode_graph(positions="none", mask="none"), tmp_path, "--mask", "bias")
    assert proc.returncode == 1, support.describe(proc)
    assert "no 'attention_mask' input" in proc.stderr
    assert not out.exists()


def test_rewriting_positions_twice_is_an_error_not_a_second_input(tmp_path: Path):
    once = tmp_path / "once.onnx"
    # --kv-output full keeps the cache Concat, so the second run finds the cache and gets to positions.
    args = ("--pass", "kv-cache-io", "--kv-output", "full", "--positions", "input")
    proc = support.run_cli(LLAMA_KV / "model.onnx", "-o", once, *args)
    assert proc.returncode == 0, support.describe(proc)
    twice = tmp_path / "twice.onnx"
    proc = support.run_cli(once, "-o", twice, *args)
    assert proc.returncode == 1, support.describe(proc)
    assert "--positions input" in proc.stderr and not twice.exists()


def test_a_second_run_on_its_own_output_says_it_looks_rewritten(tmp_path: Path):
    once = tmp_path / "once.onnx"
    proc = support.run_cli(LLAMA_KV / "model.onnx", "-o", once, "--pass", "kv-cache-io")
    assert proc.returncode == 0, support.describe(proc)
    twice = tmp_path / "twice.onnx"
    proc = support.run_cli(once, "-o", twice, "--pass", "kv-cache-io")
    assert proc.returncode == 1, support.describe(proc)
    assert "no KV cache found" in proc.stderr and "already rewritten by kv-cache-io --kv-output new?" in proc.stderr
    assert not twice.exists()
