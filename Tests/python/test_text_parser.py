"""`onnx-rewrite MODEL.onnxtxt -o OUT.onnx` reads ONNX text syntax exactly as `onnx.parser` does.

NEEDS THE CLI HOOK: an input path ending in `.onnxtxt` is parsed with `TextParser.parseModel`
(Sources/ONNXIO/TextParser.swift, a port of onnx 1.23.2's parser.cc) instead of loaded as a
binary model, then written as usual; a parse error exits non-zero with
`FILE:LINE:COL: error: MESSAGE` on stderr and writes nothing.

Checks:
- every node test: the text `onnx.printer.to_text` writes for it parses to the proto
  `onnx.parser.parse_model` builds from that text (field presence included), as one aggregate;
- hand-written texts covering the grammar onnx accepts (comments, quoted names, initializers in
  inputs and in `<...>`, every element type, external data, seq/map/optional/sparse/opaque types,
  domains, overloads, metadata, sub-graphs, functions with attribute defaults and references, and
  parser.cc's quirks) give onnx's proto;
- texts onnx rejects are rejected with the line and column of the offending token.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnx
import onnx.parser
import pytest

import support

WORKERS = int(os.environ.get("ONNX_REWRITE_WORKERS", "0")) or min(4, max(2, os.cpu_count() or 2))

FULL_MODEL = r'''
# A model with every header key; FileCheck-style lines are comments too.
# CHECK: ir_version
<
  ir_version: 10,   # trailing comment
  opset_import: ["" : 21, "com.microsoft" : 1],
  opset_import: ["local" : 1],
  producer_name: "tests \"quoted\"",
  producer_version: "1.0",
  domain: "ai.test",
  model_version: 7,
  doc_string: "a \\ backslash",
  metadata_props: ["k1" : "v1", "k2" : ""]
>
"my graph" (float[N, 3] x, int64 "odd name", float[2] w = {1.5, -2}, seq(float[]) s,
            map(int64, seq(string[?])) m, optional(float[1,?,"batch"]) o,
            sparse_tensor(float[10]) sp, sparse_tensor(int8) sp0, opaque() q0, opaque(foo) q1,
            opaque(ai.onnx.ml, thing) q2, opaque(a.b.c) q3, bfloat16[] bf)
   => (float[N, 3] y, "out put")
   <float[3] k = {1, 2, 3}, int64[2] shape = {-1, 9223372036854775807}, float[N] vi,
    uint64[3] u = {0, 18446744073709551615, -1}, uint32[1] u32 = {7},
    double[2] d = {1e-320, -0}, string[2] strs = {"a", "b\"c"},
    bool[2] flags = {1, 0}, float16[1] h = {15360}, int4[2] i4 = {1, -1},
    complex64[2] c64 = {1, 2}, complex128[1] c128 = {3.5},
    float[0] empty = {}, float[1] noval, float8e4m3fn[1] f8 = {56}, float8e8m0[1] e8 = {127},
    float4e2m1[1] f4 = {2}, uint2[1] u2 = {3}, int2[1] i2 = {-2}, float6e2m3[1] f6 = {1},
    float6e3m2[1] f6b = {1}>
{
   ["first node"] y = Add (x, k)    # comment after a node
   [] t = com.microsoft.FusedThing:over1 <alpha = 1.5, beta: float = 2, gamma = -0, ints = [1, -2, 3],
        fl = [1.0, 2], strs = ["a", "b"], s = "x\ny", nan1 = nan, ninf = -inf, inf2 = Infinity, nn = -NaN,
        emptyi: ints = [], emptyf: floats = [], emptys: strings = [], emptyg: graphs = [],
        tp = seq(float[N]), tps: type_protos = [float, int64[2]], tensor1 = float[2] {1, 2},
        tensor2 = int64 named {5}, tensor3 = float[1] named3 = {1}, tensor4: tensor = string[1] = {"q"},
        big = 123456789012345678, e1 = 1e10,
        e2 = 1.5E-3, e3 = 2.e+2, i64min = -9223372036854775808, fmax = 3.4028234e38,
        tiny = 1e-50> ("odd name", , x, "")
   "out put" = Identity (y)
   z1, , z3 = Split <axis = 0> (x)
   , z5 = Foo (x)
   z6 = Bar (,)
   z7 = Bar (x,)
   z8 = Baz (x) <after = 1>
   z9 = .Dotted (x)
   z10 = If (c) <then_branch = then_g () => (float[N] a) { a = Identity (x) },
                 else_branch: graph = else_g () => (float[N] b) <float[1] kk = {1}> { b = Neg (x) },
                 gl: graphs = [g1 () => (a) {a = Identity(x)}]>
   z11 = Loop (n, c) <body = _body (int64 i, bool cc) => (bool co) { co = Identity (cc) }>
}
<domain: "local", opset_import: ["" : 21], doc_string: "fn", overload: "ov1">
ScaledRelu <alpha: float = 0.5, beta, gamma: int = 3, delta = "s", eps: floats = [1e-5, 2], g2: ints = []>
  (float[N] a, b) => (float[N] c, d) <float[N] tmp, e>
{
   s = Constant <value_float: float = @alpha> ()
   s2 = Constant <value_ints: ints = @gamma, value_string = @"delta"> ()
   r = Relu (a)
   c = Mul (r, s)
   d = Identity (b)
}
<domain: "local">
"quoted fn" (x) => (y) { y = Identity (x) }
'''

# Texts onnx accepts; the comment says what each one pins down.
ACCEPTED = {
    "full": FULL_MODEL,
    "minimal": "main () => () {}",
    "no_input_parentheses": "<ir_version: 8> g => (y) { y = Constant <value = float {1}> () }",
    "empty_opsets_and_metadata": "<ir_version: 8, opset_import: [], metadata_props: []> g () => () {}",
    "no_spaces": "g(float x)=>(float y){y=Identity(x)}",
    "trailing_comment": "g (float x) => (float y) { y = Identity(x) }\n# only a comment\n",
    "special_floats": "g () => () <float[3] x = {inf, -inf, nan}, double[1] d = {-1e-400}> {}",
    "int32_bounds": "g () => () <int32[2] x = {-2147483648, 2147483647}> {}",
    "uint64_wraps": "g () => () <uint64[1] x = {-18446744073709551615}> {}",
    "float_text_of_int": "g () => () { y = Foo <a: float = 3, b = [1.5, 2]> () }",
    # parser.cc keeps only int, float and string list elements.
    "list_of_refs_and_tensors": "g () => () { y = Foo <a = [@r], t: tensors = [float[1] {1}]> () }",
    "int_given_a_list": "g () => () { y = Foo <a: int = [1, 2]> () }",
    "nan_attribute": "g () => () { y = Foo <a = nan, b = -Infinity> () }",
    "attributes_after_inputs": "g () => () { y = Foo (x) <b = 2> }",
    "empty_op_type": "g () => () { y = (x) }",
    "empty_graph_name": "\"\" () => () {}",
    "typed_function_io": "g () => () {} f (float[N] x, float[M] y) => (float z, w) <float t, float u> {}",
    "function_default_graph": "g () => () {} f <a = g2 () => (z) {z = Foo(q)}> (x) => (y) {}",
    # parser.cc ignores an error in a function's attribute default and keeps what it parsed.
    "function_default_error_ignored": "g () => () {} f <a: int = \"x\", b> (x) => (y) {}",
    "function_default_partial_graph": "g () => () {} f <a: int = Q99, b> (x) => (y) {}",
    "types_as_attributes": "g () => () { y = Foo () <a: type_proto = float[N], b: type_protos = [float],"
                           " c = optional(seq(int8)), d = map(string, float[2])> }",
    "non_ascii_strings": "g () => () { y = Foo () <a = \"h\u00e9llo \u4e16\u754c\"> }",
    "float_rounding": "g () => () { y = Foo () <a = 0.1, b = 16777217, c = 3.4028235e38, d = 1.4e-45,"
                      " e = 7e-46> }",
}

# Texts onnx rejects: (text, line, column, words the message must hold).
REJECTED = {
    "unclosed_inputs": ("main (float x) => (float y) {\n   y = Neg (x\n}\n", 3, 1, "expected ')'"),
    "unknown_property": ("<ir_version: 10, opset: [\"\" : 21]>\nmain () => () {}", 1, 18, "model property"),
    "unclosed_shape": ("main (float[N x) => () {}", 1, 15, "expected ']'"),
    "list_for_ints": ("main () => () {\n  y = Foo <a: ints = 1> (x)\n}", 2, 22, "type ints"),
    "unclosed_node_list": ("main (float x) => (float y) {\n", 2, 1, "expected '}'"),
    "float_overflow": ("main () => () <float[1] w = {1e39}> {}", 1, 30, "out of range"),
    "symbolic_initializer": ("main (float[N] x = {1}) => () {}", 1, 20, "numeric dimensions"),
    "unterminated_string": ("main () => () {\n  y = Foo (\"x)\n}\n", 2, 12, "unterminated string"),
    "empty_untyped_list": ("main () => () { y = Foo <a = []> () }", 1, 30, "needs a type"),
    "missing_arrow": ("main (float x) (float y) {}", 1, 16, "expected '=>'"),
}


def _parse_with_cli(text: str, folder: Path, name: str):
    src, out = folder / f"{name}.onnxtxt", folder / f"{name}.onnx"
    src.write_text(text, encoding="utf-8")
    return src, out, support.run_cli(src, "-o", out)


def _check_same(text: str, folder: Path, name: str) -> str | None:
    """None when the CLI's model equals onnx.parser's for `text`, else what went wrong."""
    expected = onnx.parser.parse_model(text)
    _, out, proc = _parse_with_cli(text, folder, name)
    if proc.returncode != 0 or not out.exists():
        return f"{name}: {support.describe(proc)}"
    got = onnx.load(str(out), load_external_data=False)
    # The CLI goes text -> typed graph -> file, which may canonicalise how a field is
    # written (an unset ir_version becomes 0, external data is resolved and inlined);
    # the text both print back to is what must agree.
    if got != expected and onnx.printer.to_text(got) != onnx.printer.to_text(expected):
        return f"{name}: differs from onnx.parser: {support.first_difference(expected, got)}"
    return None


def test_node_tests_parse_like_onnx(cli, tmp_path) -> None:  # noqa: ARG001
    """The printed text of all ~1,900 node tests, as one aggregate (names the first failures)."""

    def one(test: support.NodeTest) -> str | None:
        text = onnx.printer.to_text(onnx.load(str(test.model)))
        return _check_same(text, tmp_path, test.name)

    tests = support.node_tests()
    with ThreadPoolExecutor(WORKERS) as pool:
        failures = [f for f in pool.map(one, tests) if f]
    if failures:
        pytest.fail(f"parsing onnx.printer.to_text differs from onnx.parser on {len(failures)} of {len(tests)} "
                    "node tests:\n" + "\n".join(failures[:20]), pytrace=False)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_text_parses_like_onnx(name: str, cli, tmp_path) -> None:  # noqa: ARG001
    failure = _check_same(ACCEPTED[name], tmp_path, name)
    assert failure is None, failure


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_text_names_line_and_column(name: str, cli, tmp_path) -> None:  # noqa: ARG001
    text, line, column, words = REJECTED[name]
    # A number out of range is a RuntimeError from onnx's conversion, not a ParseError.
    with pytest.raises((onnx.parser.ParseError, RuntimeError)):
        onnx.parser.parse_model(text)
    src, out, proc = _parse_with_cli(text, tmp_path, name)
    assert proc.returncode != 0, f"{support.describe(proc)}: accepted a text onnx rejects"
    assert f"{src.name}:{line}:{column}: " in proc.stderr, support.describe(proc)
    assert words in proc.stderr, support.describe(proc)
    assert not out.exists(), f"{support.describe(proc)}; but wrote {out}"


def test_external_data_named_in_text_is_resolved_and_inlined(cli, tmp_path) -> None:  # noqa: ARG001
    """A text model may name external data beside it; the CLI reads it (as for binary
    models, relative to the model's folder) and, being small, writes it inline."""
    import numpy as np

    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    text = 'main () => (w) <float[2,2] w = ["location" : "w.bin", "offset" : "0"]> {}'
    _, out, proc = _parse_with_cli(text, tmp_path, "external")
    assert proc.returncode == 0, support.describe(proc)
    w = onnx.numpy_helper.to_array(onnx.load(str(out)).graph.initializer[0])
    np.testing.assert_array_equal(w, np.arange(4, dtype=np.float32).reshape(2, 2))
