#!/usr/bin/env python3
"""Exports the small LLM fixtures in this folder. Run by hand, never in CI:

    python3 -m venv VENV && VENV/bin/pip install -r Fixtures/requirements-generate.txt
    VENV/bin/python Fixtures/generate.py [--only NAME ...]

Every model is built from a transformers config class with a fixed seed and random
weights (nothing is downloaded), with eager attention so it exports as MatMul/Softmax.
Each fixture folder holds model.onnx (weights inside), inputs.npz (the feed, by graph
input name), outputs.npz (onnxruntime's outputs on that feed, checked against torch) and
meta.json (how it was made, and whether a second input shape ran).
"""
import argparse
import json
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from transformers import (FalconConfig, FalconForCausalLM, GPTBigCodeConfig, GPTBigCodeForCausalLM,
                          LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, SEQ = 2, 8
SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)
TOKENS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def llama():
    return LlamaForCausalLM(LlamaConfig(**SMALL, num_key_value_heads=2, attn_implementation="eager"))


def phi3():
    return Phi3ForCausalLM(Phi3Config(**SMALL, num_key_value_heads=4, attn_implementation="eager"))


def falcon():
    # Falcon-7B style: multi-query attention, parallel attention/MLP, no biases, rotary.
    cfg = FalconConfig(vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       multi_query=True, parallel_attn=True, new_decoder_architecture=False, bias=False,
                       alibi=False, max_position_embeddings=128, attn_implementation="eager", **TOKENS)
    return FalconForCausalLM(cfg)


def gptbigcode():
    cfg = GPTBigCodeConfig(vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_positions=128, multi_query=True,
                           attn_implementation="eager", **TOKENS)
    return GPTBigCodeForCausalLM(cfg)


ARCHS = {"llama": llama, "phi3": phi3, "falcon": falcon, "gptbigcode": gptbigcode}


class Prefill(torch.nn.Module):
    """input_ids + attention_mask -> logits, with no cache."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def feed(batch, seq, seed):
    g = np.random.default_rng(seed)
    ids = g.integers(1, 256, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    if batch > 1:
        mask[1, : min(2, seq - 1)] = 0  # left padding in the second row
    return {"input_ids": ids, "attention_mask": mask}


def export(name, arch, exporter):
    torch.manual_seed(0)
    model = ARCHS[arch]().eval()
    wrapper = Prefill(model).eval()
    inputs = feed(BATCH, SEQ, seed=1)
    args = tuple(torch.from_numpy(inputs[k]) for k in ("input_ids", "attention_mask"))
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(
                wrapper, args, path, dynamo=False, opset_version=17,
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                              "attention_mask": {0: "batch_size", 1: "sequence_length"},
                              "logits": {0: "batch_size", 1: "sequence_length"}})
        else:
            batch = torch.export.Dim("batch_size", min=1, max=64)
            seq = torch.export.Dim("sequence_length", min=2, max=128)
            with tempfile.TemporaryDirectory() as tmp:
                tmp_path = os.path.join(tmp, "model.onnx")
                torch.onnx.export(
                    wrapper, args, tmp_path, dynamo=True,
                    input_names=["input_ids", "attention_mask"], output_names=["logits"],
                    dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
                onnx.save(onnx.load(tmp_path), path)  # one file, weights inside
    onnx.checker.check_model(path, full_check=True)
    with torch.no_grad():
        ref = wrapper(*args).numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = sess.run(None, inputs)
    diff = float(np.abs(out[0] - ref).max())
    assert diff < 1e-4, f"{name}: onnxruntime and torch differ by {diff}"
    second = feed(1, 5, seed=2)
    try:
        sess.run(None, second)
        dynamic = True
    except Exception as e:  # noqa: BLE001 - recorded, not fatal
        dynamic = f"{type(e).__name__}: {str(e)[:200]}"
    np.savez(os.path.join(folder, "inputs.npz"), **inputs)
    np.savez(os.path.join(folder, "outputs.npz"), **{o.name: v for o, v in zip(sess.get_outputs(), out)})
    m = onnx.load(path)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    meta = {
        "architecture": arch, "exporter": exporter, "variant": "prefill",
        "torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
        "ir_version": m.ir_version, "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "num_hidden_layers": model.config.num_hidden_layers, "config": model.config.to_diff_dict(),
        "input_shapes": {k: list(v.shape) for k, v in inputs.items()},
        "dynamic_dims": ["batch_size", "sequence_length"], "second_shape_runs": dynamic,
        "max_abs_diff_vs_torch": diff, "nodes": len(m.graph.node), "op_types": dict(sorted(ops.items())),
    }
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True, default=str)
    print(f"{name}: {os.path.getsize(path)} bytes, {len(m.graph.node)} nodes, opset {meta['opset']}, "
          f"diff {diff:.2e}, dynamic {dynamic}")


FIXTURES = {f"{a}-ts": (a, "torchscript") for a in ARCHS}
FIXTURES.update({f"{a}-dynamo": (a, "dynamo") for a in ARCHS})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", nargs="*")
    args = p.parse_args()
    failed = []
    for name, (arch, exporter) in FIXTURES.items():
        if args.only and name not in args.only:
            continue
        try:
            export(name, arch, exporter)
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failed.append(name)
            print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
