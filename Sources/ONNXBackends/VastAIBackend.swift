import ONNXGraph

/// VastAI's vamc (VA1/VA16 cards): one build configuration per unit (`vamc/<unit>.yaml`, the
/// schema of VastAI's model-zoo configs: frontend onnx, backend tvm_vacc) and `vamc compile` over
/// them. vamc is on no public registry: the plan is written, never run here unless vamc is on PATH.
public struct VastAIBackend: Backend {
  public static let target = Target.vastai
  public let settings: BuildSettings
  public let dtype: String

  public init(_ settings: BuildSettings) throws {
    dtype = (settings.quantize ?? "fp16").lowercased()
    if dtype == "int8" {
      throw BackendError("--quantize int8: vamc calibrates int8 on a dataset this plan does not have; it builds fp16.")
    }
    guard dtype == "fp16" else {
      throw BackendError("--quantize \(settings.quantize!): the vastai target builds fp16.")
    }
    if let c = settings.chip {
      throw BackendError("--chip \(c): vamc takes no chip; the card is chosen at run time.")
    }
    self.settings = settings
  }

  public var toolchain: Toolchain {
    Toolchain(programs: ["vamc"],
              install: "vamc is not on any public registry: it comes from VastAI (ask for the vamc wheel); run compile.sh where it is installed")
  }

  public func validate(_ unit: CompileUnit) -> [Finding] {
    var found = Checks.staticIO(unit, compiler: "vamc")
    found += Checks.foreignDomains(unit, compiler: "vamc")
    found += Checks.singleFileLimit(unit, compiler: "vamc")
    return found
  }

  public func plan(_ units: [CompileUnit]) -> BuildPlan {
    var plan = BuildPlan(product: "deploy_weights/<tile>-\(dtype)/mod per tile")
    for unit in units {
      let config = "vamc/\(unit.name).yaml"
      plan.files.append((path: config, contents: yaml(unit)))
      plan.steps.append(Step(unit: unit.name, tool: "vamc", ["compile", "../" + config], produces: []))
    }
    return plan
  }

  /// The build configuration; paths are relative to build/, where vamc runs.
  func yaml(_ unit: CompileUnit) -> String {
    var lines = [
      "# vamc build configuration for '\(unit.name)' of \(settings.modelName), written by `onnx-rewrite compile --target vastai`.",
      "# Build: cd build && vamc compile ../vamc/\(unit.name).yaml",
      "name: \(unit.name)-\(dtype)",
      "frontend:",
      "  checkpoint: ../\(unit.file)",
      "  type: onnx",
      "  dtype: fp32",
      "  shape:",
    ]
    for input in unit.inputs {
      lines.append("    \(yamlKey(input.name)): [\(input.staticDims.map(String.init).joined(separator: ", "))]")
    }
    lines += [
      "graph:",
      "  extra_ops:",
      "    type: null",
      "backend:",
      "  type: tvm_vacc",
      "  dtype: \(dtype)",
      "  compile:",
      "    data_type: 0",
      "    opt_level: 2",
      "workspace:",
      "  path: ./deploy_weights/",
    ]
    return lines.joined(separator: "\n") + "\n"
  }

  /// Input names like `past_key_values.0.key` are plain YAML scalars; quote anything else.
  func yamlKey(_ name: String) -> String {
    let plain = name.allSatisfy { $0.isLetter || $0.isNumber || "._-/".contains($0) } && !name.isEmpty
      && !(name.first!.isNumber)
    return plain ? name : "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }
}
