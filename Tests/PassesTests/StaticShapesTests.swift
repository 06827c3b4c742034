import Evaluation
import Foundation
import ONNXGraph
import XCTest

@testable import Passes

final class StaticShapesTests: XCTestCase {
  func int64s(_ name: String, _ v: [Int64]) -> Tensor {
    Tensor(name: name, dataType: .int64, dims: [v.count], raw: v.withUnsafeBytes { Data($0) })
  }

  /// The TorchScript idiom: y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 4])).
  func makeModel() -> (Model, Graph) {
    let x = Value(name: "x", type: .tensor(.float, ["batch_size", "sequence_length", 8]))
    let g = Graph(name: "g", inputs: [x])
    let idx = g.addInitializer(Value(name: "idx"), Tensor(name: "idx", dataType: .int64, dims: [], raw: withUnsafeBytes(of: Int64(0)) { Data($0) }))
    let axes = g.addInitializer(Value(name: "axes"), int64s("axes", [0]))
    let tail = g.addInitializer(Value(name: "tail"), int64s("tail", [-1, 4]))
    let shape = Node("Shape", inputs: [x], outputNames: ["s"])
    let gather = Node("Gather", inputs: [shape.outputs[0], idx], outputNames: ["b"], attributes: [Attribute("axis", .int(0))])
    let unsq = Node("Unsqueeze", inputs: [gather.outputs[0], axes], outputNames: ["b1"])
    let concat = Node("Concat", inputs: [unsq.outputs[0], tail], outputNames: ["target"], attributes: [Attribute("axis", .int(0))])
    let reshape = Node("Reshape", inputs: [x, concat.outputs[0]], outputNames: ["y"])
    let relu = Node("Relu", inputs: [reshape.outputs[0]], outputNames: ["z"])
    for n in [shape, gather, unsq, concat, reshape, relu] { g.append(n) }
    g.outputs = [relu.outputs[0]]
    return (Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g), g)
  }

  func testFoldsShapeArithmeticForBoundDims() throws {
    let (m, g) = makeModel()
    var o = PassOptions()
    o.dimBindings = ["batch_size": 2, "sequence_length": 3]
    var remarks: [String] = []
    o.report = { remarks.append($0) }
    _ = try StaticShapes().run(on: m, options: o)
    XCTAssertEqual(g.nodes.map(\.opType), ["Reshape", "Relu"])
    let reshape = try XCTUnwrap(g.nodes.first { $0.opType == "Reshape" })
    XCTAssertEqual(try reshape.inputs[1]?.constValue.map { try HostTensor($0).int64s }, [2, -1, 4])
    XCTAssertEqual(g.outputs[0].shape, Shape(static: [2, 6, 4]))
    XCTAssertEqual(g.inputs[0].shape, Shape(static: [2, 3, 8]))
    XCTAssertEqual(g.valueInfos.map(\.name), ["y"])
    XCTAssertEqual(g.initializers.keys.elements, ["target"], "unused constants are dropped")
    XCTAssertTrue(remarks.first?.contains("nodes 6 -> 2") == true, "\(remarks)")
  }

  func testInputShapeBindsAWholeInput() throws {
    let (m, g) = makeModel()
    var o = PassOptions()
    o.inputShapes = ["x": [1, 5, 8]]
    _ = try StaticShapes().run(on: m, options: o)
    XCTAssertEqual(g.outputs[0].shape, Shape(static: [1, 10, 4]))
  }

  func testBadBindingsNameTheProblem() throws {
    func fails(_ configure: (inout PassOptions) -> Void, _ fragment: String, line: UInt = #line) {
      let (m, _) = makeModel()
      var o = PassOptions()
      configure(&o)
      XCTAssertThrowsError(try StaticShapes().run(on: m, options: o), line: line) { e in
        XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
      }
    }
    fails({ $0.inputShapes = ["nope": [1]] }, "nope: static-shape: not a graph input")
    fails({ $0.dimBindings = ["seq": 3] }, "no input has a dimension named 'seq'")
    fails({ $0.inputShapes = ["x": [1, 2]] }, "gives rank 2")
    fails({ $0.inputShapes = ["x": [1, 2, 9]] }, "contradicts the static shape [batch_size,sequence_length,8]")
  }

  func testStrictRejectsWhatStaysDynamic() throws {
    let (m, _) = makeModel()
    var o = PassOptions()
    o.dimBindings = ["batch_size": 2]  // sequence_length stays symbolic
    o.strict = true
    XCTAssertThrowsError(try StaticShapes().run(on: m, options: o)) { e in
      XCTAssertTrue("\(e)".contains("shape is not static"), "\(e)")
    }
  }

  func testOversizedUniformFoldBecomesConstantOfShape() throws {
    let g = Graph(name: "g")
    let shape = g.addInitializer(Value(name: "shape"), int64s("shape", [64, 64]))
    let fill = Node("ConstantOfShape", inputs: [shape], outputNames: ["big"],
      attributes: [Attribute("value", .tensor(Tensor(dataType: .float, dims: [1], raw: withUnsafeBytes(of: Float(-3.0e38)) { Data($0) })))])
    let x = Value(name: "x", type: .tensor(.float, [64, 64]))
    g.inputs = [x]
    let add = Node("Add", inputs: [x, fill.outputs[0]], outputNames: ["y"])
    g.append(fill)
    g.append(add)
    g.outputs = [add.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    var o = PassOptions()
    o.foldLimitBytes = 1024
    _ = try StaticShapes().run(on: m, options: o)
    XCTAssertEqual(g.nodes.map(\.opType), ["ConstantOfShape", "Add"])
    XCTAssertEqual(g.outputs[0].shape, Shape(static: [64, 64]))
  }

  func testDeadCodeEliminationKeepsWhatSubgraphsRead() throws {
    let x = Value(name: "x", type: .tensor(.float, [2]))
    let c = Value(name: "c", type: .tensor(.bool, []))
    let g = Graph(name: "g", inputs: [x, c])
    let neg = Node("Neg", inputs: [x], outputNames: ["n"])
    let dead = Node("Abs", inputs: [x], outputNames: ["dead"])
    let body = Graph(name: "then")
    let id = Node("Identity", inputs: [neg.outputs[0]], outputNames: ["t"])
    body.append(id)
    body.outputs = [id.outputs[0]]
    let ifNode = Node("If", inputs: [c], outputNames: ["y"], attributes: [Attribute("then_branch", .graph(body)), Attribute("else_branch", .graph(body))])
    for n in [neg, dead, ifNode] { g.append(n) }
    g.outputs = [ifNode.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    XCTAssertTrue(try DeadCodeElimination().run(on: m, options: PassOptions()).modified)
    XCTAssertEqual(g.nodes.map(\.opType), ["Neg", "If"])
  }

  func testEliminateIdentityRewiresConsumers() throws {
    let x = Value(name: "x", type: .tensor(.float, [2]))
    let g = Graph(name: "g", inputs: [x])
    let id = Node("Identity", inputs: [x], outputNames: ["i"])
    let neg = Node("Neg", inputs: [id.outputs[0]], outputNames: ["n"])
    let id2 = Node("Identity", inputs: [neg.outputs[0]], outputNames: ["y"])
    for n in [id, neg, id2] { g.append(n) }
    g.outputs = [id2.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    _ = try EliminateIdentity().run(on: m, options: PassOptions())
    XCTAssertEqual(g.nodes.map(\.opType), ["Neg"])
    XCTAssertTrue(neg.inputs[0] === x)
    XCTAssertEqual(g.outputs[0].name, "y", "the graph output keeps its name")
    XCTAssertTrue(g.outputs[0] === neg.outputs[0])
  }
}

final class ControlFlowInferenceTests: XCTestCase {
  func testIfOutputsAgreeOnWhatBothBranchesGive() throws {
    let x = Value(name: "x", type: .tensor(.float, ["batch", 4]))
    let c = Value(name: "c", type: .tensor(.bool, []))
    let g = Graph(name: "g", inputs: [x, c])
    func branch(_ op: String) -> Graph {
      let b = Graph(name: op)
      let n = Node(op, inputs: [x], outputNames: [op.lowercased()])
      b.append(n)
      b.outputs = [n.outputs[0]]
      return b
    }
    let ifNode = Node(
      "If", inputs: [c], outputNames: ["y"],
      attributes: [Attribute("then_branch", .graph(branch("Relu"))), Attribute("else_branch", .graph(branch("Neg")))])
    g.append(ifNode)
    g.outputs = [ifNode.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    var o = PassOptions()
    o.dimBindings = ["batch": 3]
    _ = try StaticShapes().run(on: m, options: o)
    XCTAssertEqual(g.outputs[0].type, .tensor(.float, Shape(static: [3, 4])))
  }
}
