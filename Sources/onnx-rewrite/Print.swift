import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO

struct Print: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print a model in ONNX text syntax (as onnx.printer writes it; onnx.parser reads it).")

  @Argument(help: "The model to read (.onnx).", completion: .file())
  var input: String

  @Flag(help: "Print every tensor value (by default tensors over --elide-above elements show only type and shape).")
  var full = false

  @Option(help: "Elide tensors with more elements than this.")
  var elideAbove = 32

  func run() throws {
    try reportingErrors(file: input) {
      let model = try ModelLoader.load(path: input)
      print(ModelText.render(model, elideTensorsAbove: full ? nil : elideAbove), terminator: "")
    }
  }
}
