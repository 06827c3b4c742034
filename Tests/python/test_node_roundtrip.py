"""Every onnx backend node test (~1,900 models) through `onnx-rewrite MODEL -o OUT`.

For each model:
- the CLI exits 0 and writes OUT;
- OUT parses and equals the original as a proto (byte-identical files are the goal; counted);
- `onnx.checker.check_model(OUT, full_check=True)` passes wherever it passes on the original;
- wherever onnxruntime (CPU) runs the original, it runs OUT and gives the test's expected outputs
  (rtol/atol of the backend test case, 1e-3/1e-7 by default; exact for ints, bools, strings).
  Where ORT itself disagrees with the expected outputs on the original, OUT must give what the
  original gives. Models ORT cannot run are counted, not failed.

The round trips run in a thread pool once per module (the CLI and ORT release the GIL); each model
is its own test item, so failures name the model and `-k test_abs` selects one.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import onnx
import pytest

import support

NODE_TESTS = {t.name: t for t in support.node_tests()}
WORKERS = int(os.environ.get("ONNX_REWRITE_WORKERS", "0")) or min(4, max(2, os.cpu_count() or 2))


@dataclass
class Result:
    name: str
    failures: list[str] = field(default_factory=list)
    byte_identical: bool = False
    proto_equal: bool = False
    checker: str = "n/a"          # "checked" | "original fails" | "n/a"
    ort: str = "n/a"              # "expected" | "matches original" | "original fails" | "nondeterministic" | "failed"
    ort_note: str = ""


def _check_one(test: support.NodeTest, out_dir) -> Result:
    r = Result(test.name)
    out = out_dir / f"{test.name}.onnx"
    try:
        proc = support.run_cli(test.model, "-o", out, timeout=120)
        if proc.returncode != 0 or not out.exists():
            r.failures.append(f"round trip failed: {support.describe(proc)}")
            return r
        orig_bytes = test.model.read_bytes()
        out_bytes = out.read_bytes()
        r.byte_identical = orig_bytes == out_bytes
        orig = onnx.load_from_string(orig_bytes)
        try:
            saved = onnx.load_from_string(out_bytes)
        except Exception as e:
            r.failures.append(f"onnx cannot parse the saved model: {type(e).__name__}: {e}")
            return r
        r.proto_equal = support.proto_bytes(orig) == support.proto_bytes(saved)
        if not r.proto_equal:
            r.failures.append(f"saved model differs from the original: {support.first_difference(orig, saved)}")

        if support.checker_error(orig) is None:
            r.checker = "checked"
            if err := support.checker_error(saved):
                r.failures.append(f"checker(full_check) fails on the saved model only: {err}")
        else:
            r.checker = "original fails"

        _check_ort(test, orig, out_bytes, r)
    except Exception as e:  # a bug in this test must not hide the other models
        r.failures.append(f"{type(e).__name__}: {e}")
    finally:
        out.unlink(missing_ok=True)
    return r


def _check_ort(test: support.NodeTest, orig: onnx.ModelProto, out_bytes: bytes, r: Result) -> None:
    names = [i.name for i in orig.graph.input]
    try:
        sess_orig = support.ort_session(test.model)
    except Exception as e:
        r.ort, r.ort_note = "original fails", "load: " + _first_line(e, test)
        return
    try:
        sess_out = support.ort_session(out_bytes)
    except Exception as e:
        r.ort = "failed"
        r.failures.append(f"ORT loads the original but not the saved model: {str(e).strip()[:300]}")
        return
    r.ort = "expected"
    for k, (inputs, expected) in enumerate(test.data_sets()):
        feeds = dict(zip(names, inputs))
        try:
            want = sess_orig.run(None, feeds)
        except Exception as e:
            r.ort, r.ort_note = "original fails", "run: " + _first_line(e, test)
            return
        try:
            got = sess_out.run(None, feeds)
        except Exception as e:
            r.ort = "failed"
            r.failures.append(f"ORT runs the original but not the saved model (data set {k}): {str(e).strip()[:300]}")
            return
        try:
            support.assert_outputs_close(want, expected, test.rtol, test.atol)
            original_matches = True
        except AssertionError:
            original_matches = False
        if original_matches:
            try:
                support.assert_outputs_close(got, expected, test.rtol, test.atol, what=f"data set {k} output")
            except AssertionError as e:
                r.ort = "failed"
                r.failures.append(f"saved model's outputs differ from the expected ones: {str(e).strip()[:600]}")
                return
        else:
            # ORT disagrees with the reference on the original: the saved model must agree with the original,
            # unless the op is random (Dropout in training mode, Bernoulli, ...): then ORT differs from itself.
            try:
                support.assert_outputs_close(got, want, test.rtol, test.atol, what=f"data set {k} output")
            except AssertionError as e:
                again = sess_orig.run(None, feeds)
                try:
                    support.assert_outputs_close(again, want, test.rtol, test.atol)
                except AssertionError:
                    r.ort = "nondeterministic"
                    return
                r.ort = "failed"
                r.failures.append(f"saved model's outputs differ from the original's in ORT: {str(e).strip()[:600]}")
                return
            r.ort = "matches original"


def _first_line(e: Exception, test: support.NodeTest) -> str:
    lines = str(e).replace(str(test.model), "model.onnx").strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:200]


@pytest.fixture(scope="module")
def node_results(request, cli, tmp_path_factory) -> dict[str, Result]:  # noqa: ARG001 - cli: fail fast if missing
    selected = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_node_roundtrip" and hasattr(item, "callspec")
    ]
    out_dir = tmp_path_factory.mktemp("node-roundtrip")
    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda n: _check_one(NODE_TESTS[n], out_dir), selected))
    by_name = {r.name: r for r in results}
    by_name["__elapsed__"] = time.monotonic() - start  # type: ignore[assignment]
    return by_name


@pytest.mark.parametrize("name", sorted(NODE_TESTS))
def test_node_roundtrip(name: str, node_results: dict[str, Result]) -> None:
    r = node_results[name]
    if r.failures:
        pytest.fail(f"{name}: " + "\n".join(r.failures), pytrace=False)


def test_node_roundtrip_summary(node_results: dict[str, Result], summary_lines: list[str]) -> None:
    """One line of counts (and Tests/Reports/node-roundtrip.md when ONNX_REWRITE_RECORD_REPORTS=1)."""
    elapsed = node_results.get("__elapsed__", 0.0)
    results = [r for k, r in node_results.items() if k != "__elapsed__"]
    if not results:
        pytest.skip("no node test selected")
    total = len(results)
    ok = [r for r in results if not r.failures]
    identical = sum(r.byte_identical for r in results)
    checked = sum(r.checker == "checked" for r in results)
    ort_expected = sum(r.ort == "expected" for r in results)
    ort_orig = sum(r.ort == "matches original" for r in results)
    ort_skipped = sum(r.ort == "original fails" for r in results)
    nondet = sum(r.ort == "nondeterministic" for r in results)
    line = (
        f"node tests: {total} total, {len(ok)} round-tripped, {identical} byte-identical, "
        f"{checked} checker(full_check)-verified, {ort_expected + ort_orig} checked in ORT "
        f"({ort_expected} vs expected outputs, {ort_orig} vs original's outputs where ORT disagrees with expected), "
        f"{ort_skipped} skipped because ORT fails on the original, {nondet} nondeterministic in ORT "
        f"[{elapsed:.0f} s, {WORKERS} workers]"
    )
    summary_lines.append(line)
    print(line)
    if support.record_reports():
        _write_report(results, line)
    failed = [r for r in results if r.failures]
    if failed:
        pytest.fail(f"{len(failed)} of {total} node tests failed, first: " + ", ".join(r.name for r in failed[:20]),
                    pytrace=False)
    if total >= 100:
        # Guard against a harness that silently checks nothing: ORT 1.32 runs ~85% of these models.
        assert ort_expected + ort_orig >= 0.7 * total, line


def _write_report(results: list[Result], line: str) -> None:
    import numpy
    import onnxruntime

    support.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    skipped = sorted((r.name, r.ort_note) for r in results if r.ort == "original fails")
    not_identical = sorted(r.name for r in results if not r.byte_identical)
    lines = [
        "# Node-test round trip",
        "",
        "Every onnx backend node test through `onnx-rewrite MODEL -o OUT` "
        "(`Tests/python/test_node_roundtrip.py`; recorded with `ONNX_REWRITE_RECORD_REPORTS=1`).",
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}.",
        "",
        line,
        "",
        f"## Not byte-identical ({len(not_identical)})",
        "",
        *([f"- `{n}`" for n in not_identical] or ["None."]),
        "",
        f"## Not run in ORT: ORT fails on the original ({len(skipped)})",
        "",
        *[f"- `{n}`: {note}" for n, note in skipped],
        "",
    ]
    (support.REPORTS_DIR / "node-roundtrip.md").write_text("\n".join(lines))
