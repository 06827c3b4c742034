import ONNXGraph

/// The axis order of a decode graph's cache inputs and outputs (`--kv-layout`).
public enum KVLayout: String, CaseIterable, Sendable {
  /// `[batch, kv_heads, sequence, head_dim]`, as HF exports it.
  case bhsd
  /// `[batch, sequence, kv_heads, head_dim]`: rows of a runtime buffer indexed by token.
  case bshd
}

/// Re-lays out the cache IO as `[batch, sequence, kv_heads, head_dim]`.
///
/// Each past input takes the new layout and a Transpose(0,2,1,3) back to the exported one
/// feeds its old readers; each present output becomes a Transpose(0,2,1,3) of the exported
/// value, under the same name. The caller then removes what it can (`KVLayoutTransposes`):
/// the export's heads-first Transpose of the new K/V sinks below the cache Concat, which then
/// reads `past` directly, and the output Transpose cancels against it.
enum KVLayoutBSHD {
  static let perm: [Int64] = [0, 2, 1, 3]

  static func apply(to graph: Graph, caches: [KVCacheFinder.Cache], outputNames: [String], names: NameScope, pass: String) throws {
    for (cache, outputName) in zip(caches, outputNames) {
      guard cache.axis == 2, cache.past.shape.map({ $0.rank == 4 }) ?? true else {
        throw PassError(pass: pass, location: cache.output.producer?.displayName ?? outputName,
                        reason: "--kv-layout bshd: the cache is not a rank-4 tensor concatenated on axis 2 ([batch, kv_heads, sequence, head_dim])")
      }
      relayoutInput(cache.past, in: graph, names: names)
      guard let index = graph.outputs.firstIndex(where: { $0.name == outputName }) else {
        throw PassError(pass: pass, location: outputName, reason: "--kv-layout bshd: the cache output is gone")
      }
      graph.outputs[index] = relayoutOutput(graph.outputs[index], in: graph, names: names)
    }
  }

  /// `past` is declared `[b, s, h, d]`; its readers get `Transpose(past)` in `[b, h, s, d]`.
  private static func relayoutInput(_ past: Value, in graph: Graph, names: NameScope) {
    let exported = Value(name: names.fresh(past.name + ".bhsd"), type: past.type)
    past.replaceAllUses(with: exported)
    past.type = swapped(past.type)
    graph.insert(
      Node("Transpose", name: names.fresh(past.name + "/to_bhsd"), inputs: [past], outputs: [exported],
           attributes: [Attribute("perm", .ints(perm))]),
      after: nil)
  }

  /// The output named like `value` becomes `Transpose(value)`; `value` takes a fresh name.
  private static func relayoutOutput(_ value: Value, in graph: Graph, names: NameScope) -> Value {
    let name = value.name
    value.name = names.fresh(name + ".bhsd")
    let result = Value(name: name, type: swapped(value.type))
    let transpose = Node("Transpose", name: names.fresh(name + "/to_bshd"), inputs: [value], outputs: [result],
                         attributes: [Attribute("perm", .ints(perm))])
    graph.insert(transpose, after: value.producer)
    graph.valueInfos.removeAll { $0 === value }
    return result
  }

  /// Where a layout Transpose cancelled, the output is `Identity(v)`: `v` takes the output's name
  /// instead (it may have other readers, which `eliminate-identity` would not rename through).
  static func dropOutputIdentity(named name: String, in graph: Graph) {
    guard let index = graph.outputs.firstIndex(where: { $0.name == name }), let identity = graph.outputs[index].producer,
      identity.opType == "Identity", identity.isDefaultDomain, let source = identity.inputs[0],
      let producer = source.producer, producer.graph === graph, !graph.outputs.contains(where: { $0 === source })
    else { return }
    let output = graph.outputs[index]
    graph.remove(identity)
    source.name = name
    source.type = output.type ?? source.type
    graph.replaceAllUses(of: output, with: source)
    graph.valueInfos.removeAll { $0 === output || $0 === source }
  }

  /// The type with axes 1 and 2 swapped (the permutation is its own inverse).
  private static func swapped(_ type: TypeInfo?) -> TypeInfo? {
    guard let element = type?.elementType, var shape = type?.shape, shape.rank == 4 else { return type }
    shape.dims.swapAt(1, 2)
    return .tensor(element, shape)
  }
}
