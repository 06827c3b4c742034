import ONNXGraph

/// Reduce* with `axes` as an input (opset 18; ReduceSum since 13) back to the `axes`
/// attribute, and Squeeze/Unsqueeze (axes input since 13) likewise.
///
/// Opset 18 moved the axes of ReduceMean & co. into an input and added
/// `noop_with_empty_axes`; TPU-MLIR's front end knows only the attribute form
/// ("Unsupport opset for ReduceMean" on every RMSNorm of a dynamo export). The attribute
/// form has no "empty axes means do nothing": that case becomes an Identity.
enum LowerReduceAxes {
  /// The opset in which each reduction took its axes as an input.
  static let axesInputVersion: [String: Int] = [
    "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
    "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18, "ReduceSumSquare": 18,
  ]

  static func plan(_ n: Node, in g: Graph, _ ctx: LegalizeContext) throws -> FamilyLowering? {
    guard let version = axesInputVersion[n.opType], ctx.crosses(n.opType, version) else { return nil }
    var lowering = FamilyLowering(handled: [version])
    // Already in the attribute form (a node written for the old opset): nothing to do.
    if n[attribute: "axes"] != nil, n.inputs.count < 2 || n.inputs[1] == nil { return lowering }
    var axes: [Int64] = []
    if n.inputs.count > 1, let axesInput = n.inputs[1] {
      guard let constant = ctx.constantInts(axesInput, in: g) else {
        throw ctx.error(n, "axes is not a constant ('\(axesInput.name)'); opset \(ctx.target) needs them as an attribute")
      }
      axes = constant
    }
    let noop = n[attribute: "noop_with_empty_axes"]?.int ?? 0
    lowering.apply = {
      let data = n.inputs[0]
      if axes.isEmpty && noop != 0 {
        // Empty axes with noop_with_empty_axes=1: the input, unchanged.
        n.opType = "Identity"
        n.inputs = [data]
        n.attributes = []
        return
      }
      n.inputs = [data]
      n.attributes.removeAll { $0.name == "noop_with_empty_axes" || $0.name == "axes" }
      // No axes attribute: reduce over all axes, as empty axes with noop=0 did.
      if !axes.isEmpty { n.attributes.append(Attribute("axes", .ints(axes))) }
    }
    return lowering
  }

  /// Squeeze/Unsqueeze below opset 13: the axes input becomes the attribute.
  static func planSqueeze(_ n: Node, in g: Graph, _ ctx: LegalizeContext) throws -> FamilyLowering? {
    guard ctx.crosses(n.opType, 13) else { return nil }
    var lowering = FamilyLowering(handled: [13])
    guard n.inputs.count > 1, let axesInput = n.inputs[1] else { return lowering }
    guard let axes = ctx.constantInts(axesInput, in: g) else {
      throw ctx.error(n, "axes is not a constant ('\(axesInput.name)'); opset \(ctx.target) needs them as an attribute")
    }
    lowering.apply = {
      n.inputs = [n.inputs[0]]
      n.attributes.removeAll { $0.name == "axes" }
      n.attributes.append(Attribute("axes", .ints(axes)))
    }
    return lowering
  }
}
