import ONNXGraph

/// Removes nodes whose outputs nothing reads, then initializers nothing reads, in the
/// main graph and every sub-graph.
///
/// Walks each graph backwards once: a node is dead when none of its outputs has a use
/// or is a graph output; removing it drops its uses, which may kill its producers,
/// and those come later in the backward walk. Nodes with side effects do not exist in
/// inference ONNX, so unread nodes are always safe to drop.
public struct DeadCodeElimination: GraphPass {
  public static let name = "dce"
  public static let summary = "Remove nodes and initializers whose results nothing reads."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var removed = 0
    for f in model.functions { removed += sweep(f.body, keepInitializers: true) }
    removed += sweep(model.graph, keepInitializers: false)
    return PassResult(modified: removed > 0)
  }

  /// Returns the number of nodes and initializers removed.
  @discardableResult
  func sweep(_ graph: Graph, keepInitializers: Bool) -> Int {
    let outputs = Set(graph.outputs.map(ObjectIdentifier.init))
    var removed = 0
    var node = graph.lastNode
    while let n = node {
      node = n.previous
      let live = n.outputs.contains { !$0.uses.isEmpty || outputs.contains(ObjectIdentifier($0)) }
      if live {
        for sub in n.subgraphs { removed += sweep(sub, keepInitializers: false) }
      } else {
        graph.remove(n)
        removed += 1
      }
    }
    // Initializers that are also graph inputs are part of the signature; keep them.
    let inputs = Set(graph.inputs.map(ObjectIdentifier.init))
    if !keepInitializers {
      for (name, v) in graph.initializers
      where v.uses.isEmpty && !outputs.contains(ObjectIdentifier(v)) && !inputs.contains(ObjectIdentifier(v)) {
        graph.removeInitializer(named: name)
        removed += 1
      }
    }
    // value_info of values that no longer exist.
    graph.valueInfos.removeAll { v in
      v.producer?.graph !== graph && v.constValue == nil && !inputs.contains(ObjectIdentifier(v))
    }
    return removed
  }
}
