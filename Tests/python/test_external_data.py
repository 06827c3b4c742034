"""External data: a model past protobuf's 2 GB limit, and small external-data models.

The big model (~2.28 GB of float32 weights in one `weights.bin`, MatMul/Add/Gather over them) is
written by hand in pytest's tmp folder: the proto is built with `external_data` entries and the data
file is filled from a repeated random block, so building it takes seconds and little memory. It is
deleted when the module ends.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

import support

ROWS, COLS = 8192, 17408              # 570 MB of float32 per weight; 4 of them pass 2**31 bytes
ALIGN = 65536                          # onnxruntime maps external data aligned to 64 KiB
BLOCK = 1_000_003                      # floats in the random block the data is tiled from (not a power of 2)
TWO_GB = 2**31


def _fill(path: Path, offset: int, count: int, seed: int) -> None:
    block = (np.random.default_rng(seed).standard_normal(BLOCK, dtype=np.float32) * 0.01).astype(np.float32)
    with open(path, "r+b") as f:
        f.seek(offset)
        done = 0
        while done < count:
            n = min(BLOCK, count - done)
            f.write(block[:n].tobytes())
            done += n


def _external(name: str, dims: list[int], location: str, offset: int, length: int) -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        t.external_data.add(key=k, value=v)
    return t


def build_big_model(folder: Path) -> Path:
    """y = Add(MatMul(MatMul(MatMul(x, W0), W1), W3), Gather(W2, ids)): [3, COLS]."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "weights.bin"
    names = ["W0", "W1", "W2", "W3"]
    dims = {"W0": [ROWS, COLS], "W1": [COLS, ROWS], "W2": [ROWS, COLS], "W3": [ROWS, COLS]}
    nbytes = ROWS * COLS * 4
    offsets = {}
    pos = 0
    for n in names:
        offsets[n] = pos
        pos = (pos + nbytes + ALIGN - 1) // ALIGN * ALIGN
    with open(data, "wb") as f:
        f.truncate(pos)
    for seed, n in enumerate(names):
        _fill(data, offsets[n], ROWS * COLS, seed)
    inits = [_external(n, dims[n], "weights.bin", offsets[n], nbytes) for n in names]
    inits.append(numpy_helper.from_array(np.array([0, 4097, ROWS - 1], dtype=np.int64), "ids"))
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["h0"]),
        helper.make_node("MatMul", ["h0", "W1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "W3"], ["h2"]),
        helper.make_node("Gather", ["W2", "ids"], ["rows"], axis=0),
        helper.make_node("Add", ["h2", "rows"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ROWS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, COLS])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="onnx-rewrite-tests")
    model.ir_version = 10
    path = folder / "big.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big-external")
    try:
        yield build_big_model(folder / "model")
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # never keep 2 GB in pytest's retained tmp folders


@pytest.fixture(scope="module")
def big_reference(big_model: Path) -> tuple[np.ndarray, np.ndarray]:
    x = (np.random.default_rng(7).standard_normal((1, ROWS)) * 0.1).astype(np.float32)
    y = support.ort_run(big_model, {"x": x})[0]
    return x, y


def _tensor_ranges(model: onnx.ModelProto, folder: Path) -> dict[str, tuple[Path, int, int]]:
    out = {}
    for t in model.graph.initializer:
        if uses_external_data(t):
            info = {e.key: e.value for e in t.external_data}
            out[t.name] = (folder / info["location"], int(info.get("offset", 0)), int(info["length"]))
    return out


