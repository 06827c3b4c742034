"""Shared helpers for the Python conformance suite: the CLI, the node-test cache, ORT runs.

Everything generated (node tests, big models) lives outside the repository, under
${ONNX_REWRITE_CACHE:-~/.cache/onnx-rewrite}, and is reused between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = Path(os.environ.get("ONNX_REWRITE_FIXTURES") or REPO_ROOT / "Fixtures")
REPORTS_DIR = REPO_ROOT / "Tests" / "Reports"


def cache_root() -> Path:
    root = os.environ.get("ONNX_REWRITE_CACHE") or os.path.join(Path.home(), ".cache", "onnx-rewrite")
    return Path(root)


def record_reports() -> bool:
    return os.environ.get("ONNX_REWRITE_RECORD_REPORTS") == "1"


# ---------------------------------------------------------------------------------------------
# Goldens


def check_golden(golden: Path, text: str, record_hint: str = "ONNX_REWRITE_RECORD=failed Scripts/test -k golden") -> None:
    """`text` must equal the golden file. ONNX_REWRITE_RECORD=all rewrites it, =failed only when
    it differs or is missing (then the test passes: read the diff before committing)."""
    import difflib

    import pytest

    mode = os.environ.get("ONNX_REWRITE_RECORD", "never")
    if mode == "all" or (mode == "failed" and (not golden.exists() or golden.read_text() != text)):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
        return
    assert golden.exists(), f"missing golden file {golden.relative_to(REPO_ROOT)}; record it with {record_hint}"
    expected = golden.read_text()
    if expected != text:
        diff = "".join(list(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "now"))[:60])
        pytest.fail(f"{golden.relative_to(REPO_ROOT)} differs (ONNX_REWRITE_RECORD=failed to accept):\n{diff}")


def input_shape_args(feed: dict[str, Any]) -> list[str]:
    """`--input-shape NAME=D0,D1,...` for every array of a feed (sorted by name)."""
    return [a for name, v in sorted(feed.items()) for a in ("--input-shape", f"{name}=" + ",".join(map(str, v.shape)))]


# ---------------------------------------------------------------------------------------------
# The CLI


_BIN: Path | None = None


def cli_path() -> Path:
    """$ONNX_REWRITE_BIN, else `$(swift build --show-bin-path)/onnx-rewrite`."""
    global _BIN
    if _BIN is None:
        env = os.environ.get("ONNX_REWRITE_BIN")
        if env:
            _BIN = Path(env)
        else:
            out = subprocess.run(
                ["swift", "build", "--show-bin-path"],
                cwd=REPO_ROOT, capture_output=True, text=True, check=True,
            ).stdout.strip()
            _BIN = Path(out) / "onnx-rewrite"
    return _BIN


def run_cli(*args: Any, timeout: float = 300, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Runs the CLI with `args`, never raising on a non-zero exit; stdout/stderr as text."""
    cmd = [str(cli_path())] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def describe(proc: subprocess.CompletedProcess) -> str:
    """A short description of a finished CLI run for assertion messages."""
    args = " ".join(str(a) for a in proc.args)
    err = proc.stderr.strip()
    if len(err) > 2000:
        err = err[:2000] + " ..."
    return f"`{args}` exited {proc.returncode}; stderr: {err!r}"


