import Evaluation
import Foundation
import ONNXGraph
import XCTest

@testable import Rewrite

final class DriverTests: XCTestCase {
  func rules(_ text: String) throws -> [Rule] { try RuleParser.parse(file: "t.rules", text: text).rules }

  let transposePair = """
    rule transpose-pair {
      t = Transpose <perm = $p> ($x)
      y = Transpose <perm = $q> (t)
      where $q == inverse($p)
      replace y with $x
    }
    rule transpose-compose {
      t = Transpose <perm = $p> ($x)
      y = Transpose <perm = $q> (t)
      rewrite y { y = Transpose <perm = compose($p, $q)> ($x) }
    }
    """

  /// A chain of `count` transposes by [1, 0, 2] after x, read by a Relu.
  func transposeChain(_ count: Int) -> (Graph, Value) {
    let x = Value(name: "x", type: .tensor(.float, [2, 3, 4]))
    let g = Graph(name: "g", inputs: [x])
    var v = x
    for i in 0..<count {
      let n = Node("Transpose", inputs: [v], outputNames: ["t\(i)"], attributes: [Attribute("perm", .ints([1, 0, 2]))])
      g.append(n)
      v = n.outputs[0]
    }
    let relu = Node("Relu", inputs: [v], outputNames: ["y"])
    g.append(relu)
    g.outputs = [relu.outputs[0]]
    return (g, x)
  }

  func testChainsFoldToAFixedPoint() throws {
    for count in [2, 3, 7, 8] {
      let (g, x) = transposeChain(count)
      try RewriteDriver(rules: rules(transposePair)).run(on: g)
      sweep(g)
      let ops = g.nodes.map(\.opType)
      XCTAssertEqual(ops, count % 2 == 0 ? ["Relu"] : ["Transpose", "Relu"], "chain of \(count)")
      if count % 2 == 0 { XCTAssertTrue(g.lastNode?.inputs[0] === x) }
    }
  }

  func testCommutativeOperandsMatchEitherOrder() throws {
    let r = try rules("""
      rule add-zero {
        y = Add ($x, $z)
        where is_constant($z), values($z) == [0.0]
        replace y with $x
      }
      """)
    for zeroFirst in [false, true] {
      let x = Value(name: "x", type: .tensor(.float, [2]))
      let g = Graph(name: "g", inputs: [x])
      let zero = g.addInitializer(Value(name: "zero"), HostTensor(.float, [1], floats: [0]).tensor(name: "zero"))
      let add = Node("Add", inputs: zeroFirst ? [zero, x] : [x, zero], outputNames: ["a"])
      let neg = Node("Neg", inputs: [add.outputs[0]], outputNames: ["y"])
      g.append(add)
      g.append(neg)
      g.outputs = [neg.outputs[0]]
      try RewriteDriver(rules: r).run(on: g)
      XCTAssertTrue(neg.inputs[0] === x, "zero first: \(zeroFirst)")
    }
  }

  func testVariadicOperandsBindTheRestAndExpandInARewrite() throws {
    let r = try rules("""
      rule sum3-to-max {
        y = Sum ($first, $xs...)
        where len($xs) == 2
        rewrite y { y = Max ($first, $xs...) }
      }
      """)
    let inputs = (0..<3).map { Value(name: "x\($0)", type: .tensor(.float, [2])) }
    let g = Graph(name: "g", inputs: inputs)
    let three = Node("Sum", inputs: inputs, outputNames: ["three"])
    let two = Node("Sum", inputs: Array(inputs.prefix(2)), outputNames: ["two"])
    g.append(three)
    g.append(two)
    g.outputs = [three.outputs[0], two.outputs[0]]
    try RewriteDriver(rules: r).run(on: g)
    XCTAssertEqual(g.nodes.map(\.opType), ["Max", "Sum"])
    XCTAssertTrue(zip(g.firstNode!.inputs, inputs).allSatisfy { $0 === $1 })
    XCTAssertTrue(g.outputs[0].producer === g.firstNode, "the root's value is kept")
  }

  func testMultiOutputSourcesBindEachOutput() throws {
    // Concat of every half of a Split, in order and on the same axis, is the input.
    let r = try rules("""
      rule split-concat {
        a, b = Split <axis = $axis> ($x, _)
        y = Concat <axis = $axis> (a, b)
        where outputs(a) == 2
        replace y with $x
      }
      """)
    let x = Value(name: "x", type: .tensor(.float, [4, 2]))
    let g = Graph(name: "g", inputs: [x])
    let split = Node("Split", inputs: [x], outputNames: ["a", "b"], attributes: [Attribute("axis", .int(0))])
    let concat = Node("Concat", inputs: split.outputs, outputNames: ["y"], attributes: [Attribute("axis", .int(0))])
    let swapped = Node("Concat", inputs: split.outputs.reversed(), outputNames: ["z"], attributes: [Attribute("axis", .int(0))])
    let relu = Node("Relu", inputs: [concat.outputs[0]], outputNames: ["r"])
    for n in [split, concat, swapped, relu] { g.append(n) }
    g.outputs = [relu.outputs[0], swapped.outputs[0]]
    try RewriteDriver(rules: r).run(on: g)
    XCTAssertTrue(relu.inputs[0] === x)
    XCTAssertTrue(swapped.inputs[0] === split.outputs[1], "b, a is not the input: left alone")
  }

