#!/usr/bin/env python3
"""Exports the small LLM fixtures in this folder. Run by hand, never in CI.

    python3 -m venv /root/venvs/fixtures
    /root/venvs/fixtures/bin/pip install -r Fixtures/requirements-generate.txt
    # only for the *-446 fixtures: transformers 4.46.3 beside 5.x (see requirements-generate.txt)
    /root/venvs/fixtures/bin/pip install --no-deps --target /root/venvs/fixtures/transformers-4.46.3 \
        transformers==4.46.3 tokenizers==0.20.3 huggingface-hub==0.26.5 requests urllib3 certifi charset-normalizer idna
    /root/venvs/fixtures/bin/python Fixtures/generate.py [--only NAME ...] [--list]

Nothing is downloaded: every model is built from a transformers config class with a fixed seed and
random weights, with eager attention so attention exports as MatMul/Softmax. Each fixture folder holds

    model.onnx    one file, weights inside; checked with onnx.checker.check_model(full_check=True)
    inputs.npz    the reference feed, keyed by graph input name
    outputs.npz   onnxruntime's outputs on that feed, keyed by graph output name (checked against torch)
    meta.json     how it was made, op histogram, and whether a second input shape ran and matched torch

and README.md (this folder) is rewritten from all meta.json files at the end of every run.
The output is deterministic: the same versions give byte-identical files on a re-run.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TF446_DIR = os.environ.get("TRANSFORMERS_446_DIR", "/root/venvs/fixtures/transformers-4.46.3")
TOL = 1e-4

VOCAB = 256
TOKENS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)

# name -> (architecture, exporter, variant, transformers line)
FIXTURES: dict[str, tuple[str, str, str, str]] = {}
for _arch in ("llama", "phi3", "falcon", "gptbigcode"):
    FIXTURES[f"{_arch}-ts"] = (_arch, "torchscript", "prefill", "5")
for _arch in ("llama", "phi3", "falcon", "gptbigcode"):
    FIXTURES[f"{_arch}-dynamo"] = (_arch, "dynamo", "prefill", "5")
for _arch in ("llama", "phi3", "falcon", "gptbigcode"):
    FIXTURES[f"{_arch}-kv-ts"] = (_arch, "torchscript", "kv", "5")
for _arch in ("llama", "phi3", "falcon", "gptbigcode"):
    FIXTURES[f"{_arch}-kv-dynamo"] = (_arch, "dynamo", "kv", "5")
for _arch in ("llama", "phi3", "falcon"):
    FIXTURES[f"{_arch}-ts-446"] = (_arch, "torchscript", "prefill", "4.46")
FIXTURES["mllama-vision-ts"] = ("mllama-vision", "torchscript", "vision", "5")
FIXTURES["mllama-vision-dynamo"] = ("mllama-vision", "dynamo", "vision", "5")
# Exported with do_constant_folding=False: FalconLinear's `weight.T` stays a Transpose node
# (what falcon-linear must canonicalise like the folded falcon-ts).
FIXTURES["falcon-ts-nofold"] = ("falcon", "torchscript", "prefill", "5")
NO_CONSTANT_FOLDING = {"falcon-ts-nofold"}


# ---------------------------------------------------------------------------------------------
# Models (tiny, random, eager attention)


def build(arch: str):
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if arch == "llama":  # GQA: 4 query heads share 2 key/value heads
        cfg = tf.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                             attn_implementation="eager", **TOKENS)
        model = tf.LlamaForCausalLM(cfg)
    elif arch == "phi3":  # Phi-3-mini style: fused qkv / gate_up projections, MHA
        cfg = tf.Phi3Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                            original_max_position_embeddings=128, attn_implementation="eager", **TOKENS)
        model = tf.Phi3ForCausalLM(cfg)
    elif arch == "falcon":  # Falcon-7B style: multi-query, parallel attention/MLP, no biases, rotary
        cfg = tf.FalconConfig(vocab_size=VOCAB, hidden_size=64, ffn_hidden_size=128, num_hidden_layers=2,
                              num_attention_heads=4, multi_query=True, parallel_attn=True,
                              new_decoder_architecture=False, bias=False, alibi=False,
                              max_position_embeddings=128, attn_implementation="eager", **TOKENS)
        model = tf.FalconForCausalLM(cfg)
    elif arch == "gptbigcode":  # StarCoder style: multi-query, learned positions, tanh GELU
        cfg = tf.GPTBigCodeConfig(vocab_size=VOCAB, n_embd=64, n_inner=128, n_layer=2, n_head=4,
                                  n_positions=128, multi_query=True, attn_implementation="eager", **TOKENS)
        model = tf.GPTBigCodeForCausalLM(cfg)
    elif arch == "mllama-vision":  # Llama-3.2-Vision tower: 2 tiles of 2x2 patches (+cls, padded to 8)
        cfg = tf.MllamaVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_global_layers=1, attention_heads=2, image_size=28, patch_size=14,
                                    max_num_tiles=4, intermediate_layers_indices=[0, 1],
                                    vision_output_dim=96, attn_implementation="eager")
        model = tf.MllamaVisionModel(cfg)
    else:
        raise ValueError(arch)
    return model.eval()


def kv_heads(model, arch: str) -> int:
    c = model.config
    if arch in ("falcon", "gptbigcode"):
        return 1  # multi-query
    return c.num_key_value_heads


def head_dim(model, arch: str) -> int:
    c = model.config
    return getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads


def layers(model) -> int:
    return model.config.num_hidden_layers


# ---------------------------------------------------------------------------------------------
# Wrappers: plain tensors in, plain tensors out


def wrappers():
    import torch

    class Prefill(torch.nn.Module):
        """input_ids, attention_mask -> logits (no cache)."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                              return_dict=True).logits

    class Decode(torch.nn.Module):
        """input_ids, attention_mask (past + new), past.N.key/value... -> logits, present.N.key/value...

        A DynamicCache is built inside from the plain past tensors, so no Cache object is an input.
        """

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, *past):
            from transformers import DynamicCache

            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
            cache = DynamicCache(ddp_cache_data=pairs, config=self.model.config)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache,
                             use_cache=True, return_dict=True)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    class Vision(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values, aspect_ratio_ids, aspect_ratio_mask):
            return self.model(pixel_values=pixel_values, aspect_ratio_ids=aspect_ratio_ids,
                              aspect_ratio_mask=aspect_ratio_mask).last_hidden_state

    return Prefill, Decode, Vision


