"""falcon-linear (alias canonical-linear) and fp16-safe-masks on every fixture.

falcon-linear: after the pass no `MatMul(x, Transpose(W))` with a constant 2-D W is left
(gemm form: except a tied W whose input rank is unknown, which it must not copy), the
model passes the checker and gives the fixture's outputs; Falcon exported with and without
constant folding ends in the same form; the gemm form adds no copy of a tied weight.

fp16-safe-masks: no mask constant at or below -1e30 is left, the replacement survives F16
(two summed masks stay above -65504), and the outputs at unmasked positions are unchanged.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import support

FIXTURES = sorted(p.parent for p in support.FIXTURES_DIR.glob("*/model.onnx"))
IDS = [d.name for d in FIXTURES]
FORMS = ("matmul", "gemm")
TOL = 1e-5
MASK_FILL = -1e30
F16_MAX = 65504.0


def need_fixtures():
    if not FIXTURES:
        pytest.skip(f"no fixtures under {support.FIXTURES_DIR}")


def feed_of(fixture: Path) -> dict[str, np.ndarray]:
    with np.load(fixture / "inputs.npz") as z:
        return {k: z[k] for k in z.files}


def reference_of(fixture: Path) -> dict[str, np.ndarray]:
    with np.load(fixture / "outputs.npz") as z:
        return {k: z[k] for k in z.files}


def rewrite(src: Path, out: Path, *args) -> onnx.ModelProto:
    proc = support.run_cli(src, "-o", out, *args)
    assert proc.returncode == 0, support.describe(proc)
    onnx.checker.check_model(str(out), full_check=True)
    return onnx.load(str(out))


def static_shape_args(fixture: Path) -> list[str]:
    args = ["--pass", "static-shape"]
    for name, value in feed_of(fixture).items():
        args += ["--input-shape", f"{name}=" + ",".join(map(str, value.shape))]
    return args


def run_outputs(path: Path, fixture: Path) -> dict[str, np.ndarray]:
    sess = support.ort_session(path)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feed_of(fixture))))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


# ---- graph inspection (independent of the tool) ---------------------------------------------


class Index:
    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.graph = g
        self.inits = {t.name: t for t in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.readers = collections.defaultdict(list)
        for n in g.node:
            for i in n.input:
                if i:
                    self.readers[i].append(n)

    def constant(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None


def transposed_linears(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, str]]:
    """MatMul(x, Transpose<perm=[1,0]>(W)) with a constant 2-D W: (the MatMul, W's name)."""
    ix = Index(model)
    found = []
    for n in ix.graph.node:
        if n.op_type != "MatMul":
            continue
        t = ix.producer.get(n.input[1])
        if t is None or t.op_type != "Transpose":
            continue
        perm = [list(a.ints) for a in t.attribute if a.name == "perm"]
        w = ix.constant(t.input[0])
        if w is not None and w.ndim == 2 and perm in ([], [[1, 0]]):
            found.append((n, t.input[0]))
    return found


def linear_histogram(model: onnx.ModelProto) -> collections.Counter:
    """How the linear layers (MatMul/Gemm with a constant 2-D weight) are written."""
    ix = Index(model)
    hist = collections.Counter()
    for n in ix.graph.node:
        if n.op_type == "MatMul":
            w = ix.constant(n.input[1])
            if w is not None and w.ndim == 2:
                hist[f"MatMul(x, W.T{list(w.shape)})"] += 1
            elif transposed_linears_of(ix, n):
                hist["MatMul(x, Transpose(W))"] += 1
        elif n.op_type == "Gemm":
            attrs = {a.name: a.i for a in n.attribute if a.type == onnx.AttributeProto.INT}
            w = ix.constant(n.input[1])
            hist[f"Gemm(transB={attrs.get('transB', 0)}, W{list(w.shape) if w is not None else '?'}"
                 f"{', C' if len(n.input) > 2 and n.input[2] else ''})"] += 1
    return hist


def transposed_linears_of(ix: Index, n: onnx.NodeProto) -> bool:
    t = ix.producer.get(n.input[1])
    return t is not None and t.op_type == "Transpose" and ix.constant(t.input[0]) is not None


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def tied_weights(model: onnx.ModelProto) -> set[str]:
    """Initializers read both by a Gather (an embedding) and by a Transpose (lm_head)."""
    ix = Index(model)
    return {w for w in ix.inits if {"Gather", "Transpose"} <= {n.op_type for n in ix.readers[w]}}


# ---- falcon-linear ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_falcon_linear_on_fixture(fixture: Path, form: str, tmp_path: Path):
    need_fixtures()
    original = onnx.load(str(fixture / "model.onnx"))
    out = tmp_path / "out.onnx"
    model = rewrite(fixture / "model.onnx", out, "--pass", "falcon-linear", "--linear-form", form)

    left = transposed_linears(model)
    if form == "matmul":
        assert not left, [n.name for n, _ in left]
    else:
        # Gemm needs the input's rank; where it is unknown, a tied W keeps its Transpose
        # rather than being copied. Every other W.T is gone.
        tied = tied_weights(original)
        assert all(w in tied for _, w in left), [(n.name, w) for n, w in left]
        assert len(left) <= len(tied)

    got = run_outputs(out, fixture)
    for name, want in reference_of(fixture).items():
        assert max_diff(got[name], want) <= TOL, name


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_falcon_linear_gemm_after_static_shape(fixture: Path, tmp_path: Path):
    """With static shapes every linear becomes a Gemm: none is left as a MatMul."""
    need_fixtures()
    out = tmp_path / "out.onnx"
    model = rewrite(fixture / "model.onnx", out, *static_shape_args(fixture), "--pass", "falcon-linear",
                    "--linear-form", "gemm")
    hist = linear_histogram(model)
    assert not transposed_linears(model)
    assert not [k for k in hist if k.startswith("MatMul")], hist
    assert sum(v for k, v in hist.items() if k.startswith("Gemm(transB=1")) > 0, hist
    got = run_outputs(out, fixture)
    for name, want in reference_of(fixture).items():
        assert max_diff(got[name], want) <= TOL, name


def nofold_pair() -> tuple[Path, Path]:
    folded, nofold = support.FIXTURES_DIR / "falcon-ts", support.FIXTURES_DIR / "falcon-ts-nofold"
    if not (folded / "model.onnx").exists() or not (nofold / "model.onnx").exists():
        pytest.skip("falcon-ts / falcon-ts-nofold fixtures missing")
    return folded, nofold


def test_nofold_fixture_is_what_it_says():
    _, nofold = nofold_pair()
    meta = json.loads((nofold / "meta.json").read_text())
    assert "do_constant_folding=False" in meta["export_call"]
    model = onnx.load(str(nofold / "model.onnx"))
    # 4 linears in each of 2 layers + the tied lm_head keep `weight.T` as a Transpose node.
    assert len(transposed_linears(model)) == 9
    assert len(tied_weights(model)) == 1


@pytest.mark.parametrize("form", FORMS)
def test_nofold_ends_like_folded(form: str, tmp_path: Path):
    folded, nofold = nofold_pair()
    results = {}
    for fixture in (folded, nofold):
        extra = static_shape_args(fixture) if form == "gemm" else []
        out = tmp_path / f"{fixture.name}.onnx"
        model = rewrite(fixture / "model.onnx", out, *extra, "--pass", "falcon-linear", "--linear-form", form)
        results[fixture.name] = model
        got = run_outputs(out, fixture)
        for name, want in reference_of(fixture).items():
            assert max_diff(got[name], want) <= TOL, (fixture.name, name)
    a, b = (linear_histogram(results[f.name]) for f in (folded, nofold))
    assert a == b, (a, b)
    assert sum(a.values()) == 9, a
    if form == "gemm":
        # After static-shape the whole graphs agree, not only the linear layers.
        ops = [collections.Counter(n.op_type for n in results[f.name].graph.node) for f in (folded, nofold)]
        assert ops[0] == ops[1], ops


@pytest.mark.parametrize("name", ["falcon-dynamo", "falcon-kv-dynamo", "gptbigcode-dynamo", "falcon-ts-nofold"])
def test_gemm_form_does_not_copy_tied_weight(name: str, tmp_path: Path):
    fixture = support.FIXTURES_DIR / name
    if not (fixture / "model.onnx").exists():
        pytest.skip(f"{name} missing")
    original = onnx.load(str(fixture / "model.onnx"))
    tied = tied_weights(original)
    assert tied, "the fixture should have a tied lm_head weight"
    model = rewrite(fixture / "model.onnx", tmp_path / "out.onnx", "--pass", "falcon-linear", "--linear-form", "gemm")
    # Folded W.T initializers are stored as W again (same bytes); the only new ones are
    # shape vectors: far less than one weight, so no weight was copied.
    smallest_tied = min(numpy_helper.to_array(t).nbytes for t in original.graph.initializer if t.name in tied)
    assert initializer_bytes(model) - initializer_bytes(original) < smallest_tied // 4
    ix = Index(model)
    for w in tied:
        kinds = {n.op_type for n in ix.readers[w]}
        assert "Gather" in kinds
        if name.endswith("dynamo"):  # ranks are known there: the lm_head is a Gemm on W itself
            assert "Gemm" in kinds, kinds
    # The matmul form is allowed (and documented) to store W.T beside W.
    mm = rewrite(fixture / "model.onnx", tmp_path / "mm.onnx", "--pass", "falcon-linear")
    assert initializer_bytes(mm) - initializer_bytes(original) >= smallest_tied


# ---- fp16-safe-masks -------------------------------------------------------------------------


def float_constants(model: onnx.ModelProto):
    """(where, array) for every float constant: initializers, Constant and ConstantOfShape values."""
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f":
            yield t.name, a
    for n in model.graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                v = numpy_helper.to_array(a.t)
                if v.dtype.kind == "f":
                    yield f"{n.op_type} {n.output[0]}", v
            elif a.type == onnx.AttributeProto.FLOAT:
                yield f"{n.op_type} {n.output[0]}.{a.name}", np.array([a.f], np.float32)
            elif a.type == onnx.AttributeProto.FLOATS:
                yield f"{n.op_type} {n.output[0]}.{a.name}", np.array(a.floats, np.float32)


def mask_fills(model: onnx.ModelProto) -> list[str]:
    """Float constants holding a value <= -1e30 (float32 lowest, -inf), wherever they are read."""
    return [w for w, a in float_constants(model) if a.size and np.min(a) <= MASK_FILL]


# Input slots through which a mask flows to a node's outputs (None: all), as the pass
# documents them; a comparison, a Where condition, a MatMul or a Shape ends the path.
PLUMBING = {op: None for op in ("Add", "Sub", "Mul", "Min", "Max", "Sum", "Concat")}
PLUMBING.update({"Where": {1, 2}, "ScatterND": {0, 2}, "ScatterElements": {0, 2}})
PLUMBING.update({op: {0} for op in ("Expand", "Reshape", "Cast", "CastLike", "Slice", "Unsqueeze", "Squeeze",
                                     "Transpose", "Identity", "Gather", "GatherElements", "Tile", "Trilu",
                                     "Flatten", "Pad", "Clip")})


def mask_path_fills(model: onnx.ModelProto) -> list[str]:
    """Constants (initializers, Constant, ConstantOfShape) <= -1e30 from which a Softmax's
    input is reached through mask plumbing."""
    ix = Index(model)

    def reaches_softmax(value: str) -> bool:
        stack, seen = [(n, k) for n in ix.readers[value] for k, i in enumerate(n.input) if i == value], set()
        while stack:
            n, k = stack.pop()
            if n.op_type in ("Softmax", "LogSoftmax") and k == 0:
                return True
            slots = PLUMBING.get(n.op_type, set())
            if (slots is not None and k not in slots) or id(n) in seen:
                continue
            seen.add(id(n))
            for o in n.output:
                stack += [(r, j) for r in ix.readers[o] for j, i in enumerate(r.input) if i == o]
        return False

    found = []
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f" and a.size and a.min() <= MASK_FILL and reaches_softmax(t.name):
            found.append(t.name)
    for n in model.graph.node:
        if n.op_type in ("Constant", "ConstantOfShape"):
            for a in n.attribute:
                v = (numpy_helper.to_array(a.t) if a.type == onnx.AttributeProto.TENSOR
                     else np.array([a.f]) if a.type == onnx.AttributeProto.FLOAT
                     else np.array(a.floats) if a.type == onnx.AttributeProto.FLOATS else None)
                if v is not None and v.dtype.kind == "f" and v.size and v.min() <= MASK_FILL \
                        and reaches_softmax(n.output[0]):
                    found.append(n.output[0])
    return found


def assert_unmasked_equal(fixture: Path, got: dict[str, np.ndarray]):
    """Outputs equal where no padded query decides them: logits at positions whose
    attention_mask is 1 (the last `sequence_length` of the mask), every other output whole."""
    feed = feed_of(fixture)
    for name, want in reference_of(fixture).items():
        have = got[name]
        if name == "logits" and "attention_mask" in feed:
            keep = feed["attention_mask"][:, -want.shape[1]:] == 1
            assert max_diff(have[keep], want[keep]) <= TOL, name
        else:
            assert max_diff(have, want) <= TOL, name
        assert np.isfinite(have).all(), name


@pytest.mark.parametrize("static", [False, True], ids=["as-exported", "static-shape"])
@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_fp16_safe_masks_on_fixture(fixture: Path, static: bool, tmp_path: Path):
    need_fixtures()
    src = fixture / "model.onnx"
    before = onnx.load(str(src))
    if static:  # masks folded into initializers first
        src = tmp_path / "static.onnx"
        before = rewrite(fixture / "model.onnx", src, *static_shape_args(fixture))
    assert mask_path_fills(before), "every fixture builds its attention mask from float32 lowest"
    out = tmp_path / "out.onnx"
    model = rewrite(src, out, "--pass", "fp16-safe-masks")
    assert mask_path_fills(model) == []
    # What is left at -3.4e38 is read off the mask paths only (4.46's `causal + mask == 0`
    # padding test after static-shape folded the causal mask); nothing new appears.
    assert set(mask_fills(model)) <= set(mask_fills(before))
    # The fill that replaced them survives F16 even when two masks are summed.
    fills = [float(np.min(a)) for _, a in float_constants(model) if a.size and -1e30 < np.min(a) < -1000]
    assert fills and set(fills) == {-10000.0} and 2 * fills[0] > -F16_MAX
    assert_unmasked_equal(fixture, run_outputs(out, fixture))


def test_fp16_safe_masks_is_opt_in():
    proc = support.run_cli("passes")
    assert proc.returncode == 0, support.describe(proc)
    assert "fp16-safe-masks" in proc.stdout
    npu = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["npu"])
    assert "fp16-safe-masks" not in npu and "falcon-linear" in npu


