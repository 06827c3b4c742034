import ONNXGraph

/// Gelu (opset 20) is lowered by the rules of `Rewrites/legalize/gelu.rules`
/// (`legalize-gelu`); planning only checks that they will apply, so that a Gelu the
/// rules would skip is reported before anything changes.
enum LowerGelu {
  static func plan(_ n: Node) -> LoweringPlan {
    guard let x = n.inputs.first ?? nil else { return .unsupported("has no input") }
    guard let type = x.constValue?.dataType ?? x.elementType else {
      return .unsupported("the input's element type is not known; the formula's constants need it")
    }
    guard [DataType.float, .float16, .bfloat16, .double].contains(type) else {
      return .unsupported("input type \(type) is not a float type")
    }
    let approximate = n[attribute: "approximate"]?.string ?? "none"
    guard approximate == "none" || approximate == "tanh" else {
      return .unsupported("approximate \"\(approximate)\" is neither \"none\" nor \"tanh\"")
    }
    return .rules
  }
}
