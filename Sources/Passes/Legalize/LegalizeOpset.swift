import Evaluation
import Foundation
import ONNXGraph

/// Lowers a model to an older default-domain opset (`--target-opset`, default 17) by
/// rewriting every op whose form or existence differs between the two, then stamps the
/// opset import and a matching IR version (lowered, never raised).
///
/// Dynamo exports are IR 10 / opset 18-20; TPU-MLIR pins onnx 1.14 (IR <= 9, opset <= 19)
/// and rejects them (`Op not support: Gelu`, `Unsupport opset for ReduceMean`), and
/// `onnx.version_converter` has no down adapters for Split, Pad or Gelu. All or nothing:
/// every node is planned first; if one cannot be lowered the model is left as it was
/// (reported; an error with `--strict`), so the pass never writes a half-converted model.
///
/// Ops of the dynamo fixtures (`Fixtures/*-dynamo`, opset 20, no model-local functions)
/// whose schema differs between opset 17 and 20, and what happens to them:
///
/// | op          | opset 17 -> 20 change                         | handling                          |
/// |-------------|-----------------------------------------------|-----------------------------------|
/// | Gelu        | new in 20                                     | Erf/Tanh formula (gelu.rules)     |
/// | ReduceMean  | 18: axes attribute -> input, noop_with_empty  | LowerReduceAxes                   |
/// | Split       | 18: num_outputs attribute                     | LowerSplit (explicit sizes)       |
/// | Pad         | 18: axes input; 19: "wrap" mode               | LowerPad (full-rank pads)         |
/// | ScatterND   | 18: reduction max/min                         | DropScatterReduction ("none" off) |
/// | Cast        | 19: saturate attribute, float8 types          | saturate dropped; types checked   |
/// | Reshape     | 19: float8 types                              | types checked, stamp only         |
/// | Shape       | 19: float8 types                              | types checked, stamp only         |
///
/// Below 17 (`--target-opset 11..16`) LayerNormalization becomes its formula
/// (LowerLayerNorm), Reshape's allowzero=1 and Shape's start/end (LowerMisc) go, and
/// Squeeze/Unsqueeze/Split/ReduceSum take their axes/sizes as attributes again below 13.
///
/// Every other op they use (Add, And, Concat, Conv, Cos, Div, Expand, Gather, GatherND,
/// LayerNormalization (17), LessOrEqual, MatMul, Max, Mul, Neg, Pow, Range, Reciprocal,
/// Sigmoid, Sin, Slice, Softmax, Sqrt, Squeeze, Sub, Tile, Transpose, Unsqueeze, Where)
/// has the same schema at 17 and 20. Other ops are checked against `OpsetHistory`:
/// added element types must not be used, added attributes must be unset or at the
/// default that keeps the old meaning, and a changed signature needs a lowering here.
public struct LegalizeOpset: GraphPass {
  public static let name = "legalize-opset"
  public static let summary =
    "Lower to an older opset (--target-opset, default 17): Gelu, Reduce*/Split/Pad forms, Scatter reduction; stamp opset and IR."
  public static let defaultTarget = 17
  /// Below this, opset-11 era changes (Pad/Clip attributes to inputs, ...) would need
  /// lowerings this pass does not have.
  public static let lowestTarget = 11
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let target = options.targetOpset ?? Self.defaultTarget
    guard let source = model.opsetVersion(for: "").map(Int.init) else {
      options.report("\(Self.name): the model imports no default-domain opset; nothing to lower")
      return PassResult(modified: false)
    }
    if target >= source {
      options.report("\(Self.name): already at opset \(source) (target \(target)); nothing to do")
      return PassResult(modified: false)
    }
    guard target >= Self.lowestTarget else {
      throw PassError(
        pass: Self.name, location: "--target-opset \(target)",
        reason: "lowering below opset \(Self.lowestTarget) is not supported")
    }

    let inlined = try InlineFunctions.run(on: model, pass: Self.name)
    // Split needs static dims, the checks need element types.
    Propagator(model: model, options: .init(fold: false)).run(model.graph)