  func testRewriteWithSeveralTargetsKeepsTheGraphSorted() throws {
    // Two readers of x whose results both come from one new node; q has a reader (r)
    // before the root k, so the new node must end up before r.
    let r = try rules("""
      rule pair {
        q = Neg ($x)
        k = Abs ($x)
        rewrite q, k {
          s = Sigmoid ($x)
          q, k = Split <axis = 0> (s, const([1, 1]))
        }
      }
      """)
    let x = Value(name: "x", type: .tensor(.float, [2]))
    let g = Graph(name: "g", inputs: [x])
    let q = Node("Neg", inputs: [x], outputNames: ["q"])
    let reader = Node("Relu", inputs: [q.outputs[0]], outputNames: ["r"])
    let k = Node("Abs", inputs: [x], outputNames: ["k"])
    let add = Node("Add", inputs: [reader.outputs[0], k.outputs[0]], outputNames: ["y"])
    for n in [q, reader, k, add] { g.append(n) }
    g.outputs = [add.outputs[0]]
    try RewriteDriver(rules: r).run(on: g)
    sweep(g)
    XCTAssertEqual(g.nodes.map(\.opType), ["Sigmoid", "Split", "Relu", "Add"])
    XCTAssertTrue(reader.inputs[0] === q.outputs.first.map { _ in g.nodes.first { $0.opType == "Split" }!.outputs[0] })
    XCTAssertEqual(g.nodes.first { $0.opType == "Split" }?.outputs.map(\.name), ["q", "k"])
  }

  func testConstantHelpersSliceAndType() throws {
    let t = HostTensor(.float, [2, 3], floats: [1, 2, 3, 4, 5, 6])
    let g = Graph(name: "g")
    let ctx = HelperContext(graph: g)
    XCTAssertEqual(
      try RewriteHelpers.call("slice", [.tensor(t), .int(1), .int(1), .int(3)], ctx),
      .tensor(HostTensor(.float, [2, 2], floats: [2, 3, 5, 6])))
    let w = g.addInitializer(Value(name: "w"), t.tensor(name: "w"))
    XCTAssertEqual(try RewriteHelpers.call("dtype", [.value(w)], ctx), .string("float"))
    XCTAssertThrowsError(try RewriteHelpers.call("slice", [.tensor(t), .int(0), .int(1), .int(5)], ctx))
  }

  func testTopologicalSortIsStable() {
    let (g, _) = transposeChain(3)
    let before = g.nodes.map(\.description)
    XCTAssertTrue(g.sortTopologically())
    XCTAssertEqual(g.nodes.map(\.description), before)
  }

  func testMatchesInsideSubgraphs() throws {
    let (body, _) = transposeChain(2)
    let c = Value(name: "c", type: .tensor(.bool, []))
    let g = Graph(name: "main", inputs: [c])
    let ifNode = Node("If", inputs: [c], outputNames: ["r"], attributes: [Attribute("then_branch", .graph(body)), Attribute("else_branch", .graph(body))])
    g.append(ifNode)
    g.outputs = [ifNode.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    XCTAssertTrue(try RewriteDriver(rules: rules(transposePair)).run(on: m))
    sweep(body)
    XCTAssertEqual(body.nodes.map(\.opType), ["Relu"])
  }

  func testRulesThatUndoEachOtherStopWithAClearError() throws {
    let r = try rules("""
      rule neg-to-abs { y = Neg ($x) rewrite y { y = Abs ($x) } }
      rule abs-to-neg { y = Abs ($x) rewrite y { y = Neg ($x) } }
      """)
    let x = Value(name: "x", type: .tensor(.float, [2]))
    let g = Graph(name: "g", inputs: [x])
    let n = Node("Neg", inputs: [x], outputNames: ["y"])
    g.append(n)
    g.outputs = [n.outputs[0]]
    XCTAssertThrowsError(try RewriteDriver(rules: r).run(on: g)) { e in
      XCTAssertTrue("\(e)".contains("did not reach a fixed point"), "\(e)")
      XCTAssertTrue("\(e)".contains("neg-to-abs") && "\(e)".contains("abs-to-neg"), "\(e)")
    }
  }

  func testExplainSaysWhichConstraintFailed() throws {
    let (g, _) = transposeChain(2)
    g.firstNode!.following!.attributes = [Attribute("perm", .ints([0, 2, 1]))]
    let driver = RewriteDriver(rules: try rules(transposePair))
    driver.explain = "transpose-pair"
    try driver.run(on: g)
    XCTAssertTrue(
      driver.attempts.contains { $0.result.contains("constraint '$q == inverse($p)' is false ($q = [0,2,1], $p = [1,0,2])") },
      "\(driver.attempts)")
  }

  func testSameInputSameOutput() throws {
    func run() throws -> [String] {
      let (g, _) = transposeChain(9)
      try RewriteDriver(rules: rules(transposePair)).run(on: g)
      sweep(g)
      return g.nodes.map { "\($0)" + "\($0[attribute: "perm"]?.ints ?? [])" }
    }
    XCTAssertEqual(try run(), try run())
  }

  /// Dead-code sweep (the Passes module's dce, without depending on it).
  func sweep(_ g: Graph) {
    var n = g.lastNode
    while let node = n {
      n = node.previous
      if node.outputs.allSatisfy({ $0.uses.isEmpty && !g.outputs.contains($0) }) { g.remove(node) }
    }
  }
}

extension Array where Element == Value {
  func contains(_ v: Value) -> Bool { contains { $0 === v } }
}
