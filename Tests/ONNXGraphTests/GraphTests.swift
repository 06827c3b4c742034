import XCTest

@testable import ONNXGraph

final class GraphTests: XCTestCase {
  /// x -> Relu -> a -> Neg -> y, with x a graph input.
  func makeChain() -> (Graph, Value, Node, Node) {
    let x = Value(name: "x", type: .tensor(.float, [2, 3]))
    let g = Graph(name: "g", inputs: [x])
    let relu = Node("Relu", inputs: [x], outputNames: ["a"])
    let neg = Node("Neg", inputs: [relu.outputs[0]], outputNames: ["y"])
    g.append(relu)
    g.append(neg)
    g.outputs = [neg.outputs[0]]
    return (g, x, relu, neg)
  }

  func testUseListsFollowInputs() {
    let (_, x, relu, neg) = makeChain()
    XCTAssertEqual(x.uses.count, 1)
    XCTAssertTrue(x.uses[0].node === relu)
    XCTAssertTrue(relu.outputs[0].producer === relu)
    XCTAssertTrue(relu.outputs[0].consumers[0] === neg)

    neg.inputs[0] = x
    XCTAssertEqual(x.uses.count, 2)
    XCTAssertTrue(relu.outputs[0].uses.isEmpty)
    XCTAssertEqual(x.uses.map(\.index), [0, 0])
  }

  func testReplaceAllUsesMovesConsumersAndGraphOutputs() {
    let (g, x, relu, neg) = makeChain()
    let a = relu.outputs[0]
    g.replaceAllUses(of: a, with: x)
    XCTAssertTrue(neg.inputs[0] === x)
    XCTAssertTrue(a.uses.isEmpty)
    g.replaceAllUses(of: neg.outputs[0], with: x)
    XCTAssertTrue(g.outputs[0] === x)
  }

  func testInsertRemoveKeepsOrder() {
    let (g, x, relu, neg) = makeChain()
    let id = Node("Identity", inputs: [x], outputNames: ["i"])
    g.insert(id, before: neg)
    XCTAssertEqual(g.nodes.map(\.opType), ["Relu", "Identity", "Neg"])
    g.remove(relu)
    XCTAssertEqual(g.nodes.map(\.opType), ["Identity", "Neg"])
    XCTAssertEqual(g.nodeCount, 2)
    XCTAssertEqual(x.uses.count, 1, "removing a node drops its uses")
    let first = Node("Abs", inputs: [x], outputNames: ["b"])
    g.insert(first, after: nil)
    XCTAssertTrue(g.firstNode === first)
    XCTAssertTrue(g.lastNode === neg)
  }

  func testIterationSurvivesRemovingTheCurrentNode() {
    let (g, _, _, _) = makeChain()
    for n in g.nodes { g.remove(n) }
    XCTAssertEqual(g.nodeCount, 0)
    XCTAssertNil(g.firstNode)
  }

  func testReleasingAMillionNodeGraphDoesNotOverflowTheStack() {
    var g: Graph? = Graph()
    var v = Value(name: "x")
    for i in 0..<1_000_000 {
      let n = Node("Neg", inputs: [v], outputNames: ["v\(i)"])
      g!.append(n)
      v = n.outputs[0]
    }
    XCTAssertEqual(g!.nodeCount, 1_000_000)
    g = nil  // would recurse a million deep through `next` without the iterative deinit
  }

  func testShapeAndDataTypeHelpers() {
    let s: Shape = ["batch", 8, .unknown]
    XCTAssertFalse(s.isStatic)
    XCTAssertEqual(s.description, "[batch,8,?]")
    XCTAssertEqual(Shape(static: [2, 3]).elementCount, 6)
    XCTAssertEqual(DataType.float16.byteCount(elements: 3), 6)
    XCTAssertEqual(DataType.int4.byteCount(elements: 3), 2)
    XCTAssertNil(DataType.string.byteCount(elements: 3))
    XCTAssertEqual(DataType(rawValue: 99).name, "dtype99")
  }

  func testModelSummaryCountsSubgraphsAndWeights() {
    let (g, x, _, _) = makeChain()
    let w = Value(name: "w")
    g.addInitializer(w, Tensor(name: "w", dataType: .float, dims: [2, 2], raw: Data(count: 16)))
    let thenG = Graph(name: "then")
    thenG.append(Node("Identity", inputs: [x], outputNames: ["t"]))
    let cond = Value(name: "c")
    g.append(Node("If", inputs: [cond], outputNames: ["r"], attributes: [Attribute("then_branch", .graph(thenG))]))
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    let s = ModelSummary(m)
    XCTAssertEqual(s.nodes, 3)
    XCTAssertEqual(s.nestedNodes, 1)
    XCTAssertEqual(s.parameters, 4)
    XCTAssertEqual(s.weightBytes, 16)
    XCTAssertEqual(Dictionary(uniqueKeysWithValues: s.opTypes.map { ($0.op, $0.count) })["Identity"], 1)
  }
}
