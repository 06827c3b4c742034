import Evaluation
import ONNXGraph

/// Sinks the export's heads-first Transpose of the new K/V below the cache Concat, so a bshd
/// cache is concatenated on the sequence axis in its own layout.
///
/// After `KVLayoutBSHD` a cache reads `Concat(Transpose(past), new)`, `new` being the export's
/// `Transpose(Reshape(k_proj))` (through rotary for K), and the present output is
/// `Transpose(new)`. For a Transpose T the region of ops below it that can run on its input is
/// computed: elementwise ops (constants re-laid out; a broadcast `Unsqueeze` operand such as
/// rotary's cos/sin gets a copy unsqueezed on the other axis, since Q's rotary and other
/// layers still read the original), Slice/Split/Concat (axes remapped), and operands that are
/// Transposes by the same permutation (the past input's), which are read untransposed. Transposes reading the region absorb the permutation
/// (the present output's cancels); other readers get one new Transpose; a Shape read gets a
/// Gather restoring the old dim order, so this works on dynamic exports, where
/// `attention-permutes` cannot. The rewrite happens only when the Transpose count drops.
struct KVLayoutSinking {
  typealias Perm = [Int]

  /// How one input of a region node changes.
  enum Replacement {
    case constant(HostTensor)
    case value(Value)  // the untransposed input of a same-permutation Transpose
    case unsqueeze(Node, [Int64])  // a copy of this Unsqueeze with other axes
  }

  struct Edit {
    var inputs: [Int: Replacement] = [:]
    var axisAttribute: (String, Int)?
    var axesInput: (Int, [Int64])?
  }

  let root: Node
  /// Region value → permutation from its new layout to its old one: old = Transpose(new, perm).
  var perms: [ObjectIdentifier: Perm] = [:]
  var values: [Value] = []
  var edits: [(Node, Edit)] = []
  var exits: [(Node, Value)] = []
  var shapeReads: [(Node, Value)] = []
  /// Region values read by nodes that stay in the old layout: each gets one new Transpose.
  var outside: [(Value, [Node])] = []
  /// Same-permutation Transposes whose readers all move into the region.
  var absorbed: [Node] = []

  /// The plan for sinking `t`, or nil when it would not lower the Transpose count.
  init?(_ t: Node, outputs: Set<ObjectIdentifier>) {
    guard t.opType == "Transpose", t.isDefaultDomain, let x = t.inputs.first ?? nil, let y = t.outputs.first,
      !outputs.contains(ObjectIdentifier(y)), let p = (t[attribute: "perm"]?.ints).map({ $0.map(Int.init) }),
      Set(p) == Set(0..<p.count), (x.shape?.rank ?? p.count) == p.count
    else { return nil }
    root = t
    perms[ObjectIdentifier(y)] = p
    values = [y]
    var visited: Set<ObjectIdentifier> = []
    var waiting: [ObjectIdentifier: Node] = [:]
    var waitingOrder: [Node] = []  // dictionary order varies per process; the graph must not
    var cursor = 0
    while true {
      while cursor < values.count {
        let v = values[cursor]
        cursor += 1
        for use in v.uses where !visited.contains(ObjectIdentifier(use.node)) {
          let n = use.node
          if n.opType == "Transpose" && n.isDefaultDomain {
            exits.append((n, v))
          } else if n.opType == "Shape" && n.isDefaultDomain {
            visited.insert(ObjectIdentifier(n))
            shapeReads.append((n, v))
          } else if let edit = plan(n) {
            guard accept(n, edit, outputs: outputs, visited: &visited) else { return nil }
            waiting[ObjectIdentifier(n)] = nil
          } else {
            if waiting.updateValue(n, forKey: ObjectIdentifier(n)) == nil { waitingOrder.append(n) }  // may fit once its other operands join
          }
        }
      }
      var next: (ObjectIdentifier, Node, Edit)?
      for n in waitingOrder where waiting[ObjectIdentifier(n)] != nil {
        if let edit = plan(n) { next = (ObjectIdentifier(n), n, edit); break }
      }
      guard let (id, n, edit) = next else { break }
      waiting[id] = nil
      guard accept(n, edit, outputs: outputs, visited: &visited) else { return nil }
      guard edits.count <= 256 else { return nil }
    }
    for v in values {
      let readers = v.uses.map(\.node).filter { waiting[ObjectIdentifier($0)] != nil }
      if !readers.isEmpty { outside.append((v, readers)) }
    }
    guard !outside.contains(where: { $0.0 === y }) else { return nil }
    // Count: the root, absorbed Transposes and exits that become identities go; each outside
    // value gets one.
    let identities = exits.filter { exit, v in composed(exit, v) == Array(0..<p.count) }.count
    let removed = 1 + absorbed.count + identities
    guard outside.count < removed else { return nil }
  }

