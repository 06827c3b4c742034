import Evaluation
import ONNXGraph

extension KVLayoutSinking {
  /// Rewrites the region in place; returns the Transposes added for readers left in the old
  /// layout. `copies` shares re-unsqueezed cos/sin between the layers' regions.
  mutating func apply(in g: Graph, names: NameScope, copies: inout [String: Value]) -> [Node] {
    func constant(_ h: HostTensor, _ base: String) -> Value {
      let v = Value(name: names.fresh(base))
      v.type = .tensor(h.dataType, Shape(static: h.shape))
      return g.addInitializer(v, h.tensor(name: v.name))
    }
    let oldTypes = Dictionary(uniqueKeysWithValues: values.map { (ObjectIdentifier($0), $0.type) })
    for (n, edit) in edits {
      let base = n.outputs.first?.name ?? n.opType
      for (i, r) in edit.inputs {
        switch r {
        case .constant(let h): n.inputs[i] = constant(h, base + "_relaid")
        case .value(let x): n.inputs[i] = x
        case .unsqueeze(let u, let axes): n.inputs[i] = unsqueezeCopy(u, axes, in: g, names: names, copies: &copies)
        }
      }
      if let (name, value) = edit.axisAttribute {
        n.attributes.removeAll { $0.name == name }
        n.attributes.append(Attribute(name, .int(Int64(value))))
      }
      if let (i, axes) = edit.axesInput {
        let v = constant(HostTensor.int64s(axes), base + "_axes")
        while n.inputs.count <= i { n.inputs.append(nil) }
        n.inputs[i] = v
      }
    }
    // Old layout = Transpose(new, q): new dims[q[i]] = old dims[i].
    let y = root.outputs[0]
    for v in values where v !== y {
      guard let q = perm(v), let old = v.shape, old.rank == q.count, let e = v.elementType else { v.type = nil; continue }
      var dims = old.dims
      for i in 0..<q.count { dims[q[i]] = old.dims[i] }
      v.type = .tensor(e, Shape(dims))
    }
    for (exit, v) in exits {
      let p = composed(exit, v)
      exit.attributes.removeAll { $0.name == "perm" }
      exit.attributes.append(Attribute("perm", .ints(p.map(Int64.init))))
    }
    var inserted: [Node] = []
    for (v, readers) in outside {
      guard let q = perm(v) else { continue }
      let old = Value(name: names.fresh(v.name + ".bhsd"), type: oldTypes[ObjectIdentifier(v)] ?? nil)
      let t = Node("Transpose", name: names.fresh(v.name + "/to_bhsd"), inputs: [v], outputs: [old],
                   attributes: [Attribute("perm", .ints(q.map(Int64.init)))])
      for r in readers {
        for i in r.inputs.indices where r.inputs[i] === v { r.inputs[i] = old }
      }
      g.insert(t, after: v.producer)
      inserted.append(t)
    }
    for (s, v) in shapeReads {
      if let q = perm(v) { fixShape(s, q, in: g, names: names) }
    }
    if let x = root.inputs[0] {
      g.replaceAllUses(of: y, with: x)
      g.remove(root)
    }
    for t in absorbed where t.graph === g && t.outputs[0].uses.isEmpty && !g.outputs.contains(where: { $0 === t.outputs[0] }) {
      g.remove(t)
    }
    for (exit, _) in exits where exit.graph === g {
      let p = exit[attribute: "perm"]?.ints ?? []
      guard p == Array(0..<Int64(p.count)), let input = exit.inputs[0] else { continue }
      if !g.bypass(exit, with: input) {
        // A graph output whose source has other readers: `dropOutputIdentity` renames it.
        exit.opType = "Identity"
        exit.attributes.removeAll { $0.name == "perm" }
      }
    }
    return inserted
  }

  /// `Unsqueeze(x, axes)` next to `u`, made once per graph.
  private func unsqueezeCopy(_ u: Node, _ axes: [Int64], in g: Graph, names: NameScope, copies: inout [String: Value]) -> Value {
    let key = "\(ObjectIdentifier(u))\(axes)"
    if let v = copies[key] { return v }
    let source = u.inputs[0]!
    let old = u.outputs[0]
    var type: TypeInfo?
    if let e = old.elementType, let s = source.shape {
      var dims = s.dims
      for a in axes.sorted() { dims.insert(.value(1), at: Int(a)) }
      type = .tensor(e, Shape(dims))
    }
    let out = Value(name: names.fresh(old.name + ".bshd"), type: type)
    let node: Node
    if u.inputs.count > 1 {
      let axesValue = Value(name: names.fresh(old.name + "_axes"), type: .tensor(.int64, Shape(static: [axes.count])))
      g.addInitializer(axesValue, HostTensor.int64s(axes).tensor(name: axesValue.name))
      node = Node("Unsqueeze", name: names.fresh(u.displayName + "/bshd"), inputs: [source, axesValue], outputs: [out])
    } else {
      node = Node("Unsqueeze", name: names.fresh(u.displayName + "/bshd"), inputs: [source], outputs: [out],
                  attributes: [Attribute("axes", .ints(axes))])
    }
    g.insert(node, after: u)
    copies[key] = out
    return out
  }

  /// `Shape(v)` of a re-laid-out `v` reads its dims in the old order again through a Gather.
  private func fixShape(_ s: Node, _ q: Perm, in g: Graph, names: NameScope) {
    let r = q.count
    func clamp(_ a: Int64) -> Int { min(max(a < 0 ? Int(a) + r : Int(a), 0), r) }
    let start = clamp(s[attribute: "start"]?.int ?? 0), end = clamp(s[attribute: "end"]?.int ?? Int64(r))
    let indices = (start..<max(start, end)).map { Int64(q[$0]) }
    s.attributes.removeAll { $0.name == "start" || $0.name == "end" }
    let out = s.outputs[0]
    let full = Value(name: names.fresh(out.name + ".bshd"), type: .tensor(.int64, Shape(static: [r])))
    s.setOutput(0, full)
    let idx = Value(name: names.fresh(out.name + "_order"), type: .tensor(.int64, Shape(static: [indices.count])))
    g.addInitializer(idx, HostTensor.int64s(indices).tensor(name: idx.name))
    let gather = Node("Gather", name: names.fresh(s.displayName + "/bshd"), inputs: [full, idx], outputs: [out],
                      attributes: [Attribute("axis", .int(0))])
    g.insert(gather, after: s)
  }
}
