import Evaluation
import ONNXGraph

/// Makes every shape static for user-given input shapes: binds the inputs, propagates
/// shapes through the graph, folds every computation that becomes constant (all the
/// Shape → Gather → Unsqueeze → Concat chains exporters emit), removes dead nodes and
/// writes the full static shapes into inputs, outputs and value_info.
///
/// NPU compilers treat a Reshape/Expand/Slice whose shape is not a constant as a dynamic
/// sub-network and fail or fall back; after this pass there is none.
public struct StaticShapes: GraphPass {
  public static let name = "static-shape"
  public static let summary =
    "Bind input shapes (--input-shape, --dim), fold all shape arithmetic, write static shapes."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let g = model.graph
    let before = g.nodeCount
    try bindInputs(g, options)
    _ = try EliminateIdentity().run(on: model, options: options)
    let stats = try FoldConstants().fold(model, options: options)
    // Folding made types known: Casts and layout ops that turned out to be no-ops go now.
    _ = try EliminateIdentity().run(on: model, options: options)
    _ = try EliminateNoOps().run(on: model, options: options)
    _ = try DedupeConstants().run(on: model, options: options)
    DeadCodeElimination().sweep(g, keepInitializers: false)
    recordValueInfo(g)

    var shapeOps = 0
    var dynamic: [String] = []
    g.forEachNodeRecursive { n in
      if n.opType == "Shape" || n.opType == "Size" { shapeOps += 1 }
      if let v = n.outputs.first(where: { !$0.name.isEmpty && !($0.shape?.isStatic ?? false) }),
        n.graph === g
      {
        dynamic.append("\(n.displayName) (\(n.opType)): '\(v.name)' has shape \(v.shape?.description ?? "unknown")")
      }
    }
    options.report(
      "\(Self.name): nodes \(before) -> \(g.nodeCount), folded \(stats.foldedNodes) nodes into "
        + "\(stats.foldedBytes) bytes of constants, \(shapeOps) Shape/Size ops left, "
        + "\(dynamic.count) values not static"
        + (stats.keptOverLimit > 0 ? ", \(stats.keptOverLimit) folds skipped over --fold-limit" : ""))
    if options.strict, let first = dynamic.first {
      throw PassError(pass: Self.name, location: first, reason: "shape is not static (--strict)")
    }
    return PassResult(modified: true)
  }

  /// Applies `--input-shape` and `--dim`, rejecting names that match nothing and shapes
  /// that contradict a static dimension of the model.
  func bindInputs(_ g: Graph, _ options: PassOptions) throws {
    let inputs = g.inputs.filter { g.initializers[$0.name] == nil }
    var symbols: Set<String> = []
    for v in inputs { for d in v.shape?.dims ?? [] { if let s = d.symbol { symbols.insert(s) } } }
    for name in options.inputShapes.keys.sorted() where !inputs.contains(where: { $0.name == name }) {
      throw PassError(
        pass: Self.name, location: name,
        reason: "not a graph input (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
    }
    for name in options.dimBindings.keys.sorted() where !symbols.contains(name) {
      throw PassError(
        pass: Self.name, location: name,
        reason: "no input has a dimension named '\(name)' (symbols: \(symbols.sorted().joined(separator: ", ")))")
    }
    for v in inputs {
      guard let elementType = v.elementType else { continue }
      var dims = v.shape?.dims
      if let bound = options.inputShapes[v.name] {
        if let declared = dims {
          guard declared.count == bound.count else {
            throw PassError(
              pass: Self.name, location: v.name,
              reason: "--input-shape gives rank \(bound.count), the model declares \(Shape(declared))")
          }
          for (d, b) in zip(declared, bound) {
            if case .value(let s) = d, s != b {
              throw PassError(
                pass: Self.name, location: v.name,
                reason: "--input-shape \(bound.map(String.init).joined(separator: ",")) contradicts the static shape \(Shape(declared))")
            }
          }
        }
        dims = bound.map(Dim.value)
      } else if let declared = dims {
        dims = declared.map { d in d.symbol.flatMap { options.dimBindings[$0] }.map(Dim.value) ?? d }
      }
      v.type = TypeInfo(.tensor(elementType, dims.map { Shape($0) }))
    }
  }

  /// value_info for every node output of the main graph, in node order.
  func recordValueInfo(_ g: Graph) {
    let outputs = Set(g.outputs.map(ObjectIdentifier.init))
    var infos: [Value] = []
    for n in g.nodes {
      for v in n.outputs where !v.name.isEmpty && v.type != nil && !outputs.contains(ObjectIdentifier(v)) {
        infos.append(v)
      }
    }
    g.valueInfos = infos
  }
}
