import Foundation
import ONNXGraph

/// Walks a graph in order, inferring every value's type from its inputs and folding
/// every node whose inputs are all constant into an initializer.
///
/// One pass suffices: nodes are topologically ordered, so when a node is reached its
/// inputs are as known as they will ever be. Cost is O(nodes) plus the kernels run.
public final class Propagator {
  public struct Options {
    /// Fold constants at all (false: inference only).
    public var fold = true
    /// A folded tensor larger than this stays computed (a uniform one becomes
    /// ConstantOfShape of a constant shape, which is static and tiny).
    public var foldLimitBytes = 16 << 20
    public init(fold: Bool = true, foldLimitBytes: Int = 16 << 20) {
      self.fold = fold
      self.foldLimitBytes = foldLimitBytes
    }
  }

  public struct Stats {
    public var foldedNodes = 0
    public var foldedBytes = 0
    /// Nodes kept because their result would pass the fold limit.
    public var keptOverLimit = 0
    /// Nodes whose rule failed, with the reason (the node stays as it is).
    public var failures: [EvaluationError] = []
  }

  let model: Model
  let options: Options
  public private(set) var stats = Stats()
  /// Decoded initializers, so a constant read by many nodes is decoded once.
  private var decoded: [ObjectIdentifier: HostTensor] = [:]
  private var overridable: Set<ObjectIdentifier> = []
  /// Value names per graph, collected on first need (an over-limit fold needs a new name).
  private var scopes: [ObjectIdentifier: NameScope] = [:]

  private func names(_ graph: Graph) -> NameScope {
    if let s = scopes[ObjectIdentifier(graph)] { return s }
    let s = NameScope(graph)
    scopes[ObjectIdentifier(graph)] = s
    return s
  }

  public init(model: Model, options: Options = .init()) {
    self.model = model
    self.options = options
  }

  /// Ops whose output must not be computed ahead of time.
  static let neverFolded: Set<String> = [
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
  ]

  public func run(_ graph: Graph) {
    // From IR 4 on, an initializer that is also a graph input is only a default the
    // caller may override: not a constant.
    if model.irVersion >= 4 {
      for v in graph.inputs where v.constValue != nil { overridable.insert(ObjectIdentifier(v)) }
    }
    for node in graph.nodes {
      for sub in node.subgraphs { run(sub) }
      visit(node, in: graph)
    }
  }

  private func visit(_ node: Node, in graph: Graph) {
    guard let rule = OpRules.rule(for: node) else { return }
    let opset = Int(model.opsetVersion(for: node.domain) ?? 0)
    let present = node.inputs.compactMap { $0 }
    let allConstant = present.allSatisfy(isConstant)
    // Inference only needs small operands (shapes, axes, indices); weights are decoded
    // only when the node itself will be folded, so they are never paged in otherwise.
    let limit = allConstant ? options.foldLimitBytes : Self.inferenceOperandLimit
    let constants = node.inputs.map { v -> HostTensor? in v.flatMap { constant($0, upTo: limit) } }
    let ctx = OpContext(node: node, opset: opset, inputTypes: node.inputs.map { $0.flatMap(typeOf) }, constants: constants)
    do {
      if options.fold, !Self.neverFolded.contains(node.opType) {
        if let outputs = try foldedValues(node, ctx, rule, allConstant: allConstant) {
          replace(node, with: outputs, in: graph)
          return
        }
      }
      let types = try rule.infer(ctx)
      for (v, t) in zip(node.outputs, types) {
        if let t { v.type = merge(v.type, t) }
      }
    } catch let e as EvaluationError {
      stats.failures.append(e)
    } catch {
      stats.failures.append(EvaluationError(node: node, reason: "\(error)"))
    }
  }

