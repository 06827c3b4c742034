import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Summarize a model: opsets, inputs/outputs, op types, parameters, weight files.")

  @Argument(help: "The model to read (.onnx).", completion: .file())
  var input: String

  @Flag(help: "Print JSON instead of text.")
  var json = false

  func run() throws {
    try reportingErrors(file: input) {
      let model = try ModelLoader.load(path: input)
      let s = ModelSummary(model, modelPath: input)
      print(json ? try jsonText(s) : text(s), terminator: "")
    }
  }

  func text(_ s: ModelSummary) -> String {
    var out = "model:        \(input)\n"
    out += "ir_version:   \(s.irVersion)\n"
    if !s.producer.isEmpty { out += "producer:     \(s.producer)\n" }
    out += "opsets:       " + s.opsets.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ") + "\n"
    out += "inputs:\n" + s.inputs.map { "  \($0.name): \($0.type)\n" }.joined()
    out += "outputs:\n" + s.outputs.map { "  \($0.name): \($0.type)\n" }.joined()
    out += "nodes:        \(s.nodes)" + (s.nestedNodes > 0 ? " (+\(s.nestedNodes) in sub-graphs and functions)" : "") + "\n"
    if s.functions > 0 { out += "functions:    \(s.functions)\n" }
    out += "initializers: \(s.initializers)\n"
    out += "parameters:   \(s.parameters)\n"
    out += "weight bytes: \(s.weightBytes) (\(formatBytes(s.weightBytes)))\n"
    if !s.externalFiles.isEmpty {
      out += "external data:\n" + s.externalFiles.map { "  \($0)\n" }.joined()
    }
    out += "op types:\n"
    let width = s.opTypes.map { $0.op.count }.max() ?? 0
    for (op, n) in s.opTypes {
      out += "  " + op.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(n)\n"
    }
    return out
  }

  func jsonText(_ s: ModelSummary) throws -> String {
    let object: [String: Any] = [
      "model": input,
      "ir_version": s.irVersion,
      "producer": s.producer,
      "opsets": s.opsets.map { ["domain": $0.domain, "version": $0.version] },
      "inputs": s.inputs.map { ["name": $0.name, "type": $0.type] },
      "outputs": s.outputs.map { ["name": $0.name, "type": $0.type] },
      "nodes": s.nodes,
      "nested_nodes": s.nestedNodes,
      "functions": s.functions,
      "initializers": s.initializers,
      "parameters": s.parameters,
      "weight_bytes": s.weightBytes,
      "external_files": s.externalFiles,
      "op_types": Dictionary(uniqueKeysWithValues: s.opTypes.map { ($0.op, $0.count) }),
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self) + "\n"
  }
}

