import Foundation
import ONNXGraph
import XCTest

@testable import Evaluation

/// Tricky cases of the shape, indexing and value rules; the node-test harness covers the rest.
final class ShapeOpsTests: XCTestCase {
  // MARK: Helpers

  /// A node's context: each input slot has a type and, if given, a constant value.
  private func context(
    _ op: String, opset: Int, types: [TypeInfo?], constants: [HostTensor?] = [], _ attributes: [Attribute] = [],
    outputs: Int = 1
  ) -> OpContext {
    let values = types.indices.map { i -> Value? in types[i] == nil ? nil : Value(name: "in\(i)") }
    let node = Node(op, inputs: values, outputNames: (0..<outputs).map { "out\($0)" }, attributes: attributes)
    let slots = types.indices.map { $0 < constants.count ? constants[$0] : nil }
    return OpContext(node: node, opset: opset, inputTypes: types, constants: slots)
  }

  /// Evaluates on constant inputs (nil: omitted) and checks that inference agrees.
  private func evaluate(
    _ op: String, opset: Int = 18, _ inputs: [HostTensor?], _ attributes: [Attribute] = [], outputs: Int = 1
  ) throws -> [HostTensor] {
    let ctx = context(
      op, opset: opset, types: inputs.map { $0?.typeInfo }, constants: inputs, attributes, outputs: outputs)
    let rule = try XCTUnwrap(OpRules.table[op])
    let values = try XCTUnwrap(rule.evaluate)(ctx)
    XCTAssertEqual(try rule.infer(ctx), values.map(\.typeInfo), "\(op) inference disagrees with its evaluation")
    return values
  }

  private func infer(
    _ op: String, opset: Int = 18, _ types: [TypeInfo?], constants: [HostTensor?] = [], _ attributes: [Attribute] = [],
    outputs: Int = 1
  ) throws -> [TypeInfo?] {
    try XCTUnwrap(OpRules.table[op]).infer(
      context(op, opset: opset, types: types, constants: constants, attributes, outputs: outputs))
  }

  private func floats(_ shape: [Int], _ values: [Double]) -> HostTensor { HostTensor(.float, shape, floats: values) }
  private func iota(_ shape: [Int]) -> HostTensor { floats(shape, (0..<shape.reduce(1, *)).map(Double.init)) }
  private func float(_ dims: Dim...) -> TypeInfo { TypeInfo(.tensor(.float, Shape(dims))) }
  private func ints(_ values: Int64...) -> HostTensor { .int64s(values) }
  /// The type of a constant int64 vector input.
  private func vector(_ n: Int) -> TypeInfo { TypeInfo(.tensor(.int64, Shape(static: [n]))) }

  // MARK: Reshape

  func testReshapeCopiesZeroAndInfersMinusOne() throws {
    let out = try evaluate("Reshape", [iota([2, 3, 4]), ints(0, -1)])[0]
    XCTAssertEqual(out.shape, [2, 12])
    XCTAssertEqual(out.doubles, iota([24]).doubles)
  }

  func testReshapeAllowZeroKeepsAZeroDim() throws {
    let empty = floats([0, 3], [])
    XCTAssertEqual(try evaluate("Reshape", [empty, ints(3, 0)], [Attribute("allowzero", .int(1))])[0].shape, [3, 0])
    // Without allowzero the 0 copies the input's 3.
    XCTAssertEqual(try evaluate("Reshape", [empty, ints(-1, 0)])[0].shape, [0, 3])
  }

  func testReshapeInfersMinusOneAcrossSymbols() throws {
    let heads = try infer("Reshape", [float("b", "s", 4096), vector(4)], constants: [nil, ints(0, 0, 32, -1)])
    XCTAssertEqual(heads, [float("b", "s", 32, 128)])
    let merged = try infer("Reshape", [float("b", 32, 128), vector(2)], constants: [nil, ints(-1, 4096)])
    XCTAssertEqual(merged, [float("b", 4096)])
    // A non-constant target still gives the rank.
    XCTAssertEqual(try infer("Reshape", [float("b", 8), vector(3)]), [float(.unknown, .unknown, .unknown)])
  }

  // MARK: Slice

