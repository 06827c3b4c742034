import ONNXGraph
import Rewrite

/// `falcon-linear`: every `x @ W.T (+ b)` with a constant 2-D W becomes one canonical
/// Linear in the form `--linear-form` names. The rewrites are the rule passes
/// `falcon-linear-matmul` and `falcon-linear-gemm` (Rewrites/npu/falcon-linear.rules);
/// rules cannot read pass options, so this pass only picks one of them.
public struct FalconLinear: GraphPass {
  public static let name = "falcon-linear"
  public static let summary =
    "x @ W.T + b as one canonical Linear: MatMul on a pre-transposed weight, or Gemm transB=1 (--linear-form)."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    try Self.run(as: Self.name, on: model, options: options)
  }

  static func run(as name: String, on model: Model, options: PassOptions) throws -> PassResult {
    let rulePass = "falcon-linear-\(options.linearForm.rawValue)"
    let library = try RulePasses.library()
    guard var rules = library.rules(forPass: rulePass) else {
      throw PassError(
        pass: name, location: "Rewrites/npu/falcon-linear.rules",
        reason: "the bundled rule pass '\(rulePass)' is missing")
    }
    // The dynamic-shape Gemm restores the shape with Reshape allowzero=1 (opset 14+).
    if (model.opsetVersion(for: "") ?? 0) < 14 { rules.removeAll { $0.name == "linear-gemm-dynamic" } }
    return try RulePasses.run(rulePass, rules: rules, on: model, options: options)
  }
}

/// `canonical-linear`: another name for `falcon-linear` (the rewrite is not Falcon-specific).
public struct CanonicalLinear: GraphPass {
  public static let name = "canonical-linear"
  public static let summary = "Same as falcon-linear."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    try FalconLinear.run(as: Self.name, on: model, options: options)
  }
}

/// Rule helpers for `falcon-linear.rules`: the language has no list indexing, no way to name
/// an absent attribute's default, and no way to ask which input slot a value is in.
enum LinearHelpers {
  static func register() {
    // static_dim(v, i): dimension i (negative: from the end) of v when it is known.
    RewriteHelpers.register("static_dim") { args, _ in
      guard args.count == 2, case .value(let v) = args[0], case .int(let i) = args[1] else {
        throw HelperError("static_dim takes a value and an axis")
      }
      let dims: [Dim]
      if let t = v.constValue { dims = t.dims.map(Dim.value) } else if let s = v.shape { dims = s.dims } else {
        throw HelperError("the rank of '\(v.name)' is not known")
      }
      let axis = i < 0 ? Int(i) + dims.count : Int(i)
      guard axis >= 0, axis < dims.count else { throw HelperError("axis \(i) of rank-\(dims.count) '\(v.name)'") }
      guard let d = dims[axis].intValue else { throw HelperError("dimension \(i) of '\(v.name)' is not static") }
      return .int(Int64(d))
    }
    // or_default(x, d): x, or d when x is none (an attribute the node does not set).
    RewriteHelpers.register("or_default") { args, _ in
      guard args.count == 2 else { throw HelperError("or_default takes 2 arguments, got \(args.count)") }
      return args[0] == .none ? args[1] : args[0]
    }
    // operand(y, i): input i of the node computing y (none if it has no such input).
    RewriteHelpers.register("operand") { args, _ in
      guard args.count == 2, case .value(let y) = args[0], case .int(let i) = args[1] else {
        throw HelperError("operand takes a value and an input index")
      }
      guard let producer = y.producer else { throw HelperError("'\(y.name)' is not computed by a node") }
      guard i >= 0, Int(i) < producer.inputs.count, let x = producer.inputs[Int(i)] else { return .none }
      return .value(x)
    }
  }
}
