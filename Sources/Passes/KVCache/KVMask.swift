import ONNXGraph

/// How a decode graph takes its attention mask (`--mask`).
public enum KVMask: String, CaseIterable, Sendable {
  /// The exported `attention_mask` [batch, total] (1 = token), expanded inside the graph.
  case padding
  /// A graph input `attention_bias` [batch, 1, sequence, total] added to the scores.
  case bias
}

/// Replaces the in-graph mask construction with an `attention_bias` graph input.
///
/// Each Softmax over attention scores reads `Add(scores, mask)`; the mask operand is the one
/// computed from the `attention_mask` input (causal + padding, built from shapes). It becomes the
/// new input; dead-code elimination then removes the construction and `attention_mask`.
enum KVMaskBias {
  static let inputName = "attention_bias"

  static func apply(to graph: Graph, cache: [Value], names: NameScope, pass: String) throws {
    guard let mask = graph.inputs.first(where: { $0.name == "attention_mask" }) else {
      throw PassError(pass: pass, location: graph.name.isEmpty ? "graph" : graph.name,
                      reason: "--mask bias: the graph has no 'attention_mask' input to replace")
    }
    let fromMask = valuesComputed(from: [mask], throughShapes: true)
    // Scores read the cache's data; the mask reads at most its shape.
    let fromCache = valuesComputed(from: cache, throughShapes: false)
    var sites: [(add: Node, index: Int)] = []
    for node in graph.nodes where node.opType == "Softmax" && node.isDefaultDomain {
      guard let scores = node.inputs[0], let add = scores.producer, add.opType == "Add", add.inputs.count == 2,
        let a = add.inputs[0], let b = add.inputs[1]
      else { continue }
      let aScores = fromCache.contains(ObjectIdentifier(a)), bScores = fromCache.contains(ObjectIdentifier(b))
      let maskIndex = aScores ? 1 : 0
      guard aScores != bScores, fromMask.contains(ObjectIdentifier(maskIndex == 0 ? a : b)) else {
        throw PassError(pass: pass, location: add.displayName,
                        reason: "--mask bias: cannot tell the scores from the mask in the Add before Softmax '\(node.displayName)'")
      }
      sites.append((add, maskIndex))
    }
    guard !sites.isEmpty else {
      throw PassError(pass: pass, location: mask.name,
                      reason: "--mask bias: no Softmax reads Add(scores, mask computed from attention_mask)")
    }
    let ids = graph.inputs.first { $0.name == "input_ids" }
    let batch = mask.shape.flatMap { $0.rank == 2 ? $0.dims[0] : nil } ?? "batch_size"
    let total = mask.shape.flatMap { $0.rank == 2 ? $0.dims[1] : nil } ?? "total_sequence_length"
    let sequence = ids?.shape.flatMap { $0.rank == 2 ? $0.dims[1] : nil } ?? "sequence_length"
    let element = sites[0].add.inputs[sites[0].index]?.elementType ?? .float
    let bias = Value(name: names.fresh(inputName), type: .tensor(element, Shape([batch, 1, sequence, total])))
    graph.inputs.append(bias)
    for site in sites { site.add.inputs[site.index] = bias }
  }

  /// After dead-code elimination: moves the shape reads left on `attention_mask` [batch, total]
  /// (dynamo exports take the batch size from it) to the same dims of `attention_bias`
  /// [batch, 1, sequence, total], then drops `attention_mask` from the inputs.
  static func retireMaskInput(from graph: Graph, pass: String) throws {
    guard let mask = graph.inputs.first(where: { $0.name == "attention_mask" }),
      let bias = graph.inputs.last(where: { $0.name.hasPrefix(inputName) })
    else { return }
    for use in mask.uses {
      let node = use.node
      let start = Int(node[attribute: "start"]?.int ?? 0), end = Int(node[attribute: "end"]?.int ?? 2)
      let range = (start < 0 ? start + 2 : start, min(end < 0 ? end + 2 : end, 2))
      guard node.opType == "Shape", range == (0, 1) || range == (1, 2) else {
        throw PassError(pass: pass, location: node.displayName,
                        reason: "--mask bias: still reads attention_mask after the mask construction is gone")
      }
      let biasAxis = range.0 == 0 ? 0 : 3
      node.attributes.removeAll { $0.name == "start" || $0.name == "end" }
      node.attributes += [Attribute("start", .int(Int64(biasAxis))), Attribute("end", .int(Int64(biasAxis + 1)))]
      node.inputs[0] = bias
    }
    graph.inputs.removeAll { $0 === mask }
  }

  /// Every value that depends on `sources` (on their data only, unless `throughShapes`):
  /// one forward walk over use lists.
  private static func valuesComputed(from sources: [Value], throughShapes: Bool) -> Set<ObjectIdentifier> {
    var seen = Set(sources.map(ObjectIdentifier.init))
    var work = sources
    while let v = work.popLast() {
      for use in v.uses where throughShapes || !(use.node.opType == "Shape" || use.node.opType == "Size") {
        for out in use.node.outputs where seen.insert(ObjectIdentifier(out)).inserted { work.append(out) }
      }
    }
    return seen
  }
}