    let ctx = LegalizeContext(source: source, target: target)
    var work: [() throws -> Void] = []
    var problems: [(node: Node, reason: String)] = []
    var gelus = 0
    for g in graphs(of: model) {
      let names = NameScope(g)
      for n in g.nodes where n.isDefaultDomain {
        switch try ctx.plan(n, in: g, names: names) {
        case .unchanged: break
        case .rules: gelus += 1
        case .rewrite(let apply): work.append(apply)
        case .unsupported(let reason): problems.append((n, reason))
        }
      }
    }

    if let first = problems.first {
      if options.strict {
        throw PassError(pass: Self.name, location: first.node.displayName, reason: "\(first.node.opType): \(first.reason) (--strict)")
      }
      for p in problems { options.report("\(Self.name): \(p.node.displayName) (\(p.node.opType)): \(p.reason)") }
      options.report(
        "\(Self.name): \(problems.count) node(s) cannot be lowered to opset \(target); the model stays at opset \(source)")
      return PassResult(modified: inlined > 0)
    }

    for apply in work { try apply() }
    if gelus > 0 {
      let rules = try RulePasses.library().rules(forPass: "legalize-gelu") ?? []
      try RulePasses.run("legalize-gelu", rules: rules, on: model, options: options)
    }
    // Every op must now exist at the target; a leftover means a lowering above failed.
    for g in graphs(of: model) {
      for n in g.nodes where n.isDefaultDomain && OpsetHistory.sinceVersion(n.opType, at: target) == nil {
        throw PassError(pass: Self.name, location: n.displayName, reason: "\(n.opType) was not lowered to opset \(target)")
      }
    }
    // The axes and sizes inputs that became attributes are read by nothing now.
    DeadCodeElimination().sweep(model.graph, keepInitializers: false)
    stamp(model, target: target)
    options.report(
      "\(Self.name): opset \(source) -> \(target), IR \(model.irVersion); \(work.count) nodes rewritten, "
        + "\(gelus) Gelu expanded, \(inlined) function calls inlined")
    return PassResult(modified: true)
  }

  /// The main graph and its sub-graphs (functions are inlined and gone by now).
  func graphs(of model: Model) -> [Graph] {
    var out: [Graph] = []
    func visit(_ g: Graph) {
      out.append(g)
      for n in g.nodes { n.subgraphs.forEach(visit) }
    }
    visit(model.graph)
    return out
  }

  func stamp(_ model: Model, target: Int) {
    for i in model.opsetImports.indices
    where model.opsetImports[i].domain.isEmpty || model.opsetImports[i].domain == "ai.onnx" {
      model.opsetImports[i].version = Int64(target)
    }
    model.irVersion = min(model.irVersion, OpsetHistory.irVersion(forOpset: target))
  }
}

/// What planning decided for one node.
enum LoweringPlan {
  case unchanged
  /// Lowered by the `legalize-gelu` rules after planning.
  case rules
  case rewrite(() throws -> Void)
  case unsupported(String)
}

/// The two opsets and the planning of one node: a family lowering for the ops whose
/// signature changed, then the generic checks of `OpsetHistory` for everything else.
struct LegalizeContext {
  let source: Int
  let target: Int
  static let pass = LegalizeOpset.name

  /// Whether `op` changed to the form of `version` between the target and the source.
  func crosses(_ op: String, _ version: Int) -> Bool {
    OpsetHistory.changes(op, after: target, upTo: source).contains { $0.version == version }
  }

  func error(_ n: Node, _ reason: String) -> PassError {
    PassError(pass: Self.pass, location: n.displayName, reason: "\(n.opType): \(reason)")
  }

