import ONNXGraph

/// Pad with an `axes` input (opset 18) to full-rank pads, and a check that opset 19's
/// "wrap" mode is not used below it.
///
/// `pads` then lists begin and end for the named axes only; older opsets want
/// [b_0..b_{r-1}, e_0..e_{r-1}]. Constant pads are rewritten into a new initializer;
/// computed pads are scattered into zeros with ScatterElements (opset 11).
enum LowerPad {
  static func plan(_ n: Node, in g: Graph, names: NameScope, _ ctx: LegalizeContext) throws -> FamilyLowering? {
    var lowering = FamilyLowering(handled: Set([18, 19].filter { ctx.crosses("Pad", $0) }))
    if ctx.crosses("Pad", 19), n[attribute: "mode"]?.string == "wrap" {
      lowering.unsupported = "mode \"wrap\" exists only from opset 19"
      return lowering
    }
    guard ctx.crosses("Pad", 18), n.inputs.count > 3, let axesInput = n.inputs[3] else { return lowering }
    guard let axes = ctx.constantInts(axesInput, in: g) else {
      throw ctx.error(n, "axes is not a constant ('\(axesInput.name)'); opset \(ctx.target) needs full-rank pads")
    }
    guard let x = n.inputs[0], let rank = x.shape?.rank ?? x.constValue?.dims.count else {
      throw ctx.error(n, "the rank of the input is not known; full-rank pads need it")
    }
    let normalized = axes.map { $0 < 0 ? $0 + Int64(rank) : $0 }
    guard normalized.allSatisfy({ (0..<Int64(rank)).contains($0) }), Set(normalized).count == axes.count else {
      throw ctx.error(n, "axes \(axes) are not distinct axes of a rank-\(rank) input")
    }
    // Where each given pad goes in the full list: begins first, then ends.
    let slots = normalized + normalized.map { $0 + Int64(rank) }
    let padsInput = n.inputs[1]
    let base = (n.outputs.first?.name ?? "pad") + "_pads"
    if let pads = ctx.constantInts(padsInput, in: g) {
      guard pads.count == slots.count else {
        throw ctx.error(n, "pads has \(pads.count) values for \(axes.count) axes")
      }
      var full = [Int64](repeating: 0, count: 2 * rank)
      for (slot, p) in zip(slots, pads) { full[Int(slot)] = p }
      lowering.apply = { replacePads(n, with: ctx.int64Initializer(full, base, in: g, names: names)) }
    } else {
      lowering.apply = {
        let zeros = ctx.int64Initializer(Array(repeating: 0, count: 2 * rank), base + "_zeros", in: g, names: names)
        let indices = ctx.int64Initializer(slots, base + "_slots", in: g, names: names)
        let full = Node(
          "ScatterElements", name: n.name.isEmpty ? "" : n.name + "/full_pads", inputs: [zeros, indices, padsInput],
          outputs: [Value(name: names.fresh(base))], attributes: [Attribute("axis", .int(0))])
        full.outputs[0].type = TypeInfo(.tensor(.int64, Shape(static: [2 * rank])))
        g.insert(full, before: n)
        replacePads(n, with: full.outputs[0])
      }
    }
    return lowering
  }

  /// Full-rank pads in place of the given ones, without the axes input.
  static func replacePads(_ n: Node, with pads: Value) {
    var inputs = Array(n.inputs.prefix(3))
    inputs[1] = pads
    while inputs.count > 2, inputs.last! == nil { inputs.removeLast() }
    n.inputs = inputs
  }
}