# ---------------------------------------------------------------------------------------------
# Feeds


def token_feed(rng, batch: int, seq: int, total: int | None = None, pad: int = 2):
    """input_ids [batch, seq]; attention_mask [batch, total] with `pad` left-padding zeros in row 1."""
    import numpy as np

    total = total or seq
    ids = rng.integers(3, VOCAB, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, total), dtype=np.int64)
    if batch > 1 and pad:
        mask[1, :pad] = 0
    return ids, mask


def prefill_feed(seed: int, batch: int, seq: int):
    import numpy as np

    ids, mask = token_feed(np.random.default_rng(seed), batch, seq)
    return {"input_ids": ids, "attention_mask": mask}


def decode_feed(model, arch: str, seed: int, batch: int, past_len: int, seq: int):
    """A real decode step: the past is what the model itself caches for `past_len` (left-padded) tokens."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    all_ids, mask = token_feed(rng, batch, past_len + seq)
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(all_ids[:, :past_len]),
                    attention_mask=torch.from_numpy(mask[:, :past_len]), use_cache=True, return_dict=True)
    feed = {"input_ids": all_ids[:, past_len:], "attention_mask": mask}
    for i, layer in enumerate(out.past_key_values.layers):
        feed[f"past_key_values.{i}.key"] = layer.keys.numpy().astype(np.float32)
        feed[f"past_key_values.{i}.value"] = layer.values.numpy().astype(np.float32)
    expect = (batch, kv_heads(model, arch), past_len, head_dim(model, arch))
    assert feed["past_key_values.0.key"].shape == expect, (feed["past_key_values.0.key"].shape, expect)
    return feed


def vision_feed(model, seed: int, batch: int):
    """Row 0: aspect ratio [1,2] (id 2, 2 of 4 tiles used); row 1: [2,2] (id 6, all 4 tiles)."""
    import numpy as np

    c = model.config
    rng = np.random.default_rng(seed)
    pixels = rng.standard_normal((batch, 1, c.max_num_tiles, c.num_channels, c.image_size, c.image_size),
                                 dtype=np.float32)
    ids = np.array([[(2, 6, 1, 5)[b % 4]] for b in range(batch)], dtype=np.int64)
    ratios = c.supported_aspect_ratios
    mask = np.zeros((batch, 1, c.max_num_tiles), dtype=np.int64)
    for b in range(batch):
        h, w = ratios[ids[b, 0] - 1]
        mask[b, 0, : h * w] = 1
        pixels[b, 0, h * w:] = 0
    return {"pixel_values": pixels, "aspect_ratio_ids": ids, "aspect_ratio_mask": mask}


# ---------------------------------------------------------------------------------------------
# Export


def save_npz(path: str, arrays: dict) -> None:
    """np.savez with fixed zip timestamps, so re-runs give identical bytes."""
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(info, data.getvalue())
    write_if_changed(path, buf.getvalue())


def write_if_changed(path: str, data: bytes) -> None:
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def max_diff(a, b) -> float:
    import numpy as np

    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def export_one(name: str, out_dir: str) -> dict:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import transformers

    arch, exporter, variant, _line = FIXTURES[name]
    fold = name not in NO_CONSTANT_FOLDING
    torch.manual_seed(0)
    np.random.seed(0)
    model = build(arch)
    Prefill, Decode, Vision = wrappers()
    n = layers(model)

    # Inputs, outputs, symbolic dims.
    if variant == "prefill":
        wrapper = Prefill(model).eval()
        feed = prefill_feed(seed=1, batch=2, seq=8)
        second = prefill_feed(seed=2, batch=1, seq=5)
        input_names = ["input_ids", "attention_mask"]
        output_names = ["logits"]
        axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
                "attention_mask": {0: "batch_size", 1: "sequence_length"},
                "logits": {0: "batch_size", 1: "sequence_length"}}
    elif variant == "kv":
        wrapper = Decode(model).eval()
        feed = decode_feed(model, arch, seed=1, batch=2, past_len=4, seq=2)
        second = decode_feed(model, arch, seed=2, batch=1, past_len=6, seq=1)
        input_names = ["input_ids", "attention_mask"]
        output_names = ["logits"]
        axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
                "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
                "logits": {0: "batch_size", 1: "sequence_length"}}
        for i in range(n):
            for kv in ("key", "value"):
                input_names.append(f"past_key_values.{i}.{kv}")
                output_names.append(f"present.{i}.{kv}")
                axes[f"past_key_values.{i}.{kv}"] = {0: "batch_size", 2: "past_sequence_length"}
                axes[f"present.{i}.{kv}"] = {0: "batch_size", 2: "total_sequence_length"}
    elif variant == "vision":
        wrapper = Vision(model).eval()
        feed = vision_feed(model, seed=1, batch=2)
        second = vision_feed(model, seed=2, batch=1)
        input_names = ["pixel_values", "aspect_ratio_ids", "aspect_ratio_mask"]
        output_names = ["last_hidden_state"]
        axes = {"pixel_values": {0: "batch_size"}, "aspect_ratio_ids": {0: "batch_size"},
                "aspect_ratio_mask": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}}
    else:
        raise ValueError(variant)
    assert list(feed) == input_names, (list(feed), input_names)
    args = tuple(torch.from_numpy(feed[k]) for k in input_names)

    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = os.path.join(tmp, "model.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "torchscript":
                torch.onnx.export(wrapper, args, tmp_path, dynamo=False, opset_version=17,
                                  do_constant_folding=fold, input_names=input_names,
                                  output_names=output_names, dynamic_axes=axes)
            else:
                torch.onnx.export(wrapper, args, tmp_path, dynamo=True, external_data=False,
                                  input_names=input_names, output_names=output_names,
                                  dynamic_shapes=dynamo_shapes(variant, input_names, args))
        m = onnx.load(tmp_path)  # pulls in external data if the exporter wrote any
        external_written = sorted(set(os.listdir(tmp)) - {"model.onnx"})
        data = m.SerializeToString()
    write_if_changed(path, data)

    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path)
    graph_inputs = [i.name for i in m.graph.input]
    graph_outputs = [o.name for o in m.graph.output]
    assert graph_inputs == input_names, f"graph inputs {graph_inputs} != {input_names}"
    assert graph_outputs == output_names, f"graph outputs {graph_outputs} != {output_names}"

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def torch_run(f):
        with torch.no_grad():
            r = wrapper(*(torch.from_numpy(f[k]) for k in input_names))
        return [t.numpy() for t in (r if isinstance(r, tuple) else (r,))]

    got = sess.run(None, feed)
    ref = torch_run(feed)
    diffs = {o: max_diff(g, r) for o, g, r in zip(output_names, got, ref)}
    diff = max(diffs.values())
    print(f"{name}: onnxruntime vs torch max abs diff {diff:.3e}", flush=True)
    assert all(np.isfinite(g).all() for g in got), f"{name}: non-finite outputs"
    assert diff <= TOL, f"{name}: onnxruntime and torch differ by {diff} ({diffs})"

    # A second input shape: does the graph run, and does it still agree with torch?
    try:
        got2 = sess.run(None, second)
        ref2 = torch_run(second)
        diff2 = max(max_diff(g, r) for g, r in zip(got2, ref2))
        dyn = {"runs": True, "max_abs_diff_vs_torch": diff2, "matches_torch": diff2 <= TOL}
    except Exception as e:  # noqa: BLE001 - recorded in meta.json, not fatal
        dyn = {"runs": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}",
               "matches_torch": False}
    dyn["input_shapes"] = {k: list(v.shape) for k, v in second.items()}
    print(f"{name}: second shape {dyn['input_shapes']['input_ids' if 'input_ids' in second else 'pixel_values']}"
          f" runs={dyn['runs']} matches_torch={dyn['matches_torch']}"
          + (f" diff {dyn['max_abs_diff_vs_torch']:.3e}" if dyn["runs"] else f" ({dyn['error']})"), flush=True)

    save_npz(os.path.join(folder, "inputs.npz"), feed)
    save_npz(os.path.join(folder, "outputs.npz"), dict(zip(output_names, got)))

    ops: dict[str, int] = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1

    def dims(vi):
        return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in vi.type.tensor_type.shape.dim]

    meta = {
        "name": name,
        "architecture": arch,
        "model_class": type(model).__name__,
        "config_class": type(model.config).__name__,
        "exporter": exporter,
        "export_call": (f"torch.onnx.export(dynamo=False, opset_version=17, do_constant_folding={fold})"
                        if exporter == "torchscript" else
                        "torch.onnx.export(dynamo=True, external_data=False) with dynamic_shapes"),
        "variant": variant,
        "attn_implementation": "eager",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     "onnxscript": _version("onnxscript"), "numpy": np.__version__},
        "transformers_version": transformers.__version__,
        "ir_version": m.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "num_hidden_layers": n,
        "config": json.loads(model.config.to_json_string(use_diff=False)),
        "inputs": {i.name: {"dtype": str(feed[i.name].dtype), "shape": list(feed[i.name].shape),
                            "graph_dims": dims(i)} for i in m.graph.input},
        "outputs": {o.name: {"shape": list(g.shape), "graph_dims": dims(o)} for o, g in zip(m.graph.output, got)},
        "input_shapes": {k: list(v.shape) for k, v in feed.items()},
        "dynamic_axes": axes,
        "dynamic_dim_names": sorted({d for a in axes.values() for d in a.values()}),
        "second_shape": dyn,
        "dynamic_axes_verified": bool(dyn["runs"] and dyn["matches_torch"]),
        "max_abs_diff_vs_torch": diff,
        "max_abs_diff_vs_torch_per_output": diffs,
        "exporter_wrote_external_data": bool(external_written),
        "file_bytes": os.path.getsize(path),
        "nodes": len(m.graph.node),
        "initializers": len(m.graph.initializer),
        "op_types": dict(sorted(ops.items())),
    }
    if variant == "kv":
        meta["kv_cache"] = {"kv_heads": kv_heads(model, arch), "head_dim": head_dim(model, arch),
                            "layout": "[batch_size, kv_heads, past_sequence_length, head_dim]",
                            "past_inputs": "past_key_values.N.key / past_key_values.N.value",
                            "present_outputs": "present.N.key / present.N.value",
                            "note": "positions are computed inside the graph from the past length"}
    if arch != "mllama-vision":
        meta["attention_mask"] = "int64, 1 = token, 0 = padding; row 1 of the reference feed is left-padded by 2"
    text = json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n"
    write_if_changed(os.path.join(folder, "meta.json"), text.encode())
    print(f"{name}: {meta['file_bytes']} bytes, {meta['nodes']} nodes, IR {m.ir_version}, opset {meta['opset']}",
          flush=True)
    return meta


def dynamo_shapes(variant: str, input_names: list[str], args):
    from torch.export import Dim

    if variant == "vision":
        b = Dim("batch_size", min=1, max=64)
        return ({0: b}, {0: b}, {0: b})
    b = Dim("batch_size", min=1, max=64)
    s = Dim("sequence_length", min=1, max=128)
    if variant == "prefill":
        return ({0: b, 1: s}, {0: b, 1: s})
    p = Dim("past_sequence_length", min=1, max=127)
    past = tuple({0: b, 2: p} for _ in input_names[2:])
    t = Dim("total_sequence_length", min=2, max=255)  # past + new tokens
    return ({0: b, 1: s}, {0: b, 1: t}, past)


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------
# README


def write_readme(out_dir: str) -> None:
    rows = []
    for name in FIXTURES:
        meta_path = os.path.join(out_dir, name, "meta.json")
        if not os.path.exists(meta_path):
            rows.append(f"| `{name}` | — | not produced (see the last run's output) | | | | | |")
            continue
        with open(meta_path) as f:
            m = json.load(f)
        ops = m["op_types"]
        opset = m["opset"].get("ai.onnx")
        shapes = ", ".join(f"`{k}` {'x'.join(map(str, v))}" for k, v in m["input_shapes"].items()
                           if not k.startswith("past_key_values.") or k.startswith("past_key_values.0."))
        if m["variant"] == "kv":
            shapes += f" (past × {2 * m['num_hidden_layers']})"
        dyn = "yes" if m["dynamic_axes_verified"] else ("runs, wrong" if m["second_shape"]["runs"] else "**no**")
        key_ops = ", ".join(f"{op} {ops.get(op, 0)}" for op in ("Shape", "Transpose", "ScatterND", "Gelu",
                                                                  "ReduceMean", "Expand"))
        rows.append(f"| `{name}` | {m['config_class']} | {m['exporter']}, {m['variant']}, transformers "
                    f"{m['transformers_version']} | IR {m['ir_version']}, opset {opset} | {m['nodes']} | "
                    f"{m['file_bytes'] // 1024} KiB | {shapes} | {dyn} | {key_ops} |")
    text = README_TEMPLATE.replace("{TABLE}", "\n".join(rows))
    write_if_changed(os.path.join(out_dir, "README.md"), text.encode())


README_TEMPLATE = """\
# Fixtures

