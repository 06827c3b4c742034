import Evaluation
import ONNXGraph

/// `fp16-safe-masks` (opt-in, not in `--pass npu`): attention-mask constants at or below
/// -1e30 (float32 lowest -3.4028235e38, -inf) become -10000.
///
/// Exporters build masks from `torch.finfo(float32).min`. Compiled for F16/BF16 (TPU-MLIR
/// `model_deploy --quantize F16`), that constant overflows to -inf (F16 max is 65504; BF16
/// rounds it up to -inf too), and a fully masked row — a left-padded query with no past —
/// gives softmax(-inf, ..., -inf) = NaN, which then spreads through every later layer.
///
/// Why -10000: it is what TPU-MLIR itself uses for masks; two masks summed (causal + padding)
/// give -20000, still finite in F16 (> -65504); and exp(-10000 - max) is 0 in float32 and
/// in every half type, so a masked position still gets exactly zero weight.
///
/// What changes: rows with at least one unmasked position are the same (their masked
/// weights were 0 and stay 0). A fully masked row was uniform in float32 (all scores became
/// the same -3.4e38) and NaN in F16. After: with a `Where(mask, scores, min)` mask every
/// score is -10000, so the row is uniform again; with an additive mask `scores + min` the
/// row becomes softmax(scores - 10000) = softmax(scores), finite but not uniform. Either
/// way only positions whose outputs are padding change, and they stay finite.
///
/// Only constants that reach a Softmax through mask plumbing are changed: the walk goes
/// forward through use lists, through Add/Sub/Mul/Where (values)/Min/Max/Expand/Reshape/
/// Cast/Slice/Concat/Unsqueeze/... and gives up after `walkLimit` nodes. A -3.4e38 used
/// elsewhere (a clamp, a fill value that never meets a Softmax) is kept. Sources are
/// initializers (including masks static-shape folded into one), Constant nodes and
/// ConstantOfShape fill values; a source also read off the mask path is copied, not edited.
public struct FP16SafeMasks: GraphPass {
  public static let name = "fp16-safe-masks"
  public static let summary =
    "Mask constants <= -1e30 that reach a Softmax become -10000, so F16/BF16 builds give no NaN (opt-in)."
  public init() {}

  /// The replacement value (see above).
  public static let maskValue = -10000.0
  /// Constants at or below this are mask fills (float32 lowest, -inf, -1e38 ...).
  public static let threshold = -1e30
  /// Nodes one forward search may visit before it gives up.
  static let walkLimit = 256