def roundtrip(src: Path, dst: Path, *extra: Any, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = run_cli(src, "-o", dst, *extra, timeout=timeout)
    assert proc.returncode == 0, describe(proc)
    assert dst.exists(), f"{describe(proc)}; but {dst} was not written"
    return proc


# ---------------------------------------------------------------------------------------------
# Proto comparison


def proto_bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def first_difference(a: onnx.ModelProto, b: onnx.ModelProto) -> str:
    """Names where two models differ (top-level fields, then graph fields), for messages."""
    diffs = []
    for field in a.DESCRIPTOR.fields:
        if field.name == "graph":
            continue
        if _field(a, field.name) != _field(b, field.name):
            diffs.append(f"model.{field.name}: {_short(_field(a, field.name))} != {_short(_field(b, field.name))}")
    for field in a.graph.DESCRIPTOR.fields:
        va, vb = _field(a.graph, field.name), _field(b.graph, field.name)
        if va != vb:
            if isinstance(va, list) and len(va) == len(vb):
                for i, (x, y) in enumerate(zip(va, vb)):
                    if x != y:
                        diffs.append(f"graph.{field.name}[{i}]: {_short(x)} != {_short(y)}")
                        break
            else:
                diffs.append(f"graph.{field.name}: {_short(va)} != {_short(vb)}")
    if not diffs and _unknown_fields(a) != _unknown_fields(b):
        diffs.append("unknown fields differ")
    return "; ".join(diffs) or "serialized bytes differ (field order / unknown fields)"


def _unknown_fields(msg: Any) -> Any:
    """Unknown fields where the protobuf runtime exposes them (upb does not)."""
    try:
        return msg.UnknownFields()
    except NotImplementedError:
        return None


def _field(msg: Any, name: str) -> Any:
    v = getattr(msg, name)
    return list(v) if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else v


def _short(v: Any, limit: int = 300) -> str:
    s = str(v).replace("\n", " ")
    return s if len(s) <= limit else s[:limit] + "..."


def checker_error(model: onnx.ModelProto | str | os.PathLike) -> str | None:
    """None when `onnx.checker.check_model(model, full_check=True)` passes, else its message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx.checker.check_model(model if isinstance(model, onnx.ModelProto) else str(model), full_check=True)
    except Exception as e:  # checker raises ValidationError, shape inference InferenceError, ...
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


# ---------------------------------------------------------------------------------------------
# onnxruntime


def ort_session(model: str | os.PathLike | bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4  # fatal only: ORT's warnings are not ours
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def ort_run(model: str | os.PathLike | bytes, feeds: dict[str, Any]) -> list[Any]:
    sess = ort_session(model)
    return sess.run(None, feeds)


def assert_outputs_close(actual: Sequence[Any], expected: Sequence[Any], rtol: float = 1e-3, atol: float = 1e-7,
                         what: str = "output") -> None:
    """The onnx backend tests' comparison, but exact for integers, bools and strings."""
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        _assert_value_close(a, e, rtol, atol, f"{what}[{i}]")


def _assert_value_close(a: Any, e: Any, rtol: float, atol: float, what: str) -> None:
    if e is None or a is None:
        assert a is None and e is None, f"{what}: {type(a).__name__} vs expected {type(e).__name__}"
        return
    if isinstance(e, dict):
        assert isinstance(a, dict) and sorted(a) == sorted(e), f"{what}: map keys differ"
        for k in e:
            _assert_value_close(a[k], e[k], rtol, atol, f"{what}[{k!r}]")
        return
    if isinstance(e, (list, tuple)):
        assert isinstance(a, (list, tuple)), f"{what}: got {type(a).__name__}, expected a sequence"
        assert len(a) == len(e), f"{what}: sequence of {len(a)}, expected {len(e)}"
        for j, (x, y) in enumerate(zip(a, e)):
            _assert_value_close(x, y, rtol, atol, f"{what}[{j}]")
        return
    a = np.asarray(a)
    e = np.asarray(e)
    if a.dtype != e.dtype and a.dtype == np.uint8 and e.dtype.itemsize == 1 and e.dtype.kind == "V":
        a = a.view(e.dtype)  # ORT returns float8 tensors as their uint8 bits
    assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
    if e.dtype == object or e.dtype.kind in "SUO":
        np.testing.assert_array_equal(a.astype(object), e.astype(object), err_msg=what)
    elif e.dtype.kind in "biu":
        assert a.dtype == e.dtype, f"{what}: dtype {a.dtype}, expected {e.dtype}"
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        assert a.dtype == e.dtype, f"{what}: dtype {a.dtype}, expected {e.dtype}"
        r = rtol
        if e.dtype.kind != "f" or e.dtype.name == "bfloat16" or e.dtype.itemsize < 2:
            # ml_dtypes (bfloat16, float8, float4): numpy cannot promote them with a Python float.
            if e.dtype.name == "bfloat16":
                r = max(rtol, 2**-6)
            a, e = a.astype(np.float32), e.astype(np.float32)
        np.testing.assert_allclose(a, e, rtol=r, atol=atol, err_msg=what)


# ---------------------------------------------------------------------------------------------
# The node-test cache: onnx's backend node tests written out once per onnx version


@dataclass
class NodeTest:
    name: str
    dir: Path
    rtol: float
    atol: float

    @property
    def model(self) -> Path:
        return self.dir / "model.onnx"

    def data_sets(self) -> Iterator[tuple[list[Any], list[Any]]]:
        """(inputs, expected outputs) of each test_data_set_N, as ORT takes and returns them."""
        graph = onnx.load(self.model, load_external_data=False).graph
        i = 0
        while (d := self.dir / f"test_data_set_{i}").is_dir():
            ins = [_read_value(p, graph.input[_index(p)].type) for p in sorted(d.glob("input_*.pb"), key=_index)]
            outs = [_read_value(p, graph.output[_index(p)].type) for p in sorted(d.glob("output_*.pb"), key=_index)]
            yield ins, outs
            i += 1


def _index(p: Path) -> int:
    return int(p.stem.rsplit("_", 1)[1])


def _read_value(path: Path, t: onnx.TypeProto) -> Any:
    """A value of a test_data_set_N/*.pb file (onnx's own layout), read by the graph's type for it."""
    body = path.read_bytes()
    if t.HasField("map_type"):
        m = onnx.MapProto()
        m.ParseFromString(body)
        return numpy_helper.to_dict(m)
    if t.HasField("sequence_type"):
        s = onnx.SequenceProto()
        s.ParseFromString(body)
        return numpy_helper.to_list(s)
    if t.HasField("optional_type"):
        o = onnx.OptionalProto()
        o.ParseFromString(body)
        return numpy_helper.to_optional(o)
    tp = onnx.TensorProto()
    tp.ParseFromString(body)
    return numpy_helper.to_array(tp)


def _write_value(path: Path, value: Any, vi: onnx.ValueInfoProto) -> None:
    """As `backend-test-tools generate-data` (onnx/backend/test/cmd_tools.py) writes it."""
    t = vi.type
    if t.HasField("map_type"):
        msg = numpy_helper.from_dict(value, vi.name)
    elif t.HasField("sequence_type"):
        msg = numpy_helper.from_list(value, vi.name)
    elif t.HasField("optional_type"):
        msg = numpy_helper.from_optional(value, vi.name)
    elif isinstance(value, onnx.TensorProto):
        msg = value
    else:
        msg = numpy_helper.from_array(np.asarray(value), vi.name)
    path.write_bytes(msg.SerializeToString())


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def node_tests_dir() -> Path:
    """The cache folder of onnx's node tests for the installed onnx, generated on first use."""
    root = cache_root() / "node-tests" / f"onnx-{onnx.__version__}"
    stamp = root / ".complete"
    if stamp.exists():
        return root
    with _lock(root.parent / f".onnx-{onnx.__version__}.lock"):
        if stamp.exists():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f".onnx-{onnx.__version__}-", dir=root.parent))
        try:
            _generate_node_tests(tmp)
            (tmp / ".complete").write_text(f"onnx {onnx.__version__}\n")
            if root.exists():
                shutil.rmtree(root)
            tmp.rename(root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return root


def _generate_node_tests(out: Path) -> None:
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = node_cases.collect_testcases(None)
    for case in cases:
        d = out / case.name
        d.mkdir()
        assert case.model is not None and case.data_sets is not None, case.name
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        (d / "meta.json").write_text(json.dumps({"rtol": case.rtol, "atol": case.atol}))
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = d / f"test_data_set_{i}"
            ds.mkdir()
            for j, v in enumerate(inputs):
                _write_value(ds / f"input_{j}.pb", v, graph.input[j])
            for j, v in enumerate(outputs):
                _write_value(ds / f"output_{j}.pb", v, graph.output[j])


def node_tests() -> list[NodeTest]:
    root = node_tests_dir()
    tests = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = json.loads((d / "meta.json").read_text())
        tests.append(NodeTest(d.name, d, meta["rtol"], meta["atol"]))
    return tests


def leftovers(folder: Path, keep: Sequence[str] = ()) -> list[str]:
    """Files in `folder` other than `keep` (the CLI must leave no output or temp file on failure)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)
