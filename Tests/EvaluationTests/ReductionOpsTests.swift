import Foundation
import ONNXGraph
import XCTest

@testable import Evaluation

/// Tricky cases of the reduction and tensor rules; the node-test harness covers the rest.
final class ReductionOpsTests: XCTestCase {
  // MARK: Helpers

  /// A context for one node whose inputs are these constants (nil: omitted input) or, for
  /// inference, these types.
  private func context(
    _ op: String, opset: Int, _ inputs: [HostTensor?] = [], types: [TypeInfo?]? = nil,
    _ attributes: [Attribute] = []
  ) -> OpContext {
    let slots = max(inputs.count, types?.count ?? 0)
    let values = (0..<slots).map { i -> Value? in
      let present = (i < inputs.count && inputs[i] != nil) || (types.map { i < $0.count && $0[i] != nil } ?? false)
      return present ? Value(name: "in\(i)") : nil
    }
    let node = Node(op, inputs: values, outputNames: ["out0", "out1", "out2"], attributes: attributes)
    let inputTypes = (0..<slots).map { i in
      types.flatMap { i < $0.count ? $0[i] : nil } ?? (i < inputs.count ? inputs[i]?.typeInfo : nil)
    }
    let constants = (0..<slots).map { i in i < inputs.count ? inputs[i] : nil }
    return OpContext(node: node, opset: opset, inputTypes: inputTypes, constants: constants)
  }

  private func evaluate(
    _ op: String, opset: Int = 18, _ inputs: [HostTensor?], _ attributes: [Attribute] = []
  ) throws -> [HostTensor] {
    let ctx = context(op, opset: opset, inputs, attributes)
    let rule = try XCTUnwrap(OpRules.table[op])
    let outputs = try XCTUnwrap(rule.evaluate)(ctx)
    // Inference must agree with what evaluation produces.
    for (inferred, value) in zip(try rule.infer(ctx), outputs) {
      XCTAssertEqual(inferred, value.typeInfo, "\(op) inference disagrees with its evaluation")
    }
    return outputs
  }

  private func infer(
    _ op: String, opset: Int = 18, _ types: [TypeInfo?], constants: [HostTensor?] = [], _ attributes: [Attribute] = []
  ) throws -> [TypeInfo?] {
    try XCTUnwrap(OpRules.table[op]).infer(context(op, opset: opset, constants, types: types, attributes))
  }

  private func floats(_ shape: [Int], _ values: [Double]) -> HostTensor { HostTensor(.float, shape, floats: values) }
  private func float(_ dims: Dim...) -> TypeInfo { TypeInfo(.tensor(.float, Shape(dims))) }
  private let int64Vector = TypeInfo(.tensor(.int64, [1]))
  private func assertClose(
    _ t: HostTensor, _ expected: [Double], shape: [Int], file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(t.shape, shape, file: file, line: line)
    XCTAssertEqual(t.doubles.count, expected.count, file: file, line: line)
    for (a, b) in zip(t.doubles, expected) { XCTAssertEqual(a, b, accuracy: 1e-5, file: file, line: line) }
  }

  // MARK: Reduce*

  func testReduceSumTakesAxesFromTheAttributeBeforeOpset13AndFromTheInputAfter() throws {
    let x = floats([2, 3], [1, 2, 3, 4, 5, 6])
    let old = try evaluate("ReduceSum", opset: 11, [x], [Attribute("axes", .ints([1]))])
    assertClose(old[0], [6, 15], shape: [2, 1])
    let new = try evaluate("ReduceSum", opset: 13, [x, .int64s([0])], [Attribute("keepdims", .int(0))])
    assertClose(new[0], [5, 7, 9], shape: [3])
  }

  func testReduceMeanTakesAxesFromTheInputOnlySinceOpset18() throws {
    let x = floats([2, 2], [1, 2, 3, 4])
    assertClose(
      try evaluate("ReduceMean", opset: 17, [x], [Attribute("axes", .ints([-1]))])[0], [1.5, 3.5], shape: [2, 1])
    assertClose(try evaluate("ReduceMean", opset: 18, [x, .int64s([-1])])[0], [1.5, 3.5], shape: [2, 1])
  }