  private mutating func accept(_ n: Node, _ edit: Edit, outputs: Set<ObjectIdentifier>, visited: inout Set<ObjectIdentifier>) -> Bool {
    guard let q = n.inputs.compactMap({ perm($0) }).first else { return false }
    visited.insert(ObjectIdentifier(n))
    edits.append((n, edit))
    for (i, r) in edit.inputs {
      guard case .value = r, let t = n.inputs[i]?.producer, t.opType == "Transpose", !absorbed.contains(where: { $0 === t })
      else { continue }
      // Removable only if every reader of the Transpose is (or becomes) a region node reading it this way.
      let readers = t.outputs[0].uses.map(\.node)
      if t.outputs[0].uses.count == 1 || readers.allSatisfy({ r in r === n || edits.contains { $0.0 === r } }) {
        absorbed.append(t)
      }
    }
    for o in n.outputs where !o.name.isEmpty {
      if outputs.contains(ObjectIdentifier(o)) { return false }  // a graph output would change layout
      perms[ObjectIdentifier(o)] = q
      values.append(o)
    }
    return true
  }

  func perm(_ v: Value?) -> Perm? { v.flatMap { perms[ObjectIdentifier($0)] } }

  func composed(_ exit: Node, _ v: Value) -> Perm {
    let q = perm(v)!
    let b = (exit[attribute: "perm"]?.ints).map { $0.map(Int.init) } ?? Array((0..<q.count).reversed())
    return b.map { q[$0] }
  }

  /// How `n` changes to read its region inputs in their new layout.
  func plan(_ n: Node) -> Edit? {
    guard n.isDefaultDomain, let q = n.inputs.lazy.compactMap({ self.perm($0) }).first,
      n.inputs.allSatisfy({ perm($0) == nil || perm($0) == q })
    else { return nil }
    let r = q.count
    let op = n.opType
    var edit = Edit()
    if Sinking.unary.contains(op) {
      guard perm(n.inputs[0]) != nil, n.inputs.dropFirst().allSatisfy({ $0 == nil || $0!.constValue != nil }) else { return nil }
      return edit
    }
    if Sinking.elementwise.contains(op) {
      guard n.outputs.count == 1 else { return nil }
      for (i, input) in n.inputs.enumerated() {
        guard let v = input, perm(v) == nil else { continue }
        guard let replacement = relaid(v, q, broadcast: true) else { return nil }
        edit.inputs[i] = replacement
      }
      return edit
    }
    switch op {
    case "Concat":
      guard let a = n[attribute: "axis"]?.int, let axis = normalize(a, r) else { return nil }
      for (i, input) in n.inputs.enumerated() {
        guard let v = input, perm(v) == nil else { continue }
        guard let replacement = relaid(v, q, broadcast: false) else { return nil }
        edit.inputs[i] = replacement
      }
      edit.axisAttribute = ("axis", q[axis])
    case "Split":
      guard perm(n.inputs[0]) != nil, n.inputs.dropFirst().allSatisfy({ perm($0) == nil }),
        let axis = normalize(n[attribute: "axis"]?.int ?? 0, r)
      else { return nil }
      edit.axisAttribute = ("axis", q[axis])
    case "Slice":
      // Starts/ends/steps follow `axes`, so they may be computed; only the axes are remapped.
      guard perm(n.inputs[0]) != nil, n.inputs.count >= 3, n.inputs.dropFirst().allSatisfy({ perm($0) == nil }) else { return nil }
      let axes: [Int64]?
      if n.inputs.count > 3, let a = n.inputs[3] {
        axes = Self.constInts(a)
      } else {
        axes = Self.constInts(n.inputs[1]).map { (0..<Int64($0.count)).map { $0 } }
      }
      guard let axes else { return nil }
      var mapped: [Int64] = []
      for a in axes {
        guard let v = normalize(a, r) else { return nil }
        mapped.append(Int64(q[v]))
      }
      edit.axesInput = (3, mapped)
    default:
      return nil
    }
    return edit
  }

