import Evaluation
import ONNXGraph

/// `attention-permutes`: sinks each Transpose down through layout-agnostic ops until it meets
/// the next Transpose, where the two compose into one (or cancel).
///
/// TorchScript exports of Llama, Phi-3 and Falcon transpose K twice — `.transpose(1, 2)` to
/// heads-first, rotary (Mul/Slice/Neg/Concat/Add with broadcast cos/sin), GQA's
/// Unsqueeze/Expand/Reshape (`repeat_kv`), then `key.transpose(2, 3)` — five Transposes a
/// layer where four do. Every Transpose is a copy on a device, and TPU-MLIR's attention
/// patterns want `Reshape → Transpose → MatMul(Q, Kᵀ) → Softmax → MatMul(·, V)`.
///
/// For a Transpose T (perm p) the pass computes the region of ops below it that can run on the
/// untransposed tensor instead: unary elementwise ops, elementwise ops whose other operands are
/// constants (permuted to match) or region values in the same layout, Slice/Split/Concat/
/// Softmax (axes remapped), Unsqueeze (the new axis placed beside its left neighbour), Expand
/// (shape permuted) and Reshapes that only split or merge axes adjacent in the untransposed
/// layout. Each value of the region carries its own permutation. The rewrite happens only when
/// every edge leaving the region ends in a Transpose, which then absorbs the layout (composed
/// permutation, or nothing when it is the identity): the Transpose count drops by at least one
/// and never grows. Graph outputs are never re-laid out. Afterwards the `fold-transposes` rules
/// compose what is left and fold Transposes of constants.
///
/// Native, not a rule file: the decision needs the whole region (every exit must be a
/// Transpose), which a root-anchored pattern cannot see.
public struct AttentionPermutes: GraphPass {
  public static let name = "attention-permutes"
  public static let summary = "Sink Transposes through rotary/repeat_kv/elementwise ops and merge them (K's two become one)."
  public init() {}

  /// Region size cap: keeps each attempt O(pattern), not O(graph).
  static let regionLimit = 256

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    Propagator(model: model, options: .init(fold: false)).run(model.graph)
    var merged = 0
    for g in model.allGraphs {
      let names = NameScope(g)
      let outputs = Set(g.outputs.map(ObjectIdentifier.init))
      let transposes = g.nodes.filter { $0.opType == "Transpose" && $0.isDefaultDomain }
      for t in transposes where t.graph === g {
        if var plan = Sinking(t, outputs: outputs, opset: Int(model.opsetVersion(for: "") ?? 17)) {
          plan.apply(in: g, names: names)
          merged += 1
        }
      }
    }
    var modified = merged > 0
    let library = try RulePasses.library()
    if let rules = library.rules(forPass: "fold-transposes") {
      var quiet = options
      quiet.report = { _ in }
      modified = try RulePasses.run("fold-transposes", rules: rules, on: model, options: quiet).modified || modified
    }
    if modified { DeadCodeElimination().sweep(model.graph, keepInitializers: false) }
    options.report("\(Self.name): \(merged) Transposes sunk into the next one")
    return PassResult(modified: modified)
  }
}

/// One Transpose's region and how each of its nodes changes.
struct Sinking {
  typealias Perm = [Int]

  let transpose: Node
  /// Region values (by identity) → the permutation from their new layout to their old one:
  /// old = Transpose(new, perm).
  var perms: [ObjectIdentifier: Perm] = [:]
  var values: [Value] = []
  /// Region nodes, each with the change that makes it work on the new layouts.
  var edits: [(Node, Edit)] = []
  /// Transposes reading a region value: they absorb its permutation.
  var exits: [(Node, Value)] = []

  enum Edit {
    case none
    case constants([Int: HostTensor])  // input index → its re-laid-out constant
    case axisAttribute(String, Int)
    case axesInput(Int, [Int64])  // input index → new axes
    case shapeInput(Int, [Int64])
  }

