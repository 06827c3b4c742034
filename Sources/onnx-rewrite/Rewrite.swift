import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO
import Passes
import Rewrite

struct Rewrite: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Read a model, run passes, write the result (the default subcommand).")

  @Argument(help: "The model to read (.onnx).", completion: .file())
  var input: String

  @Option(name: .shortAndLong, help: "Where to write the result.", completion: .file())
  var output: String

  @Flag(
    name: .customLong("external-data"),
    help: ArgumentHelp(
      "Write weights of 1 KiB or more to one data file beside OUTPUT. '--external-data=NAME' names it (default: OUTPUT's file name + '.data'). Automatic when one file would pass 2 GB."
    ))
  var externalData = false

  @Option(name: .customLong("external-data-name"), help: .hidden)
  var externalDataName: String? = nil

  @OptionGroup var passes: PassArguments

  func run() throws {
    try reportingErrors(file: input) {
      let model = try ModelLoader.load(path: input)
      try passes.run(on: model, file: input)
      var saveOptions = SaveOptions()
      if externalData || externalDataName != nil { saveOptions.externalData = .file(externalDataName) }
      let report = try ModelWriter.save(model, to: output, options: saveOptions)
      if report.switchedToExternalData, let data = report.externalData {
        note("\(output): over protobuf's 2 GB limit as one file; weights written to '\(data.name)'")
      }
    }
  }
}
