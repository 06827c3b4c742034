import ONNXGraph

extension Graph {
  /// Removes `node`, whose first output equals `input`, by making its readers read
  /// `input`. When that output is a graph output, the producer of `input` takes over its
  /// name instead, if nothing else reads `input`; otherwise the node stays. Returns
  /// whether the node was removed.
  @discardableResult
  func bypass(_ node: Node, with input: Value) -> Bool {
    let out = node.outputs[0]
    guard node.outputs.dropFirst().allSatisfy({ $0.name.isEmpty || $0.uses.isEmpty }) else { return false }
    if outputs.contains(where: { $0 === out }) {
      guard let producer = input.producer, producer.graph === self, input.uses.count == 1,
        !outputs.contains(where: { $0 === input })
      else { return false }
      remove(node)
      input.name = out.name
      input.type = out.type ?? input.type
      replaceAllUses(of: out, with: input)
    } else {
      out.replaceAllUses(with: input)
      remove(node)
    }
    return true
  }
}