  /// Input slots through which a mask flows on to the node's outputs (nil: every input).
  static let plumbing: [String: Set<Int>?] = [
    "Add": nil, "Sub": nil, "Mul": nil, "Min": nil, "Max": nil, "Sum": nil, "Concat": nil,
    "Where": [1, 2], "ScatterND": [0, 2], "ScatterElements": [0, 2],
    "Expand": [0], "Reshape": [0], "Cast": [0], "CastLike": [0], "Slice": [0], "Unsqueeze": [0],
    "Squeeze": [0], "Transpose": [0], "Identity": [0], "Gather": [0], "GatherElements": [0],
    "Tile": [0], "Trilu": [0], "Flatten": [0], "Pad": [0], "Clip": [0],
  ]

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var replaced = 0
    for g in model.allGraphs { replaced += try rewrite(g) }
    options.report("\(Self.name): \(replaced) mask constants set to \(Int(Self.maskValue))")
    return PassResult(modified: replaced > 0)
  }

  /// Rewrites one graph's mask constants; returns how many sources changed.
  func rewrite(_ g: Graph) throws -> Int {
    let outputs = Set(g.outputs.map(ObjectIdentifier.init))
    var walker = SoftmaxReach()
    var names: NameScope?
    func fresh(_ base: String) -> String {
      if names == nil { names = NameScope(g) }
      return names!.fresh(base)
    }
    var count = 0

    // Initializers: edited in place when every reader is on a mask path, else copied.
    for v in Array(g.initializers.values) {
      guard let t = v.constValue, HostTensor.isFloatType(t.dataType), !v.uses.isEmpty else { continue }
      let maskUses = v.uses.filter { walker.reachesSoftmax($0.node, $0.index) }
      guard !maskUses.isEmpty, let safe = try Self.safeTensor(t, at: v.name) else { continue }
      if maskUses.count == v.uses.count && !outputs.contains(ObjectIdentifier(v)) && !g.inputs.contains(where: { $0 === v }) {
        g.addInitializer(v, safe.tensor(name: v.name))
      } else {
        let copy = Value(name: fresh(v.name + "_fp16_safe"), type: v.type)
        g.addInitializer(copy, safe.tensor(name: copy.name))
        for u in maskUses { u.node.inputs[u.index] = copy }
      }
      count += 1
    }

    // Constant and ConstantOfShape nodes: the attribute holding the value changes.
    for node in Array(g.nodes) where node.isDefaultDomain && (node.opType == "Constant" || node.opType == "ConstantOfShape") {
      guard let out = node.outputs.first, !out.uses.isEmpty else { continue }
      guard let (index, value) = Self.floatValue(of: node) else { continue }
      let maskUses = out.uses.filter { walker.reachesSoftmax($0.node, $0.index) }
      guard !maskUses.isEmpty, let safe = try Self.safeAttribute(value, at: node) else { continue }
      if maskUses.count == out.uses.count && !outputs.contains(ObjectIdentifier(out)) {
        node.attributes[index].value = safe
      } else {
        let copy = Node(
          node.opType, name: node.name.isEmpty ? "" : fresh(node.name + "_fp16_safe"), inputs: node.inputs,
          outputs: [Value(name: fresh(out.name + "_fp16_safe"), type: out.type)], attributes: node.attributes)
        copy.attributes[index].value = safe
        g.insert(copy, before: node)
        for u in maskUses { u.node.inputs[u.index] = copy.outputs[0] }
      }
      count += 1
    }
    return count
  }

  /// A Constant's or ConstantOfShape's float value attribute: its index and its tensor.
  static func floatValue(of node: Node) -> (Int, AttributeValue)? {
    for (i, a) in node.attributes.enumerated() {
      switch (a.name, a.value) {
      case ("value", .tensor(let t)) where HostTensor.isFloatType(t.dataType): return (i, a.value)
      case ("value_float", .float), ("value_floats", .floats): return (i, a.value)
      default: continue
      }
    }
    return nil
  }

  /// The attribute with mask fills replaced, or nil when it holds none.
  static func safeAttribute(_ value: AttributeValue, at node: Node) throws -> AttributeValue? {
    switch value {
    case .tensor(let t):
      return try safeTensor(t, at: node.displayName).map { .tensor($0.tensor(name: t.name)) }
    case .float(let f):
      return Double(f) <= threshold ? .float(Float(maskValue)) : nil
    case .floats(let fs):
      guard fs.contains(where: { Double($0) <= threshold }) else { return nil }
      return .floats(fs.map { Double($0) <= threshold ? Float(maskValue) : $0 })
    default: return nil
    }
  }

  /// `t` with every element <= threshold set to `maskValue`, or nil when it has none.
  static func safeTensor(_ t: Tensor, at location: String) throws -> HostTensor? {
    let host: HostTensor
    do { host = try HostTensor(t) } catch {
      throw PassError(pass: name, location: location, reason: "cannot read the constant: \(error)")
    }
    guard case .float(let values) = host.storage, values.contains(where: { $0 <= threshold }) else { return nil }
    return host.with(host.dataType, floats: values.map { $0 <= threshold ? maskValue : $0 })
  }
}

/// Whether a value read at (node, input slot) flows through mask plumbing into a Softmax.
/// A bounded forward walk over use lists. A start node found to reach one is remembered:
/// the mask every layer reads is walked to its first Softmax once, and later walks that
/// meet it stop there.
struct SoftmaxReach {
  private var known: Set<ObjectIdentifier> = []

  mutating func reachesSoftmax(_ node: Node, _ slot: Int) -> Bool {
    var stack: [(Node, Int)] = [(node, slot)]
    var seen: Set<ObjectIdentifier> = []
    while let (n, k) = stack.popLast() {
      if n.isDefaultDomain && (n.opType == "Softmax" || n.opType == "LogSoftmax") && k == 0 {
        return found(from: node)
      }
      guard n.isDefaultDomain, let slots = FP16SafeMasks.plumbing[n.opType], slots?.contains(k) ?? true else { continue }
      if known.contains(ObjectIdentifier(n)) { return found(from: node) }
      guard seen.insert(ObjectIdentifier(n)).inserted else { continue }
      guard seen.count <= FP16SafeMasks.walkLimit else { return false }
      for out in n.outputs {
        for u in out.uses { stack.append((u.node, u.index)) }
      }
    }
    return false
  }

  /// The walk from `start` reached a Softmax, so `start` (a plumbing node: a Softmax
  /// itself is not remembered) passes a mask on.
  private mutating func found(from start: Node) -> Bool {
    if start.opType != "Softmax" && start.opType != "LogSoftmax" { known.insert(ObjectIdentifier(start)) }
    return true
  }
}

extension HostTensor {
  /// float, float16, bfloat16, double.
  static func isFloatType(_ t: DataType) -> Bool { t == .float || t == .float16 || t == .bfloat16 || t == .double }
}
