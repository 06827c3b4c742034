"""`onnx-rewrite tile`: per-layer tiling of every fixture (issue #6).

Acceptance: the blocks are found by structure (one block tile per layer with --group 1, half as
many with --group 2), every tile passes the checker's full check, and running the tiles one after
another in onnxruntime, fed as manifest.json says, gives the fixture's reference outputs
(max abs diff <= 1e-5). A budget below a block splits it at an inner cut point; a budget below
the largest weight is an error that says by how much. The manifest of llama-ts is a golden file.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import run_tiles
import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
GOLDEN_DIR = support.REPO_ROOT / "Tests" / "Goldens" / "tiling"


def layer_count(fixture: Path) -> int:
    meta = json.loads((fixture / "meta.json").read_text())
    # Text models: the decoder layers. Mllama's vision tower: its local layers (the global
    # layers differ in structure and stay in the head tile).
    return meta.get("num_hidden_layers") or meta["config"]["num_hidden_layers"]


def tile(fixture: Path, out: Path, *extra, static: bool = True):
    feed = dict(np.load(fixture / "inputs.npz"))
    args = ["tile", fixture / "model.onnx", "--out", out, *extra]
    if static:
        args += support.input_shape_args(feed)
    return support.run_cli(*args)


def check_chain(fixture: Path, out: Path) -> float:
    feed = dict(np.load(fixture / "inputs.npz"))
    expected = dict(np.load(fixture / "outputs.npz"))
    diffs = run_tiles.compare(out, feed, expected)
    assert set(diffs) == set(expected)
    return max(diffs.values())


def check_files(out: Path, manifest: dict):
    files = sorted(p.name for p in out.glob("*.onnx"))
    assert files == sorted(t["file"] for t in manifest["tiles"])
    for t in manifest["tiles"]:
        onnx.checker.check_model(str(out / t["file"]), full_check=True)
        model = onnx.load(str(out / t["file"]), load_external_data=False)
        assert [i.name for i in model.graph.input] == [i["name"] for i in t["inputs"]], t["name"]
        assert [o.name for o in model.graph.output] == [o["name"] for o in t["outputs"]], t["name"]
    # Every tile input comes from a model input or an earlier tile's output.
    seen: dict[str, set[str]] = {}
    model_inputs = {i["name"] for i in manifest["inputs"]}
    for t in manifest["tiles"]:
        for i in t["inputs"]:
            src = i["source"]
            if "model_input" in src:
                assert src["model_input"] in model_inputs
            else:
                assert src["output"] in seen.get(src["tile"], set()), (t["name"], i)
        seen[t["name"]] = {o["name"] for o in t["outputs"]}
    produced = {o["name"] for t in manifest["tiles"] for o in t["outputs"] if o.get("model_output")}
    assert produced == {o["name"] for o in manifest["outputs"]}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_tiles_chain_to_the_whole_model(fixture: Path, tmp_path: Path):
    out = tmp_path / "tiles"
    proc = tile(fixture, out)
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "onnx-rewrite.tiles/1"
    blocks = [t for t in manifest["tiles"] if t["kind"] == "block"]
    assert len(blocks) == layer_count(fixture) == manifest["layers"]
    prefix = "vision_" if fixture.name.startswith("mllama-vision") else ""
    assert [b["name"] for b in blocks] == [f"{prefix}block_{i}" for i in range(len(blocks))]
    assert manifest["tiles"][0]["kind"] == "embedding" and manifest["tiles"][-1]["kind"] == "head"
    for t in manifest["tiles"]:
        assert t["weight_bytes"] > 0 and t["activation_bytes"] > 0 and t["activations_complete"], t["name"]
    # Identical layers give identical block tiles (apart from the first, which may read the embedding).
    assert len({b["weight_bytes"] for b in blocks}) == 1
    if "-kv-" in fixture.name:
        # Each layer's cache goes in and out of its own block.
        for i, b in enumerate(blocks):
            names = {x["name"] for x in b["inputs"]} | {x["name"] for x in b["outputs"]}
            kv = {n for n in names if re.match(r"(past_key_values|present)\.\d+\.", n)}
            assert kv == {f"past_key_values.{i}.key", f"past_key_values.{i}.value", f"present.{i}.key",
                          f"present.{i}.value"}, (b["name"], kv)
    check_files(out, manifest)
    assert check_chain(fixture, out) <= 1e-5


DYNAMO = [f for f in FIXTURES if "dynamo" in f.name]


@pytest.mark.parametrize("fixture", DYNAMO, ids=[p.name for p in DYNAMO])
def test_dynamic_shapes_tile_too(fixture: Path, tmp_path: Path):
    """Without --input-shape the shape arithmetic stays; it is side computation and does not
    hide the layers (dynamo exports declare every boundary's rank)."""
    out = tmp_path / "tiles"
    proc = tile(fixture, out, static=False)
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len([t for t in manifest["tiles"] if t["kind"] == "block"]) == layer_count(fixture)
    check_files(out, manifest)
    assert check_chain(fixture, out) <= 1e-5


def test_an_untyped_boundary_asks_for_input_shapes(tmp_path: Path):
    """TorchScript's dynamic exports leave the mask's rank to inference, which cannot tell it
    through the dynamic Reshapes: a tile input without a rank is not valid ONNX."""
    proc = tile(support.FIXTURES_DIR / "llama-ts", tmp_path / "out", static=False)
    assert proc.returncode == 1, support.describe(proc)
    assert re.search(r"model\.onnx: value '/model/model/Where_1_output_0' \(at the boundary of tile embedding\) "
                     r"has an unknown rank; bind the input shapes with --input-shape/--dim", proc.stderr), proc.stderr


GROUPED = [f for f in FIXTURES if f.name in ("llama-ts", "falcon-kv-dynamo", "mllama-vision-ts")]


@pytest.mark.parametrize("fixture", GROUPED, ids=[p.name for p in GROUPED])
def test_group_two_merges_pairs_of_layers(fixture: Path, tmp_path: Path):
    out = tmp_path / "tiles"
    proc = tile(fixture, out, "--group", "2")
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    blocks = [t for t in manifest["tiles"] if t["kind"] == "block"]
    n = layer_count(fixture)
    assert len(blocks) == (n + 1) // 2
    assert [b["layers"] for b in blocks] == [list(range(i, min(i + 2, n))) for i in range(0, n, 2)]
    check_files(out, manifest)
    assert check_chain(fixture, out) <= 1e-5


def test_dry_run_prints_the_table_and_writes_nothing(tmp_path: Path):
    fixture = support.FIXTURES_DIR / "llama-ts"
    proc = support.run_cli("tile", fixture / "model.onnx", "--dry-run", *support.input_shape_args(dict(np.load(fixture / "inputs.npz"))),
                           cwd=tmp_path)
    assert proc.returncode == 0, support.describe(proc)
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["tile", "nodes", "weight"]
    assert [l.split()[0] for l in lines[2:6]] == ["embedding", "block_0", "block_1", "lm_head"]
    assert "2 layers found" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["llama-ts", "phi3-kv-dynamo"])