  init?(_ t: Node, outputs: Set<ObjectIdentifier>, opset: Int) {
    guard let x = t.inputs.first ?? nil, let y = t.outputs.first, !outputs.contains(ObjectIdentifier(y)),
      let rank = x.shape?.rank ?? y.shape?.rank
    else { return nil }
    let p = (t[attribute: "perm"]?.ints).map { $0.map(Int.init) } ?? Array((0..<rank).reversed())
    guard p.count == rank, Set(p) == Set(0..<rank) else { return nil }
    transpose = t
    perms[ObjectIdentifier(y)] = p
    values = [y]
    var pending: [ObjectIdentifier: Node] = [:]
    var visited: Set<ObjectIdentifier> = []
    var cursor = 0
    while cursor < values.count {
      let v = values[cursor]
      cursor += 1
      for use in v.uses {
        let n = use.node
        if n.opType == "Transpose" && n.isDefaultDomain {
          exits.append((n, v))
          continue
        }
        guard !visited.contains(ObjectIdentifier(n)) else { continue }
        switch plan(n, opset: opset) {
        case .some(let (edit, outPerms)):
          visited.insert(ObjectIdentifier(n))
          pending[ObjectIdentifier(n)] = nil
          edits.append((n, edit))
          for (o, q) in zip(n.outputs, outPerms) where !o.name.isEmpty {
            guard !outputs.contains(ObjectIdentifier(o)) else { return nil }  // a graph output would change layout
            perms[ObjectIdentifier(o)] = q
            values.append(o)
          }
          guard edits.count <= AttentionPermutes.regionLimit else { return nil }
        case .none:
          pending[ObjectIdentifier(n)] = n  // may still fit once its other operands join
        }
      }
      // Retry nodes that waited for another region operand.
      if cursor == values.count {
        for (id, n) in pending {
          if let (edit, outPerms) = plan(n, opset: opset) {
            pending[id] = nil
            visited.insert(id)
            edits.append((n, edit))
            for (o, q) in zip(n.outputs, outPerms) where !o.name.isEmpty {
              guard !outputs.contains(ObjectIdentifier(o)) else { return nil }
              perms[ObjectIdentifier(o)] = q
              values.append(o)
            }
            break
          }
        }
      }
    }
    // Any consumer left outside the region that is not a Transpose would need a new Transpose.
    guard pending.isEmpty, !exits.isEmpty else { return nil }
  }

  func perm(_ v: Value?) -> Perm? { v.flatMap { perms[ObjectIdentifier($0)] } }

  static let unary: Set<String> = [
    "Neg", "Cast", "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Reciprocal", "Abs", "Sin", "Cos",
    "Softplus", "Identity", "Not", "Floor", "Ceil", "Round", "Sign", "IsNaN", "HardSigmoid", "LeakyRelu", "Elu",
    "Selu", "Gelu", "Clip",
  ]
  static let elementwise: Set<String> = [
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "And", "Or", "Xor", "Where", "Mod", "BitShift",
  ]