  func plan(_ n: Node, in g: Graph, names: NameScope) throws -> LoweringPlan {
    let op = n.opType
    guard OpsetHistory.isKnown(op) else {
      return .unsupported("not an operator of the default ONNX domain")
    }
    let changes = OpsetHistory.changes(op, after: target, upTo: source)
    if changes.isEmpty { return .unchanged }
    if OpsetHistory.sinceVersion(op, at: target) == nil {
      if op == "Gelu" { return LowerGelu.plan(n) }
      if op == "LayerNormalization" { return LowerLayerNorm.plan(n, in: g, names: names, self) }
      let first = OpsetHistory.versions[op]?.first?.version ?? 0
      return .unsupported("exists from opset \(first) on; no lowering to opset \(target) is known")
    }

    // Family lowerings: the versions they take care of, and the rewrite.
    var handled: Set<Int> = []
    var steps: [() throws -> Void] = []
    let family: FamilyLowering?
    switch op {
    case _ where LowerReduceAxes.axesInputVersion[op] != nil: family = try LowerReduceAxes.plan(n, in: g, self)
    case "Split": family = try LowerSplit.plan(n, in: g, names: names, self)
    case "Pad": family = try LowerPad.plan(n, in: g, names: names, self)
    case "ScatterND", "ScatterElements": family = DropScatterReduction.plan(n, self)
    case "Squeeze", "Unsqueeze": family = try LowerReduceAxes.planSqueeze(n, in: g, self)
    default: family = try LowerMisc.plan(n, in: g, names: names, self)
    }
    if let family {
      if let reason = family.unsupported { return .unsupported(reason) }
      handled = family.handled
      if let apply = family.apply { steps.append(apply) }
    }

    // Generic checks for the versions no family lowering took care of.
    var drops: [String] = []
    for v in changes {
      let used = Set(elementTypes(n).map(\.name)).intersection(v.addedTypes)
      if let t = used.sorted().first {
        return .unsupported("uses element type \(t), which \(op) accepts only from opset \(v.version)")
      }
      if handled.contains(v.version) { continue }
      if v.opaque && !OpsetHistory.typeOnlyOpaque.contains("\(op) \(v.version)") {
        return .unsupported("its meaning changed in opset \(v.version); no lowering is known")
      }
      if v.signatureChanged {
        return .unsupported("its inputs or outputs changed in opset \(v.version); no lowering is known")
      }
      for (attr, def) in v.addedAttributes.sorted(by: { $0.key < $1.key }) {
        guard let value = n[attribute: attr] else { continue }
        guard matches(value, def) else {
          return .unsupported("attribute '\(attr)' exists only from opset \(v.version) and is not at its default")
        }
        drops.append(attr)
      }
    }
    if !drops.isEmpty { steps.append { n.attributes.removeAll { drops.contains($0.name) } } }
    if steps.isEmpty { return .unchanged }
    return .rewrite { for s in steps { try s() } }
  }

  func matches(_ value: AttributeValue, _ def: OpsetHistory.AttributeDefault) -> Bool {
    switch def {
    case .none: false
    case .int(let i): value.int == i
    case .float(let f): value.float == f
    case .string(let s): value.string == s
    }
  }

  /// The element types a node reads and writes, where known.
  func elementTypes(_ n: Node) -> [DataType] {
    (n.inputs.compactMap { $0 } + n.outputs).compactMap { $0.constValue?.dataType ?? $0.elementType }
  }

  /// The integers of a constant operand: an initializer (not one a caller may override)
  /// or a Constant node's value.
  func constantInts(_ v: Value?, in g: Graph) -> [Int64]? {
    guard let v else { return nil }
    if let t = v.constValue {
      guard !g.inputs.contains(where: { $0 === v }) else { return nil }
      return (try? HostTensor(t))?.int64s
    }
    if let p = v.producer, p.opType == "Constant", p.isDefaultDomain {
      if let t = p[attribute: "value"]?.tensor { return (try? HostTensor(t))?.int64s }
      if let i = p[attribute: "value_ints"]?.ints { return i }
      if let i = p[attribute: "value_int"]?.int { return [i] }
    }
    return nil
  }

  /// An int64 initializer in `g`, named after `base`.
  func int64Initializer(_ values: [Int64], _ base: String, in g: Graph, names: NameScope) -> Value {
    let v = Value(name: names.fresh(base))
    v.type = TypeInfo(.tensor(.int64, Shape(static: [values.count])))
    g.addInitializer(v, HostTensor.int64s(values).tensor(name: v.name))
    return v
  }
}

/// A family lowering's verdict for one node.
struct FamilyLowering {
  /// The `OpsetHistory` versions this lowering covers (no generic check for them).
  var handled: Set<Int> = []
  var apply: (() throws -> Void)? = nil
  var unsupported: String? = nil
}
