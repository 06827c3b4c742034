import HeapModule

extension Graph {
  /// Reorders the nodes so every value is computed before it is read, keeping the
  /// current order wherever it already is valid (stable: among ready nodes, the earliest
  /// goes first). A node also waits for values its sub-graphs read from this graph.
  /// Returns false, changing nothing, if the graph has a cycle.
  @discardableResult
  public func sortTopologically() -> Bool {
    let order = Array(nodes)
    var position: [ObjectIdentifier: Int] = [:]
    for (i, n) in order.enumerated() { position[ObjectIdentifier(n)] = i }
    var waiting = [Int](repeating: 0, count: order.count)
    var readers = [[Int]](repeating: [], count: order.count)
    for (i, n) in order.enumerated() {
      var producers = Set<Int>()
      func depend(on v: Value?) {
        guard let v, let p = v.producer, let j = position[ObjectIdentifier(p)], j != i else { return }
        producers.insert(j)
      }
      n.inputs.forEach(depend)
      for sub in n.subgraphs { sub.forEachNodeRecursive { $0.inputs.forEach(depend) } }
      waiting[i] = producers.count
      for j in producers { readers[j].append(i) }
    }
    var ready = Heap((0..<order.count).filter { waiting[$0] == 0 })
    var sorted: [Node] = []
    sorted.reserveCapacity(order.count)
    while let i = ready.popMin() {
      sorted.append(order[i])
      for r in readers[i] {
        waiting[r] -= 1
        if waiting[r] == 0 { ready.insert(r) }
      }
    }
    guard sorted.count == order.count else { return false }
    if zip(sorted, order).allSatisfy({ $0 === $1 }) { return true }
    for n in order { remove(n, keepingUses: true) }
    for n in sorted { append(n) }
    return true
  }
}