Small random-initialised LLM exports for onnx-rewrite's tests and experiments. Every model is
built from a transformers config class (no weights or configs are downloaded) with
`torch.manual_seed(0)`, `attn_implementation="eager"`, 2 layers, hidden 64, 4 heads, intermediate
128, vocabulary 256, 128 positions. This file is rewritten by `generate.py` on every run.

Each folder holds:

| file | what |
|---|---|
| `model.onnx` | the export, one file with its weights inside; passes `onnx.checker.check_model(full_check=True)` |
| `inputs.npz` | the reference feed, keyed by graph input name |
| `outputs.npz` | onnxruntime 1.32's outputs on that feed, keyed by graph output name; they match torch within 1e-4 |
| `meta.json` | architecture, exporter call, versions, IR/opset, full config, input shapes, dynamic axes, op histogram, second-shape check |

## Fixtures

"dynamic" = the model also ran on a second input shape (batch 1, other lengths) and matched torch
within 1e-4 there, i.e. the symbolic dims really are dynamic.

| name | config | exporter, variant, transformers | IR / opset | nodes | size | reference inputs | dynamic | ops |
|---|---|---|---|---|---|---|---|---|
{TABLE}

## Conventions

- Prefill (`*-ts`, `*-dynamo`, `*-ts-446`): inputs `input_ids` int64 `[batch_size, sequence_length]`
  and `attention_mask` int64 `[batch_size, sequence_length]`, output `logits`
  `[batch_size, sequence_length, 256]`, `use_cache=False`. Reference feed: batch 2, sequence 8; row 1
  of the attention mask is left-padded (`[0,0,1,1,1,1,1,1]`), row 0 is all ones.
