import Evaluation
import ONNXGraph

/// What each `present.N.*` output of a decode graph returns (`--kv-output`).
public enum KVOutput: String, CaseIterable, Sendable {
  /// Only the new tokens' K/V, for a runtime that owns a fixed-size cache buffer.
  case new
  /// The whole concatenated cache, as exported.
  case full
}

/// Rewrites a decode graph's KV-cache interface for runtimes that own the cache buffer.
///
/// The cache is found by structure: a graph output produced by `Concat(past, new)` where
/// `past` is a graph input (possibly through one-input Concat/Identity, which TorchScript
/// emits). With `--kv-output new` (the default) each such output returns `new` only, under
/// the same name; attention inside the graph still reads the concatenated cache.
public struct KVCacheIO: GraphPass {
  public static let name = "kv-cache-io"
  public static let summary = "Decode graphs: return only the new tokens' K/V (--kv-output), take position_ids (--positions input) and an additive attention_bias (--mask bias) as inputs, caches as [batch, sequence, heads, dim] (--kv-layout bshd)."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let graph = model.graph
    let caches = KVCacheFinder.find(in: graph)
    guard !caches.isEmpty else {
      // Cache IO by name but no Concat: most likely this pass's own output (--kv-output new).
      let pastInputs = graph.inputs.contains { $0.name.hasPrefix("past") }
      let presentOutputs = graph.outputs.contains { $0.name.hasPrefix("present") }
      let why = pastInputs && presentOutputs
        ? "its past_key_values.* inputs and present.* outputs are not joined by a Concat: already rewritten by kv-cache-io --kv-output new?"
        : "so this is not a decode graph with a cache (a prefill export?)"
      throw PassError(
        pass: Self.name, location: graph.name.isEmpty ? "graph" : graph.name,
        reason: "no KV cache found: no graph output is Concat(past graph input, new K/V); \(why)")
    }
    options.report("kv-cache-io: \(caches.count) cache outputs (\(caches.map(\.output.name).joined(separator: ", ")))")
    let names = NameScope(graph)
    let outputNames = caches.map(\.output.name)
    var modified = false
    if options.kvOutput == .new {
      let sequenceDim = graph.inputs.first { $0.name == "input_ids" }?.shape.flatMap { $0.rank >= 2 ? $0.dims[1] : nil }
      for cache in caches {
        try returnNewOnly(cache, in: graph, names: names, sequenceDim: sequenceDim)
      }
      modified = true
    }
    if options.kvPositions == .input {
      try KVPositionsInput.apply(to: graph, names: names, pass: Self.name)
      modified = true
    }
    if options.kvMask == .bias {
      try KVMaskBias.apply(to: graph, cache: caches.map(\.past), names: names, pass: Self.name)
      modified = true
    }
    // The replaced position and mask arithmetic (and its Shape reads of the cache) is now unread.
    if modified { _ = try DeadCodeElimination().run(on: model, options: options) }
    if options.kvMask == .bias { try KVMaskBias.retireMaskInput(from: graph, pass: Self.name) }
    if options.kvLayout == .bshd {
      try relayoutBSHD(model, caches: caches, outputNames: outputNames, names: names, options: options)
      modified = true
    }
    return PassResult(modified: modified)
  }

  /// Caches as [batch, sequence, kv_heads, head_dim], then as few Transposes as the layout
  /// needs: the export's heads-first Transposes sink below the cache Concats (where the
  /// present outputs' cancel), Transposes that meet fold, and layout Transposes that only
  /// move a size-1 KV-head axis become Squeeze/Unsqueeze.
  private func relayoutBSHD(_ model: Model, caches: [KVCacheFinder.Cache], outputNames: [String], names: NameScope,
                            options: PassOptions) throws {
    let graph = model.graph
    let before = graph.nodes.filter { $0.opType == "Transpose" }.count
    try KVLayoutBSHD.apply(to: graph, caches: caches, outputNames: outputNames, names: names, pass: Self.name)
    // Sinking needs ranks and the static sizes of unit axes.
    Propagator(model: model, options: .init(fold: false)).run(graph)
    let added = KVLayoutTransposes.sink(in: graph, names: names)
    if let rules = try RulePasses.library().rules(forPass: "fold-transposes") {
      var quiet = options
      quiet.report = { _ in }
      try RulePasses.run("fold-transposes", rules: rules, on: model, options: quiet)
    }
    for name in outputNames { KVLayoutBSHD.dropOutputIdentity(named: name, in: graph) }
    KVLayoutTransposes.dropUnitMoves(in: graph, added: added, names: names, opset: Int(model.opsetVersion(for: "") ?? 17))
    let after = graph.nodes.filter { $0.opType == "Transpose" }.count
    options.report("kv-cache-io: --kv-layout bshd: \(after) Transposes in the graph (\(before) as exported)")
  }

  /// Replaces graph output `cache.output` with the Concat's new operand, keeping the name.
  private func returnNewOnly(_ cache: KVCacheFinder.Cache, in graph: Graph, names: NameScope, sequenceDim: Dim?) throws {
    let full = cache.output
    let outputName = full.name
    full.name = names.fresh(outputName + ".full")
    let fresh = cache.new
    let result: Value
    let isGraphValue = fresh.producer == nil || graph.outputs.contains { $0 === fresh }
    if isGraphValue {
      // An input, initializer or another output: give the output its own value via Identity.
      result = Value(name: outputName)
      let identity = Node("Identity", name: names.fresh(outputName + "/Identity"), inputs: [fresh], outputs: [result])
      graph.insert(identity, after: fresh.producer ?? full.producer)
    } else {
      fresh.name = outputName
      result = fresh
    }
    result.type = outputType(past: cache.past, axis: cache.axis, fallback: fresh.type ?? full.type, sequenceDim: sequenceDim)
    for i in graph.outputs.indices where graph.outputs[i] === full { graph.outputs[i] = result }
    graph.valueInfos.removeAll { $0 === result }
  }

  /// The past input's type with the sequence axis set to the input's sequence length:
  /// `[batch, kv_heads, sequence, head_dim]`.
  private func outputType(past: Value, axis: Int, fallback: TypeInfo?, sequenceDim: Dim?) -> TypeInfo? {
    guard let element = past.elementType, var shape = past.shape, axis < shape.rank else { return fallback }
    shape.dims[axis] = sequenceDim ?? fallback?.shape.flatMap { axis < $0.rank ? $0.dims[axis] : nil } ?? .unknown
    return .tensor(element, shape)
  }
}