  func testEmptyAxesReduceEverythingUnlessNoopWithEmptyAxes() throws {
    let x = floats([2, 2], [1, 5, 3, 4])
    assertClose(try evaluate("ReduceMax", [x, .int64s([])])[0], [5], shape: [1, 1])
    assertClose(try evaluate("ReduceMax", [x, nil])[0], [5], shape: [1, 1])
    let noop = [Attribute("noop_with_empty_axes", .int(1)), Attribute("keepdims", .int(0))]
    assertClose(try evaluate("ReduceMax", [x, .int64s([])], noop)[0], [1, 5, 3, 4], shape: [2, 2])
    assertClose(try evaluate("ReduceMax", [x], noop)[0], [1, 5, 3, 4], shape: [2, 2])
  }

  func testKeepdimsZeroDropsEveryReducedAxis() throws {
    let x = floats([2, 3], [1, -2, 3, -4, 5, -6])
    assertClose(try evaluate("ReduceL1", [x], [Attribute("keepdims", .int(0))])[0], [21], shape: [])
    assertClose(
      try evaluate("ReduceSumSquare", [x, .int64s([0])], [Attribute("keepdims", .int(0))])[0], [17, 29, 45], shape: [3])
  }

  func testReductionsOverNothingGiveTheirIdentity() throws {
    let empty = HostTensor(.int8, [2, 0], ints: [])
    XCTAssertEqual(
      try evaluate("ReduceMax", [empty, .int64s([1])])[0], HostTensor(.int8, [2, 1], ints: [-128, -128]))
    XCTAssertEqual(try evaluate("ReduceProd", [empty, .int64s([1])])[0], HostTensor(.int8, [2, 1], ints: [1, 1]))
    XCTAssertEqual(try evaluate("ReduceMin", [floats([0], []), nil])[0].doubles, [.infinity])
  }

  func testIntegerReductionsAreExactAndKeepTheirType() throws {
    let big = HostTensor(.int64, [2], ints: [1 << 53, 1])
    XCTAssertEqual(
      try evaluate("ReduceSum", [big, nil], [Attribute("keepdims", .int(0))])[0],
      HostTensor(.int64, [], ints: [(1 << 53) + 1]))
    // Integer means truncate, as numpy's astype.
    let ints = HostTensor(.int32, [3], ints: [1, 2, 2])
    XCTAssertEqual(try evaluate("ReduceMean", [ints, nil])[0], HostTensor(.int32, [1], ints: [1]))
  }

  func testReduceInferenceKeepsSymbolsAndKnowsTheRankWhenAxesAreUnknown() throws {
    let x = float("batch", "seq", 64)
    XCTAssertEqual(try infer("ReduceMean", [x], constants: [nil, .int64s([-1])])[0], float("batch", "seq", 1))
    let keepdims0 = [Attribute("keepdims", .int(0))]
    XCTAssertEqual(try infer("ReduceSum", opset: 13, [x, int64Vector], keepdims0)[0], TypeInfo(.tensor(.float, nil)))
    XCTAssertEqual(try infer("ReduceSum", opset: 13, [x, int64Vector])[0], float(.unknown, .unknown, .unknown))
  }

  func testArgMaxSelectLastIndexAndKeepdims() throws {
    let x = HostTensor(.int64, [2, 3], ints: [1, 3, 3, 2, 2, 0])
    XCTAssertEqual(
      try evaluate("ArgMax", [x], [Attribute("axis", .int(1))])[0], HostTensor(.int64, [2, 1], ints: [1, 0]))
    let last = [Attribute("axis", .int(-1)), Attribute("keepdims", .int(0)), Attribute("select_last_index", .int(1))]
    XCTAssertEqual(try evaluate("ArgMax", [x], last)[0], HostTensor(.int64, [2], ints: [2, 1]))
    XCTAssertEqual(try evaluate("ArgMin", [x], last)[0], HostTensor(.int64, [2], ints: [0, 2]))
  }