def test_budget_below_a_block_splits_it(name: str, tmp_path: Path):
    fixture = support.FIXTURES_DIR / name
    whole = tmp_path / "whole"
    assert tile(fixture, whole).returncode == 0
    block = next(t for t in json.loads((whole / "manifest.json").read_text())["tiles"] if t["kind"] == "block")
    largest = max(t["weight_bytes"] for t in json.loads((whole / "manifest.json").read_text())["tiles"]
                  if t["kind"] != "block")
    # Under one block, over the embedding/head (whose one weight must fit).
    budget = max(block["weight_bytes"] + block["activation_bytes"] - 1, largest + 40_000)
    out = tmp_path / "split"
    proc = tile(fixture, out, "--budget", str(budget))
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    parts = [t for t in manifest["tiles"] if t["kind"] == "block-part"]
    assert [p["name"] for p in parts[:2]] == ["block_0_part0", "block_0_part1"]
    for t in manifest["tiles"]:
        assert t["weight_bytes"] + t["activation_bytes"] <= budget, t["name"]
    check_files(out, manifest)
    assert check_chain(fixture, out) <= 1e-5


def test_budget_no_cut_point_can_meet_is_an_error(tmp_path: Path):
    fixture = support.FIXTURES_DIR / "llama-ts"
    # Above the largest weight (64 KiB), below what the attention part of a block needs.
    proc = tile(fixture, tmp_path / "out", "--budget", "66000")
    assert proc.returncode == 1, support.describe(proc)
    assert re.search(r"error: .*model\.onnx: tile \w+ cannot fit the budget of .*over the budget", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and "Fatal" not in proc.stderr


def test_budget_below_the_largest_weight_is_an_error(tmp_path: Path):
    fixture = support.FIXTURES_DIR / "llama-ts"
    proc = tile(fixture, tmp_path / "out", "--budget", "1KiB")
    assert proc.returncode == 1, support.describe(proc)
    m = re.search(r"budget 1\.0 KiB \(1024 bytes\) is smaller than the largest weight '([^']+)' .* by ([\d.]+ \w+) "
                  r"\((\d+) bytes\)", proc.stderr)
    assert m, proc.stderr
    assert int(m.group(3)) == 65536 - 1024
    assert not (tmp_path / "out").exists()


def test_chip_preset_and_bad_options(tmp_path: Path):
    fixture = support.FIXTURES_DIR / "llama-ts"
    proc = tile(fixture, tmp_path / "out", "--chip", "bm1684x")
    assert proc.returncode == 0, support.describe(proc)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["budget_bytes"] == 2 << 30
    for args, message in [(["--chip", "bm9999"], "known chips are bm1684x"),
                          (["--budget", "lots"], "give a byte count"),
                          (["--group", "0"], "positive number")]:
        proc = tile(fixture, tmp_path / "bad", *args)
        assert proc.returncode != 0 and message in proc.stderr, support.describe(proc)
    proc = support.run_cli("tile", fixture / "model.onnx")
    assert proc.returncode != 0 and "--out DIR" in proc.stderr


def test_a_model_without_layers_is_a_clear_error(tmp_path: Path):
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"], name="only")], "tiny",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])]),
        opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "tiny.onnx")
    proc = support.run_cli("tile", tmp_path / "tiny.onnx", "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert "tiny.onnx: found no repeated blocks" in proc.stderr, proc.stderr


def test_manifest_golden_llama_ts(tmp_path: Path):
    """The manifest of llama-ts at its reference shapes. ONNX_REWRITE_RECORD=all (or =failed)
    rewrites the golden; read the diff before committing."""
    fixture = support.FIXTURES_DIR / "llama-ts"
    out = tmp_path / "tiles"
    feed = dict(np.load(fixture / "inputs.npz"))
    # A relative source path keeps the golden independent of the checkout's location.
    proc = support.run_cli("tile", "Fixtures/llama-ts/model.onnx", "--out", out, *support.input_shape_args(feed), cwd=support.REPO_ROOT)
    assert proc.returncode == 0, support.describe(proc)
    text = (out / "manifest.json").read_text()
    golden = GOLDEN_DIR / "llama-ts.manifest.json"
    support.check_golden(golden, text)


def test_external_data_gives_each_tile_its_own_data_file(tmp_path: Path):
    fixture = support.FIXTURES_DIR / "phi3-kv-ts"
    out = tmp_path / "tiles"
    proc = tile(fixture, out, "--external-data")
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    for t in manifest["tiles"]:
        model = onnx.load(str(out / t["file"]), load_external_data=False)
        locations = {e.value for i in model.graph.initializer for e in i.external_data if e.key == "location"}
        assert locations == {t["file"] + ".data"}, (t["name"], locations)
    check_files(out, manifest)
    assert check_chain(fixture, out) <= 1e-5


@pytest.mark.parametrize("name", ["llama-kv-ts", "gptbigcode-dynamo"])
def test_nameless_nodes_tile_the_same(name: str, tmp_path: Path):
    """Discovery is structural: with every node name removed the same blocks are found."""
    fixture = support.FIXTURES_DIR / name
    model = onnx.load(str(fixture / "model.onnx"))
    for node in model.graph.node:
        node.name = ""
    stripped = tmp_path / name
    stripped.mkdir()
    onnx.save(model, stripped / "model.onnx")
    for f in ("inputs.npz", "outputs.npz", "meta.json"):
        (stripped / f).write_bytes((fixture / f).read_bytes())
    named, nameless = tmp_path / "named", tmp_path / "nameless"
    assert tile(fixture, named).returncode == 0
    proc = tile(stripped, nameless)
    assert proc.returncode == 0, support.describe(proc)
    shape = lambda m: [(t["name"], t["nodes"], t["weight_bytes"], t["activation_bytes"],
                        [i["name"] for i in t["inputs"]], [o["name"] for o in t["outputs"]]) for t in m["tiles"]]
    a = json.loads((named / "manifest.json").read_text())
    b = json.loads((nameless / "manifest.json").read_text())
    assert shape(a) == shape(b)
    assert check_chain(stripped, nameless) <= 1e-5


def test_run_tiles_command_line(tmp_path: Path):
    import subprocess
    import sys
    fixture = support.FIXTURES_DIR / "falcon-kv-ts"
    out = tmp_path / "tiles"
    assert tile(fixture, out).returncode == 0
    script = Path(run_tiles.__file__)
    proc = subprocess.run([sys.executable, script, out, "--inputs", fixture / "inputs.npz", "--model",
                           fixture / "model.onnx"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert set(re.findall(r"^(\S+): max abs diff", proc.stdout, re.M)) == set(np.load(fixture / "outputs.npz").files)
    # A wrong reference fails the run.
    bad = {k: v + 1 for k, v in np.load(fixture / "outputs.npz").items()}
    np.savez(tmp_path / "bad.npz", **bad)
    proc = subprocess.run([sys.executable, script, out, "--inputs", fixture / "inputs.npz", "--expected",
                           tmp_path / "bad.npz"], capture_output=True, text=True)
    assert proc.returncode == 1
