import ArgumentParser
import Foundation

struct Verify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run two models in onnxruntime on the same inputs and compare their outputs.",
    discussion: """
      Feeds both models the inputs of --inputs (an .npz keyed by input name) or random ones
      (floats ~ N(0,1), integers in [0, --int-high), symbolic dims bound with --dim), compares
      every output the two share by name, prints the worst absolute difference of each, and
      exits 1 when one exceeds --atol + --rtol * |original|.

      Needs Python 3 with numpy and onnxruntime (pip install onnxruntime numpy); --python or
      ONNX_REWRITE_PYTHON names the interpreter (default: python3 on PATH).
      """)

  @Argument(help: "The model before rewriting.", completion: .file())
  var original: String

  @Argument(help: "The rewritten model, or a folder of tiles with manifest.json (run one tile after another).", completion: .file())
  var rewritten: String

  @Option(help: ArgumentHelp("Inputs as an .npz keyed by graph input name.", valueName: "file.npz"))
  var inputs: String? = nil

  @Option(help: ArgumentHelp("Bind a symbolic input dimension for random inputs.", valueName: "name=N"))
  var dim: [String] = []

  @Option(help: "Absolute tolerance.")
  var atol: Double = 1e-5

  @Option(help: "Relative tolerance.")
  var rtol: Double = 0

  @Option(help: "Random seed for generated inputs.")
  var seed: Int = 0

  @Option(name: .customLong("int-high"), help: "Integer inputs are drawn from [0, N).")
  var intHigh: Int = 2

  @Option(help: ArgumentHelp("The Python interpreter with onnxruntime and numpy.", valueName: "path"))
  var python: String? = nil

  func run() throws {
    for path in [original, rewritten] + (inputs.map { [$0] } ?? []) where !FileManager.default.fileExists(atPath: path) {
      FileHandle.standardError.write(Data("error: \(path): no such file\n".utf8))
      throw ExitCode(2)
    }
    guard let script = Bundle.module.path(forResource: "verify", ofType: "py") else {
      FileHandle.standardError.write(Data("error: verify.py is missing from the onnx-rewrite installation\n".utf8))
      throw ExitCode(2)
    }
    let interpreter = python ?? ProcessInfo.processInfo.environment["ONNX_REWRITE_PYTHON"] ?? "python3"
    var args = [script, original, rewritten, "--atol", String(atol), "--rtol", String(rtol), "--seed", String(seed),
                "--int-high", String(intHigh)]
    if let inputs { args += ["--inputs", inputs] }
    for d in dim { args += ["--dim", d] }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [interpreter] + args
    do { try process.run() } catch {
      FileHandle.standardError.write(Data("error: cannot start '\(interpreter)': \(error.localizedDescription)\n".utf8))
      throw ExitCode(2)
    }
    process.waitUntilExit()
    if process.terminationStatus == 127 {
      FileHandle.standardError.write(Data("error: '\(interpreter)' not found; install Python 3 with 'pip install onnxruntime numpy' or pass --python\n".utf8))
    }
    if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
  }
}