  // MARK: Softmax, LayerNormalization

  func testSoftmaxBeforeOpset13NormalisesTheFlattenedTrailingDims() throws {
    let x = floats([1, 2, 2], [0, 0, 0, 0])
    // Opset 11, axis 1: one row of 4 elements; opset 13, axis 1: columns of 2.
    assertClose(
      try evaluate("Softmax", opset: 11, [x], [Attribute("axis", .int(1))])[0], [0.25, 0.25, 0.25, 0.25],
      shape: [1, 2, 2])
    assertClose(
      try evaluate("Softmax", opset: 13, [x], [Attribute("axis", .int(1))])[0], [0.5, 0.5, 0.5, 0.5], shape: [1, 2, 2])
  }

  func testSoftmaxDefaultAxisIsOneBeforeOpset13AndMinusOneAfter() throws {
    let x = floats([1, 2, 2], [0, Foundation.log(3), 0, 0])
    assertClose(try evaluate("Softmax", opset: 11, [x])[0], [1 / 6, 3 / 6, 1 / 6, 1 / 6], shape: [1, 2, 2])
    let log = try evaluate("LogSoftmax", opset: 13, [x])[0]
    assertClose(log.with(.float, floats: log.doubles.map(Foundation.exp)), [0.25, 0.75, 0.5, 0.5], shape: [1, 2, 2])
  }

  func testLayerNormalizationStatisticsKeepLeadingDimsInTheStashType() throws {
    let x = HostTensor(.float16, [2, 2], floats: [1, 3, 0, 4])
    let scale = HostTensor(.float16, [2], floats: [1, 2])
    let out = try evaluate("LayerNormalization", opset: 17, [x, scale, nil], [Attribute("epsilon", .float(0))])
    XCTAssertEqual(out[0], HostTensor(.float16, [2, 2], floats: [-1, 2, -1, 2]))
    XCTAssertEqual(out[1], HostTensor(.float, [2, 1], floats: [2, 2]))
    XCTAssertEqual(out[2], HostTensor(.float, [2, 1], floats: [1, 0.5]))
  }

  // MARK: MatMul, Gemm, Einsum

  func testMatMulOfVectorsDropsTheirUnitDims() throws {
    let v = floats([3], [1, 2, 3])
    assertClose(try evaluate("MatMul", [v, v])[0], [14], shape: [])
    let m = floats([2, 3, 2], [1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 2, 2])
    assertClose(try evaluate("MatMul", [v, m])[0], [4, 5, 8, 10], shape: [2, 2])
    assertClose(try evaluate("MatMul", [m, floats([2], [1, -1])])[0], [1, -1, 0, 2, -2, 0], shape: [2, 3])
  }

  func testMatMulBroadcastsBatchDims() throws {
    let a = floats([2, 1, 1, 2], [1, 2, 3, 4])
    let b = floats([3, 2, 1], [1, 1, 2, 2, 3, 3])
    assertClose(try evaluate("MatMul", [a, b])[0], [3, 6, 9, 7, 14, 21], shape: [2, 3, 1, 1])
  }

  func testMatMulInferenceKeepsSymbolicDims() throws {
    XCTAssertEqual(try infer("MatMul", [float("batch", "seq", 64), float(64, 128)])[0], float("batch", "seq", 128))
    XCTAssertEqual(try infer("MatMul", [float(64), float("batch", 64, "n")])[0], float("batch", "n"))
    XCTAssertEqual(try infer("MatMul", [float(1, "h", "s", 64), float("b", 1, 64, "t")])[0], float("b", "h", "s", "t"))
  }

