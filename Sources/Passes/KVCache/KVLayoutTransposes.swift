import Evaluation
import ONNXGraph

/// The Transpose clean-up after `KVLayoutBSHD`: sink the export's heads-first Transposes
/// below the cache Concats, then turn layout Transposes that only move a size-1 axis (MQA's
/// single KV head) into Squeeze/Unsqueeze, which copy nothing.
enum KVLayoutTransposes {
  /// Sinks every Transpose whose region lowers the count, until none does; returns the
  /// Transposes added for readers left in the heads-first layout.
  static func sink(in graph: Graph, names: NameScope) -> [Node] {
    // TorchScript reads the past through a one-input Concat: a no-op that would hide the
    // past's Transpose from the cache Concat.
    let outputs = Set(graph.outputs.map(ObjectIdentifier.init))
    for n in graph.nodes.filter({ $0.opType == "Concat" && $0.isDefaultDomain && $0.inputs.count == 1 }) {
      guard let x = n.inputs[0], x.producer?.opType == "Transpose", !outputs.contains(ObjectIdentifier(n.outputs[0])) else { continue }
      n.outputs[0].replaceAllUses(with: x)
      graph.remove(n)
    }
    var inserted: [Node] = []
    var copies: [String: Value] = [:]
    for _ in 0..<8 {
      var changed = false
      for t in graph.nodes.filter({ $0.opType == "Transpose" && $0.isDefaultDomain }) where t.graph === graph {
        guard var plan = KVLayoutSinking(t, outputs: outputs) else { continue }
        inserted += plan.apply(in: graph, names: names, copies: &copies)
        changed = true
      }
      if !changed { break }
    }
    return inserted.filter { $0.graph === graph }
  }

  /// Each layout Transpose (on a graph input, producing a graph output, or `added` by
  /// sinking) that only moves axes of size 1, the others keeping their order, becomes
  /// `Unsqueeze(Squeeze(x))`. The export's own Transposes stay as they are.
  static func dropUnitMoves(in graph: Graph, added: [Node], names: NameScope, opset: Int) {
    let inputs = Set(graph.inputs.map(ObjectIdentifier.init)), outputs = Set(graph.outputs.map(ObjectIdentifier.init))
    let layout = graph.nodes.filter { n in
      n.opType == "Transpose" && n.isDefaultDomain
        && (added.contains { $0 === n } || outputs.contains(ObjectIdentifier(n.outputs[0]))
          || n.inputs[0].map { inputs.contains(ObjectIdentifier($0)) } == true)
    }
    for t in layout {
      guard let x = t.inputs[0], let dims = x.shape?.dims, let p = (t[attribute: "perm"]?.ints).map({ $0.map(Int.init) }),
        p.count == dims.count, p != Array(0..<p.count)
      else { continue }
      let unit = Set(dims.indices.filter { dims[$0] == .value(1) })
      let kept = p.filter { !unit.contains($0) }
      guard !unit.isEmpty, kept == kept.sorted() else { continue }
      let squeezed = unit.sorted().map(Int64.init)
      let unsqueezed = p.indices.filter { unit.contains(p[$0]) }.map(Int64.init)
      let y = t.outputs[0]
      let mid = Value(name: names.fresh(y.name + "/squeezed"),
                      type: x.elementType.map { .tensor($0, Shape(dims.indices.filter { !unit.contains($0) }.map { dims[$0] })) })
      let squeeze = node("Squeeze", t.displayName + "/squeeze", x, squeezed, mid, graph, names, opset)
      let unsqueeze = node("Unsqueeze", t.displayName + "/unsqueeze", mid, unsqueezed, y, graph, names, opset)
      t.setOutput(0, Value(name: names.fresh(y.name + "/dropped")))
      graph.insert(squeeze, before: t)
      graph.insert(unsqueeze, before: t)
      graph.remove(t)
    }
  }

  /// A Squeeze/Unsqueeze in the form the opset wants (axes input from 13).
  private static func node(_ op: String, _ name: String, _ x: Value, _ axes: [Int64], _ out: Value,
                           _ graph: Graph, _ names: NameScope, _ opset: Int) -> Node {
    if opset < 13 {
      return Node(op, name: names.fresh(name), inputs: [x], outputs: [out], attributes: [Attribute("axes", .ints(axes))])
    }
    let axesValue = Value(name: names.fresh(name + "_axes"), type: .tensor(.int64, Shape(static: [axes.count])))
    graph.addInitializer(axesValue, HostTensor.int64s(axes).tensor(name: axesValue.name))
    return Node(op, name: names.fresh(name), inputs: [x, axesValue], outputs: [out])
  }
}
