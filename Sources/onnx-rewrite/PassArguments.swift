import ArgumentParser
import Foundation
import ONNXGraph
import Passes
import Rewrite

/// The options that choose and configure passes, shared by `rewrite` (the default command) and
/// `compile`.
struct PassArguments: ParsableArguments {
  @Option(name: .customLong("pass"), help: "A pass to run; repeat for several. See 'onnx-rewrite passes'.")
  var names: [String] = []

  @OptionGroup var shapes: ShapeArguments

  @Option(
    name: .customLong("fold-limit"),
    help: ArgumentHelp("Largest tensor constant folding may create (bytes; KiB/MiB/GiB suffixes).", valueName: "bytes"))
  var foldLimit: String = "16MiB"

  @Option(
    name: .customLong("rules"),
    help: ArgumentHelp("A rule file or folder of *.rules to load besides the bundled Rewrites/; repeatable.", valueName: "path"))
  var ruleFiles: [String] = []

  @Option(help: ArgumentHelp("Report why each rule did or did not match at this node (name or output) or for this rule.", valueName: "node-or-rule"))
  var explain: String? = nil

  @Option(
    name: .customLong("target-opset"),
    help: ArgumentHelp("The default-domain opset legalize-opset lowers to (default 17, what TPU-MLIR takes).", valueName: "N"))
  var targetOpset: Int? = nil

  @Option(
    name: .customLong("linear-form"),
    help: ArgumentHelp("How falcon-linear writes x @ W.T + b: 'matmul' (pre-transposed weight + Add) or 'gemm' (Gemm transB=1).", valueName: "form"))
  var linearForm: String = "matmul"

  @Option(
    name: .customLong("kv-output"),
    help: ArgumentHelp("What kv-cache-io makes each present.N.* output return: 'new' (only the new tokens' K/V) or 'full' (the whole cache, as exported).", valueName: "new|full"))
  var kvOutput: String = "new"

  @Option(
    name: .customLong("positions"),
    help: ArgumentHelp("Where kv-cache-io takes token positions from: 'computed' (from the cache length, as exported) or 'input' (a position_ids graph input).", valueName: "computed|input"))
  var positions: String = "computed"

  @Option(
    name: .customLong("mask"),
    help: ArgumentHelp("How kv-cache-io takes the attention mask: 'padding' (attention_mask, as exported) or 'bias' (an additive attention_bias [batch, 1, sequence, total] input).", valueName: "padding|bias"))
  var mask: String = "padding"

  @Option(
    name: .customLong("kv-layout"),
    help: ArgumentHelp("The axis order kv-cache-io gives the past inputs and present outputs: 'bhsd' ([batch, kv_heads, sequence, head_dim], as exported) or 'bshd' ([batch, sequence, kv_heads, head_dim]).", valueName: "bhsd|bshd"))
  var kvLayout: String = "bhsd"

  @Flag(help: "Make what passes would only report (a dynamic shape left, an op they cannot handle) an error.")
  var strict = false

  func validate() throws {
    _ = try passOptions()
    let library: RuleLibrary
    do { library = try RulePasses.library(adding: ruleFiles) } catch let e as RuleError {
      throw ValidationError("\(e)")
    }
    if let bad = PassPipelines.expand(names).first(where: { PassRegistry.pass(named: $0) == nil && library.rules(forPass: $0) == nil }) {
      throw ValidationError("Unknown pass '\(bad)'. See 'onnx-rewrite passes' for the list.")
    }
  }

  /// Runs the named passes (pipelines expanded) in order on `model`, read from `file`.
  func run(on model: Model, file: String) throws {
    var options = try passOptions()
    options.report = { note("\(file): \($0)") }
    options.remark = { node, message in
      FileHandle.standardError.write(Data("\(file):\(node): remark: \(message)\n".utf8))
    }
    let library = try RulePasses.library(adding: ruleFiles)
    for name in PassPipelines.expand(names) {
      if let pass = PassRegistry.pass(named: name) {
        _ = try pass.init().run(on: model, options: options)
      } else if let rules = library.rules(forPass: name) {
        try RulePasses.run(name, rules: rules, on: model, options: options, explain: explain)
      }
    }
  }
}

extension PassArguments {
  /// The pass settings from the command line; malformed values are usage errors.
  func passOptions() throws -> PassOptions {
    var o = PassOptions()
    o.strict = strict
    try shapes.bind(into: &o)
    guard let limit = parseBytes(foldLimit) else {
      throw ValidationError("--fold-limit \(foldLimit): give a byte count such as 16777216, 64KiB, 16MiB or 1GiB.")
    }
    o.foldLimitBytes = limit
    if let n = targetOpset {
      guard (7...23).contains(n) else { throw ValidationError("--target-opset \(n): give an opset between 7 and 23, e.g. 17.") }
      o.targetOpset = n
    }
    o.linearForm = try choice(linearForm, option: "--linear-form")
    o.kvOutput = try choice(kvOutput, option: "--kv-output")
    o.kvPositions = try choice(positions, option: "--positions")
    o.kvMask = try choice(mask, option: "--mask")
    o.kvLayout = try choice(kvLayout, option: "--kv-layout")
    return o
  }

  /// One of an option's named values, or a usage error listing them.
  private func choice<E: RawRepresentable & CaseIterable>(_ value: String, option: String) throws -> E
  where E.RawValue == String {
    guard let e = E(rawValue: value) else {
      throw ValidationError("\(option) \(value): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    return e
  }

}

/// "1048576", "64KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of 1000).
func parseBytes(_ s: String) -> Int? {
  let units: [(String, Int)] = [
    ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
    ("B", 1),
  ]
  for (suffix, scale) in units where s.hasSuffix(suffix) {
    return Int(s.dropLast(suffix.count)).flatMap { $0 >= 0 ? $0 * scale : nil }
  }
  return Int(s).flatMap { $0 >= 0 ? $0 : nil }
}