def test_fp16_safe_masks_keeps_fully_masked_rows_finite_in_half(tmp_path: Path):
    """In float16 the rewritten mask gives finite, uniform weights on a fully masked row
    where the original gives NaN (simulated in numpy: the constant cast to float16)."""
    text = """<ir_version: 8, opset_import: ["" : 17]>
    m (float[1,1,2,3] scores, bool[1,1,2,3] keep) => (float[1,1,2,3] p) <float lowest = {-3.4028235e38}> {
      masked = Where (keep, scores, lowest)
      p = Softmax <axis = -1> (masked)
    }"""
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(onnx.parser.parse_model(text), src)
    model = rewrite(src, out, "--pass", "fp16-safe-masks")
    fill = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}["lowest"]

    def softmax16(fill_value):
        scores = np.array([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]], np.float16)
        keep = np.array([[True, False, True], [False, False, False]])  # row 1 fully masked
        x = np.where(keep, scores, np.float16(fill_value)).astype(np.float16)
        with np.errstate(all="ignore"):
            e = np.exp((x - x.max(-1, keepdims=True)).astype(np.float16))
            return (e / e.sum(-1, keepdims=True)).astype(np.float16)

    with np.errstate(over="ignore"):
        assert np.isnan(softmax16(np.float32(-3.4028235e38))).any()  # -inf in F16: NaN row
    p = softmax16(fill)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-3)
    np.testing.assert_allclose(p[0, 1], 0.0)


