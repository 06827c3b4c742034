#!/usr/bin/env python3
"""Exports the static-shape benchmark model: a random-initialised Phi-3-style model with
32 layers, hidden 1024, intermediate 3072, vocabulary 32064 (~1.98 GB, one file,
TorchScript exporter, opset 17, dynamic batch_size/sequence_length).

Needs torch + transformers (the Fixtures venv: Fixtures/requirements-generate.txt):
    VENV/bin/python Benchmarks/make_phi3_large.py OUT.onnx
"""
import sys
import warnings

import torch
from transformers import Phi3Config, Phi3ForCausalLM


class Prefill(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def main(out):
    torch.manual_seed(0)
    cfg = Phi3Config(vocab_size=32064, hidden_size=1024, intermediate_size=3072, num_hidden_layers=32,
                     num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=4096,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")
    model = Prefill(Phi3ForCausalLM(cfg).eval()).eval()
    ids = torch.randint(3, 32064, (1, 128))
    mask = torch.ones(1, 128, dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), out, dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                        "attention_mask": {0: "batch_size", 1: "sequence_length"},
                                        "logits": {0: "batch_size", 1: "sequence_length"}})


if __name__ == "__main__":
    main(sys.argv[1])
