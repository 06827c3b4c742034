import ArgumentParser
import Passes

/// `--input-shape` and `--dim`: the static shapes to bind, shared by every command that runs
/// `static-shape` (the default command, `compile`, `tile`).
struct ShapeArguments: ParsableArguments {
  @Option(
    name: .customLong("input-shape"),
    help: ArgumentHelp("Bind a graph input's shape, e.g. input_ids=1,128 (static-shape).", valueName: "name=d0,d1,..."))
  var inputShapes: [String] = []

  @Option(
    name: .customLong("dim"),
    help: ArgumentHelp("Bind a symbolic dimension by name, e.g. sequence_length=128 (static-shape).", valueName: "name=value"))
  var dims: [String] = []

  var isEmpty: Bool { inputShapes.isEmpty && dims.isEmpty }

  /// Adds the bindings to `o`; malformed values are usage errors.
  func bind(into o: inout PassOptions) throws {
    for spec in inputShapes {
      let (name, value) = try split(spec, option: "--input-shape", example: "input_ids=1,128")
      let dims = value.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
      guard !value.isEmpty, dims.allSatisfy({ ($0 ?? -1) >= 0 }) else {
        throw ValidationError("--input-shape \(spec): the shape must be non-negative integers separated by commas, e.g. \(name)=1,128.")
      }
      guard o.inputShapes[name] == nil else { throw ValidationError("--input-shape names '\(name)' twice.") }
      o.inputShapes[name] = dims.map { $0! }
    }
    for spec in dims {
      let (name, value) = try split(spec, option: "--dim", example: "sequence_length=128")
      guard let v = Int(value), v >= 0 else {
        throw ValidationError("--dim \(spec): the value must be a non-negative integer, e.g. \(name)=128.")
      }
      o.dimBindings[name] = v
    }
  }

  private func split(_ spec: String, option: String, example: String) throws -> (String, String) {
    guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
      throw ValidationError("\(option) \(spec): expected NAME=VALUE, e.g. \(option) \(example).")
    }
    return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
  }
}
