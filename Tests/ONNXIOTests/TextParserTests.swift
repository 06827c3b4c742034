import Foundation
import ONNXProto
import SwiftProtobuf
import XCTest

@testable import ONNXIO

/// Expected protos are what `onnx.parser` (onnx 1.23.2) builds for the same text;
/// Tests/python/test_text_parser.py checks the rest against every node test.
final class TextParserTests: XCTestCase {
  let parser = TextParser(file: "test.onnxtxt")

  static let model = """
    <ir_version: 10, opset_import: ["" : 21, "local" : 1], producer_name: "tests",
     metadata_props: ["key" : "value"]>
    main (float[N, 4] x, float[4] w = {1, 2, 3.5, -4}) => (float[N, 4] y, "out put")
       <int64[1] axes = {0}, float[N, 4] h>
    {
       h = Mul (x, w)
       y = local.Scale <alpha = 0.5> (h)
       ["last"] "out put" = ReduceSum <keepdims = 0> (y, axes)
    }
    <domain: "local", opset_import: ["" : 21]>
    Scale <alpha> (a) => (b) {
       s = Constant <value_float: float = @alpha> ()
       b = Mul (a, s)
    }
    """

  func testModelRoundTripsThroughThePrinter() throws {
    let parsed = try parser.parseModel(Self.model)
    XCTAssertEqual(parsed.irVersion, 10)
    XCTAssertEqual(parsed.opsetImport.map(\.domain), ["", "local"])
    XCTAssertEqual(parsed.graph.input.map(\.name), ["x", "w"])
    XCTAssertEqual(parsed.graph.initializer.map(\.name), ["w", "axes"])
    XCTAssertEqual(parsed.graph.initializer[0].floatData, [1, 2, 3.5, -4])
    XCTAssertEqual(parsed.graph.valueInfo.map(\.name), ["h"])
    XCTAssertEqual(parsed.graph.node.map(\.opType), ["Mul", "Scale", "ReduceSum"])
    XCTAssertEqual(parsed.graph.node[2].name, "last")
    XCTAssertEqual(parsed.functions.map(\.name), ["Scale"])

    // (Without function attribute defaults, which onnx's printer leaves out.)
    let text = TextPrinter(options: .init(elideTensorsAbove: nil)).print(parsed)
    XCTAssertEqual(try parser.parseModel(text), parsed)
  }

