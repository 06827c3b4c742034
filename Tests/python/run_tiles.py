"""Runs the tiles `onnx-rewrite tile` wrote, in manifest order, in onnxruntime.

    python run_tiles.py TILE_DIR --inputs inputs.npz [--model model.onnx] [--atol 1e-5]

Feeds each tile from the model inputs and earlier tiles' outputs as manifest.json says, and
prints the model outputs' worst absolute difference against --model (run whole on the same
inputs) or against --expected (an .npz of reference outputs). Exit 1 on a difference over --atol.
Importable: `run_tiles(dir, feeds)` returns the model outputs, `compare(...)` the differences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Mapping

import numpy as np
import onnxruntime as ort

FORMAT = "onnx-rewrite.tiles/1"


def load_manifest(tile_dir: str | Path) -> dict:
    manifest = json.loads((Path(tile_dir) / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{tile_dir}/manifest.json: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # The reference runs unoptimised too: fusions may reorder float math between tiles and whole model.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_tiles(tile_dir: str | Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Executes every tile in order; returns the model outputs by name."""
    tile_dir = Path(tile_dir)
    manifest = load_manifest(tile_dir)
    produced: dict[tuple[str, str], np.ndarray] = {}
    outputs: dict[str, np.ndarray] = {}
    for tile in manifest["tiles"]:
        tile_feeds = {}
        for inp in tile["inputs"]:
            source = inp["source"]
            if "model_input" in source:
                tile_feeds[inp["name"]] = feeds[source["model_input"]]
            else:
                tile_feeds[inp["name"]] = produced[(source["tile"], source["output"])]
        session = _session(tile_dir / tile["file"])
        names = [o["name"] for o in tile["outputs"]]
        for out, value in zip(tile["outputs"], session.run(names, tile_feeds)):
            produced[(tile["name"], out["name"])] = value
            if out.get("model_output"):
                outputs[out["name"]] = value
    return outputs


def run_whole(model: str | Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = _session(Path(model))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds))))


def compare(tile_dir: str | Path, feeds: Mapping[str, np.ndarray],
            expected: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Worst absolute difference per expected output (inf when the tiles did not produce it)."""
    got = run_tiles(tile_dir, feeds)
    diffs = {}
    for name, want in expected.items():
        if name not in got or got[name].shape != want.shape:
            diffs[name] = float("inf")
        else:
            diffs[name] = float(np.max(np.abs(got[name].astype(np.float64) - want.astype(np.float64)), initial=0.0))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tile_dir")
    parser.add_argument("--inputs", required=True, help=".npz keyed by model input name")
    reference = parser.add_mutually_exclusive_group(required=True)
    reference.add_argument("--model", help="the whole model, run on the same inputs")
    reference.add_argument("--expected", help=".npz of reference outputs keyed by output name")
    parser.add_argument("--atol", type=float, default=1e-5)
    args = parser.parse_args(argv)
    feeds = dict(np.load(args.inputs))
    expected = run_whole(args.model, feeds) if args.model else dict(np.load(args.expected))
    diffs = compare(args.tile_dir, feeds, expected)
    worst = 0.0
    for name, d in diffs.items():
        print(f"{name}: max abs diff {d:.3g}")
        worst = max(worst, d)
    return 0 if worst <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
