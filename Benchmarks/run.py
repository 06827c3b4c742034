#!/usr/bin/env python3
"""Load/save benchmark: Python onnx vs onnx-rewrite's I/O harness vs the onnx-rewrite CLI.

Generates (once, in ${ONNX_REWRITE_CACHE:-~/.cache/onnx-rewrite}/bench, reused) two LLM-shaped models:
  llm-1.5g   one 1.5 GB file: 256 float32 weights of 5.9 MB (MatMul up/down per layer) + 512 small
             ones, ~5,900 nodes (LayerNorm, SiLU MLP, residual, TorchScript-style Shape/Constant chains)
  llm-2.3g   the same shape with 192 layers: 2.3 GB, all tensors >= 1 KiB in one external `weights.bin`
and measures, in the same run, with the page cache warm (each command runs once untimed first):
  (a) python   `onnx.load` + `onnx.save` in a child Python (external data kept external)
  (b) harness  `onnx-rewrite-bench MODEL OUTDIR` (release; `swift run -c release onnx-rewrite-bench`)
  (c) cli      `onnx-rewrite MODEL -o OUT` (release) as a whole process
Peak RSS is each child's own maximum resident set size (wait4's rusage, as `/usr/bin/time -v` reports it).

Run with the test venv (it has onnx and numpy):
  ~/.cache/onnx-rewrite/venv/bin/python Benchmarks/run.py [--repeat 3] [--models llm-1.5g,llm-2.3g]
      [--bin-dir DIR | --scratch-path PATH] [--skip-python] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HIDDEN, FFN = 1024, 1440  # a [1024, 1440] float32 weight is 5.9 MB
GEN_VERSION = 1           # bump when the generated models change


def cache_dir() -> Path:
    return Path(os.environ.get("ONNX_REWRITE_CACHE") or Path.home() / ".cache" / "onnx-rewrite") / "bench"


# ---------------------------------------------------------------------------------------------
# Model generation


def _layer_nodes(i: int, x: str, helper) -> tuple[list, str]:
    """One LLM-ish block: LayerNorm, SiLU MLP (W_up, W_down), residual, TorchScript shape chain."""
    p = f"layers.{i}"
    n = []

    def const(name: str, value: np.ndarray):
        from onnx import numpy_helper
        n.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name)))
        return name

    two = const(f"{p}/two", np.array(2.0, np.float32))
    eps = const(f"{p}/eps", np.array(1e-5, np.float32))
    n += [
        helper.make_node("ReduceMean", [x], [f"{p}/mean"], axes=[-1], name=f"{p}/ln/ReduceMean"),
        helper.make_node("Sub", [x, f"{p}/mean"], [f"{p}/centered"], name=f"{p}/ln/Sub"),
        helper.make_node("Pow", [f"{p}/centered", two], [f"{p}/sq"], name=f"{p}/ln/Pow"),
        helper.make_node("ReduceMean", [f"{p}/sq"], [f"{p}/var"], axes=[-1], name=f"{p}/ln/ReduceMean_1"),
        helper.make_node("Add", [f"{p}/var", eps], [f"{p}/var_eps"], name=f"{p}/ln/Add"),
        helper.make_node("Sqrt", [f"{p}/var_eps"], [f"{p}/std"], name=f"{p}/ln/Sqrt"),
        helper.make_node("Div", [f"{p}/centered", f"{p}/std"], [f"{p}/normed"], name=f"{p}/ln/Div"),
        helper.make_node("Mul", [f"{p}/normed", f"{p}.ln.weight"], [f"{p}/scaled"], name=f"{p}/ln/Mul"),
        helper.make_node("Add", [f"{p}/scaled", f"{p}.ln.bias"], [f"{p}/ln_out"], name=f"{p}/ln/Add_1"),
        helper.make_node("MatMul", [f"{p}/ln_out", f"{p}.mlp.up.weight"], [f"{p}/up"], name=f"{p}/mlp/up/MatMul"),
        helper.make_node("Add", [f"{p}/up", f"{p}.mlp.up.bias"], [f"{p}/up_b"], name=f"{p}/mlp/up/Add"),
        helper.make_node("Sigmoid", [f"{p}/up_b"], [f"{p}/sig"], name=f"{p}/mlp/act/Sigmoid"),
        helper.make_node("Mul", [f"{p}/up_b", f"{p}/sig"], [f"{p}/act"], name=f"{p}/mlp/act/Mul"),
        helper.make_node("MatMul", [f"{p}/act", f"{p}.mlp.down.weight"], [f"{p}/down"], name=f"{p}/mlp/down/MatMul"),
        helper.make_node("Add", [f"{p}/down", f"{p}.mlp.down.bias"], [f"{p}/down_b"], name=f"{p}/mlp/down/Add"),
        helper.make_node("Add", [x, f"{p}/down_b"], [f"{p}/resid"], name=f"{p}/Add"),
    ]
    # TorchScript-style shape plumbing: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    c0 = const(f"{p}/c0", np.array(0, np.int64))
    c1 = const(f"{p}/c1", np.array(1, np.int64))
    ax = const(f"{p}/axes0", np.array([0], np.int64))
    n += [
        helper.make_node("Shape", [f"{p}/resid"], [f"{p}/shape"], name=f"{p}/Shape"),
        helper.make_node("Gather", [f"{p}/shape", c0], [f"{p}/d0"], axis=0, name=f"{p}/Gather"),
        helper.make_node("Gather", [f"{p}/shape", c1], [f"{p}/d1"], axis=0, name=f"{p}/Gather_1"),
        helper.make_node("Unsqueeze", [f"{p}/d0", ax], [f"{p}/u0"], name=f"{p}/Unsqueeze"),
        helper.make_node("Unsqueeze", [f"{p}/d1", ax], [f"{p}/u1"], name=f"{p}/Unsqueeze_1"),
        helper.make_node("Concat", [f"{p}/u0", f"{p}/u1"], [f"{p}/newshape"], axis=0, name=f"{p}/Concat"),
        helper.make_node("Reshape", [f"{p}/resid", f"{p}/newshape"], [f"{p}/reshaped"], name=f"{p}/Reshape"),
        helper.make_node("Transpose", [f"{p}/reshaped"], [f"{p}/t"], perm=[1, 0], name=f"{p}/Transpose"),
        helper.make_node("Transpose", [f"{p}/t"], [f"{p}/t2"], perm=[1, 0], name=f"{p}/Transpose_1"),
    ]
    # scale by constant ones, as exporters leave `x * 1.0` behind
    cur = f"{p}/t2"
    for k in range(8):
        one = const(f"{p}/one_{k}", np.array(1.0, np.float32))
        n.append(helper.make_node("Mul", [cur, one], [f"{p}/s{k}"], name=f"{p}/Mul_{k}"))
        cur = f"{p}/s{k}"
    return n, cur


def _small_weights(i: int, rng) -> list[tuple[str, np.ndarray]]:
    p = f"layers.{i}"
    return [
        (f"{p}.ln.weight", np.ones(HIDDEN, np.float32)),
        (f"{p}.ln.bias", np.zeros(HIDDEN, np.float32)),
        (f"{p}.mlp.up.bias", (rng.standard_normal(FFN, dtype=np.float32) * 0.01)),
        (f"{p}.mlp.down.bias", (rng.standard_normal(HIDDEN, dtype=np.float32) * 0.01)),
    ]


def _big_weights(i: int, rng) -> list[tuple[str, np.ndarray]]:
    p = f"layers.{i}"
    return [
        (f"{p}.mlp.up.weight", rng.standard_normal((HIDDEN, FFN), dtype=np.float32) * 0.02),
        (f"{p}.mlp.down.weight", rng.standard_normal((FFN, HIDDEN), dtype=np.float32) * 0.02),
    ]


def _graph(layers: int, initializers, helper, TensorProto):
    nodes = []
    x = "input"
    for i in range(layers):
        ns, x = _layer_nodes(i, x, helper)
        nodes += ns
    nodes.append(helper.make_node("Identity", [x], ["output"], name="output/Identity"))
    return helper.make_graph(
        nodes, "llm_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", HIDDEN])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", HIDDEN])],
        initializers,
    )


def generate_single(path: Path, layers: int = 128) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = []
    for i in range(layers):
        for name, a in _big_weights(i, rng) + _small_weights(i, rng):
            inits.append(numpy_helper.from_array(a, name))
    model = helper.make_model(_graph(layers, inits, helper, TensorProto),
                              opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx-rewrite-bench")
    model.ir_version = 8
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.rename(path)


def generate_external(path: Path, layers: int = 192, align: int = 4096) -> None:
    """All tensors >= 1 KiB in `weights.bin`, written as they are generated (bounded memory)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    data = path.parent / "weights.bin"
    inits = []
    with open(data, "wb") as f:
        for i in range(layers):
            for name, a in _big_weights(i, rng) + _small_weights(i, rng):
                raw = a.tobytes()
                if len(raw) < 1024:
                    inits.append(numpy_helper.from_array(a, name))
                    continue
                offset = (f.tell() + align - 1) // align * align
                f.seek(offset)
                f.write(raw)
                t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(a.shape))
                t.data_location = TensorProto.EXTERNAL
                for k, v in (("location", "weights.bin"), ("offset", str(offset)), ("length", str(len(raw)))):
                    t.external_data.add(key=k, value=v)
                inits.append(t)
    model = helper.make_model(_graph(layers, inits, helper, TensorProto),
                              opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx-rewrite-bench")
    model.ir_version = 8
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.rename(path)


MODELS = {
    "llm-1.5g": generate_single,
    "llm-2.3g": generate_external,
}


def ensure_model(name: str) -> Path:
    folder = cache_dir() / f"{name}-v{GEN_VERSION}"
    path = folder / "model.onnx"
    if path.exists():
        return path
    print(f"generating {path} ...", file=sys.stderr, flush=True)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    t = time.monotonic()
    MODELS[name](path)
    print(f"  {_gb(model_bytes(path))} in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    return path


def model_bytes(path: Path) -> int:
    """The model file plus the data files beside it."""
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Run:
    wall_s: float
    peak_rss: int          # bytes, the child's own maximum RSS
    load_s: float | None = None
    save_s: float | None = None


# A small launcher process runs each command and reports that command's peak RSS from
# getrusage(RUSAGE_CHILDREN). Forking the command from this (large) process instead would be wrong:
# Linux carries the forking process's peak RSS into the child's ru_maxrss across exec.
LAUNCHER = r"""
import os, resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[1:])
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write("\n@@launcher %d %.6f %d\n" % (rc, wall, ru.ru_maxrss * 1024))
sys.exit(0)
"""


def run_child(cmd: list[str], cwd: Path | None = None) -> tuple[Run, str]:
    """Runs `cmd`, returning its wall time, its peak RSS and its stdout."""
    proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *cmd], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    head, _, tail = proc.stderr.rpartition("\n@@launcher ")
    rc, wall, rss = tail.split()
    if proc.returncode != 0 or int(rc) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{head}")
    return Run(float(wall), int(rss)), proc.stdout


PY_CHILD = r"""
import json, os, sys, time
import onnx
from onnx.external_data_helper import uses_external_data
src, out = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
m = onnx.load(src)
t1 = time.monotonic()
ext = any(uses_external_data(t) for t in onnx.load(src, load_external_data=False).graph.initializer)
os.chdir(os.path.dirname(out))  # onnx 1.23.2 checks `location` against the current directory
if ext:
    onnx.save(m, out, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(out) + ".data", size_threshold=1024)
else:
    onnx.save(m, out)
t2 = time.monotonic()
print(json.dumps({"load_s": t1 - t0, "save_s": t2 - t1}))
"""


def _clean(folder: Path) -> None:
    """Removes the last run's output and flushes dirty pages, so no run pays for the previous one's writeback."""
    for p in folder.iterdir():
        if p.is_file():
            p.unlink()
    os.sync()


def measure_python(model: Path, out_dir: Path) -> Run:
    _clean(out_dir)
    run, stdout = run_child([sys.executable, "-c", PY_CHILD, str(model), str(out_dir / "py-out.onnx")])
    data = json.loads(stdout.strip().splitlines()[-1])
    run.load_s, run.save_s = data["load_s"], data["save_s"]
    _clean(out_dir)
    return run


def measure_harness(bench: Path, model: Path, out_dir: Path) -> Run:
    _clean(out_dir)
    run, stdout = run_child([str(bench), str(model), str(out_dir), "--repeat", "1"])
    data = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")][-1]
    run.load_s, run.save_s = data["load_s"], data["save_s"]
    _clean(out_dir)
    return run


def measure_cli(cli: Path, model: Path, out_dir: Path) -> Run:
    _clean(out_dir)
    run, _ = run_child([str(cli), str(model), "-o", str(out_dir / "cli-out.onnx")])
    _clean(out_dir)
    return run


@dataclass
class Row:
    model: str
    tool: str
    file_bytes: int
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return statistics.median(vals) if vals else None

    @property
    def total_s(self) -> float:
        if self.median("load_s") is not None and self.median("save_s") is not None:
            return statistics.median([r.load_s + r.save_s for r in self.runs])
        return self.median("wall_s")

    @property
    def peak(self) -> int:
        return max(r.peak_rss for r in self.runs)


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _s(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def build(args) -> tuple[Path, Path]:
    if args.bin_dir:
        d = Path(args.bin_dir)
    else:
        extra = ["--scratch-path", args.scratch_path] if args.scratch_path else []
        for product in ("onnx-rewrite-bench", "onnx-rewrite"):
            print(f"swift build -c release --product {product}", file=sys.stderr, flush=True)
            subprocess.run(["swift", "build", "-c", "release", "--product", product, *extra], cwd=ROOT, check=True)
        d = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path", *extra], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout.strip())
    bench, cli = d / "onnx-rewrite-bench", d / "onnx-rewrite"
    for b in (bench, cli):
        if not b.is_file():
            sys.exit(f"error: {b} not found")
    return bench, cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each command (after one untimed)")
    ap.add_argument("--python-repeat", type=int, default=1, help="timed runs of the Python baseline")
    ap.add_argument("--skip-python", action="store_true")
    ap.add_argument("--bin-dir", help="use the release binaries here instead of building")
    ap.add_argument("--scratch-path", help="swift build --scratch-path for the release build")
    ap.add_argument("--json", help="also write the measurements to this JSON file")
    args = ap.parse_args()

    names = [n for n in args.models.split(",") if n]
    for n in names:
        if n not in MODELS:
            sys.exit(f"error: unknown model {n!r}; choose from {', '.join(MODELS)}")
    models = {n: ensure_model(n) for n in names}
    bench, cli = build(args)

    rows: list[Row] = []
    for name, model in models.items():
        size = model_bytes(model)
        out_dir = cache_dir() / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        tools = []
        if not args.skip_python:
            tools.append(("python onnx.load+save", lambda: measure_python(model, out_dir), args.python_repeat))
        tools.append(("onnx-rewrite-bench (load+save)", lambda: measure_harness(bench, model, out_dir), args.repeat))
        tools.append(("onnx-rewrite CLI (process)", lambda: measure_cli(cli, model, out_dir), args.repeat))
        for tool, fn, repeat in tools:
            print(f"{name}: {tool}: 1 untimed + {repeat} timed ...", file=sys.stderr, flush=True)
            fn()  # warm the page cache and the binary
            row = Row(name, tool, size)
            for _ in range(repeat):
                row.runs.append(fn())
            rows.append(row)
        shutil.rmtree(out_dir, ignore_errors=True)

    print(report(rows, models))
    if args.json:
        Path(args.json).write_text(json.dumps([
            {"model": r.model, "tool": r.tool, "file_bytes": r.file_bytes,
             "runs": [vars(x) for x in r.runs]} for r in rows], indent=2))


def report(rows: list[Row], models: dict[str, Path]) -> str:
    import platform

    lines = [
        f"Page cache warm: every command ran once untimed first; times are medians; peak RSS is the "
        f"child process's maximum resident set (weights mapped from the page cache count too). "
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}.",
        "",
        "| model | size | tool | load s | save s | total s | peak RSS | RSS / size | speedup vs Python |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in models:
        group = [r for r in rows if r.model == name]
        py = next((r for r in group if r.tool.startswith("python")), None)
        for r in group:
            speed = f"{py.total_s / r.total_s:.1f}x" if py and r is not py and r.total_s else ("1.0x" if r is py else "–")
            lines.append(
                f"| {name} | {_gb(r.file_bytes)} | {r.tool} | {_s(r.median('load_s'))} | {_s(r.median('save_s'))} | "
                f"{r.total_s:.3f} | {_gb(r.peak)} | {r.peak / r.file_bytes:.2f}x | {speed} |"
            )
    lines.append("")
    lines.append("`total s` is load + save for Python and the harness, the whole process's wall time for the CLI.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
