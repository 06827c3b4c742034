import Evaluation
import Foundation
import ONNXGraph
import Rewrite
import RewriteRules

/// Passes written as rule files: the ones in `Rewrites/` (shipped with the tool as
/// resources) and any the user adds with `--rules PATH`.
public enum RulePasses {
  /// The bundled rule files, then `extra` files or folders, in that order.
  public static func library(adding extra: [String] = []) throws -> RuleLibrary {
    NativeHelpers.registered
    var lib = RuleLibrary()
    if let bundled = RewriteRules.folder { try lib.load(path: bundled) }
    for path in extra { try lib.load(path: path) }
    return lib
  }

  /// Runs a rule pass (or a single rule) to a fixed point, then removes what became dead.
  /// With `explain`, every attempt on that node or rule is reported as a remark.
  @discardableResult
  public static func run(
    _ name: String, rules: [Rule], on model: Model, options: PassOptions, explain: String? = nil
  ) throws -> PassResult {
    // Rules read ranks and shapes: infer them first (nothing is folded here).
    Propagator(model: model, options: .init(fold: false)).run(model.graph)
    let driver = RewriteDriver(rules: rules)
    driver.explain = explain
    let changed = try driver.run(on: model)
    for a in driver.attempts { options.remark(a.node, "\(a.rule): \(a.result)") }
    if changed { _ = try DeadCodeElimination().run(on: model, options: options) }
    let counts = driver.stats.applied.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }
    options.report("\(name): \(driver.stats.total) rewrites" + (counts.isEmpty ? "" : " (\(counts.joined(separator: ", ")))"))
    return PassResult(modified: changed)
  }
}
