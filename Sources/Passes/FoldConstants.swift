import Evaluation
import ONNXGraph

/// Replaces every node whose inputs are all constant with an initializer holding its
/// result (computed by the native evaluator; no onnxruntime), then drops what became dead.
///
/// Exporters emit long chains of shape arithmetic, Constant nodes and mask/rotary tables
/// computed from constants; compilers that cannot run them at compile time choke on them.
public struct FoldConstants: GraphPass {
  public static let name = "fold-constants"
  public static let summary = "Evaluate nodes whose inputs are all constant into initializers."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let stats = try fold(model, options: options)
    return PassResult(modified: stats.foldedNodes > 0)
  }

  /// Folds and removes dead code; reports failures as remarks (or errors with `--strict`).
  func fold(_ model: Model, options: PassOptions) throws -> Propagator.Stats {
    let p = Propagator(
      model: model, options: .init(fold: true, foldLimitBytes: options.foldLimitBytes))
    p.run(model.graph)
    for f in p.stats.failures {
      if options.strict { throw PassError(pass: Self.name, location: f.nodeName, reason: f.reason) }
      options.remark(f.nodeName, "\(Self.name): \(f.reason)")
    }
    DeadCodeElimination().sweep(model.graph, keepInitializers: false)
    return p.stats
  }
}
