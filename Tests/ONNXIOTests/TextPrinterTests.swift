import Foundation
import ONNXProto
import SwiftProtobuf
import XCTest

@testable import ONNXIO

/// Each expected text is `onnx.printer.to_text` (onnx 1.23.2) of the same proto built with
/// `onnx.helper`; Tests/python/compare_printer.py checks the rest against every node test.
final class TextPrinterTests: XCTestCase {
  let full = TextPrinter(options: .init(elideTensorsAbove: nil))

  func testNodeWithEveryScalarAttributeKind() {
    // helper.make_node sorts keyword attributes by name; the attribute reference comes last.
    let node = Onnx_NodeProto.with {
      $0.name = "my node"
      $0.domain = "com.acme"
      $0.opType = "Foo"
      $0.input = ["x", ""]
      $0.output = ["y"]
      $0.attribute = [
        attribute("f", .float) { $0.f = 1e-5 },
        attribute("floats", .floats) { $0.floats = [0.5, 1e10, 123_456_792] },
        attribute("i", .int) { $0.i = -3 },
        attribute("ints", .ints) { $0.ints = [1, -2] },
        attribute("s", .string) { $0.s = Data(#"say "hi" \o/"#.utf8) },
        attribute("strings", .strings) { $0.strings = [Data("a".utf8), Data("b".utf8)] },
        attribute("t", .tensor) { $0.t = tensor(.int32, [2]) { $0.int32Data = [1, 2] } },
        attribute("alpha", .float) { $0.refAttrName = "a" },
      ]
    }
    XCTAssertEqual(
      full.print(node),
      #"   ["my node"] y = com.acme.Foo <f: float = 1e-05, floats: floats = [0.5, 1e+10, 123456792], i: int = -3, "#
        + #"ints: ints = [1, -2], s: string = "say \"hi\" \\o/", strings: strings = ["a", "b"], "#
        + #"t: tensor = int32[2] {1,2}, alpha: float = @a> (x, "")"# + "\n")
  }

  /// printer.cc ends a graph's signature line with a space where initializers follow (`\u{20}`).
  func testGraphWithInitializersTypesAndSubgraphs() {
    let thenBranch = Onnx_GraphProto.with {
      $0.name = "then_b"
      $0.node = [node("Neg", ["x"], ["t"])]
      $0.output = [valueInfo("t", tensorType(.float, []))]
    }
    let elseBranch = Onnx_GraphProto.with {
      $0.name = "else_b"
      $0.node = [node("Identity", ["x"], ["e"])]
      $0.output = [valueInfo("e", tensorType(.float, []))]
      $0.initializer = [tensor(.int64, [], name: "k") { $0.int64Data = [7] }]
    }
    let optionalFloats = Onnx_TypeProto.with { $0.optionalType.elemType = tensorType(.float, nil) }
    let graph = Onnx_GraphProto.with {
      $0.name = "main"
      $0.node = [
        node("If", ["c"], ["y"]) {
          $0.attribute = [
            attribute("else_branch", .graph) { $0.g = elseBranch },
            attribute("then_branch", .graph) { $0.g = thenBranch },
          ]
        }
      ]
      $0.input = [valueInfo("x", tensorType(.float, ["N", nil, 3])), valueInfo("c", tensorType(.bool, []))]
      $0.output = [valueInfo("y", tensorType(.float, nil))]
      $0.initializer = [
        tensor(.float, [2], name: "w.0") { $0.rawData = rawBytes([Float(1.5), -0.25]) },
        tensor(.string, [2], name: "names") { $0.stringData = [Data("a".utf8), Data(#"q""#.utf8)] },
      ]
      $0.valueInfo = [
        valueInfo("s", .with { $0.sequenceType.elemType = tensorType(.int64, [2]) }),
        valueInfo(
          "m",
          .with {
            $0.mapType.keyType = Int32(Onnx_TensorProto.DataType.string.rawValue)
            $0.mapType.valueType = optionalFloats
          }),
      ]
    }
    XCTAssertEqual(
      full.print(graph),
      """
      main (float[N,?,3] x, bool c) => (float[] y)\u{20}
         <float[2] "w.0" =  {1.5,-0.25}, string[2] names = {"a", "q\\""}, seq(int64[2]) s, \
      map(string, optional(float[])) m>
      {
         y = If (c) <else_branch: graph = else_b () => (float e)\u{20}
            <int64 k =  {7}>
      {
            e = Identity (x)
         }, then_branch: graph = then_b () => (float t) {
            t = Neg (x)
         }>
      }
      """)
  }

  func testModelHeaderAndLocalFunction() {
    let scale = Onnx_FunctionProto.with {
      $0.domain = "local"
      $0.name = "Scale"
      $0.input = ["x"]
      $0.output = ["y"]
      $0.attribute = ["alpha"]
      $0.opsetImport = [opset("", 21)]
      $0.node = [
        node("Constant", [], ["a"]) { $0.attribute = [attribute("value_float", .float) { $0.refAttrName = "alpha" }] },
        node("Mul", ["x", "a"], ["y"]),
      ]
    }
    let model = Onnx_ModelProto.with {
      $0.irVersion = 10
      $0.opsetImport = [opset("", 21), opset("local", 1)]
      $0.producerName = "test"
      $0.modelVersion = 3
      $0.metadataProps = [.with { $0.key = "author"; $0.value = "me" }]
      $0.graph = .with {
        $0.name = "g"
        $0.node = [
          node("Scale", ["x"], ["y"]) {
            $0.domain = "local"
            $0.attribute = [attribute("alpha", .float) { $0.f = 2 }]
          }
        ]
        $0.input = [valueInfo("x", tensorType(.float, [2]))]
        $0.output = [valueInfo("y", tensorType(.float, [2]))]
      }
      $0.functions = [scale]
    }
    let function = """
      <
        domain: "local",
        opset_import: ["" : 21]
      >
      Scale <alpha>(x) => (y)
      {
         a = Constant <value_float: float = @alpha> ()
         y = Mul (x, a)
      }
      """
    XCTAssertEqual(full.print(scale), function)
    XCTAssertEqual(
      full.print(model),
      """
      <
         ir_version: 10,
         opset_import: ["" : 21, "local" : 1],
         producer_name: "test",
         model_version: 3,
         metadata_props: ["author": "me"]
      >
      g (float[2] x) => (float[2] y) {
         y = local.Scale <alpha: float = 2> (x)
      }

      """ + function)
  }

  /// std::to_chars: shortest round-trip digits, fixed or scientific by length, exact digits for
  /// whole numbers longer than their shortest form.
  func testNumbersAsToChars() {
    let doubles = node("Constant", [], ["d"]) {
      $0.attribute = [
        attribute("value", .tensor) {
          $0.t = tensor(.double, [6], name: "d") {
            $0.doubleData = [1e21, 1.2345678901234567e21, 0.3, .leastNonzeroMagnitude, .nan, -0.0]
          }
        }
      ]
    }
    XCTAssertEqual(
      full.print(doubles),
      "   d = Constant <value: tensor = double[6] d {1e+21,1234567890123456774144,0.3,5e-324,nan,-0}> ()\n")
    let floats = node("F", [], ["o"]) {
      $0.attribute = [
        attribute("v", .floats) {
          $0.floats = [1e5, 1e-4, 0.001234, 123_456_792, 1e16, -.infinity, .greatestFiniteMagnitude]
        }
      ]
    }
    XCTAssertEqual(
      full.print(floats), "   o = F <v: floats = [1e+05, 1e-04, 0.001234, 123456792, 1e+16, -inf, 3.4028235e+38]> ()\n")
    XCTAssertEqual(ShortestDecimal.text(-Float.nan), "-nan")
  }

  /// Elided tensors print type, shape and ` {...}` and are never decoded: the loader may leave a
  /// 16-byte marker, or nothing, in place of their bytes.
  func testElisionReadsOnlyTypeAndShape() {
    let marker = Data([0x00, 0x6F, 0x6E, 0x6E, 0x78, 0x72, 0x77, 0xA5] + [UInt8](repeating: 0, count: 8))
    let graph = Onnx_GraphProto.with {
      $0.name = "g"
      $0.initializer = [
        tensor(.float, [64, 64], name: "w") { $0.rawData = marker },
        tensor(.int64, [33], name: "absent"),
        tensor(.int64, [2], name: "small") { $0.rawData = rawBytes([Int64(3), -1]) },
      ]
      $0.node = [
        node("Constant", [], ["c"]) {
          $0.attribute = [attribute("value", .tensor) { $0.t = tensor(.float16, [8, 8]) { $0.rawData = marker } }]
        }
      ]
    }
    XCTAssertEqual(
      TextPrinter(options: .init(elideTensorsAbove: 32)).print(graph),
      """
      g () => ()\u{20}
         <float[64,64] w =  {...}, int64[33] absent =  {...}, int64[2] small =  {3,-1}>
      {
         c = Constant <value: tensor = float16[8,8] {...}> ()
      }
      """)
    // Unelided, a raw_data that does not fit the dims prints as `...` where printer.cc throws.
    XCTAssertEqual(
      full.print(graph).split(separator: "\n")[1],
      "   <float[64,64] w = ..., int64[33] absent =  {}, int64[2] small =  {3,-1}>")
  }

  // MARK: Builders

  private func attribute(
    _ name: String, _ type: Onnx_AttributeProto.AttributeType, _ body: (inout Onnx_AttributeProto) -> Void
  ) -> Onnx_AttributeProto {
    var a = Onnx_AttributeProto.with {
      $0.name = name
      $0.type = type
    }
    body(&a)
    return a
  }

  private func node(
    _ opType: String, _ inputs: [String], _ outputs: [String], _ body: (inout Onnx_NodeProto) -> Void = { _ in }
  ) -> Onnx_NodeProto {
    var n = Onnx_NodeProto.with {
      $0.opType = opType
      $0.input = inputs
      $0.output = outputs
    }
    body(&n)
    return n
  }

  private func tensor(
    _ type: Onnx_TensorProto.DataType, _ dims: [Int64], name: String? = nil,
    _ body: (inout Onnx_TensorProto) -> Void = { _ in }
  ) -> Onnx_TensorProto {
    var t = Onnx_TensorProto.with {
      $0.dataType = Int32(type.rawValue)
      $0.dims = dims
      if let name { $0.name = name }
    }
    body(&t)
    return t
  }

  /// A tensor type; nil dims leave the shape out (unknown rank), a nil dim is unknown (`?`).
  private func tensorType(_ type: Onnx_TensorProto.DataType, _ dims: [Dim?]?) -> Onnx_TypeProto {
    .with {
      $0.tensorType.elemType = Int32(type.rawValue)
      if let dims {
        $0.tensorType.shape = .with { shape in
          shape.dim = dims.map { dim in
            .with {
              switch dim {
              case .value(let v): $0.dimValue = v
              case .param(let p): $0.dimParam = p
              case nil: break
              }
            }
          }
        }
      }
    }
  }

  private func valueInfo(_ name: String, _ type: Onnx_TypeProto) -> Onnx_ValueInfoProto {
    .with {
      $0.name = name
      $0.type = type
    }
  }

  private func opset(_ domain: String, _ version: Int64) -> Onnx_OperatorSetIdProto {
    .with {
      $0.domain = domain
      $0.version = version
    }
  }

  private func rawBytes(_ values: [Float]) -> Data {
    values.map(\.bitPattern.littleEndian).withUnsafeBytes { Data($0) }
  }

  private func rawBytes(_ values: [Int64]) -> Data {
    values.map(\.littleEndian).withUnsafeBytes { Data($0) }
  }
}

/// A dimension written as a literal: `3`, `"N"`.
private enum Dim: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
  case value(Int64)
  case param(String)

  init(integerLiteral value: Int64) { self = .value(value) }
  init(stringLiteral value: String) { self = .param(value) }
}