- KV-cache decode (`*-kv-ts`, `*-kv-dynamo`): a wrapper takes plain tensors and builds a
  `DynamicCache` inside. Inputs `input_ids` `[batch_size, sequence_length]`, `attention_mask`
  `[batch_size, total_sequence_length]` (past + new tokens), `past_key_values.N.key` /
  `past_key_values.N.value` float32 `[batch_size, kv_heads, past_sequence_length, head_dim]`;
  outputs `logits` and `present.N.key` / `present.N.value`
  `[batch_size, kv_heads, total_sequence_length, head_dim]`. kv_heads: Llama 2 (GQA), Phi-3 4,
  Falcon 1 and GPTBigCode 1 (multi-query); head_dim 16. Positions are computed inside the graph from
  the past length. Reference feed: batch 2, past 4, 2 new tokens, mask length 6 with row 1
  left-padded by 2; the past tensors are what the model itself caches for the first 4 tokens.
  The dynamo KV exports name the present length `past_sequence_length + sequence_length` (as
  torch.export derives it) where the TorchScript ones say `total_sequence_length`; each meta.json
  lists the graph's own dim names (`graph_dims`).
- Mllama vision tower (`mllama-vision-*`): `MllamaVisionModel` (hidden 32, 2 local + 1 global layer,
  image 28, patch 14, 4 tiles). Inputs `pixel_values` float32 `[batch_size, 1, 4, 3, 28, 28]`,
  `aspect_ratio_ids` int64 `[batch_size, 1]`, `aspect_ratio_mask` int64 `[batch_size, 1, 4]`; output
  `last_hidden_state` `[batch_size, 1, 4, 5, 96]` (final + 2 intermediate layers). Reference feed:
  row 0 aspect ratio 1x2 (id 2, 2 tiles), row 1 2x2 (id 6, 4 tiles). Only `batch_size` is dynamic;
  the TorchScript export still gives the output's fixed dims symbolic names
  (`Concatlast_hidden_state_dim_1` ...) because it cannot infer them through the final Concat.
