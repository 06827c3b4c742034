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

  /// `base`, or `base.1`, `base.2`, … whichever is free; it is then taken.
  ///
  /// Not `base_1`: TPU-MLIR names the copies of a shared constant `NAME_1`, `NAME_2`, … and
  /// aborts ("failed to clone tensor") when such a name exists already. TorchScript's own
  /// names (`input.1`) use the dot too, so every compiler that takes those takes these.
  public func fresh(_ base: String) -> String {
    var name = base
    var i = 0
    while used.contains(name) {
      i += 1
      name = "\(base).\(i)"
    }
    used.insert(name)
    return name
  }
}