  /// `v` (old layout) in the new layout without a new Transpose, if possible.
  func relaid(_ v: Value, _ q: Perm, broadcast: Bool) -> Replacement? {
    let r = q.count
    if let t = v.producer, t.opType == "Transpose", t.isDefaultDomain, let x = t.inputs[0],
      (t[attribute: "perm"]?.ints).map({ $0.map(Int.init) }) == q {
      return .value(x)
    }
    guard broadcast else { return nil }
    if let c = v.constValue, c.byteCount <= 1 << 20, let h = try? HostTensor(c), h.rank <= r {
      let full = HostTensor(h.dataType, Array(repeating: 1, count: r - h.rank) + h.shape, h.storage)
      return .constant(full.transposed(perm: Self.inverse(q)))
    }
    // Unsqueeze(x, axes): the unit axes move, x's own axes must keep their order.
    guard let u = v.producer, u.opType == "Unsqueeze", u.isDefaultDomain,
      let raw = u.inputs.count > 1 ? Self.constInts(u.inputs[1]) : u[attribute: "axes"]?.ints,
      let sourceRank = Self.rank(of: u.inputs[0]), sourceRank + raw.count == r
    else { return nil }
    let unit = Set(raw.compactMap { normalize($0, r) })
    guard unit.count == raw.count else { return nil }
    // Old axis i lands at new axis q[i].
    let kept = (0..<r).filter { !unit.contains($0) }.map { q[$0] }
    guard kept == kept.sorted() else { return nil }
    let newAxes = unit.map { Int64(q[$0]) }.sorted()
    return .unsqueeze(u, newAxes)
  }

  /// The rank of `v`, from its type or, where the dynamic export left it unknown, from
  /// the ops that produce it.
  static func rank(of v: Value?, depth: Int = 12) -> Int? {
    guard let v else { return nil }
    if let r = v.shape?.rank { return r }
    guard depth > 0, let n = v.producer, n.isDefaultDomain else { return nil }
    let inputs = n.inputs.map { rank(of: $0, depth: depth - 1) }
    switch n.opType {
    case _ where Sinking.unary.contains(n.opType): return inputs.first ?? nil
    case _ where Sinking.elementwise.contains(n.opType):
      let known = inputs.compactMap { $0 }
      return known.count == inputs.count ? known.max() : nil
    case "Concat", "Slice", "Softmax": return inputs.first ?? nil
    case "Transpose": return (n[attribute: "perm"]?.ints?.count) ?? (inputs.first ?? nil)
    case "Unsqueeze":
      let axes = n.inputs.count > 1 ? constInts(n.inputs[1]) : n[attribute: "axes"]?.ints
      guard let r = inputs.first ?? nil, let axes else { return nil }
      return r + axes.count
    case "MatMul":
      guard let a = inputs[0], let b = inputs.count > 1 ? inputs[1] : nil, a >= 2, b >= 2 else { return nil }
      return max(a, b)
    default: return nil
    }
  }

  static func inverse(_ p: Perm) -> Perm {
    var inv = Array(repeating: 0, count: p.count)
    for (i, v) in p.enumerated() { inv[v] = i }
    return inv
  }

  func normalize(_ a: Int64, _ rank: Int) -> Int? {
    let v = a < 0 ? Int(a) + rank : Int(a)
    return (0..<rank).contains(v) ? v : nil
  }

  static func constInts(_ value: Value?) -> [Int64]? {
    guard let v = value else { return nil }
    var tensor = v.constValue
    if tensor == nil, let p = v.producer, p.opType == "Constant", case .tensor(let t)? = p[attribute: "value"] { tensor = t }
    guard let t = tensor, t.byteCount <= 1 << 16, let h = try? HostTensor(t), !h.isFloat else { return nil }
    return h.int64s
  }
}