  /// How `n` changes to read its region inputs in their new layout, and its outputs' perms.
  func plan(_ n: Node, opset: Int) -> (Edit, [Perm])? {
    guard n.isDefaultDomain, let data = n.inputs.first ?? nil else { return nil }
    let regionInputs = n.inputs.compactMap { $0 }.filter { perm($0) != nil }
    guard let q = regionInputs.first.flatMap(perm), regionInputs.allSatisfy({ perm($0) == q }) else { return nil }
    let r = q.count
    let op = n.opType
    if Self.unary.contains(op) {
      // Clip's min/max are scalars; anything else reading a second non-region input is out.
      guard n.inputs.dropFirst().allSatisfy({ $0 == nil || $0!.constValue != nil }), perm(data) != nil else { return nil }
      return (.none, [q])
    }
    if Self.elementwise.contains(op) {
      guard n.outputs.count == 1, n.outputs[0].shape?.rank == r else { return nil }
      var constants: [Int: HostTensor] = [:]
      for (i, input) in n.inputs.enumerated() {
        guard let v = input else { continue }
        if perm(v) != nil {
          guard v.shape?.rank == r else { return nil }
          continue
        }
        guard let t = v.constValue, t.byteCount <= 1 << 20, let h = try? HostTensor(t), h.rank <= r else { return nil }
        let full = HostTensor(h.dataType, Array(repeating: 1, count: r - h.rank) + h.shape, h.storage)
        constants[i] = full.transposed(perm: inverse(q))
      }
      return (.constants(constants), [q])
    }
    guard perm(data) != nil, n.inputs.dropFirst().allSatisfy({ $0 == nil || perm($0) == nil }) || op == "Concat"
    else { return nil }
    switch op {
    case "Slice":
      guard n.inputs.count >= 3, let starts = ints(n.inputs[1]) else { return nil }
      guard n.inputs.dropFirst().allSatisfy({ $0 == nil || $0!.constValue != nil }) else { return nil }
      let axes = n.inputs.count > 3 && n.inputs[3] != nil ? ints(n.inputs[3]) : (0..<Int64(starts.count)).map { $0 }
      guard let axes, let mapped = remap(axes, q) else { return nil }
      return (.axesInput(3, mapped), [q])
    case "Concat":
      guard let a = n[attribute: "axis"]?.int, let axis = normalize(a, r) else { return nil }
      var constants: [Int: HostTensor] = [:]
      for (i, input) in n.inputs.enumerated() {
        guard let v = input else { continue }
        if perm(v) != nil { continue }
        guard let t = v.constValue, t.byteCount <= 1 << 20, let h = try? HostTensor(t), h.rank == r else { return nil }
        constants[i] = h.transposed(perm: inverse(q))
      }
      guard constants.isEmpty else { return nil }  // keep it simple: every input from the region
      return (.axisAttribute("axis", q[axis]), [q])
    case "Split":
      guard let axis = normalize(n[attribute: "axis"]?.int ?? 0, r) else { return nil }
      guard n.inputs.dropFirst().allSatisfy({ $0 == nil || $0!.constValue != nil }) else { return nil }
      return (.axisAttribute("axis", q[axis]), Array(repeating: q, count: n.outputs.count))
    case "Softmax", "LogSoftmax":
      guard opset >= 13, let axis = normalize(n[attribute: "axis"]?.int ?? -1, r) else { return nil }
      return (.axisAttribute("axis", q[axis]), [q])
    case "Unsqueeze":
      guard opset >= 13, n.inputs.count == 2, let axes = ints(n.inputs[1]), axes.count == 1,
        let u = normalize(axes[0], r + 1)
      else { return nil }
      // The new axis goes right after the one left of it, so a later merge finds them adjacent.
      let pos = u > 0 ? q[u - 1] + 1 : 0
      func m(_ j: Int) -> Int { j < pos ? j : j + 1 }
      let out = (0..<(r + 1)).map { i in i < u ? m(q[i]) : i == u ? pos : m(q[i - 1]) }
      return (.axesInput(1, [Int64(pos)]), [out])
    case "Expand":
      guard n.inputs.count == 2, let shape = ints(n.inputs[1]), shape.count == r else { return nil }
      var permuted = shape
      for i in 0..<r { permuted[q[i]] = shape[i] }
      return (.shapeInput(1, permuted), [q])
    case "Reshape":
      guard n.inputs.count == 2, n.inputs[1]?.constValue != nil, let from = data.shape?.staticSizes,
        let to = n.outputs[0].shape?.staticSizes, !from.contains(0), !to.contains(0),
        let (shape, out) = reshape(from: from, to: to, q)
      else { return nil }
      return (.shapeInput(1, shape.map(Int64.init)), [out])
    default:
      return nil
    }
  }