  func testGemmTransposesBAndBroadcastsC() throws {
    let a = floats([2, 3], [1, 2, 3, 4, 5, 6])
    let b = floats([2, 3], [1, 0, 0, 0, 1, 0])  // B' = first two columns of the identity
    let c = floats([2], [10, 20])
    let attributes = [Attribute("transB", .int(1)), Attribute("alpha", .float(2)), Attribute("beta", .float(0.5))]
    assertClose(try evaluate("Gemm", opset: 13, [a, b, c], attributes)[0], [7, 14, 13, 20], shape: [2, 2])
    XCTAssertEqual(
      try infer("Gemm", opset: 13, [float("m", 3), float("n", 3)], [Attribute("transB", .int(1))])[0], float("m", "n"))
  }

  func testEinsumContractionsExportersUse() throws {
    let q = floats([1, 1, 2, 2], [1, 2, 3, 4])
    let k = floats([1, 1, 3, 2], [1, 0, 0, 1, 1, 1])
    let eq = { (s: String) in [Attribute("equation", .string(s))] }
    assertClose(
      try evaluate("Einsum", opset: 12, [q, k], eq("bhid,bhjd->bhij"))[0], [1, 2, 3, 3, 4, 7], shape: [1, 1, 2, 3])
    assertClose(
      try evaluate("Einsum", opset: 12, [floats([2], [1, 2]), floats([2], [3, 4])], eq("i,j->ij"))[0], [3, 4, 6, 8],
      shape: [2, 2])
    assertClose(try evaluate("Einsum", opset: 12, [floats([2, 2], [1, 2, 3, 4])], eq("ii"))[0], [5], shape: [])
    assertClose(
      try evaluate("Einsum", opset: 12, [floats([2, 2], [1, 2, 3, 4])], eq("ij"))[0], [1, 2, 3, 4], shape: [2, 2])
    assertClose(
      try evaluate("Einsum", opset: 12, [floats([2, 2], [1, 2, 3, 4])], eq("ji"))[0], [1, 3, 2, 4], shape: [2, 2])
  }

  func testEinsumInferenceExpandsEllipsis() throws {
    let eq = [Attribute("equation", .string("...ij,...jk->...ik"))]
    XCTAssertEqual(try infer("Einsum", opset: 12, [float("b", 2, 3, 4), float(4, 5)], eq)[0], float("b", 2, 3, 5))
    let implicit = [Attribute("equation", .string("...ji,...j"))]
    XCTAssertEqual(try infer("Einsum", opset: 12, [float("b", 3, 4), float(1, 3)], implicit)[0], float("b", 4))
  }

  // MARK: Conv, TopK

  func testConvInferenceFromPadsStridesAndAutoPad() throws {
    let x = float("n", 3, 32, "w")
    let w = float(16, 3, 3, 3)
    let strided = [Attribute("strides", .ints([2, 1])), Attribute("pads", .ints([1, 1, 1, 1]))]
    XCTAssertEqual(try infer("Conv", [x, w], strided)[0], float("n", 16, 16, "w"))
    let same = [Attribute("auto_pad", .string("SAME_UPPER")), Attribute("strides", .ints([2, 2]))]
    XCTAssertEqual(try infer("Conv", [x, w], same)[0], float("n", 16, 16, .unknown))
    let valid = [Attribute("auto_pad", .string("VALID")), Attribute("dilations", .ints([2, 2]))]
    XCTAssertEqual(try infer("Conv", [x, w], valid)[0], float("n", 16, 28, .unknown))
  }

  func testTopKSortsAndBreaksTiesByIndex() throws {
    let x = HostTensor(.int32, [2, 3], ints: [1, 3, 3, 5, 4, 6])
    let out = try evaluate("TopK", opset: 11, [x, .int64s([2])])
    XCTAssertEqual(out[0], HostTensor(.int32, [2, 2], ints: [3, 3, 6, 5]))
    XCTAssertEqual(out[1], HostTensor(.int64, [2, 2], ints: [1, 2, 2, 0]))
    let smallest = try evaluate(
      "TopK", opset: 11, [x, .int64s([1])], [Attribute("axis", .int(0)), Attribute("largest", .int(0))])
    XCTAssertEqual(smallest[1], HostTensor(.int64, [1, 3], ints: [0, 0, 0]))
  }
}
