"""Each `Fixtures/*/model.onnx` (with `inputs.npz` / `outputs.npz` beside it) through the CLI.

Single file: byte-identical output, checker(full_check) passes, `print` identical, ORT outputs equal
the reference outputs (max abs diff <= 1e-5) and the original's.
With `--external-data`: the same, a data file beside the output, and writing that back to one file
gives the original bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.external_data_helper import uses_external_data

import support

FIXTURES = sorted(support.FIXTURES_DIR.glob("*/model.onnx"))
MAX_ABS_DIFF = 1e-5


def _feeds(model: Path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in inits]
    npz = model.parent / "inputs.npz"
    assert npz.exists(), f"{npz} is missing"
    with np.load(npz, allow_pickle=False) as data:
        keys = list(data.keys())
        if set(names) <= set(keys):
            return {n: data[n] for n in names}
        assert len(keys) == len(names), f"{npz}: keys {keys} do not match the graph inputs {names}"
        return {n: data[k] for n, k in zip(names, keys)}


def _reference(model: Path) -> list[np.ndarray]:
    graph = onnx.load(str(model), load_external_data=False).graph
    names = [o.name for o in graph.output]
    npz = model.parent / "outputs.npz"
    assert npz.exists(), f"{npz} is missing"
    with np.load(npz, allow_pickle=False) as data:
        keys = list(data.keys())
        if set(names) <= set(keys):
            return [data[n] for n in names]
        assert len(keys) == len(names), f"{npz}: keys {keys} do not match the graph outputs {names}"
        return [data[k] for k in keys]


def _assert_matches_reference(got: list[np.ndarray], ref: list[np.ndarray], what: str) -> None:
    assert len(got) == len(ref), f"{what}: {len(got)} outputs, reference has {len(ref)}"
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.shape == r.shape, f"{what} output {i}: shape {g.shape}, reference {r.shape}"
        if r.dtype.kind in "biuSUO":
            np.testing.assert_array_equal(g, r, err_msg=f"{what} output {i}")
        else:
            diff = float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64)))) if r.size else 0.0
            assert diff <= MAX_ABS_DIFF, f"{what} output {i}: max abs diff {diff} > {MAX_ABS_DIFF}"


@pytest.fixture(scope="module")
def original_runs() -> dict[Path, list[np.ndarray]]:
    return {}


def _original_outputs(model: Path, cache: dict[Path, list[np.ndarray]]) -> list[np.ndarray]:
    if model not in cache:
        cache[model] = support.ort_run(model, _feeds(model))
    return cache[model]


def _nbytes(t: onnx.TensorProto) -> int:
    if t.HasField("raw_data"):
        return len(t.raw_data)
    return numpy_helper.to_array(t).nbytes


def _print(model: Path, *flags: str) -> str:
    proc = support.run_cli("print", model, *flags)
    assert proc.returncode == 0, support.describe(proc)
    assert proc.stdout.strip(), f"`print {model}` printed nothing"
    return proc.stdout


def _check_common(model: Path, out: Path, cache) -> None:
    assert support.checker_error(model) is None, f"precondition: the checker passes on {model}"
    err = support.checker_error(out)
    assert err is None, f"checker(full_check) fails on the saved model: {err}"

    orig_text = _print(model)
    saved_text = _print(out)
    assert saved_text == orig_text, "`print` differs before and after the round trip"

    want = _original_outputs(model, cache)
    _assert_matches_reference(want, _reference(model), "original model (precondition)")
    got = support.ort_run(out, _feeds(model))
    _assert_matches_reference(got, _reference(model), "saved model")
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"saved model output {i} differs from the original's")


def test_fixtures_found() -> None:
    if not FIXTURES:
        pytest.skip(f"no fixtures yet under {support.FIXTURES_DIR}")
    for m in FIXTURES:
        assert (m.parent / "inputs.npz").exists() and (m.parent / "outputs.npz").exists(), \
            f"{m.parent}: inputs.npz and outputs.npz belong beside model.onnx"


@pytest.mark.parametrize("model", FIXTURES, ids=[m.parent.name for m in FIXTURES])
def test_fixture_roundtrip(model: Path, tmp_path: Path, original_runs, cli) -> None:  # noqa: ARG001
    out = tmp_path / "model.onnx"
    support.roundtrip(model, out)
    orig_external = any(uses_external_data(t) for t in onnx.load(str(model), load_external_data=False).graph.initializer)
    if not orig_external:
        assert support.leftovers(tmp_path) == ["model.onnx"], "a single-file model stays one file"
        assert out.read_bytes() == model.read_bytes(), "the round trip must be byte-identical"
    else:
        assert support.proto_bytes(onnx.load(str(out))) == support.proto_bytes(onnx.load(str(model)))
    _check_common(model, out, original_runs)


@pytest.mark.parametrize("model", FIXTURES, ids=[m.parent.name for m in FIXTURES])
def test_fixture_roundtrip_external_data(model: Path, tmp_path: Path, original_runs, cli) -> None:  # noqa: ARG001
    out_dir = tmp_path / "ext"
    out_dir.mkdir()
    out = out_dir / "model.onnx"
    support.roundtrip(model, out, "--external-data")
    orig = onnx.load(str(model))
    big = sorted(t.name for t in orig.graph.initializer if _nbytes(t) >= 1024)
    saved = onnx.load(str(out), load_external_data=False)
    external = sorted(t.name for t in saved.graph.initializer if uses_external_data(t))
    assert external == big, "exactly the initializers of 1 KiB or more belong in the data file"
    if big:
        data = out_dir / "model.onnx.data"
        assert data.exists(), f"no data file beside the output: {support.leftovers(out_dir)}"
        assert support.leftovers(out_dir) == ["model.onnx", "model.onnx.data"]
    _check_common(model, out, original_runs)

    # and back to one file: the original model again (an explicit `data_location: DEFAULT`, which some
    # exporters write, may be dropped on the way: it is the default)
    back = tmp_path / "back.onnx"
    support.roundtrip(out, back)
    if not any(uses_external_data(t) for t in onnx.load(str(model), load_external_data=False).graph.initializer):
        assert _normalized(onnx.load(str(back))) == _normalized(onnx.load(str(model))), \
            "single -> external -> single must give the original model"


def _normalized(model: onnx.ModelProto) -> bytes:
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.DEFAULT:
            t.ClearField("data_location")
    return support.proto_bytes(model)
