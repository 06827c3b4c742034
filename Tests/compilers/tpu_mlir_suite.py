#!/usr/bin/env python3
"""TPU-MLIR (Sophgo's BM1684X compiler) on every fixture, before and after onnx-rewrite.

Run by `Scripts/test --compilers` with the test venv's Python; TPU-MLIR itself lives in its own
Python 3.10 venv (Scripts/install-tpu-mlir) and is called as subprocesses with that venv's bin/
first on PATH (its tools shell out to each other by name). For each Fixtures/NAME/:

  original   model_transform on model.onnx (static --input_shapes from meta.json, --test_input the
             fixture's inputs.npz, so its own layer-by-layer validation runs). Allowed to fail: this
             column records what the compiler says about the raw export.
  rewritten  `onnx-rewrite model.onnx --pass P ... --input-shape name=dims ...`, then model_transform
             on the result with the same validation; its final outputs must also match the
             fixture's outputs.npz (the original's onnxruntime outputs). Must pass.
  compile    `onnx-rewrite compile model.onnx --target tpu-mlir --tile --pass P ... --test-input inputs.npz
             --run`: model_transform with its validation on every tile (each fed its own inputs), and no
             top.Shape op in any tile's MLIR (no dynamic sub-network). For COMPILE_FULL fixtures the plan
             goes on to model_deploy --quantize F16 per tile (simulator vs F32 MLIR) and model_tool
             --combine. Must pass.
  deploy     llama/phi3/falcon prefill and KV fixtures: the same rewrite plus `fp16-safe-masks`,
             model_transform, then `model_deploy --chip bm1684x --quantize F16` with
             --test_input/--test_reference (simulator vs the F32 MLIR) on the reference feed, whose
             row 1 is left-padded. Must pass.

Writes Tests/Reports/tpu-mlir.md (full runs only, or --report PATH) and exits 1 if anything that
must pass failed. Work folders go under a temporary directory (kept with --keep).

  tpu_mlir_suite.py [--passes npu] [--only NAME ...] [--no-deploy] [--jobs 2] [--keep]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = Path(os.environ.get("ONNX_REWRITE_FIXTURES") or REPO_ROOT / "Fixtures")
REPORT_PATH = REPO_ROOT / "Tests" / "Reports" / "tpu-mlir.md"
DEFAULT_VENV = Path.home() / ".cache" / "onnx-rewrite" / "tpu-mlir-venv"

# Decoder fixtures whose F16 build is checked in the simulator (prefill and KV decode).
DEPLOY_FIXTURE = re.compile(r"^(llama|phi3|falcon)-(kv-)?(ts|dynamo)$")
DEPLOY_EXTRA_PASS = "fp16-safe-masks"
# Fixtures whose tiled compile goes on to F16 bmodels and model_tool --combine (the others stop at
# the MLIR: 4 tiles x model_deploy is ~30 s more per fixture on 2 cores).
COMPILE_FULL = {"llama-ts", "llama-kv-ts"}
CHIP = "bm1684x"

# Fixtures whose rewritten column needs a pass beyond --passes, and why. The vision tower builds
# its mask as `(1 - mask) * float32_lowest`; TPU-MLIR's front end itself replaces that multiply by
# one with -1e4, so its F32 validation cannot match onnxruntime on the exact graph. fp16-safe-masks
# makes the same change in the ONNX (outputs on the reference feed stay bit-identical).
TRANSFORM_EXTRA_PASSES = {re.compile(r"^mllama-vision-"): ["fp16-safe-masks"]}


def transform_passes(name: str, passes: list[str]) -> list[str]:
    extra = [p for pattern, more in TRANSFORM_EXTRA_PASSES.items() if pattern.match(name) for p in more]
    return passes + [p for p in extra if p not in passes]

# Final outputs of the rewritten model's F32 MLIR vs the original's onnxruntime outputs.
# TPU-MLIR's F32 interpreter differs from onnxruntime by float rounding (and tanh/erf approximations).
OUTPUT_ATOL = 1e-3
OUTPUT_RTOL = 1e-3

STEP_TIMEOUT_S = 600
LOG_TAIL_LINES = 15
_print_lock = threading.Lock()


def say(msg: str) -> None:
    with _print_lock:
        print(msg, flush=True)


@dataclass
class Outcome:
    status: str  # "pass", "fail" or "skip"
    detail: str = ""
    seconds: float = 0.0
    log: Path | None = None  # the failing step's log

    def cell(self) -> str:
        if self.status == "skip":
            return "—"
        text = f"{self.status} ({self.seconds:.0f} s)"
        if self.detail:
            text += ": " + shorten(self.detail).replace("|", "\\|")
        return text


@dataclass
class FixtureResult:
    name: str
    original: Outcome = field(default_factory=lambda: Outcome("skip"))
    rewritten: Outcome = field(default_factory=lambda: Outcome("skip"))
    deploy: Outcome = field(default_factory=lambda: Outcome("skip"))
    kv_io: Outcome = field(default_factory=lambda: Outcome("skip"))
    compile: Outcome = field(default_factory=lambda: Outcome("skip"))

    def must_pass_failures(self) -> list[str]:
        return [col for col in ("rewritten", "compile", "deploy", "kv_io") if getattr(self, col).status == "fail"]


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Reading the compilers' output

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Lines worth reporting, most telling first: an exception's last line, an explicit error, a failed compare.
_ERROR_PATTERNS = [
    re.compile(r"^(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit)\b.*"),
    re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): .*"),
    re.compile(r".*\b(?:not support|Unsupport|unsupported)\b.*", re.I),
    re.compile(r".*\berror\b.*", re.I),
    re.compile(r".*\b(?:FAILED|failed|NOT_SIMILAR|not similar|mismatch)\b.*"),
]


_FAILED_BLOB = re.compile(r"^\[\s*(\S+)\s*\]\s+(\S+)\s+\[FAILED\]")
_MIN_SIMILARITY = re.compile(r"^min_similarity = \(([^,]+), ([^,]+),")
_COUNT = re.compile(r"^(\d+) (compared|failed)$")


def first_error_line(log: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in log.splitlines()]
    lines = [line for line in lines if line]
    # A failed validation (npz_tool compare) raises a RuntimeError that only repeats the command:
    # name the first tensor that differs, how many differ and the worst similarities instead.
    for line in lines:
        failed = _FAILED_BLOB.match(line)
        if failed:
            counts = {m.group(2): m.group(1) for m in map(_COUNT.match, lines) if m}
            similarities = [m.groups() for m in map(_MIN_SIMILARITY.match, lines) if m]
            text = f"validation failed at {failed.group(1)} ({failed.group(2)}"
            if "failed" in counts and "compared" in counts:
                text += f"; {counts['failed']} of {counts['compared']} tensors differ"
            if similarities:
                cosine, euclidean = (float(x) for x in similarities[0])
                text += f"; min cosine {cosine:.3g}, euclidean {euclidean:.3g}"
            return text + ")"
    # A Python traceback ends with the exception line: that is the cause, unless it only says that a
    # tool it ran failed ("[!Error]: tpuc-opt ..."): then the tool's own first complaint is.
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for later in lines[i + 1:]:
                if re.match(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b", later):
                    if "[!Error]:" in later:
                        runs = [j for j in range(i) if lines[j].startswith("[Running]:")]
                        tool_output = lines[runs[-1] + 1:i] if runs else []
                        if tool_output:
                            tool = lines[runs[-1]].split()[1] if len(lines[runs[-1]].split()) > 1 else "tool"
                            complaints = [ln for ln in tool_output if any(p.match(ln) for p in _ERROR_PATTERNS)]
                            return f"{tool}: {(complaints or tool_output)[0]}"
                    return later
    return _most_telling(lines) if lines else "(no output)"


def _most_telling(lines: list[str]) -> str:
    for pattern in _ERROR_PATTERNS:
        for line in lines:
            if pattern.match(line):
                return line
    return lines[0]


def run_logged(cmd: list[str], cwd: Path, env: dict[str, str], log_name: str) -> tuple[int, str, float]:
    """Runs `cmd` in `cwd`, stdout+stderr to cwd/log_name; returns (exit code, log text, seconds)."""
    start = time.monotonic()
    log_path = cwd / log_name
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=STEP_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            rc = -1
            log.write(f"\nerror: timed out after {STEP_TIMEOUT_S} s\n")
    # Without the command line: it must not be mistaken for an error message.
    return rc, log_path.read_text(errors="replace").split("\n", 1)[-1], time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# The suite


class Suite:
    def __init__(self, args: argparse.Namespace, work_root: Path) -> None:
        self.venv = Path(args.venv)
        self.cli = Path(args.cli)
        self.passes = [p for p in re.split(r"[,\s]+", args.passes) if p]
        self.deploy = not args.no_deploy
        self.work_root = work_root
        self.env = dict(os.environ)
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        # The test venv's variables must not leak into TPU-MLIR's Python 3.10.
        for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            self.env.pop(var, None)
        self.env["VIRTUAL_ENV"] = str(self.venv)

    # -- steps -----------------------------------------------------------------------------------

    def rewrite(self, fixture: Path, passes: list[str], shapes: dict[str, list[int]], out: Path,
                extra: list[str] = []) -> Outcome:
        cmd = [str(self.cli), str(fixture / "model.onnx"), "-o", str(out), *extra]
        for p in passes:
            cmd += ["--pass", p]
        for name, dims in shapes.items():
            cmd += ["--input-shape", f"{name}={','.join(str(d) for d in dims)}"]
        rc, log, secs = run_logged(cmd, out.parent, self.env, "onnx-rewrite.log")
        if rc != 0 or not out.exists():
            return Outcome("fail", "onnx-rewrite: " + first_error_line(log), secs, out.parent / "onnx-rewrite.log")
        return Outcome("pass", "", secs)

    def transform(self, model: Path, name: str, fixture: Path, shapes: dict[str, list[int]], work: Path,
                  inputs: Path | None = None) -> Outcome:
        shape_arg = "[" + ",".join("[" + ",".join(str(d) for d in dims) + "]" for dims in shapes.values()) + "]"
        cmd = [
            str(self.venv / "bin" / "model_transform"),
            "--model_name", name,
            "--model_def", str(model),
            "--input_shapes", shape_arg,
            "--test_input", str(inputs or fixture / "inputs.npz"),
            "--test_result", f"{name}_top_outputs.npz",
            "--mlir", f"{name}.mlir",
        ]
        rc, log, secs = run_logged(cmd, work, self.env, "model_transform.log")
        if rc != 0 or not (work / f"{name}_top_outputs.npz").exists():
            return Outcome("fail", first_error_line(log), secs, work / "model_transform.log")
        return Outcome("pass", "", secs)

    def compare_final_outputs(self, fixture: Path, name: str, work: Path,
                              expected: dict[str, np.ndarray] | None = None) -> str | None:
        """None if the MLIR's final outputs match outputs.npz (or `expected`), else what differs."""
        if expected is None:
            expected = dict(np.load(fixture / "outputs.npz"))
        got = np.load(work / f"{name}_top_outputs.npz")
        problems = []
        unmatched: list[str] = []
        for out_name in expected:
            # TPU-MLIR names each result after its MLIR loc: the ONNX tensor name + "_" + the op type.
            keys = [k for k in got.files if k == out_name or re.fullmatch(re.escape(out_name) + r"_[A-Za-z0-9]+", k)]
            if not keys:
                # TPU-MLIR folds some output producers into their readers (a Concat into the Concat
                # that reads it) and then has no result by that name; its own validation still ran.
                unmatched.append(out_name)
                continue
            if len(keys) != 1:
                problems.append(f"{out_name}: {len(keys)} matching results in {name}_top_outputs.npz")
                continue
            want = expected[out_name].astype(np.float64)
            have = got[keys[0]].astype(np.float64).reshape(want.shape) if got[keys[0]].size == want.size else None
            if have is None:
                problems.append(f"{out_name}: shape {list(got[keys[0]].shape)}, expected {list(want.shape)}")
            elif not np.allclose(have, want, atol=OUTPUT_ATOL, rtol=OUTPUT_RTOL):
                diff = np.nan if np.isnan(have).any() else float(np.max(np.abs(have - want)))
                problems.append(f"{out_name}: max abs diff {diff:.3g} vs outputs.npz")
        if len(unmatched) == len(expected):
            problems.append(f"no output found in {name}_top_outputs.npz")
        return "; ".join(problems) or None

    def model_deploy(self, name: str, work: Path) -> Outcome:
        cmd = [
            str(self.venv / "bin" / "model_deploy"),
            "--mlir", f"{name}.mlir",
            "--chip", CHIP,
            "--quantize", "F16",
            "--test_input", f"{name}_in_f32.npz",
            "--test_reference", f"{name}_top_outputs.npz",
            "--model", f"{name}_{CHIP}_f16.bmodel",
        ]
        rc, log, secs = run_logged(cmd, work, self.env, "model_deploy.log")
        if rc != 0 or not (work / f"{name}_{CHIP}_f16.bmodel").exists():
            return Outcome("fail", first_error_line(log), secs, work / "model_deploy.log")
        return Outcome("pass", "", secs)

    # -- one fixture ---------------------------------------------------------------------------

    def run_fixture(self, fixture: Path) -> FixtureResult:
        name = fixture.name
        result = FixtureResult(name)
        meta = json.loads((fixture / "meta.json").read_text())
        shapes = input_shapes(fixture, meta)
        model_name = re.sub(r"\W", "_", name)

        work = self.work_root / name / "original"
        work.mkdir(parents=True)
        result.original = self.transform(fixture / "model.onnx", model_name, fixture, shapes, work)
        say(f"  {name:24} original   {result.original.cell()}")

        work = self.work_root / name / "rewritten"
        work.mkdir(parents=True)
        rewritten = work / "rewritten.onnx"
        step = self.rewrite(fixture, transform_passes(name, self.passes), shapes, rewritten)
        if step.status == "pass":
            t = self.transform(rewritten, model_name, fixture, shapes, work)
            step = Outcome(t.status, t.detail, step.seconds + t.seconds, t.log)
            if step.status == "pass":
                mismatch = self.compare_final_outputs(fixture, model_name, work)
                if mismatch:
                    step = Outcome("fail", mismatch, step.seconds)
        result.rewritten = step
        say(f"  {name:24} rewritten  {result.rewritten.cell()}")

        result.compile = self.run_compile(fixture, shapes)
        say(f"  {name:24} compile    {result.compile.cell()}")

        if "-kv-" in name:
            result.kv_io = self.run_kv_io(fixture, model_name)
            say(f"  {name:24} kv-io      {result.kv_io.cell()}")

        if self.deploy and DEPLOY_FIXTURE.match(name):
            result.deploy = self.run_deploy(fixture, shapes, model_name)
            say(f"  {name:24} deploy     {result.deploy.cell()}")
        return result

    def run_kv_io(self, fixture: Path, model_name: str) -> Outcome:
        """The fixed-buffer decode form: `--pass kv-cache-io --positions input --mask bias` before the
        suite's passes, fed position_ids and an HF-style additive bias built from the fixture's mask;
        logits must equal outputs.npz and each present.N.* its last `sequence` positions."""
        work = self.work_root / fixture.name / "kv-io"
        work.mkdir(parents=True)
        feed = dict(np.load(fixture / "inputs.npz"))
        mask = feed.pop("attention_mask")
        batch, sequence = feed["input_ids"].shape
        past = mask.shape[1] - sequence
        feed["position_ids"] = np.broadcast_to(np.arange(past, past + sequence, dtype=np.int64), (batch, sequence)).copy()
        query = past + np.arange(sequence)[:, None]
        allowed = (np.arange(past + sequence)[None, :] <= query)[None] & (mask[:, None, :] == 1)
        feed["attention_bias"] = np.where(allowed, 0, np.finfo(np.float32).min).astype(np.float32)[:, None]
        np.savez(work / "inputs.npz", **feed)
        expected = {k: (v[:, :, -sequence:] if k.startswith("present") else v)
                    for k, v in np.load(fixture / "outputs.npz").items()}
        model = work / "kv-io.onnx"
        shapes = {k: list(v.shape) for k, v in feed.items()}
        step = self.rewrite(fixture, ["kv-cache-io"] + self.passes, shapes, model,
                            extra=["--positions", "input", "--mask", "bias"])
        if step.status != "pass":
            return step
        graph = onnx.load(model, load_external_data=False).graph
        weights = {t.name for t in graph.initializer}
        ordered = {i.name: shapes[i.name] for i in graph.input if i.name not in weights}
        t = self.transform(model, model_name, fixture, ordered, work, inputs=work / "inputs.npz")
        if t.status != "pass":
            return Outcome(t.status, t.detail, step.seconds + t.seconds, t.log)
        mismatch = self.compare_final_outputs(fixture, model_name, work, expected)
        return Outcome("fail", mismatch, step.seconds + t.seconds) if mismatch else Outcome("pass", "", step.seconds + t.seconds)

    def run_compile(self, fixture: Path, shapes: dict[str, list[int]]) -> Outcome:
        """`onnx-rewrite compile --target tpu-mlir --tile --run`: every tile through model_transform with
        its validation (and, for COMPILE_FULL, model_deploy F16 and model_tool --combine)."""
        work = self.work_root / fixture.name / "compile"
        work.mkdir(parents=True)
        full = fixture.name in COMPILE_FULL
        passes = transform_passes(fixture.name, self.passes) + ([DEPLOY_EXTRA_PASS] if full else [])
        out = work / "out"
        cmd = [str(self.cli), "compile", str(fixture / "model.onnx"), "--target", "tpu-mlir", "--tile",
               "--out", str(out), "--test-input", str(fixture / "inputs.npz"),
               "--stage", "full" if full else "mlir", "--run"]
        for p in passes:
            cmd += ["--pass", p]
        for name, dims in shapes.items():
            cmd += ["--input-shape", f"{name}={','.join(str(d) for d in dims)}"]
        rc, log, secs = run_logged(cmd, work, self.env, "onnx-rewrite-compile.log")
        if rc != 0:
            errors = [line for line in log.splitlines() if line.startswith("error:")]
            detail = errors[-1] if errors else first_error_line(log)
            return Outcome("fail", detail.replace(str(out) + ": ", ""), secs, out / "compile.log" if (out / "compile.log").exists() else work / "onnx-rewrite-compile.log")
        manifest = json.loads((out / "tiles" / "manifest.json").read_text())
        tiles = [t["name"] for t in manifest["tiles"]]
        dynamic = [t for t in tiles if "top.Shape" in (out / "build" / f"{t}.mlir").read_text(errors="replace")]
        if dynamic:
            return Outcome("fail", f"top.Shape (a dynamic sub-network) in the MLIR of {', '.join(dynamic)}", secs)
        detail = f"{len(tiles)} tiles"
        if full:
            combined = out / "build" / f"{fixture.name}_{CHIP}_f16.bmodel"
            if not combined.exists():
                return Outcome("fail", f"no {combined.name}", secs)
            detail += f", F16 bmodels (simulator checked per tile), combined {combined.stat().st_size // 1024} KiB"
        return Outcome("pass", detail, secs)

    def run_deploy(self, fixture: Path, shapes: dict[str, list[int]], model_name: str) -> Outcome:
        problem = padded_feed_problem(fixture)
        if problem:
            return Outcome("fail", problem)
        work = self.work_root / fixture.name / "deploy"
        work.mkdir(parents=True)
        model = work / "rewritten-fp16.onnx"
        total = 0.0
        step = self.rewrite(fixture, self.passes + [DEPLOY_EXTRA_PASS], shapes, model)
        total += step.seconds
        if step.status == "pass":
            step = self.transform(model, model_name, fixture, shapes, work)
            total += step.seconds
            if step.status == "fail":
                step.detail = "model_transform: " + step.detail
        if step.status == "pass":
            step = self.model_deploy(model_name, work)
            total += step.seconds
        step.seconds = total
        return step


