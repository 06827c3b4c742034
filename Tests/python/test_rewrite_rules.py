"""Golden tests of the rule files: every `Rewrites/**/NAME.test.onnxtxt`.

Each case (split at `# -----`) is a model in ONNX text syntax with:
  # RUN: ARGS              the onnx-rewrite arguments (e.g. --pass fold-transposes)
  # CHECK: TEXT            must appear in the printed result, in order
  # CHECK-NOT: TEXT        must not appear anywhere in it
  # EXPLAIN: TARGET        rerun with --explain TARGET, then
  # CHECK-REMARK: TEXT     must appear in its remarks
The rewritten model must pass the checker and give the same outputs as the case's model
in onnxruntime on random inputs.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest

import support

CASE_FILES = sorted((support.REPO_ROOT / "Rewrites").rglob("*.test.onnxtxt"))


def cases():
    for path in CASE_FILES:
        for i, text in enumerate(re.split(r"^# -----\s*$", path.read_text(), flags=re.M)):
            if text.strip():
                yield pytest.param(path, text, id=f"{path.relative_to(support.REPO_ROOT / 'Rewrites')}#{i}")


def directives(text: str, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^# {key}:(.*)$", text, flags=re.M)]


def random_feed(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    inits = {t.name for t in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        if dtype == np.bool_:
            feed[vi.name] = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(dtype, np.integer):
            feed[vi.name] = rng.integers(0, 5, shape).astype(dtype)
        else:
            feed[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feed


@pytest.mark.parametrize("path,text", list(cases()))
def test_rule_golden_case(path: Path, text: str, tmp_path: Path):
    run = directives(text, "RUN")
    assert run, f"{path}: a case needs '# RUN: ARGS'"
    model = onnx.parser.parse_model(text)
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(model, src)
    args = shlex.split(run[0])
    proc = support.run_cli(*args, src, "-o", out)
    assert proc.returncode == 0, support.describe(proc)
    printed = support.run_cli("print", "--full", out)
    assert printed.returncode == 0, support.describe(printed)
    result = printed.stdout

    position = 0
    for check in directives(text, "CHECK"):
        found = result.find(check, position)
        assert found >= 0, f"CHECK not found after position {position}: {check!r}\n--- result ---\n{result}"
        position = found + len(check)
    for check in directives(text, "CHECK-NOT"):
        assert check not in result, f"CHECK-NOT found: {check!r}\n--- result ---\n{result}"
    for target in directives(text, "EXPLAIN"):
        explained = support.run_cli(*args, "--explain", target, src, "-o", tmp_path / "explained.onnx")
        assert explained.returncode == 0, support.describe(explained)
        for remark in directives(text, "CHECK-REMARK"):
            assert remark in explained.stderr, f"CHECK-REMARK not found: {remark!r}\n--- remarks ---\n{explained.stderr}"

    rewritten = onnx.load(out)
    onnx.checker.check_model(rewritten, full_check=True)
    feed = random_feed(model)
    before = support.ort_run(src, feed)
    after = support.ort_run(out, feed)
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_every_rule_file_has_a_golden_test():
    rules = sorted((support.REPO_ROOT / "Rewrites").rglob("*.rules"))
    assert rules, "no rule files found"
    missing = [str(r) for r in rules if not r.with_suffix(".test.onnxtxt").exists()]
    assert not missing, f"rule files without a golden test: {missing}"
