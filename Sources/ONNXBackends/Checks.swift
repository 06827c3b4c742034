import ONNXGraph

/// Checks several compilers share; each backend picks the ones its compiler needs.
enum Checks {
  /// Every graph input and output has a fixed shape: ahead-of-time compilers size buffers from them.
  static func staticIO(_ unit: CompileUnit, compiler: String) -> [Finding] {
    var found: [Finding] = []
    for (kind, values) in [("input", unit.inputs), ("output", unit.model.graph.outputs)] {
      for v in values {
        guard let shape = v.type?.shape else {
          found.append(Finding(.error, unit: unit.name, location: "graph \(kind) '\(v.name)'",
                               "its shape is unknown; \(compiler) needs static shapes (bind them with --input-shape/--dim, which runs static-shape)"))
          continue
        }
        let dynamic = shape.dims.enumerated().filter { $0.element.intValue == nil }
        if !dynamic.isEmpty {
          let dims = dynamic.map { "axis \($0.offset) = \($0.element)" }.joined(separator: ", ")
          found.append(Finding(.error, unit: unit.name, location: "graph \(kind) '\(v.name)'",
                               "dynamic dimension \(dims); \(compiler) needs static shapes (bind them with --dim NAME=N or --input-shape)"))
        }
      }
    }
    return found
  }

  /// The default-domain opset and IR version are within what the compiler reads.
  static func versions(_ unit: CompileUnit, compiler: String, maxOpset: Int, maxIR: Int, fix: String) -> [Finding] {
    var found: [Finding] = []
    let opset = Int(unit.model.opsetVersion(for: "") ?? 0)
    if opset > maxOpset {
      found.append(Finding(.error, unit: unit.name, "default-domain opset \(opset); \(compiler) reads opset ≤ \(maxOpset) (\(fix))"))
    }
    if unit.model.irVersion > maxIR {
      found.append(Finding(.error, unit: unit.name, "IR version \(unit.model.irVersion); \(compiler) reads IR ≤ \(maxIR) (\(fix))"))
    }
    return found
  }

  /// Nodes outside the default ONNX domain (com.microsoft contrib ops, local functions).
  static func foreignDomains(_ unit: CompileUnit, compiler: String, allowed: Set<String> = []) -> [Finding] {
    var found: [Finding] = []
    unit.model.graph.forEachNodeRecursive { node in
      if !node.isDefaultDomain && !allowed.contains(node.domain) {
        found.append(Finding(.error, unit: unit.name, location: node.label,
                             "\(node.domain)::\(node.opType) is not a standard ONNX op; \(compiler) has no converter for it"))
      }
    }
    return found
  }

  /// Nodes whose op type the compiler lacks or mishandles, with the reason for each.
  static func ops(_ unit: CompileUnit, _ rules: [String: (Finding.Severity, String)]) -> [Finding] {
    var found: [Finding] = []
    unit.model.graph.forEachNodeRecursive { node in
      guard node.isDefaultDomain, let (severity, reason) = rules[node.opType] else { return }
      found.append(Finding(severity, unit: unit.name, location: node.label, reason))
    }
    return found
  }

  /// A single ONNX file must stay under protobuf's 2 GB limit for compilers that read it whole.
  static func singleFileLimit(_ unit: CompileUnit, compiler: String) -> [Finding] {
    let limit = Int(Int32.max)
    guard unit.weightBytes > limit else { return [] }
    return [Finding(.error, unit: unit.name,
                    "\(formatBytes(unit.weightBytes)) of weights; \(compiler) reads one protobuf file, which cannot pass 2 GB: tile the model (--tile, --budget)")]
  }
}

extension Checks {
  /// Float32 mask fills (float32 lowest, -inf, -1e38): in a half-precision build they overflow,
  /// and a fully masked row becomes NaN (TPU-MLIR F16/BF16 on a left-padded batch).
  static func halfPrecisionMasks(_ unit: CompileUnit, compiler: String) -> [Finding] {
    var found: [Finding] = []
    func isFill(_ t: Tensor) -> Bool {
      guard t.dataType == .float, t.elementCount <= 16 else { return false }
      let values: [Float]
      switch t.storage {
      case .raw(let bytes): values = bytes.array(of: Float.self)
      case .floats(let f): values = f
      default: return false
      }
      return values.contains { $0 <= -1e30 }
    }
    for (name, value) in unit.model.graph.initializers where value.constValue.map(isFill) == true {
      found.append(Finding(.warning, unit: unit.name, location: "initializer '\(name)'",
                           "a float32 mask fill (≤ -1e30); in \(compiler)'s half-precision build fully masked rows become NaN: --pass fp16-safe-masks"))
    }
    unit.model.graph.forEachNodeRecursive { node in
      guard node.opType == "Constant", node.isDefaultDomain,
        let attr = node.attributes.first(where: { $0.name == "value" }), case .tensor(let t) = attr.value, isFill(t)
      else { return }
      found.append(Finding(.warning, unit: unit.name, location: node.label,
                           "a float32 mask fill (≤ -1e30); in \(compiler)'s half-precision build fully masked rows become NaN: --pass fp16-safe-masks"))
    }
    return found
  }
}

extension Node {
  /// How findings name a node: its op type and name, else its first output.
  var label: String { "\(opType) '\(name.isEmpty ? (outputs.first?.name ?? "?") : name)'" }
}

/// `[2,8]`-style shape lists and `2x8` TensorRT shapes from static shapes.
extension Value {
  var staticDims: [Int] { type?.shape?.dims.map { $0.intValue ?? -1 } ?? [] }
}