  func testSliceNegativeStepClampsToTheStart() throws {
    let out = try evaluate("Slice", [iota([10]), ints(-1), ints(.min), ints(0), ints(-3)])[0]
    XCTAssertEqual(out.doubles, [9, 6, 3, 0])
    let past = try evaluate("Slice", [iota([10]), ints(20), ints(-20), ints(0), ints(-4)])[0]
    XCTAssertEqual(past.doubles, [9, 5, 1])
  }

  func testSliceKeepsSymbolicDimsOnlyForAFullSlice() throws {
    let full = try infer(
      "Slice", [float("b", "s", 8), vector(2), vector(2), vector(2)],
      constants: [nil, ints(0, 2), ints(.max, .max), ints(1, 2)])
    XCTAssertEqual(full, [float("b", "s", 6)])
    let tail = try infer(
      "Slice", [float("b", "s", 8), vector(1), vector(1), vector(1)], constants: [nil, ints(-1), ints(.max), ints(1)])
    XCTAssertEqual(tail, [float("b", .unknown, 8)])
    // Run-time bounds on a constant axis leave the other axes alone.
    let dynamic = try infer(
      "Slice", [float("b", "s", 8), vector(1), vector(1), vector(1)], constants: [nil, nil, nil, ints(-2)])
    XCTAssertEqual(dynamic, [float("b", .unknown, 8)])
  }

  // MARK: Squeeze and Unsqueeze

  func testSqueezeAndUnsqueezeAxesAsAttributeOrInput() throws {
    let x = iota([1, 3, 1])
    let squeezedOld = try evaluate("Squeeze", opset: 11, [x], [Attribute("axes", .ints([-1]))])[0]
    let squeezedNew = try evaluate("Squeeze", opset: 13, [x, ints(-1)])[0]
    XCTAssertEqual(squeezedOld.shape, [1, 3])
    XCTAssertEqual(squeezedNew.shape, [1, 3])
    XCTAssertEqual(try evaluate("Squeeze", opset: 13, [x, nil])[0].shape, [3])
    let unsqueezedOld = try evaluate("Unsqueeze", opset: 11, [x], [Attribute("axes", .ints([0, -1]))])[0]
    let unsqueezedNew = try evaluate("Unsqueeze", opset: 13, [x, ints(0, -1)])[0]
    XCTAssertEqual(unsqueezedOld.shape, [1, 1, 3, 1, 1])
    XCTAssertEqual(unsqueezedNew.shape, [1, 1, 3, 1, 1])
    XCTAssertThrowsError(try evaluate("Squeeze", opset: 13, [x, ints(1)]))
  }

  func testSqueezeWithoutAxesNeedsStaticDims() throws {
    XCTAssertEqual(try infer("Squeeze", opset: 13, [float("b", 1, 8)]), [TypeInfo(.tensor(.float, nil))])
    XCTAssertEqual(
      try infer("Unsqueeze", opset: 13, [float("b", 8), vector(1)], constants: [nil, ints(1)]), [float("b", 1, 8)])
  }

  // MARK: Split

  func testSplitNumOutputsMakesTheLastPartSmaller() throws {
    let parts = try evaluate("Split", opset: 18, [iota([7])], [Attribute("num_outputs", .int(3))], outputs: 3)
    XCTAssertEqual(parts.map(\.doubles), [[0, 1, 2], [3, 4, 5], [6]])
    let byInput = try evaluate(
      "Split", opset: 13, [iota([2, 5]), ints(2, 3)], [Attribute("axis", .int(1))], outputs: 2)
    XCTAssertEqual(byInput.map(\.shape), [[2, 2], [2, 3]])
    XCTAssertEqual(byInput[1].doubles, [2, 3, 4, 7, 8, 9])
    let byAttribute = try evaluate("Split", opset: 11, [iota([5])], [Attribute("split", .ints([4, 1]))], outputs: 2)
    XCTAssertEqual(byAttribute.map(\.shape), [[4], [1]])
  }

  func testSplitOfASymbolicAxis() throws {
    let parts = try infer(
      "Split", [float("b", 8), vector(2)], constants: [nil, ints(3, 5)], [Attribute("axis", .int(1))], outputs: 2)
    XCTAssertEqual(parts, [float("b", 3), float("b", 5)])
    let unknown = try infer("Split", [float("b", 8)], [Attribute("num_outputs", .int(2))], outputs: 2)
    XCTAssertEqual(unknown, [float(.unknown, 8), float(.unknown, 8)])
  }