def _assert_same_weights(orig: onnx.ModelProto, orig_dir: Path, saved: onnx.ModelProto, saved_dir: Path) -> None:
    """Every external tensor of `orig` has the same bytes in `saved` (compared through maps, in chunks)."""
    a = _tensor_ranges(orig, orig_dir)
    b = _tensor_ranges(saved, saved_dir)
    assert set(a) == set(b), f"external tensors differ: {sorted(a)} vs {sorted(b)}"
    for name, (pa, oa, la) in a.items():
        pb, ob, lb = b[name]
        assert la == lb, f"{name}: length {lb}, expected {la}"
        assert pb.resolve().parent == saved_dir.resolve(), f"{name}: data file {pb} is not beside the saved model"
        assert ob + lb <= pb.stat().st_size, f"{name}: offset {ob} + length {lb} past the end of {pb.name}"
        ma = np.memmap(pa, dtype=np.uint8, mode="r", offset=oa, shape=(la,))
        mb = np.memmap(pb, dtype=np.uint8, mode="r", offset=ob, shape=(lb,))
        step = 64 << 20
        for i in range(0, la, step):
            if not np.array_equal(ma[i:i + step], mb[i:i + step]):
                pytest.fail(f"{name}: bytes differ in [{i}, {min(la, i + step)}) of {la}")
        del ma, mb


