import Foundation
import ONNXGraph

/// The dataflow facts tiling is computed from, gathered once in O(nodes + uses).
///
/// Nodes fall in three kinds:
/// - constant: every input is an initializer or another constant (Constant nodes, folded
///   shape arithmetic); copied into every tile that reads them, never passed between tiles.
/// - stream: reads a weight through a projection (MatMul/Gemm/Conv with a constant rank-2+
///   right operand, an embedding Gather) or reads a stream value: the hidden state and all
///   computed from it. Cut points are sought on these.
/// - side: everything else, i.e. computed from model inputs alone (attention masks, position
///   ids, past-KV preparation) or from shapes alone (Shape/Size chains). Side nodes go to the
///   one tile that needs them, or, when several do, to the earliest tile that can compute them,
///   whose outputs then feed the others.
final class GraphAnalysis {
  let graph: Graph
  /// Main-graph nodes in file (topological) order.
  let nodes: [Node]
  private(set) var index: [ObjectIdentifier: Int] = [:]
  /// Values with a compile-time value: initializers (not overridable inputs) and constant nodes' outputs.
  private(set) var constantValues: Set<ObjectIdentifier> = []
  private(set) var isConstantNode: [Bool] = []
  private(set) var isStreamNode: [Bool] = []
  /// Every value a node reads, including outer-scope values its sub-graphs read.
  private(set) var reads: [[Value]] = []
  /// Main-graph consumers (node indices) of each value.
  private(set) var consumers: [ObjectIdentifier: [Int]] = [:]
  /// Producer index of each node output.
  private(set) var producer: [ObjectIdentifier: Int] = [:]
  let graphOutputs: Set<ObjectIdentifier>

  static let projectionOps: Set<String> = [
    "MatMul", "Gemm", "Conv", "ConvTranspose", "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv",
  ]

  init(model: Model) {
    graph = model.graph
    nodes = Array(graph.nodes)
    graphOutputs = Set(graph.outputs.map(ObjectIdentifier.init))
    let overridable = model.irVersion >= 4 ? Set(graph.inputs.map(ObjectIdentifier.init)) : []
    for v in graph.initializers.values where !overridable.contains(ObjectIdentifier(v)) {
      constantValues.insert(ObjectIdentifier(v))
    }
    reads.reserveCapacity(nodes.count)
    for (i, n) in nodes.enumerated() {
      index[ObjectIdentifier(n)] = i
      var r = n.inputs.compactMap { $0 }
      if !n.subgraphs.isEmpty { r += Self.outerReads(of: n) }
      reads.append(r)
      for v in r { consumers[ObjectIdentifier(v), default: []].append(i) }
      for o in n.outputs { producer[ObjectIdentifier(o)] = i }
    }
    for (i, n) in nodes.enumerated() {
      let constant = !Self.nondeterministic.contains(n.opType) && reads[i].allSatisfy(isConstant)
      isConstantNode.append(constant)
      if constant { for o in n.outputs { constantValues.insert(ObjectIdentifier(o)) } }
    }
    for (i, n) in nodes.enumerated() {
      var stream = false
      // Shape and Size read only a shape: what they feed is shape arithmetic, a side value.
      if !isConstantNode[i] && !Self.shapeReaders.contains(n.opType) {
        stream = readsWeight(n) || reads[i].contains { v in producer[ObjectIdentifier(v)].map { isStreamNode[$0] } ?? false }
      }
      isStreamNode.append(stream)
    }
  }

  static let shapeReaders: Set<String> = ["Shape", "Size"]

  static let nondeterministic: Set<String> = [
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
  ]

  func isConstant(_ v: Value) -> Bool { constantValues.contains(ObjectIdentifier(v)) }

  /// x @ W with a constant W of rank >= 2, or an embedding lookup W[ids].
  private func readsWeight(_ n: Node) -> Bool {
    func constantRank(_ i: Int) -> Int? {
      guard i < n.inputs.count, let v = n.inputs[i], isConstant(v) else { return nil }
      return v.constValue?.dims.count ?? v.shape?.rank
    }
    func computed(_ i: Int) -> Bool { i < n.inputs.count && n.inputs[i].map { !isConstant($0) } == true }
    if Self.projectionOps.contains(n.opType), computed(0) {
      let weightIndex = n.opType.hasPrefix("QLinear") ? 3 : 1
      return (constantRank(weightIndex) ?? 0) >= 2
    }
    if n.opType == "Gather", computed(1) { return (constantRank(0) ?? 0) >= 2 }
    return false
  }

  /// Values of enclosing graphs that a node's sub-graphs read (ONNX's implicit inputs).
  static func outerReads(of node: Node) -> [Value] {
    var defined: Set<ObjectIdentifier> = []
    var out: [Value] = []
    var seen: Set<ObjectIdentifier> = []
    func visit(_ g: Graph) {
      for v in g.inputs { defined.insert(ObjectIdentifier(v)) }
      for v in g.initializers.values { defined.insert(ObjectIdentifier(v)) }
      for n in g.nodes {
        for o in n.outputs { defined.insert(ObjectIdentifier(o)) }
        for sub in n.subgraphs { visit(sub) }
      }
    }
    func collect(_ g: Graph) {
      for n in g.nodes {
        for v in n.inputs.compactMap({ $0 }) where !defined.contains(ObjectIdentifier(v)) {
          if seen.insert(ObjectIdentifier(v)).inserted { out.append(v) }
        }
        for sub in n.subgraphs { collect(sub) }
      }
      for v in g.outputs where !defined.contains(ObjectIdentifier(v)) {
        if seen.insert(ObjectIdentifier(v)).inserted { out.append(v) }
      }
    }
    for g in node.subgraphs { visit(g) }
    for g in node.subgraphs { collect(g) }
    return out
  }
}