  /// A Reshape seen through the permutation: the new shape (in the untransposed layout) and
  /// the output's permutation, if every group of merged or split axes is adjacent and in
  /// order there.
  func reshape(from a: [Int], to b: [Int], _ q: Perm) -> ([Int], Perm)? {
    var segments: [(ins: [Int], outs: [Int])] = []
    var i = 0, j = 0
    while i < a.count || j < b.count {
      var ins: [Int] = [], outs: [Int] = []
      var pa = 1, pb = 1
      if i < a.count { pa *= a[i]; ins.append(i); i += 1 }
      if j < b.count { pb *= b[j]; outs.append(j); j += 1 }
      while pa != pb {
        if pa < pb, i < a.count { pa *= a[i]; ins.append(i); i += 1 }
        else if pb < pa, j < b.count { pb *= b[j]; outs.append(j); j += 1 }
        else { return nil }
      }
      guard !ins.isEmpty, !outs.isEmpty else { return nil }
      segments.append((ins, outs))
    }
    for s in segments {
      for (t, axis) in s.ins.enumerated() where q[axis] != q[s.ins[0]] + t { return nil }
    }
    var shape: [Int] = []
    var out = Array(repeating: 0, count: b.count)
    for s in segments.sorted(by: { q[$0.ins[0]] < q[$1.ins[0]] }) {
      for (t, o) in s.outs.enumerated() { out[o] = shape.count + t }
      shape += s.outs.map { b[$0] }
    }
    return (shape, out)
  }

  func ints(_ v: Value?) -> [Int64]? {
    guard let t = v?.constValue, t.byteCount <= 1 << 16, let h = try? HostTensor(t), !h.isFloat else { return nil }
    return h.int64s
  }

  func normalize(_ a: Int64, _ rank: Int) -> Int? {
    let v = a < 0 ? Int(a) + rank : Int(a)
    return (0..<rank).contains(v) ? v : nil
  }

  func remap(_ axes: [Int64], _ q: Perm) -> [Int64]? {
    var out: [Int64] = []
    for a in axes {
      guard let v = normalize(a, q.count) else { return nil }
      out.append(Int64(q[v]))
    }
    return out
  }

  func inverse(_ p: Perm) -> Perm {
    var inv = Array(repeating: 0, count: p.count)
    for (i, v) in p.enumerated() { inv[v] = i }
    return inv
  }

  /// Rewrites the region in place: constants and attributes of its nodes, the shapes of its
  /// values, the exits' permutations; then the Transpose goes.
  mutating func apply(in g: Graph, names: NameScope) {
    func constant(_ h: HostTensor, _ base: String) -> Value {
      let v = Value(name: names.fresh(base))
      v.type = .tensor(h.dataType, Shape(static: h.shape))
      return g.addInitializer(v, h.tensor(name: v.name))
    }
    for (n, edit) in edits {
      let base = n.outputs.first?.name ?? n.opType
      switch edit {
      case .none: break
      case .constants(let map):
        for (i, h) in map { n.inputs[i] = constant(h, base + "_relaid") }
      case .axisAttribute(let name, let value):
        n.attributes.removeAll { $0.name == name }
        n.attributes.append(Attribute(name, .int(Int64(value))))
      case .axesInput(let i, let axes):
        let v = constant(HostTensor.int64s(axes), base + "_axes")
        while n.inputs.count <= i { n.inputs.append(nil) }
        n.inputs[i] = v
      case .shapeInput(let i, let shape):
        n.inputs[i] = constant(HostTensor.int64s(shape), base + "_shape")
      }
    }
    // Old layout = Transpose(new, q): new dims[q[i]] = old dims[i].
    for v in values where v !== transpose.outputs[0] {
      guard let q = perm(v), let old = v.shape, old.rank == q.count, let e = v.elementType else { v.type = nil; continue }
      var dims = old.dims
      for i in 0..<q.count { dims[q[i]] = old.dims[i] }
      v.type = .tensor(e, Shape(dims))
    }
    for (exit, v) in exits {
      guard let q = perm(v), exit.graph === g else { continue }
      let b = (exit[attribute: "perm"]?.ints).map { $0.map(Int.init) } ?? Array((0..<q.count).reversed())
      let composed = b.map { q[$0] }
      exit.attributes.removeAll { $0.name == "perm" }
      exit.attributes.append(Attribute("perm", .ints(composed.map(Int64.init))))
    }
    let y = transpose.outputs[0]
    if let x = transpose.inputs[0] {
      g.replaceAllUses(of: y, with: x)
      g.remove(transpose)
    }
    // Exits that became identities read their input directly.
    for (exit, _) in exits where exit.graph === g {
      let p = exit[attribute: "perm"]?.ints ?? []
      if p == Array(0..<Int64(p.count)), let input = exit.inputs[0] { _ = g.bypass(exit, with: input) }
    }
  }
}
