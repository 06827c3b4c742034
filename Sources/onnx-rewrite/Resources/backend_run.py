"""Compiles ONNX files with a Python-driven runtime and runs the result: the python steps of
`onnx-rewrite compile` plans (and the tile runner `onnx-rewrite verify` imports).

    python3 backend_run.py compile --target T [--fp16] MODEL.onnx OUT
        onnxruntime: OUT is the offline-optimized model (extended graph optimizations);
        openvino: OUT.xml/.bin is the converted IR, then compiled for CPU.
    python3 backend_run.py check --target T --compiled C MODEL --inputs in.npz --outputs out.npz [--atol A --rtol R]
        Runs the compiled form (C: the compiled file, or the folder of compiled tiles when MODEL
        is a folder of tiles with manifest.json) on the inputs, writes its outputs, and compares
        them with MODEL itself in onnxruntime (optimizations off): the worst difference per output;
        exit 1 over the tolerance.
    python3 backend_run.py feeds TILES_DIR inputs.npz OUT_DIR
        Runs the tiles in onnxruntime on the model inputs and writes OUT_DIR/<tile>_in.npz with the
        values each tile reads (TPU-MLIR's model_transform --test_input, one tile at a time).

Needs numpy, and onnxruntime or openvino for the target.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
SUFFIX = {"onnxruntime": ".ort.onnx", "openvino": ".xml"}


def fail(message: str, code: int = 1) -> None:
    print(f"error: backend_run.py: {message}", file=sys.stderr)
    sys.exit(code)


def need(module: str):
    try:
        return __import__(module)
    except ImportError:
        fail(f"{module} is not installed for {sys.executable}: pip install {module} numpy", 2)


def ort_session(path: Path, optimize: bool, optimized_out: Path | None = None):
    ort = need("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if optimized_out is not None:
        options.optimized_model_filepath = str(optimized_out)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Runner:
    """One compiled unit: `run(feeds)` → outputs by name."""

    def __init__(self, target: str, path: Path):
        self.target = target
        if target == "onnxruntime":
            self.session = ort_session(path, optimize=False)  # already optimized offline
        else:
            ov = need("openvino")
            self.compiled = ov.Core().compile_model(str(path), "CPU")

    def run(self, feeds: dict) -> dict:
        if self.target == "onnxruntime":
            names = [o.name for o in self.session.get_outputs()]
            wanted = {i.name for i in self.session.get_inputs()}
            return dict(zip(names, self.session.run(names, {k: v for k, v in feeds.items() if k in wanted})))
        request = self.compiled.create_infer_request()
        wanted = {n for port in self.compiled.inputs for n in port.get_names()}
        result = request.infer({k: v for k, v in feeds.items() if k in wanted})
        return {name: result[port] for port in self.compiled.outputs for name in port.get_names()}


class Reference:
    def __init__(self, path: Path):
        self.session = ort_session(path, optimize=False)

    def run(self, feeds: dict) -> dict:
        names = [o.name for o in self.session.get_outputs()]
        wanted = {i.name for i in self.session.get_inputs()}
        return dict(zip(names, self.session.run(names, {k: v for k, v in feeds.items() if k in wanted})))


def load_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        fail(f"{folder}: not a folder of tiles with a readable manifest.json ({e})", 2)
    if manifest.get("format") != "onnx-rewrite.tiles/1":
        fail(f"{folder / 'manifest.json'}: format {manifest.get('format')!r}, expected 'onnx-rewrite.tiles/1'", 2)
    return manifest


def run_chain(model: Path, make_unit, feeds: dict, on_tile=None) -> dict:
    """The model's outputs: `model` whole, or its tiles in manifest order, each fed from the model
    inputs and earlier tiles' outputs; `on_tile(name, tile_feeds)` sees each tile's inputs first."""
    if model.is_file():
        return make_unit(None, model).run(feeds)
    manifest = load_manifest(model)
    produced, outputs = {}, {}
    for tile in manifest["tiles"]:
        tile_feeds = {}
        for inp in tile["inputs"]:
            source = inp["source"]
            if "model_input" in source and source["model_input"] not in feeds:
                fail(f"no input array named '{source['model_input']}' (a model input)")
            tile_feeds[inp["name"]] = (feeds[source["model_input"]] if "model_input" in source
                                       else produced[(source["tile"], source["output"])])
        if on_tile is not None:
            on_tile(tile["name"], tile_feeds)
        result = make_unit(tile["name"], model / tile["file"]).run(tile_feeds)
        for out in tile["outputs"]:
            produced[(tile["name"], out["name"])] = result[out["name"]]
            if out.get("model_output"):
                outputs[out["name"]] = result[out["name"]]
    return outputs


def compile_unit(args) -> None:
    model, out = Path(args.model), Path(args.out)
    try:
        if args.target == "onnxruntime":
            ort_session(model, optimize=True, optimized_out=out)
        else:
            ov = need("openvino")
            converted = ov.convert_model(str(model))
            ov.save_model(converted, str(out), compress_to_fp16=args.fp16)
            ov.Core().compile_model(str(out), "CPU")
    except Exception as e:  # the compiler's own message, on one line, is the useful part
        fail(f"{model}: {args.target} cannot compile it: {' '.join(str(e).split())[:400]}")
    print(f"{model} -> {out}")


def check(args) -> None:
    np = need("numpy")
    model, compiled = Path(args.model), Path(args.compiled)
    feeds = dict(np.load(args.inputs))

    def compiled_unit(tile, path):
        return Runner(args.target, compiled if tile is None else compiled / (tile + SUFFIX[args.target]))

    try:
        got = run_chain(model, compiled_unit, feeds)
        want = run_chain(model, lambda tile, path: Reference(path), feeds)
    except Exception as e:
        fail(f"{model}: running it failed: {' '.join(str(e).split())[:400]}")
    np.savez(args.outputs, **got)
    ok = True
    for name, expected in want.items():
        if name not in got:
            print(f"{name}: MISSING from the compiled model's outputs")
            ok = False
            continue
        x, y = np.asarray(expected, dtype=np.float64), np.asarray(got[name], dtype=np.float64)
        if x.shape != y.shape:
            print(f"{name}: MISMATCH shape {list(y.shape)}, expected {list(x.shape)}")
            ok = False
            continue
        diff = np.abs(x - y)
        good = bool(np.all(diff <= args.atol + args.rtol * np.abs(x)))
        ok &= good
        print(f"{name}: {'ok' if good else 'MISMATCH'} max abs diff {float(diff.max(initial=0.0)):.3g}")
    sys.exit(0 if ok else 1)


def write_feeds(args) -> None:
    np = need("numpy")
    tiles, out = Path(args.tiles), Path(args.out)
    feeds = dict(np.load(args.inputs))

    def save(name, tile_feeds):
        np.savez(out / f"{name}_in.npz", **tile_feeds)
        print(f"{name}: {len(tile_feeds)} inputs -> {name}_in.npz")

    run_chain(tiles, lambda tile, path: Reference(path), feeds, on_tile=save)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="backend_run.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--target", choices=sorted(MODULES), required=True)
    c.add_argument("--fp16", action="store_true", help="openvino: compress weights to fp16")
    c.add_argument("model")
    c.add_argument("out")
    k = sub.add_parser("check")
    k.add_argument("--target", choices=sorted(MODULES), required=True)
    k.add_argument("--compiled", required=True)
    k.add_argument("model")
    k.add_argument("--inputs", required=True)
    k.add_argument("--outputs", required=True)
    k.add_argument("--atol", type=float, default=1e-4)
    k.add_argument("--rtol", type=float, default=1e-4)
    f = sub.add_parser("feeds")
    f.add_argument("tiles")
    f.add_argument("inputs")
    f.add_argument("out")
    args = p.parse_args(argv)
    {"compile": compile_unit, "check": check, "feeds": write_feeds}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