- TorchScript: `torch.onnx.export(..., dynamo=False, opset_version=17)` (constant folding on).
  dynamo: `torch.onnx.export(..., dynamo=True)` with `dynamic_shapes`, torch's default opset; its
  weights are saved inside the one file.
- `*-ts-446`: the same prefill export with transformers 4.46.3 (the version most published exports
  were made with), run in a subprocess with it first on `PYTHONPATH`.

## Regenerating

Run by hand, never in CI (torch alone is several GB):

```sh
python3 -m venv /root/venvs/fixtures
/root/venvs/fixtures/bin/pip install -r Fixtures/requirements-generate.txt
# for the *-446 fixtures only: transformers 4.46.3 beside 5.x, no second venv
/root/venvs/fixtures/bin/pip install --no-deps --target /root/venvs/fixtures/transformers-4.46.3 \\
    transformers==4.46.3 tokenizers==0.20.3 huggingface-hub==0.26.5 requests urllib3 certifi charset-normalizer idna
/root/venvs/fixtures/bin/python Fixtures/generate.py [--only NAME ...]
/root/venvs/fixtures/bin/python Fixtures/generate.py --list     # the fixture names
```

`TRANSFORMERS_446_DIR` overrides where the 4.46.3 copy lives. The run is deterministic: with the
same versions, a re-run leaves every file byte for byte as it was (the exporters' outputs are
written only when they change). It exits non-zero if any export or check failed.
"""


# ---------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help="fixture names (default: all)")
    p.add_argument("--list", action="store_true", help="print the fixture names and exit")
    p.add_argument("--out", default=HERE, help="output folder (default: this script's folder)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.list:
        for name, spec in FIXTURES.items():
            print(name, *spec)
        return 0
    names = args.only or list(FIXTURES)
    unknown = [n for n in names if n not in FIXTURES]
    if unknown:
        p.error(f"unknown fixture(s) {unknown}; --list shows them")

    if not args.child:
        os.environ.setdefault("PYTHONHASHSEED", "0")

    failed = []
    for name in names:
        line = FIXTURES[name][3]
        if line == "4.46" and not args.child:
            # transformers 4.46.3 must be imported fresh: run this script again with it first on the path.
            if not os.path.isdir(os.path.join(TF446_DIR, "transformers")):
                failed.append((name, f"transformers 4.46.3 not found in {TF446_DIR} (see README.md)"))
                print(f"{name}: FAILED: {failed[-1][1]}", file=sys.stderr, flush=True)
                continue
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [TF446_DIR, os.environ.get("PYTHONPATH")])))
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--out", args.out,
                                "--only", name], env=env)
            if r.returncode:
                failed.append((name, f"subprocess exited {r.returncode}"))
            continue
        try:
            if line == "4.46":
                import transformers

                assert transformers.__version__ == "4.46.3", transformers.__version__
            export_one(name, args.out)
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failed.append((name, f"{type(e).__name__}: {e}"))
            traceback.print_exc()
            print(f"{name}: FAILED: {type(e).__name__}: {str(e)[:2000]}", file=sys.stderr, flush=True)

    if not args.child:
        write_readme(args.out)
    for name, why in failed:
        print(f"FAILED {name}: {why[:500]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
