"""Runs two ONNX models in onnxruntime on the same inputs and compares their outputs.

Called by `onnx-rewrite verify ORIGINAL REWRITTEN`; REWRITTEN may also be a folder of tiles with
manifest.json (`onnx-rewrite tile`/`compile --tile`), run one tile after another. Needs numpy and onnxruntime
(`pip install onnxruntime numpy`). Prints one line per output shared by both models
(the worst absolute difference and where), and exits 1 when any exceeds the tolerance,
2 on a usage or runtime problem.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backend_run  # noqa: E402  (shipped beside this file: the tile runner)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # the CLI names the interpreter; say what to install into it
    fail(f"{e.name} is not installed for {sys.executable}: run '{sys.executable} -m pip install onnxruntime numpy'"
         " or pass --python with an interpreter that has them")

NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


def session(path: str) -> "ort.InferenceSession":
    options = ort.SessionOptions()
    options.log_severity_level = 4
    # Optimizations off: compare the graphs as written, not what ORT makes of them.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:
        fail(f"{path}: onnxruntime cannot load it: {str(e).strip().splitlines()[0]}")


class Tiles:
    """A folder of tiles run in manifest order (backend_run.run_chain), shaped like an
    InferenceSession for main()."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.manifest = backend_run.load_manifest(self.folder)
        self.sessions = {t["name"]: session(str(self.folder / t["file"])) for t in self.manifest["tiles"]}

    def get_inputs(self):
        return [SimpleNamespace(name=i["name"], type=f"tensor({i['dtype']})", shape=i.get("shape") or [])
                for i in self.manifest["inputs"]]

    def get_outputs(self):
        return [SimpleNamespace(name=o["name"]) for o in self.manifest["outputs"]]

    def run(self, _names, feed):
        outputs = backend_run.run_chain(self.folder, lambda tile, path: _Unit(self.sessions[tile]), feed)
        return [outputs[o.name] for o in self.get_outputs()]


class _Unit:
    def __init__(self, sess):
        self.sess = sess

    def run(self, feed):
        names = [o.name for o in self.sess.get_outputs()]
        return dict(zip(names, self.sess.run(names, feed)))


def concrete_shape(name: str, shape, dims: dict[str, int]) -> list[int]:
    out = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
        elif d in dims:
            out.append(dims[d])
        else:
            fail(f"input '{name}' has the symbolic dimension '{d}': bind it with --dim {d}=N or give --inputs")
    return out


def random_input(arg, dims: dict[str, int], rng, int_high: int) -> np.ndarray:
    dtype = NUMPY_TYPES.get(arg.type)
    if dtype is None:
        fail(f"input '{arg.name}' has type {arg.type}, which random inputs do not cover: give --inputs")
    shape = concrete_shape(arg.name, arg.shape, dims)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, int_high, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def main() -> None:
    p = argparse.ArgumentParser(prog="onnx-rewrite verify")
    p.add_argument("original")
    p.add_argument("rewritten")
    p.add_argument("--inputs")
    p.add_argument("--dim", action="append", default=[])
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--rtol", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--int-high", type=int, default=2)
    a = p.parse_args()

    dims = {}
    for spec in a.dim:
        name, _, value = spec.partition("=")
        if not value.isdigit():
            fail(f"--dim {spec}: expected NAME=N")
        dims[name] = int(value)

    original = session(a.original)
    rewritten = Tiles(a.rewritten) if os.path.isdir(a.rewritten) else session(a.rewritten)
    given = dict(np.load(a.inputs)) if a.inputs else {}
    rng = np.random.default_rng(a.seed)
    feed: dict[str, np.ndarray] = dict(given)
    # The rewritten model first: where it is static (static-shape), its shapes are the ones both can take.
    for arg in rewritten.get_inputs() + original.get_inputs():
        if arg.name not in feed:
            feed[arg.name] = random_input(arg, dims, rng, a.int_high)

    def run(sess, path):
        names = [i.name for i in sess.get_inputs()]
        try:
            return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {n: feed[n] for n in names})))
        except Exception as e:
            fail(f"{path}: onnxruntime failed: {str(e).strip().splitlines()[0]}")

    before, after = run(original, a.original), run(rewritten, a.rewritten)
    shared = [n for n in before if n in after]
    if not shared:
        fail("the models share no output name to compare")
    worst_ok = True
    for name in shared:
        x, y = np.asarray(before[name]), np.asarray(after[name])
        if x.shape != y.shape:
            print(f"{name}: MISMATCH shape {list(x.shape)} vs {list(y.shape)}")
            worst_ok = False
            continue
        if x.size == 0:
            print(f"{name}: ok (empty)")
            continue
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        diff = np.abs(xf - yf)
        both_nan = np.isnan(xf) & np.isnan(yf)
        diff = np.where(both_nan, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        at = np.unravel_index(int(np.argmax(diff)), diff.shape)
        ok = bool(np.all(diff <= a.atol + a.rtol * np.abs(xf)))
        worst_ok &= ok
        print(f"{name}: {'ok' if ok else 'MISMATCH'} max abs diff {float(diff[at]):.3g} at {list(map(int, at))}")
    only = sorted(set(before) ^ set(after))
    if only:
        print(f"not compared (in one model only): {', '.join(only)}")
    sys.exit(0 if worst_ok else 1)


if __name__ == "__main__":
    main()
