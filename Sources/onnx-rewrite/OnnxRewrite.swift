import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO
import Passes
import Rewrite

struct OnnxRewrite: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "onnx-rewrite",
    abstract: "Rewrite ONNX exports of LLMs into graphs NPU compilers accept.",
    discussion: """
      With no subcommand, reads MODEL, runs the given passes in order and writes the result:
        onnx-rewrite model.onnx -o out.onnx --pass NAME
      Without passes this is a lossless round trip. Weights are memory-mapped, never copied.
      """,
    version: "0.1.0",
    subcommands: [Rewrite.self, Inspect.self, Print.self, Passes.self, Tile.self, Compile.self, Verify.self],
    defaultSubcommand: Rewrite.self)
}

/// Runs a command body, turning model and pass errors into one `error:` line (naming the
/// file, the node and the reason) and exit code 1.
func reportingErrors(file: String, _ body: () throws -> Void) throws {
  let line: String
  do {
    try body()
    return
  } catch let e as ModelFileError {
    line = "error: \(e)"  // names its own file
  } catch let e as PassError {
    line = "error: \(file): \(e)"
  } catch let e as RewriteError {
    line = "error: \(file): \(e)"
  } catch let e as RuleError {
    line = "\(e)"  // already `FILE:LINE:COL: error: ...`
  } catch let e as CompileError {
    line = "error: \(e)"  // names its own file or tile
  }
  FileHandle.standardError.write(Data((line + "\n").utf8))
  throw ExitCode(1)
}

func note(_ message: String) {
  FileHandle.standardError.write(Data("note: \(message)\n".utf8))
}
