import Foundation
import ONNXGraph
import ONNXIO
import Passes
import Rewrite
import XCTest

/// The README's Swift API example, kept compiling and true.
final class ReadmeExampleTests: XCTestCase {
  func testReadmeExampleRunsOnTheLlamaFixture() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let input = root.appendingPathComponent("Fixtures/llama-ts/model.onnx").path
    let output = NSTemporaryDirectory() + "readme-\(UUID().uuidString).onnx"
    defer { try? FileManager.default.removeItem(atPath: output) }

    // --- as in README.md ---
    let model = try ModelLoader.load(path: input)  // weights stay memory-mapped
    var options = PassOptions()
    options.dimBindings = ["batch_size": 1, "sequence_length": 128]
    _ = try StaticShapes().run(on: model, options: options)
    for node in model.graph.nodes where node.opType == "Transpose" {
      print(node.inputs[0]?.producer?.opType ?? "input", node.outputs[0].uses.count)
    }
    try ModelWriter.save(model, to: output)  // weights spliced from the source file
    let text = ModelText.render(model)  // the golden-file text syntax
    // ---

    XCTAssertFalse(model.graph.nodes.contains { $0.opType == "Shape" })
    XCTAssertEqual(model.graph.outputs[0].shape, Shape(static: [1, 128, 256]))
    XCTAssertEqual(try ModelLoader.load(path: output).graph.nodeCount, model.graph.nodeCount)
    XCTAssertTrue(text.contains("float[1,128,256] logits"), String(text.prefix(400)))
  }
}

/// The README's rule-engine example: rules from text, run from Swift.
final class ReadmeRuleExampleTests: XCTestCase {
  func testRulesFromTextRunOnAGraph() throws {
    let x = Value(name: "x", type: .tensor(.float, [2, 3]))
    let g = Graph(name: "g", inputs: [x])
    let t = Node("Transpose", inputs: [x], outputNames: ["t"], attributes: [Attribute("perm", .ints([1, 0]))])
    let y = Node("Transpose", inputs: [t.outputs[0]], outputNames: ["y"], attributes: [Attribute("perm", .ints([1, 0]))])
    let z = Node("Relu", inputs: [y.outputs[0]], outputNames: ["z"])
    for n in [t, y, z] { g.append(n) }
    g.outputs = [z.outputs[0]]
    let model = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)

    // --- as in README.md ---
    var library = try RulePasses.library()  // the bundled Rewrites/
    try library.add(RuleParser.parse(file: "mine.rules", text: """
      rule double-neg {
        a = Neg ($x)
        b = Neg (a)
        replace b with $x
      }
      """))
    try RulePasses.run("fold-transposes", rules: library.rules(forPass: "fold-transposes")!, on: model, options: PassOptions())
    // ---

    XCTAssertEqual(model.graph.nodes.map(\.opType), ["Relu"])
    XCTAssertNotNil(library.rules(forPass: "double-neg"))
  }
}