def input_shapes(fixture: Path, meta: dict) -> dict[str, list[int]]:
    """meta.json's input shapes in the graph's input order (model_transform's --input_shapes is positional)."""
    model = onnx.load(str(fixture / "model.onnx"), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    missing = [n for n in names if n not in meta["input_shapes"]]
    if missing:
        raise SystemExit(f"{fixture / 'meta.json'}: input_shapes lacks graph inputs {missing}")
    return {n: [int(d) for d in meta["input_shapes"][n]] for n in names}


def padded_feed_problem(fixture: Path) -> str | None:
    """The deploy check is about left padding: make sure the reference feed really has a padded row."""
    feed = np.load(fixture / "inputs.npz")
    if "attention_mask" not in feed.files:
        return "inputs.npz has no attention_mask"
    mask = feed["attention_mask"]
    if mask.ndim != 2 or mask.shape[0] < 2 or not (mask[0] == 1).all() or mask[1, 0] != 0 or mask[1, -1] != 1:
        return f"inputs.npz attention_mask is not [all ones, left-padded]: {mask.tolist()}"
    return None


# ---------------------------------------------------------------------------------------------
# Report


def tool_versions(venv: Path, cli: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m\n"
            "for p in ('tpu-mlir', 'onnx', 'onnxruntime', 'onnxsim', 'torch'):\n"
            "    print(p, m.version(p))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout
    versions = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    rw = subprocess.run([str(cli), "--version"], capture_output=True, text=True)
    versions["onnx-rewrite"] = (rw.stdout.strip() or rw.stderr.strip() or "?")
    return versions


def write_report(path: Path, results: list[FixtureResult], passes: list[str], deploy: bool,
                 versions: dict[str, str], seconds: float, jobs: int) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tpu = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "onnx-rewrite")
    lines = [
        "# TPU-MLIR on the fixtures",
        "",
        f"Written by `Scripts/test --compilers` (Tests/compilers/tpu_mlir_suite.py) on {now}; "
        f"{seconds / 60:.1f} min for the whole suite ({jobs} fixtures at a time, "
        f"{os.cpu_count()} cores, {platform.machine()}).",
        "",
        f"- TPU-MLIR venv: {tpu}.",
        f"- onnx-rewrite {versions.get('onnx-rewrite', '?')}; rewritten = `--pass {' --pass '.join(passes)}` "
        "plus `--input-shape` for every input (the reference shapes).",
        "- original / rewritten: `model_transform` with static `--input_shapes`, `--test_input inputs.npz` "
        "(its own layer-by-layer F32 validation against onnxruntime 1.16); rewritten also compares the final "
        f"outputs with the fixture's outputs.npz (atol {OUTPUT_ATOL}, rtol {OUTPUT_RTOL}). "
        "The original may fail; the rewritten must pass.",
        "- The Mllama vision tower's rewritten column adds `--pass fp16-safe-masks`: TPU-MLIR itself turns its "
        "`(1 - mask) * float32_lowest` into a multiply by -1e4, so its F32 validation of the exact graph fails; "
        "the pass makes that change in the ONNX (outputs on the reference feed are bit-identical).",
        f"- deploy: rewritten + `--pass {DEPLOY_EXTRA_PASS}`, then `model_deploy --chip {CHIP} --quantize F16` "
        "with `--test_input`/`--test_reference` (simulator vs the F32 MLIR) on the reference feed, "
        "whose attention mask row 1 is left-padded. Must pass."
        + ("" if deploy else " (skipped in this run: --no-deploy)"),
        "- kv-cache-io (KV fixtures): `--pass kv-cache-io --positions input --mask bias` before the same passes, "
        "then `model_transform` with its validation on `position_ids = past + arange(sequence)` and an additive "
        "bias built from the fixture's left-padded mask; logits must match outputs.npz and each present.N.* its "
        "last `sequence` positions. Must pass.",
        "",
        "- compile: `onnx-rewrite compile model.onnx --target tpu-mlir --tile` with the same passes, "
        "`--test-input inputs.npz --run`: `model_transform` with its validation on every tile (each fed its own "
        "inputs), and no `top.Shape` in any tile's MLIR. For " + ", ".join(sorted(COMPILE_FULL)) + " (plus "
        f"`--pass {DEPLOY_EXTRA_PASS}`) the plan goes on: `model_deploy --quantize F16` per tile with its simulator "
        "check, then `model_tool --combine`. Must pass.",
        "",
        "| fixture | original | rewritten | compile --tile | deploy | kv-cache-io |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.name} | {r.original.cell()} | {r.rewritten.cell()} | {r.compile.cell()} | {r.deploy.cell()} | {r.kv_io.cell()} |")
    columns = ("original", "rewritten", "compile", "deploy", "kv_io")
    counts = {col: sum(getattr(r, col).status == "pass" for r in results) for col in columns}
    ran = {col: sum(getattr(r, col).status != "skip" for r in results) for col in columns}
    lines += ["", "Passed: " + ", ".join(f"{col} {counts[col]}/{ran[col]}" for col in counts) + "."]
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------


def default_cli() -> str:
    env = os.environ.get("ONNX_REWRITE_BIN")
    if env:
        return env
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    return str(Path(out) / "onnx-rewrite")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", default=os.environ.get("ONNX_REWRITE_TPU_PASSES", "npu"),
                        help="passes for the rewritten column, comma separated (default npu; env ONNX_REWRITE_TPU_PASSES)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this fixture (repeatable; a trailing * matches a prefix)")
    parser.add_argument("--no-deploy", action="store_true", help="skip the model_deploy column")
    parser.add_argument("--jobs", type=int, default=2, help="fixtures at a time (default 2)")
    parser.add_argument("--venv", default=os.environ.get("ONNX_REWRITE_TPU_VENV") or str(DEFAULT_VENV),
                        help="TPU-MLIR venv (Scripts/install-tpu-mlir)")
    parser.add_argument("--cli", default=None, help="onnx-rewrite binary (default $ONNX_REWRITE_BIN, else the debug build)")
    parser.add_argument("--report", type=Path, default=None,
                        help=f"where to write the report (default {REPORT_PATH.relative_to(REPO_ROOT)} on full runs, none with --only)")
    parser.add_argument("--keep", action="store_true", help="keep the work folders (their path is printed)")
    args = parser.parse_args(argv)
    args.cli = args.cli or default_cli()

    venv = Path(args.venv)
    if not (venv / "bin" / "model_transform").exists():
        print(f"tpu_mlir_suite: no TPU-MLIR in {venv}; run Scripts/install-tpu-mlir", file=sys.stderr)
        return 2
    if not Path(args.cli).exists():
        print(f"tpu_mlir_suite: onnx-rewrite not found at {args.cli} (swift build, or set ONNX_REWRITE_BIN)", file=sys.stderr)
        return 2

    fixtures = sorted(p for p in FIXTURES_DIR.iterdir() if (p / "model.onnx").exists())
    if args.only:
        def wanted(name: str) -> bool:
            return any(name == o or (o.endswith("*") and name.startswith(o[:-1])) for o in args.only)
        unknown = [o for o in args.only if not any(f.name == o or (o.endswith("*") and f.name.startswith(o[:-1]))
                                                   for f in fixtures)]
        if unknown:
            print(f"tpu_mlir_suite: no fixture named {unknown} in {FIXTURES_DIR}", file=sys.stderr)
            return 2
        fixtures = [f for f in fixtures if wanted(f.name)]
    report = args.report if args.report is not None else (None if args.only else REPORT_PATH)

    work_root = Path(tempfile.mkdtemp(prefix="onnx-rewrite-tpu-mlir-"))
    suite = Suite(args, work_root)
    print(f"TPU-MLIR suite: {len(fixtures)} fixtures, passes {','.join(suite.passes)}, "
          f"deploy {'on' if suite.deploy else 'off'}, {args.jobs} at a time, work in {work_root}", flush=True)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(suite.run_fixture, fixtures))
    seconds = time.monotonic() - start

    if report is not None:
        write_report(report, results, suite.passes, suite.deploy, tool_versions(venv, Path(args.cli)), seconds, args.jobs)
        print(f"wrote {report}")
    failures = [(r.name, col, getattr(r, col)) for r in results for col in r.must_pass_failures()]
    # What each failing log says just before it gave up (a Python traceback or an LLVM stack dump adds
    # nothing), for CI runs whose work folders are gone afterwards.
    for name, col, outcome in failures:
        if outcome.log is not None and outcome.log.exists():
            lines = [_ANSI.sub("", line) for line in outcome.log.read_text(errors="replace").splitlines()]
            end = next((i for i, line in enumerate(lines)
                        if line.startswith(("Traceback (most recent call last)", "Stack dump:"))), len(lines))
            tail = lines[max(0, end - LOG_TAIL_LINES):end]
            print(f"\n--- {name} {col}: {outcome.log.name}, lines {end - len(tail) + 1}-{end}")
            print("\n".join(tail))
    if args.keep:
        print(f"work folders kept in {work_root}")
    else:
        shutil.rmtree(work_root, ignore_errors=True)

    print(f"\nTPU-MLIR suite: {seconds / 60:.1f} min; original {sum(r.original.status == 'pass' for r in results)}"
          f"/{len(results)} pass (allowed to fail); must-pass failures: {len(failures)}")
    for name, col, outcome in failures:
        print(f"  FAIL {name} {col}: {shorten(outcome.detail, 300)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