  // MARK: Gather and GatherND

  func testGatherNDWithBatchDims() throws {
    let data = HostTensor(.int32, [2, 2, 2], ints: [0, 1, 2, 3, 4, 5, 6, 7])
    let indices = HostTensor(.int64, [2, 1], ints: [1, 0])
    let out = try evaluate("GatherND", [data, indices], [Attribute("batch_dims", .int(1))])[0]
    XCTAssertEqual(out.shape, [2, 2])
    XCTAssertEqual(out.int64s, [2, 3, 4, 5])
  }

  func testGatherOfAScalarIndexDropsTheAxis() throws {
    let shape = TypeInfo(.tensor(.int64, [4]))
    let scalar = TypeInfo(.tensor(.int64, []))
    XCTAssertEqual(try infer("Gather", [shape, scalar]), [TypeInfo(.tensor(.int64, []))])
    let out = try evaluate(
      "Gather", [iota([2, 3]), HostTensor(.int64, [2], ints: [-1, 0])], [Attribute("axis", .int(1))])[0]
    XCTAssertEqual(out.doubles, [2, 0, 5, 3])
  }

  // MARK: Concat and Shape

  func testConcatAddsSymbolicDims() throws {
    let out = try infer("Concat", [float("b", 8, "past"), float("b", 8, "seq")], [Attribute("axis", .int(-1))])
    XCTAssertEqual(out, [float("b", 8, "past + seq")])
    // A known size off the axis wins over an unknown one.
    let mixed = try infer("Concat", [float(.unknown, 2), float(4, 3), nil], [Attribute("axis", .int(1))])
    XCTAssertEqual(mixed, [float(4, .unknown)])
  }

  func testShapeStartAndEnd() throws {
    let out = try infer("Shape", opset: 15, [float("b", "s", 8)], [Attribute("start", .int(-2))])
    XCTAssertEqual(out, [TypeInfo(.tensor(.int64, [2]))])
    let values = try evaluate(
      "Shape", opset: 15, [iota([2, 3, 4])], [Attribute("start", .int(1)), Attribute("end", .int(-1))])
    XCTAssertEqual(values[0].int64s, [3])
  }

  // MARK: Cast, Pad, Expand

  func testCastTruncatesTowardZeroAndWraps() throws {
    let x = floats([4], [-1.7, 2.9, 0, 300])
    let to = { (t: DataType) in Attribute("to", .int(Int64(t.rawValue))) }
    XCTAssertEqual(try evaluate("Cast", [x], [to(.int32)])[0].int64s, [-1, 2, 0, 300])
    XCTAssertEqual(try evaluate("Cast", [x], [to(.uint8)])[0].int64s, [255, 2, 0, 44])
    XCTAssertEqual(try evaluate("Cast", [x], [to(.bool)])[0].int64s, [1, 1, 0, 1])
    XCTAssertThrowsError(try evaluate("Cast", [x], [to(.float8e4m3fn)]))
  }

  func testPadModes() throws {
    let x = iota([3])
    let pad = { (mode: String) in
      try self.evaluate("Pad", [x, self.ints(2, 3)], [Attribute("mode", .string(mode))])[0].doubles
    }
    XCTAssertEqual(try pad("constant"), [0, 0, 0, 1, 2, 0, 0, 0])
    XCTAssertEqual(try pad("edge"), [0, 0, 0, 1, 2, 2, 2, 2])
    XCTAssertEqual(try pad("reflect"), [2, 1, 0, 1, 2, 1, 0, 1])
    XCTAssertEqual(try pad("wrap"), [1, 2, 0, 1, 2, 0, 1, 2])
    // Negative pads crop; axes (opset 18) pick the padded axes.
    let cropped = try evaluate("Pad", [iota([2, 3]), ints(-1, 1), nil, ints(1)])[0]
    XCTAssertEqual(cropped.shape, [2, 3])
    XCTAssertEqual(cropped.doubles, [1, 2, 0, 4, 5, 0])
  }

  func testExpandKeepsSymbolsWhereTheTargetIsOne() throws {
    let out = try infer("Expand", [float("b", 1, 8), vector(4)], constants: [nil, ints(2, 1, 5, 1)])
    XCTAssertEqual(out, [float(2, "b", 5, 8)])
  }
}
