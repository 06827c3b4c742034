import ONNXGraph

/// Split with `num_outputs` (opset 18) to explicit sizes: an input for opsets 13-17, the
/// `split` attribute below 13 (where an input-form `split` becomes the attribute too).
///
/// `torch.chunk` exports as `num_outputs`; older opsets split evenly by output count
/// only, so an uneven split (last chunk smaller) must be spelled out. That needs the
/// static size of the split axis.
enum LowerSplit {
  static func plan(_ n: Node, in g: Graph, names: NameScope, _ ctx: LegalizeContext) throws -> FamilyLowering? {
    let fromNumOutputs = ctx.crosses("Split", 18)
    let toAttribute = ctx.crosses("Split", 13)
    guard fromNumOutputs || toAttribute else { return nil }
    var lowering = FamilyLowering(handled: Set([18, 13].filter { ctx.crosses("Split", $0) }))
    let axis = n[attribute: "axis"]?.int ?? 0

    var sizes: [Int64]? = nil
    if fromNumOutputs, let count = n[attribute: "num_outputs"]?.int {
      guard count == Int64(n.outputs.count) else {
        throw ctx.error(n, "num_outputs is \(count) but the node has \(n.outputs.count) outputs")
      }
      guard let x = n.inputs.first ?? nil, let rank = x.shape?.rank ?? x.constValue?.dims.count else {
        throw ctx.error(n, "the rank of the input is not known; num_outputs needs the size of the split axis")
      }
      let a = axis < 0 ? Int(axis) + rank : Int(axis)
      let dim: Int? = x.constValue.map { $0.dims[a] } ?? {
        if case .value(let d)? = x.shape?.dims[a] { return d } else { return nil }
      }()
      guard a >= 0, a < rank, let dim else {
        throw ctx.error(n, "axis \(axis) of '\(x.name)' has no static size; num_outputs needs it (bind it with --dim or run static-shape first)")
      }
      // Opset 18: chunks of ceil(dim / n), the last one smaller.
      let chunk = (dim + Int(count) - 1) / Int(count)
      let last = dim - chunk * (Int(count) - 1)
      guard last > 0 else {
        throw ctx.error(n, "size \(dim) cannot be split into \(count) chunks of \(chunk)")
      }
      sizes = Array(repeating: Int64(chunk), count: Int(count) - 1) + [Int64(last)]
    } else if toAttribute, n.inputs.count > 1, let splitInput = n.inputs[1] {
      guard let constant = ctx.constantInts(splitInput, in: g) else {
        throw ctx.error(n, "split is not a constant ('\(splitInput.name)'); opset \(ctx.target) needs it as an attribute")
      }
      sizes = constant
    }
    guard let sizes else { return lowering }
    lowering.apply = {
      n.attributes.removeAll { $0.name == "num_outputs" || $0.name == "split" }
      if toAttribute {
        n.inputs = [n.inputs[0]]
        n.attributes.append(Attribute("split", .ints(sizes)))
      } else {
        let base = (n.outputs.first?.name ?? "split") + "_sizes"
        n.inputs = [n.inputs[0], ctx.int64Initializer(sizes, base, in: g, names: names)]
      }
    }
    return lowering
  }
}
