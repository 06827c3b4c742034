import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO
import Passes

struct Rewrite: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Read a model, run passes, write the result (the default subcommand).")

  @Argument(help: "The model to read (.onnx).", completion: .file())
  var input: String

  @Option(name: .shortAndLong, help: "Where to write the result.", completion: .file())
  var output: String

  @Option(name: .customLong("pass"), help: "A pass to run; repeat for several. See 'onnx-rewrite passes'.")
  var passes: [String] = []

  @Flag(
    name: .customLong("external-data"),
    help: ArgumentHelp(
      "Write weights of 1 KiB or more to one data file beside OUTPUT. '--external-data=NAME' names it (default: OUTPUT's file name + '.data'). Automatic when one file would pass 2 GB."
    ))
  var externalData = false

  @Option(name: .customLong("external-data-name"), help: .hidden)
  var externalDataName: String? = nil

  func validate() throws {
    if let bad = passes.first(where: { PassRegistry.pass(named: $0) == nil }) {
      throw ValidationError("Unknown pass '\(bad)'. See 'onnx-rewrite passes' for the list.")
    }
  }

  func run() throws {
    try reportingErrors {
      let model = try ModelLoader.load(path: input)
      for name in passes {
        let pass = PassRegistry.pass(named: name)!
        _ = try pass.init().run(on: model)
      }
      var options = SaveOptions()
      if externalData || externalDataName != nil { options.externalData = .file(externalDataName) }
      let report = try ModelWriter.save(model, to: output, options: options)
      if report.switchedToExternalData, let data = report.externalData {
        note("\(output): over protobuf's 2 GB limit as one file; weights written to '\(data.name)'")
      }
    }
  }
}
