import ONNXGraph

// Control flow. The propagator visits a node's sub-graphs before the node, so branch
// outputs already carry inferred types when these rules run.

/// If: each output has the element type both branches agree on, and per dimension the
/// size both agree on (a symbol or unknown where they differ, e.g. a branch that
/// slices). Never folded here: a constant condition still leaves the branches' own
/// values to compute.
nonisolated(unsafe) private let ifRule = OpRule(infer: { ctx in
  guard case .graph(let thenBranch)? = ctx.node[attribute: "then_branch"],
    case .graph(let elseBranch)? = ctx.node[attribute: "else_branch"]
  else { throw ctx.fail("If needs then_branch and else_branch graphs") }
  return ctx.node.outputs.indices.map { i -> TypeInfo? in
    guard i < thenBranch.outputs.count, i < elseBranch.outputs.count,
      let a = thenBranch.outputs[i].type, let b = elseBranch.outputs[i].type
    else { return nil }
    return merge(a, b)
  }
})

/// The most specific type true of both.
private func merge(_ a: TypeInfo, _ b: TypeInfo) -> TypeInfo? {
  guard let ea = a.elementType, ea == b.elementType else { return a == b ? a : nil }
  guard let sa = a.shape, let sb = b.shape, sa.rank == sb.rank else { return .tensor(ea, nil) }
  return .tensor(ea, Shape(zip(sa.dims, sb.dims).map { $0 == $1 ? $0 : .unknown }))
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let controlFlowRules: [String: OpRule] = ["If": ifRule]
