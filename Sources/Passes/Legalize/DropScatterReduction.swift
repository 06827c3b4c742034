import ONNXGraph

/// ScatterND / ScatterElements: `reduction="none"` is dropped (it is the meaning without
/// the attribute, and TPU-MLIR asserts `not reduction` on any reduction attribute); add
/// and mul exist from opset 16, max and min from 18: below those they cannot be lowered.
enum DropScatterReduction {
  static func plan(_ n: Node, _ ctx: LegalizeContext) -> FamilyLowering? {
    var lowering = FamilyLowering(handled: Set([16, 18].filter { ctx.crosses(n.opType, $0) }))
    guard let reduction = n[attribute: "reduction"]?.string else { return lowering }
    switch reduction {
    case "none":
      lowering.apply = { n.attributes.removeAll { $0.name == "reduction" } }
    case _ where ["add", "mul"].contains(reduction) && ctx.target < 16:
      lowering.unsupported = "reduction \"\(reduction)\" exists only from opset 16"
    case _ where ["max", "min"].contains(reduction) && ctx.target < 18:
      lowering.unsupported = "reduction \"\(reduction)\" exists only from opset 18"
    default:
      break
    }
    return lowering
  }
}