def as_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model computed in float16 throughout, as an F16 deployment would: every float32
    constant, Cast target, input and output becomes float16 (-3.4e38 overflows to -inf)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph

    def half(t: onnx.TensorProto) -> onnx.TensorProto:
        with np.errstate(over="ignore"):
            return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name)

    for t in g.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            t.CopyFrom(half(t))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == onnx.TensorProto.FLOAT:
                a.t.CopyFrom(half(a.t))
            elif n.op_type == "Cast" and a.name == "to" and a.i == onnx.TensorProto.FLOAT:
                a.i = onnx.TensorProto.FLOAT16
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            v.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    del g.value_info[:]
    return m


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_fp16_safe_masks_in_float16(fixture: Path, tmp_path: Path):
    """Run in float16 by onnxruntime: the exported mask gives NaN wherever a query row is fully
    masked (left padding without a past; every padded tile of the vision tower) and NaN then
    spreads; after the pass nothing is NaN and unmasked positions match float32 to F16 precision."""
    need_fixtures()
    out = tmp_path / "out.onnx"
    rewrite(fixture / "model.onnx", out, "--pass", "fp16-safe-masks")
    feed = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in feed_of(fixture).items()}
    reference = reference_of(fixture)
    first = next(iter(reference))
    has_past = any(k.startswith("past_key_values") for k in feed)

    def run16(model: onnx.ModelProto) -> np.ndarray:
        sess = support.ort_session(as_float16(model).SerializeToString())
        return sess.run([first], feed)[0].astype(np.float32)

    before = run16(onnx.load(str(fixture / "model.onnx")))
    after = run16(onnx.load(str(out)))
    if not has_past:  # a fully masked row exists: the problem the pass solves
        assert np.isnan(before).any()
    assert np.isfinite(after).all()
    want = reference[first]
    keep = (feed["attention_mask"][:, -want.shape[1]:] == 1) if "attention_mask" in feed else ...
    assert max_diff(after[keep], want[keep]) <= 1e-2
