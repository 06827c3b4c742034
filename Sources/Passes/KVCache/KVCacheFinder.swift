import ONNXGraph

/// Finds the KV cache of a decode graph by structure, not by name.
enum KVCacheFinder {
  struct Cache {
    /// The graph output holding the concatenated cache (`present.N.*`).
    var output: Value
    /// The graph input it extends (`past_key_values.N.*`).
    var past: Value
    /// The new tokens' K/V (the Concat's other operand).
    var new: Value
    /// The Concat axis, non-negative.
    var axis: Int
  }

  /// Every graph output produced by a two-operand Concat of a graph input and a computed value.
  static func find(in graph: Graph) -> [Cache] {
    let inputs = Set(graph.inputs.filter { graph.initializers[$0.name] == nil }.map(ObjectIdentifier.init))
    var caches: [Cache] = []
    for output in graph.outputs {
      guard let concat = output.producer, concat.opType == "Concat", concat.isDefaultDomain,
        concat.inputs.count == 2, let a = concat.inputs[0], let b = concat.inputs[1],
        let rawAxis = concat[attribute: "axis"]?.int
      else { continue }
      let rank = output.shape?.rank ?? a.shape?.rank ?? 4
      let axis = rawAxis < 0 ? Int(rawAxis) + rank : Int(rawAxis)
      if let past = graphInput(behind: a, inputs: inputs), graphInput(behind: b, inputs: inputs) == nil {
        caches.append(Cache(output: output, past: past, new: b, axis: axis))
      }
    }
    return caches
  }

  /// The graph input `value` is, looking through the one-operand Concat/Identity exporters emit.
  private static func graphInput(behind value: Value, inputs: Set<ObjectIdentifier>) -> Value? {
    var v = value
    while true {
      if inputs.contains(ObjectIdentifier(v)) { return v }
      guard let p = v.producer, p.isDefaultDomain, p.inputs.count == 1, let x = p.inputs[0],
        p.opType == "Identity" || p.opType == "Concat"
      else { return nil }
      v = x
    }
  }
}
