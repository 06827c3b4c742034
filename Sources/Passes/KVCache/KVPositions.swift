import Evaluation
import ONNXGraph

/// Where a decode graph's token positions come from (`--positions`).
public enum KVPositions: String, CaseIterable, Sendable {
  /// Derived inside the graph from the cache's length, as exported.
  case computed
  /// A graph input `position_ids` (int64 `[batch, sequence]`) the runtime supplies.
  case input
}

/// Replaces the exported position computation with a `position_ids` graph input.
///
/// HF decode exports compute `cache_position = Range(0, sequence) + past_length` and take
/// `position_ids = Unsqueeze(cache_position, 0)`; that Unsqueeze feeds either the rotary
/// embedding (through Unsqueeze/Cast into the inv_freq Mul/MatMul) or the position embedding
/// table (Gather). Only those uses are redirected: the causal mask keeps `cache_position`.
enum KVPositionsInput {
  static let inputName = "position_ids"

  static func apply(to graph: Graph, names: NameScope, pass: String) throws {
    var positionIds: [Node] = []
    var ranges: [Node] = []
    for node in graph.nodes where node.opType == "Range" && node.isDefaultDomain {
      ranges.append(node)
      for cachePosition in [node.outputs[0]] + node.outputs[0].consumers.filter({ $0.opType == "Add" }).map({ $0.outputs[0] }) {
        for use in cachePosition.uses where use.node.opType == "Unsqueeze" && use.index == 0 {
          if feedsPositionConsumer(use.node.outputs[0]) { positionIds.append(use.node) }
        }
      }
    }
    guard !positionIds.isEmpty else {
      let location = ranges.first?.displayName ?? (graph.name.isEmpty ? "graph" : graph.name)
      throw PassError(
        pass: pass, location: location,
        reason: "--positions input: cannot isolate the position computation (no Unsqueeze(Range(..) + past length) feeding a rotary embedding or a position-embedding Gather)")
    }
    guard graph.inputs.first(where: { $0.name == inputName }) == nil else {
      throw PassError(pass: pass, location: inputName, reason: "--positions input: the graph already has an input named '\(inputName)'")
    }
    let ids = graph.inputs.first { $0.name == "input_ids" }
    let dims: [Dim] = ids?.shape.flatMap { $0.rank == 2 ? $0.dims : nil } ?? ["batch_size", "sequence_length"]
    let input = Value(name: names.fresh(inputName), type: .tensor(.int64, Shape(dims)))
    graph.inputs.append(input)
    for unsqueeze in positionIds { try redirect(unsqueeze, to: input, in: graph, names: names, pass: pass) }
  }

  /// `Unsqueeze(cache_position, axes ∋ 0)` becomes `position_ids` with the other axes added:
  /// the batch axis takes the place of the leading 1.
  private static func redirect(_ unsqueeze: Node, to input: Value, in graph: Graph, names: NameScope, pass: String) throws {
    let fromInput = unsqueeze.inputs.count > 1
    guard let rawAxes = fromInput ? constInts(unsqueeze.inputs[1]) : unsqueeze[attribute: "axes"]?.ints else {
      throw PassError(pass: pass, location: unsqueeze.displayName, reason: "--positions input: the position Unsqueeze's axes are not constant")
    }
    let rank = 1 + rawAxes.count
    let axes = rawAxes.map { $0 < 0 ? $0 + Int64(rank) : $0 }
    guard axes.contains(0) else {
      throw PassError(pass: pass, location: unsqueeze.displayName, reason: "--positions input: positions are not unsqueezed on axis 0, so the batch axis has no place")
    }
    let rest = axes.filter { $0 != 0 }
    if rest.isEmpty {
      unsqueeze.outputs[0].replaceAllUses(with: input)
      return
    }
    let out = Value(name: names.fresh(input.name + "/unsqueezed"))
    let node: Node
    if fromInput {
      let axesValue = graph.addInitializer(
        Value(name: names.fresh(input.name + "/axes")),
        Tensor(dataType: .int64, dims: [rest.count], storage: .int64s(rest)))
      node = Node("Unsqueeze", name: names.fresh(unsqueeze.displayName + "/positions"), inputs: [input, axesValue], outputs: [out])
    } else {
      node = Node("Unsqueeze", name: names.fresh(unsqueeze.displayName + "/positions"), inputs: [input], outputs: [out],
                  attributes: [Attribute("axes", .ints(rest))])
    }
    graph.insert(node, before: unsqueeze)
    unsqueeze.outputs[0].replaceAllUses(with: out)
  }

  private static func constInts(_ value: Value?) -> [Int64]? {
    guard let v = value else { return nil }
    var tensor = v.constValue
    if tensor == nil, let p = v.producer, p.opType == "Constant", case .tensor(let t)? = p[attribute: "value"] { tensor = t }
    guard let t = tensor, let host = try? HostTensor(t), case .int(let ints) = host.storage else { return nil }
    return ints
  }

  /// Whether `value` ([1, sequence] positions) reaches, through a chain of single-use
  /// Unsqueeze/Cast, a Gather's indices or a Mul/MatMul after a Cast (rotary frequencies).
  private static func feedsPositionConsumer(_ value: Value) -> Bool {
    var v = value
    var castToFloat = false
    for _ in 0..<6 {
      guard v.uses.count == 1 else { return false }
      let use = v.uses[0]
      switch use.node.opType {
      case "Gather" where use.index == 1: return true
      case "Mul", "MatMul": return castToFloat
      case "Cast": castToFloat = true
      case "Unsqueeze" where use.index == 0: break
      default: return false
      }
      v = use.node.outputs[0]
    }
    return false
  }
}