def _structure(model: onnx.ModelProto) -> bytes:
    """The model without external_data entries (their offsets may legitimately change)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        del t.external_data[:]
        t.ClearField("data_location")
    return m.SerializeToString(deterministic=True)


@pytest.mark.parametrize("data_name", [None, "big-weights.bin"], ids=["automatic", "named"])
def test_big_model_roundtrip(data_name: str | None, big_model: Path, big_reference, tmp_path: Path, cli) -> None:  # noqa: ARG001
    x, y_ref = big_reference
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "big-out.onnx"
    extra = ["--external-data", data_name] if data_name else []
    try:
        support.roundtrip(big_model, out, *extra, timeout=300)
        files = sorted(p.name for p in out_dir.iterdir())
        data_files = [f for f in files if f != out.name]
        assert len(data_files) == 1, f"expected the model and one data file in {out_dir}, found {files}"
        if data_name:
            assert data_files == [data_name]
        assert out.stat().st_size < TWO_GB
        total = sum((out_dir / f).stat().st_size for f in files)
        assert total > TWO_GB, f"{files} hold {total} bytes; the weights alone are {4 * ROWS * COLS * 4}"

        orig = onnx.load(str(big_model), load_external_data=False)
        saved = onnx.load(str(out), load_external_data=False)
        assert _structure(saved) == _structure(orig), support.first_difference(orig, saved)
        for t in saved.graph.initializer:
            if t.name.startswith("W"):
                assert uses_external_data(t), f"{t.name} should be external"
                locs = [e.value for e in t.external_data if e.key == "location"]
                assert locs == [data_files[0]], f"{t.name}: location {locs}"
        _assert_same_weights(orig, big_model.parent, saved, out_dir)
        onnx.checker.check_model(str(out), full_check=True)

        # onnx itself resolves the external data of the saved model (one 570 MB tensor, to bound memory)
        w1 = next(t for t in saved.graph.initializer if t.name == "W1")
        load_external_data_for_tensor(w1, str(out_dir))
        got_w1 = numpy_helper.to_array(w1)
        ref = np.memmap(big_model.parent / "weights.bin", dtype=np.float32, mode="r",
                        offset=_tensor_ranges(orig, big_model.parent)["W1"][1], shape=(COLS, ROWS))
        np.testing.assert_array_equal(got_w1, ref)
        del got_w1, w1, ref

        y = support.ort_run(out, {"x": x})[0]
        np.testing.assert_array_equal(y, y_ref)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Small external-data models


def build_small_external(folder: Path) -> Path:
    """Saved by onnx itself: three weights in `weights.bin` (two over 1 KiB, one under)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((32, 64)).astype(np.float32)
    w1 = rng.standard_normal((64, 16)).astype(np.float32)
    b = rng.standard_normal((16,)).astype(np.float32)
    ids = np.array([1, 0, 2], dtype=np.int64)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w0"], ["h"]),
            helper.make_node("MatMul", ["h", "w1"], ["h1"]),
            helper.make_node("Add", ["h1", "b"], ["h2"]),
            helper.make_node("Gather", ["h2", "ids"], ["y"], axis=0),
        ],
        "small_external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 16])],
        [numpy_helper.from_array(a, n) for a, n in ((w0, "w0"), (w1, "w1"), (b, "b"), (ids, "ids"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    path = folder / "small.onnx"
    cwd = os.getcwd()
    os.chdir(folder)  # onnx 1.23.2 checks `location` relative to the current directory
    try:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="weights.bin", size_threshold=1024)
    finally:
        os.chdir(cwd)
    return path


@pytest.fixture
def small_external(tmp_path: Path) -> Path:
    return build_small_external(tmp_path / "model")


def _run(model: Path) -> np.ndarray:
    x = np.random.default_rng(5).standard_normal((3, 32)).astype(np.float32)
    return support.ort_run(model, {"x": x})[0]


def test_small_external_to_single_file(small_external: Path, tmp_path: Path, cli) -> None:  # noqa: ARG001
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "single.onnx"
    support.roundtrip(small_external, out)
    assert support.leftovers(out_dir) == ["single.onnx"], "no data file without --external-data"
    saved = onnx.load(str(out))
    for t in saved.graph.initializer:
        assert not uses_external_data(t), f"{t.name} is still external"
    orig = onnx.load(str(small_external))  # with its data
    for a, b in zip(orig.graph.initializer, saved.graph.initializer):
        assert a.name == b.name
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    assert orig.graph.node == saved.graph.node
    onnx.checker.check_model(str(out), full_check=True)
    np.testing.assert_array_equal(_run(out), _run(small_external))


def test_small_external_roundtrip_keeps_external(small_external: Path, tmp_path: Path, cli) -> None:  # noqa: ARG001
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "ext.onnx"
    support.roundtrip(small_external, out, "--external-data")
    assert support.leftovers(out_dir) == ["ext.onnx", "ext.onnx.data"], "default data file name is OUT_FILENAME.data"
    orig = onnx.load(str(small_external), load_external_data=False)
    saved = onnx.load(str(out), load_external_data=False)
    assert [t.name for t in saved.graph.initializer if uses_external_data(t)] == ["w0", "w1"], \
        "weights of 1 KiB or more go to the data file, smaller ones stay inline"
    _assert_same_weights(orig, small_external.parent, saved, out_dir)
    onnx.checker.check_model(str(out), full_check=True)
    np.testing.assert_array_equal(_run(out), _run(small_external))


def test_single_file_to_external(tmp_path: Path, cli) -> None:  # noqa: ARG001
    """A single-file model written with --external-data NAME, then back to one file: the same model."""
    src = build_small_external(tmp_path / "model")
    single = tmp_path / "single" / "m.onnx"
    single.parent.mkdir()
    support.roundtrip(src, single)
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    support.roundtrip(single, ext, "--external-data", "w.bin")
    assert support.leftovers(ext.parent) == ["m.onnx", "w.bin"]
    back = tmp_path / "back" / "m.onnx"
    back.parent.mkdir()
    support.roundtrip(ext, back)
    assert back.read_bytes() == single.read_bytes(), "single -> external -> single must give the same file"


def test_overwrite_in_place(tmp_path: Path, cli) -> None:  # noqa: ARG001
    """`-o` naming the input itself: the weights are read from the file being replaced."""
    src = build_small_external(tmp_path / "model")
    single = tmp_path / "m.onnx"
    support.roundtrip(src, single)
    expected = single.read_bytes()
    support.roundtrip(single, single)
    assert single.read_bytes() == expected, "writing over the input must give the same file"


def test_external_in_place_same_data_file(tmp_path: Path, cli) -> None:  # noqa: ARG001
    """Rewriting an external-data model over itself, with the data file it reads from as the target."""
    src = build_small_external(tmp_path / "model")
    want = _run(src)
    orig = onnx.load(str(src))
    support.roundtrip(src, src, "--external-data", "weights.bin")
    assert support.leftovers(src.parent) == ["small.onnx", "weights.bin"]
    saved = onnx.load(str(src))
    for a, b in zip(orig.graph.initializer, saved.graph.initializer):
        np.testing.assert_array_equal(numpy_helper.to_array(b), numpy_helper.to_array(a), err_msg=a.name)
    np.testing.assert_array_equal(_run(src), want)
