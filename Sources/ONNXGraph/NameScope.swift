/// Hands out value names that no value of a graph (or its sub-graphs) uses yet.
///
/// Collects the graph's names once, so a pass that creates many values pays one scan.
public final class NameScope {
  private var used: Set<String> = []

  public init(_ graph: Graph) {
    func collect(_ g: Graph) {
      for v in g.inputs { used.insert(v.name) }
      for name in g.initializers.keys { used.insert(name) }
      for n in g.nodes {
        for o in n.outputs { used.insert(o.name) }
        for sub in n.subgraphs { collect(sub) }
      }
    }
    collect(graph)
  }

  /// `base`, or `base_1`, `base_2`, … whichever is free; it is then taken.
  public func fresh(_ base: String) -> String {
    var name = base
    var i = 0
    while used.contains(name) {
      i += 1
      name = "\(base)_\(i)"
    }
    used.insert(name)
    return name
  }
}