  /// Byte for byte what onnx.parser.parse_node serializes, presence of empty fields included.
  func testNodeSerializesLikeOnnx() throws {
    let node = try parser.parseNode(
      #"[n] y = com.microsoft.Foo:ov <a = 1, b = [1.5, 2], t = int64[2] {3, -4}> (x, "")"#)
    XCTAssertEqual(
      try hex(node),
      "0a01780a001201791a016e2203466f6f2a080a01611801a001022a100a01623d0000c03f3d00000040a001062a1b0a01742a"
        + "13080210073a0b03fcffffffffffffffff014200a001043a0d636f6d2e6d6963726f736f667442026f76")
    let graph = try parser.parseGraph("g (float x) => (float[N] y) { y = Identity (x) }")
    XCTAssertTrue(graph.node[0].hasDomain, "onnx sets an empty domain on every node")
    XCTAssertEqual(
      try hex(graph),
      "0a120a017812017922084964656e746974793a001201675a0b0a017812060a040801120062100a0179120b0a09080112050a0312014e")
  }

  /// Golden files carry FileCheck lines as comments.
  func testCommentsAreWhitespace() throws {
    let commented = """
      # CHECK: main
      main (float x) # inputs
        => (float y) # outputs
      {
         # CHECK-NEXT: y = Neg
         y = Neg (x) # trailing
      } # end
      """
    let plain = "main (float x) => (float y) { y = Neg (x) }"
    XCTAssertEqual(try parser.parseGraph(commented), try parser.parseGraph(plain))
  }

  func testErrorGivesLineColumnAndWhatWasExpected() {
    let text = "main (float x) => (float y) {\n   y = Neg (x\n}\n"
    XCTAssertThrowsError(try parser.parseModel(text)) { error in
      guard let error = error as? TextParser.ParseError else { return XCTFail("\(error)") }
      XCTAssertEqual([error.line, error.column], [3, 1])
      XCTAssertEqual(error.description, "test.onnxtxt:3:1: error: expected ')', found '}'")
    }
    XCTAssertThrowsError(try parser.parseNode("y = Foo <a: ints = 1> (x)")) { error in
      XCTAssertEqual("\(error)", "test.onnxtxt:1:20: error: expected a value of type ints, found a value of type int")
    }
  }

  func testSubGraphAttribute() throws {
    let node = try parser.parseNode(
      """
      z = If (cond) <
          then_branch = then_g () => (float[N] a) { a = Identity (x) },
          else_branch: graph = else_g () => (float[N] b) <float[1] one = {1}> { b = Sub (x, one) }>
      """)
    XCTAssertEqual(node.attribute.map(\.name), ["then_branch", "else_branch"])
    XCTAssertEqual(node.attribute.map(\.type), [.graph, .graph])
    let elseBranch = node.attribute[1].g
    XCTAssertEqual(elseBranch.name, "else_g")
    XCTAssertEqual(elseBranch.initializer.map(\.name), ["one"])
    XCTAssertEqual(elseBranch.node.map(\.opType), ["Sub"])
    XCTAssertEqual(elseBranch.output[0].type.tensorType.shape.dim.map(\.dimParam), ["N"])
  }

  func testFunctionWithAttributeReferences() throws {
    let function = try parser.parseFunction(
      """
      <domain: "local", opset_import: ["" : 21], overload: "v2">
      Scale <alpha: float = 0.5, beta> (float[N] a, b) => (c) {
         s = Constant <value_float: float = @alpha> ()
         t = Constant <value_ints = @beta> ()
         c = Mul (a, s)
      }
      """)
    XCTAssertEqual(function.overload, "v2")
    XCTAssertEqual(function.attribute, ["beta"])
    XCTAssertEqual(function.attributeProto.map(\.name), ["alpha"])
    XCTAssertEqual(function.attributeProto[0].f, 0.5)
    XCTAssertEqual(function.input, ["a", "b"])
    XCTAssertEqual(function.valueInfo.map(\.name), ["a"], "only typed inputs get a value-info")
    let alpha = function.node[0].attribute[0]
    XCTAssertEqual(alpha.refAttrName, "alpha")
    XCTAssertEqual(alpha.type, .float)
    let beta = function.node[1].attribute[0]
    XCTAssertEqual(beta.refAttrName, "beta")
    XCTAssertFalse(beta.hasType, "an untyped reference has no type, as in onnx")
  }

  /// parser.cc drops the error of a function's attribute default and keeps what it parsed.
  func testFunctionDefaultErrorIsIgnoredAsInOnnx() throws {
    let function = try parser.parseFunction("f <a: int = \"x\", b> (x) => (y) {}")
    XCTAssertEqual(function.attribute, ["b"])
    XCTAssertEqual(function.attributeProto[0].type, .string)
    XCTAssertEqual(function.attributeProto[0].s, Data("x".utf8))
  }

  /// Every prefix of a valid model, and a few mangled ones, parses or throws ParseError.
  func testTruncatedAndMangledTextsThrowParseErrors() {
    let bytes = Array(Self.model.utf8)
    var rejected = 0
    for end in 0..<bytes.count {
      let prefix = String(decoding: bytes[..<end], as: UTF8.self)
      for text in [prefix, prefix + "\"", prefix + "]>)}", prefix + "-", prefix + "@"] {
        do {
          _ = try parser.parseModel(text)
        } catch is TextParser.ParseError {
          rejected += 1
        } catch {
          XCTFail("\(error)")
        }
      }
    }
    XCTAssertGreaterThan(rejected, bytes.count * 4)
  }

  private func hex(_ message: some SwiftProtobuf.Message) throws -> String {
    let bytes: [UInt8] = try message.serializedBytes()
    return bytes.map { String(format: "%02x", $0) }.joined()
  }
}
