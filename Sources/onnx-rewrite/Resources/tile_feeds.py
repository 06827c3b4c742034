"""Writes each tile's own inputs, for compilers that validate one tile at a time.

    python3 tile_feeds.py TILES_DIR inputs.npz OUT_DIR

Runs the tiles of TILES_DIR (manifest.json, format onnx-rewrite.tiles/1) in order in onnxruntime
on the model inputs of inputs.npz and writes OUT_DIR/<tile>_in.npz with the values each tile
reads (TPU-MLIR's model_transform --test_input). A step of `onnx-rewrite compile` plans; needs
numpy and onnxruntime.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"error: tile_feeds.py: {message}", file=sys.stderr)
    sys.exit(1)


try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    fail(f"{e.name} is not installed for {sys.executable}: pip install onnxruntime numpy")


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        fail("usage: tile_feeds.py TILES_DIR inputs.npz OUT_DIR")
    tiles, inputs, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    manifest = json.loads((tiles / "manifest.json").read_text())
    if manifest.get("format") != "onnx-rewrite.tiles/1":
        fail(f"{tiles / 'manifest.json'}: format {manifest.get('format')!r}, expected 'onnx-rewrite.tiles/1'")
    feeds = dict(np.load(inputs))
    produced: dict[tuple[str, str], np.ndarray] = {}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for tile in manifest["tiles"]:
        tile_feeds = {}
        for inp in tile["inputs"]:
            source = inp["source"]
            if "model_input" in source:
                if source["model_input"] not in feeds:
                    fail(f"{inputs}: no array named '{source['model_input']}' (a model input)")
                tile_feeds[inp["name"]] = feeds[source["model_input"]]
            else:
                tile_feeds[inp["name"]] = produced[(source["tile"], source["output"])]
        np.savez(out / f"{tile['name']}_in.npz", **tile_feeds)
        session = ort.InferenceSession(str(tiles / tile["file"]), options, providers=["CPUExecutionProvider"])
        names = [o["name"] for o in tile["outputs"]]
        for name, value in zip(names, session.run(names, tile_feeds)):
            produced[(tile["name"], name)] = value
        print(f"{tile['name']}: {len(tile_feeds)} inputs -> {tile['name']}_in.npz")


if __name__ == "__main__":
    main(sys.argv[1:])