  /// The node's outputs as constants, when it can be folded.
  private func foldedValues(_ node: Node, _ ctx: OpContext, _ rule: OpRule, allConstant: Bool) throws
    -> [HostTensor]?
  {
    // Shape and Size need only a static input shape, not its values.
    if node.opType == "Shape" || node.opType == "Size", let sizes = ctx.shape(0)?.staticSizes {
      if node.opType == "Size" { return [HostTensor(.int64, [], ints: [Int64(sizes.reduce(1, *))])] }
      let rank = sizes.count
      let clamp = { (v: Int64) in Swift.min(Swift.max(v < 0 ? Int(v) + rank : Int(v), 0), rank) }
      let start = clamp(ctx.int("start", default: 0))
      let end = clamp(ctx.int("end", default: Int64(rank)))
      return [.int64s(sizes[start..<Swift.max(start, end)].map(Int64.init))]
    }
    guard allConstant, let evaluate = rule.evaluate else { return nil }
    guard ctx.constants.enumerated().allSatisfy({ $0.element != nil || node.inputs[$0.offset] == nil }) else {
      return nil  // a constant of a type the evaluator does not hold
    }
    return try evaluate(ctx)
  }

  private func replace(_ node: Node, with outputs: [HostTensor], in graph: Graph) {
    var newNodes: [Node] = []
    for (value, result) in zip(node.outputs, outputs) where !value.name.isEmpty {
      value.type = result.typeInfo
      if result.byteCount <= options.foldLimitBytes {
        graph.addInitializer(value, result.tensor(name: value.name))
        // Before IR 4 every initializer must also be listed as a graph input.
        if model.irVersion < 4 { graph.inputs.append(value) }
        decoded[ObjectIdentifier(value)] = result
        stats.foldedBytes += result.byteCount
      } else if let uniform = uniformScalar(result) {
        let shape = graph.addInitializer(
          Value(name: names(graph).fresh(value.name + "_shape")),
          HostTensor.int64s(result.shape.map(Int64.init)).tensor(name: ""))
        let fill = Node(
          "ConstantOfShape", name: node.name.isEmpty ? "" : node.name + "_fill", inputs: [shape],
          outputs: [Value(name: value.name + "_tmp")],
          attributes: [Attribute("value", .tensor(uniform.tensor(name: "")))])
        newNodes.append(fill)
        fill.setOutput(0, value)
      } else {
        stats.keptOverLimit += 1
        return
      }
    }
    for n in newNodes { graph.insert(n, before: node) }
    graph.remove(node)
    stats.foldedNodes += 1
  }

  private func uniformScalar(_ t: HostTensor) -> HostTensor? {
    switch t.storage {
    case .float(let v) where v.allSatisfy({ $0.bitPattern == v.first?.bitPattern }):
      return HostTensor(t.dataType, [1], .float([v.first ?? 0]))
    case .int(let v) where v.allSatisfy({ $0 == v.first }):
      return HostTensor(t.dataType, [1], .int([v.first ?? 0]))
    default: return nil
    }
  }

  /// A value's type; initializers carry none in the file, so it comes from their tensor.
  private func typeOf(_ v: Value) -> TypeInfo? {
    v.type ?? v.constValue.map { TypeInfo(.tensor($0.dataType, Shape(static: $0.dims))) }
  }

  private func isConstant(_ v: Value) -> Bool {
    v.constValue != nil && !overridable.contains(ObjectIdentifier(v))
  }

  /// Constant operands larger than this are not decoded for inference alone.
  static let inferenceOperandLimit = 64 << 10

  private func constant(_ v: Value, upTo limit: Int) -> HostTensor? {
    guard isConstant(v) else { return nil }
    let key = ObjectIdentifier(v)
    if let d = decoded[key] { return d }
    guard let t = v.constValue, HostTensor.supports(t.dataType), t.byteCount <= limit,
      let h = try? HostTensor(t)
    else { return nil }
    // Keep small decoded constants for later readers; a folded weight is read once.
    if t.byteCount <= Self.inferenceOperandLimit { decoded[key] = h }
    return h
  }

  /// The inferred type, unless the declared one knows more about some dimension.
  private func merge(_ old: TypeInfo?, _ new: TypeInfo) -> TypeInfo {
    guard let old else { return new }
    if new.elementType == nil { return old }
    // Inference that lost the rank must not erase a declared shape (graph outputs keep theirs).
    guard let oldShape = old.shape, let newShape = new.shape else {
      var out = new
      if out.shape == nil { out.shape = old.shape }
      return out
    }
    guard oldShape.rank == newShape.rank else { return new }
    var out = new
    out.shape = Shape(zip(oldShape.dims, newShape.dims).map { o, n in
      switch (o, n) {
      case (.value, .symbol), (.value, .unknown), (.symbol, .unknown): o
      default: n
      }
    })
    return out
  }
}
