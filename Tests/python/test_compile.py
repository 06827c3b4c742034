"""`onnx-rewrite compile`: the device-compiler handoff (issue #7).

- onnxruntime and OpenVINO (both run here): every fixture, rewritten with --pass npu, tiled, compiled
  per tile and run through the tiles on the fixture's inputs; the outputs must match the original
  export's reference outputs (outputs.npz), and every file written passes the checker's full check.
- The build plans of tensorrt and vastai (whose compilers cannot run here) and of tpu-mlir are golden
  files: compile.sh, vamc/<tile>.yaml, polygraphy.sh. TPU-MLIR itself runs in the compiler suite
  (Tests/compilers/tpu_mlir_suite.py, `Scripts/test --compilers`).
- What each compiler rejects is reported by tile and node, with the fix, before anything is written.
- A compiler that is not installed gets its install command, not a traceback; bad --quantize/--chip
  values are usage errors listing the choices.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
GOLDEN_DIR = support.REPO_ROOT / "Tests" / "Goldens" / "compile"
LLAMA = support.FIXTURES_DIR / "llama-ts"


def compile_args(fixture: Path, out: Path, target: str, *extra, passes=("npu",), tile=True) -> list:
    feed = dict(np.load(fixture / "inputs.npz"))
    args = ["compile", fixture / "model.onnx", "--target", target, "--out", out, *extra]
    for p in passes:
        args += ["--pass", p]
    if tile:
        args.append("--tile")
    return args + support.input_shape_args(feed)


def written_models(out: Path) -> list[Path]:
    return sorted(out.glob("tiles/*.onnx")) + sorted(out.glob("model.onnx"))


@pytest.mark.parametrize("target", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_runtime_targets_build_every_fixture_and_match_the_original(fixture: Path, target: str, tmp_path: Path):
    out = tmp_path / "out"
    proc = support.run_cli(*compile_args(fixture, out, target, "--test-input", fixture / "inputs.npz", "--run",
                                         "--python", sys.executable))
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "tiles" / "manifest.json").read_text())
    assert len(manifest["tiles"]) >= 3, "embedding, at least one block, head"
    # One progress line per step, and the compiled form of every tile.
    suffix = ".ort.onnx" if target == "onnxruntime" else ".xml"
    for t in manifest["tiles"]:
        assert f"{t['name']}: {target} compile ... ok" in proc.stderr
        assert (out / "build" / (t["name"] + suffix)).exists()
    for model in written_models(out):
        assert support.checker_error(model) is None, f"{model.name}: {support.checker_error(model)}"
    got = np.load(out / "build" / "outputs.npz")
    expected = np.load(fixture / "outputs.npz")
    for name in expected.files:
        assert name in got.files, f"{name} missing from the {target} build's outputs"
        diff = float(np.max(np.abs(got[name].astype(np.float64) - expected[name].astype(np.float64)), initial=0.0))
        # OpenVINO's CPU plugin fuses and reorders float math (its erf/tanh too): 1e-4 on these logits.
        assert diff <= (1e-5 if target == "onnxruntime" else 1e-4), f"{name}: max abs diff {diff:.3g} vs the original"


# ---------------------------------------------------------------------------------------------
# Build plans (goldens)


def plan_text(out: Path) -> str:
    """compile.sh and every configuration file beside it, each under a header line."""
    parts = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        if rel.parts[0] in ("tiles", "build") or rel.suffix in (".py", ".npz", ".log"):
            continue
        parts.append(f"==> {rel} <==\n{path.read_text()}")
    return "\n".join(parts)


@pytest.mark.parametrize("target,extra", [
    ("tpu-mlir", ["--test-input", LLAMA / "inputs.npz"]),
    ("tpu-mlir", ["--quantize", "W4F16", "--chip", "bm1688", "--stage", "mlir"]),
    ("tensorrt", []),
    ("tensorrt", ["--quantize", "fp32"]),
    ("vastai", []),
    ("openvino", ["--quantize", "fp16", "--test-input", LLAMA / "inputs.npz"]),
], ids=["tpu-mlir", "tpu-mlir-w4f16-bm1688-mlir", "tensorrt-fp16", "tensorrt-fp32", "vastai-fp16", "openvino-fp16"])
def test_build_plan_golden(target: str, extra: list, tmp_path: Path, request):
    out = tmp_path / "out"
    proc = support.run_cli(*compile_args(LLAMA, out, target, *extra))
    assert proc.returncode == 0, support.describe(proc)
    assert "compile.sh" in proc.stderr and "build plan for 4 tiles" in proc.stderr
    assert os.access(out / "compile.sh", os.X_OK)
    variant = request.node.callspec.id
    support.check_golden(GOLDEN_DIR / f"llama-ts.{variant}.txt", plan_text(out))


def test_vamc_config_names_every_input_with_its_static_shape(tmp_path: Path):
    out = tmp_path / "out"
    proc = support.run_cli(*compile_args(support.FIXTURES_DIR / "llama-kv-ts", out, "vastai"))
    assert proc.returncode == 0, support.describe(proc)
    manifest = json.loads((out / "tiles" / "manifest.json").read_text())
    for t in manifest["tiles"]:
        config = (out / "vamc" / f"{t['name']}.yaml").read_text()
        assert "  type: tvm_vacc\n" in config and f"  checkpoint: ../tiles/{t['file']}\n" in config
        for inp in t["inputs"]:
            assert f"    {inp['name']}: [{', '.join(map(str, inp['shape']))}]\n" in config


def test_untiled_plan_builds_the_whole_model(tmp_path: Path):
    out = tmp_path / "out"
    proc = support.run_cli(*compile_args(LLAMA, out, "onnxruntime", "--test-input", LLAMA / "inputs.npz", "--run",
                                         "--python", sys.executable, tile=False))
    assert proc.returncode == 0, support.describe(proc)
    assert (out / "model.onnx").exists() and not (out / "tiles").exists()
    assert support.checker_error(out / "model.onnx") is None
    assert "logits: ok" in proc.stderr


def test_a_second_compile_into_the_same_folder_replaces_the_first(tmp_path: Path):
    out = tmp_path / "out"
    assert support.run_cli(*compile_args(LLAMA, out, "vastai")).returncode == 0
    proc = support.run_cli(*compile_args(LLAMA, out, "tensorrt", tile=False))
    assert proc.returncode == 0, support.describe(proc)
    assert (out / "model.onnx").exists() and not (out / "tiles").exists()


# ---------------------------------------------------------------------------------------------
# What compilers reject, before anything is written


def test_raw_dynamo_export_is_rejected_for_tpu_mlir_naming_tiles_nodes_and_fixes(tmp_path: Path):
    out = tmp_path / "out"
    proc = support.run_cli("compile", support.FIXTURES_DIR / "falcon-dynamo" / "model.onnx", "--target", "tpu-mlir",
                           "--out", out)
    assert proc.returncode == 1, support.describe(proc)
    err = proc.stderr
    assert "dynamic dimension" in err and "graph input 'input_ids'" in err and "--dim" in err
    assert "opset 20" in err or "default-domain opset" in err
    assert "Gelu '" in err and "legalize-opset" in err
    assert "GatherND '" in err and "gathernd-to-gather" in err
    assert "nothing written" in err and "Traceback" not in err
    assert not out.exists()


def test_dynamic_dims_left_are_errors_for_static_compilers_but_not_for_onnxruntime(tmp_path: Path):
    model = LLAMA / "model.onnx"
    for target in ("tensorrt", "vastai"):
        proc = support.run_cli("compile", model, "--target", target, "--out", tmp_path / target)
        assert proc.returncode == 1 and "dynamic dimension" in proc.stderr, support.describe(proc)
        assert not (tmp_path / target).exists()
    proc = support.run_cli("compile", model, "--target", "onnxruntime", "--out", tmp_path / "ort")
    assert proc.returncode == 0, support.describe(proc)


def test_over_2gb_single_file_is_rejected_for_tpu_mlir(tmp_path: Path):
    # A 2.1 GB weight that is never materialised: the check reads sizes, not bytes.
    import onnx.helper as h
    weight = onnx.TensorProto()
    weight.name = "w"
    weight.data_type = onnx.TensorProto.FLOAT
    weight.dims.extend([550_000_000])
    weight.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(2_200_000_000))):
        entry = weight.external_data.add()
        entry.key, entry.value = k, v
    graph = h.make_graph([h.make_node("Add", ["x", "w"], ["y"])], "big",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [550_000_000])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [550_000_000])], [weight])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    with open(tmp_path / "w.bin", "wb") as f:
        f.truncate(2_200_000_000)  # sparse: no disk used
    proc = support.run_cli("compile", path, "--target", "tpu-mlir", "--out", tmp_path / "out")
    assert proc.returncode == 1, support.describe(proc)
    assert "2 GB" in proc.stderr and "--tile" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_warnings_are_printed_and_kept_beside_the_plan(tmp_path: Path):
    # llama-ts-446 keeps its causal-mask ScatterND without --pass npu: a warning for TPU-MLIR.
    fixture = support.FIXTURES_DIR / "llama-ts-446"
    out = tmp_path / "out"
    proc = support.run_cli(*compile_args(fixture, out, "tpu-mlir", passes=("static-shape",), tile=False))
    assert proc.returncode == 0, support.describe(proc)
    assert "warning: " in proc.stderr and "ScatterND '" in proc.stderr and "scatternd-to-concat" in proc.stderr
    assert "ScatterND" in (out / "findings.txt").read_text()


# ---------------------------------------------------------------------------------------------
# Missing compilers, bad options, bad folders


@pytest.mark.parametrize("target,says", [
    ("tensorrt", ["'trtexec' is not on PATH", "NVIDIA GPU", "pip install tensorrt"]),
    ("vastai", ["'vamc' is not on PATH", "not on any public registry"]),
    ("tpu-mlir", ["'model_transform' is not on PATH", "pip install tpu-mlir==1.30.2", "Scripts/install-tpu-mlir"]),
])
def test_run_without_the_compiler_says_how_to_install_it(target: str, says: list[str], tmp_path: Path):
    out = tmp_path / "out"
    env_path = os.environ.get("PATH", "")
    clean = os.pathsep.join(p for p in env_path.split(os.pathsep) if "tpu-mlir" not in p)
    cmd = [str(support.cli_path()), *map(str, compile_args(LLAMA, out, target)), "--run"]
    import subprocess
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PATH": clean}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, support.describe(proc)
    for s in says:
        assert s in proc.stderr, f"{s!r} not in: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert f"The plan is in {out}/compile.sh" in proc.stderr and (out / "compile.sh").exists()


def test_run_with_a_python_lacking_openvino_says_what_to_install(tmp_path: Path):
    venv = tmp_path / "bare"
    import subprocess
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = support.run_cli(*compile_args(LLAMA, tmp_path / "out", "openvino"), "--run", "--python", venv / "bin" / "python")
    assert proc.returncode == 1, support.describe(proc)
    assert "cannot import numpy, openvino" in proc.stderr and "pip install openvino numpy" in proc.stderr


def test_a_failing_step_names_the_tile_and_the_compilers_error_line(tmp_path: Path):
    # A fake model_transform that fails like TPU-MLIR does on an unsupported op.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("model_transform", "model_deploy", "model_tool"):
        script = bin_dir / tool
        # Stray non-UTF-8 bytes (a binary dump) must not hide the error line.
        script.write_text("#!/bin/sh\necho 'converting'\nprintf '\\377\\376 raw bytes\\n'\necho 'Traceback (most recent call last):'\n"
                          "echo '  File \"x.py\", line 1'\necho \"RuntimeError: Op not support:{'Foo'}\"\nexit 1\n")
        script.chmod(0o755)
    out = tmp_path / "out"
    import subprocess
    cmd = [str(support.cli_path()), *map(str, compile_args(LLAMA, out, "tpu-mlir")), "--run", "--python", sys.executable]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 1, support.describe(proc)
    assert "[1/9] embedding: model_transform ... failed" in proc.stderr
    assert "error: " in proc.stderr and "embedding: model_transform failed (exit 1: RuntimeError: Op not support:{'Foo'})" in proc.stderr
    assert "[2/9]" not in proc.stderr, "stops at the first failure"
    assert "RuntimeError" in (out / "compile.log").read_text(errors="replace")


@pytest.mark.parametrize("args,says", [
    (["--target", "tpu-mlir", "--quantize", "INT8"], "calibration table"),
    (["--target", "tpu-mlir", "--quantize", "Q3"], "TPU-MLIR takes F32, F16, BF16"),
    (["--target", "tpu-mlir", "--chip", "bm9999"], "TPU-MLIR chips are bm1684x"),
    (["--target", "tpu-mlir", "--quantize", "W4F16", "--chip", "cv183x"], "weight-only quantization is for bm1684x, bm1688"),
    (["--target", "tensorrt", "--quantize", "int8"], "calibration cache"),
    (["--target", "vastai", "--chip", "va1"], "vamc takes no chip"),
    (["--target", "openvino", "--quantize", "int4"], "fp32, fp16"),
    (["--target", "cuda"], "expected one of tpu-mlir, onnxruntime, openvino, tensorrt, vastai"),
    (["--target", "onnxruntime", "--budget", "1GiB"], "--budget and --group need --tile"),
    (["--target", "tpu-mlir", "--stage", "asm"], "expected mlir or full"),
])
def test_bad_options_are_usage_errors(args: list[str], says: str, tmp_path: Path):
    proc = support.run_cli("compile", LLAMA / "model.onnx", "--out", tmp_path / "out", *args)
    assert proc.returncode == 64, support.describe(proc)
    assert says in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_holding_something_else_is_refused(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    proc = support.run_cli(*compile_args(LLAMA, out, "vastai"))
    assert proc.returncode == 1 and "not empty" in proc.stderr, support.describe(proc)
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_missing_test_input_is_an_error_before_anything_is_written(tmp_path: Path):
    proc = support.run_cli(*compile_args(LLAMA, tmp_path / "out", "onnxruntime", "--test-input", tmp_path / "nope.npz"))
    assert proc.returncode == 1 and "nope.npz: no such file" in proc.stderr, support.describe(proc)
    assert not (tmp_path / "out").exists()


def test_half_precision_builds_warn_about_float32_mask_fills_until_fp16_safe_masks(tmp_path: Path):
    proc = support.run_cli(*compile_args(LLAMA, tmp_path / "f16", "tpu-mlir"))
    assert proc.returncode == 0 and "float32 mask fill" in proc.stderr and "fp16-safe-masks" in proc.stderr, support.describe(proc)
    proc = support.run_cli(*compile_args(LLAMA, tmp_path / "safe", "tpu-mlir", passes=("npu", "fp16-safe-masks")))
    assert proc.returncode == 0 and "mask fill" not in proc.stderr, support.describe(proc)
    proc = support.run_cli(*compile_args(LLAMA, tmp_path / "f32", "tpu-mlir", "--quantize", "F32"))
    assert proc.returncode == 0 and "mask fill" not in proc.stderr, support.describe(proc)


def test_an_unwritable_out_folder_is_a_clean_error_with_nothing_left(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = support.run_cli(*compile_args(LLAMA, blocker / "out", "vastai"))
    assert proc.returncode == 1, support.describe(proc)
    assert "cannot write the build folder" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
