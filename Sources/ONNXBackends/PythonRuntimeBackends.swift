import ONNXGraph

/// Plans for runtimes driven from Python (onnxruntime, OpenVINO): `backend_run.py compile` per
/// unit writes the runtime's own compiled form into build/, and with `--test-input` a last step
/// runs the compiled units in order on the model inputs (`build/outputs.npz`) and compares them
/// with the ONNX they were compiled from.
enum PythonRuntimePlan {
  static func plan(_ units: [CompileUnit], target: Target, settings: BuildSettings, compiledName: (CompileUnit) -> String,
                   extra: [String] = []) -> BuildPlan {
    var plan = BuildPlan(product: units.map(compiledName).joined(separator: ", "))
    plan.helpers.append("backend_run.py")
    for unit in units {
      plan.steps.append(Step(unit: unit.name, tool: "python3",
                             ["../backend_run.py", "compile", "--target", target.rawValue] + extra + ["../" + unit.file, compiledName(unit)],
                             produces: [compiledName(unit)], title: "\(target.rawValue) compile"))
    }
    if settings.hasTestInputs {
      // The compiled units against the ONNX they came from, on the model inputs.
      let whole = !units.contains(where: \.isTile)
      let tolerance = extra.contains("--fp16") ? ["--atol", "1e-2", "--rtol", "1e-2"] : []
      plan.steps.append(Step(unit: settings.modelName, tool: "python3",
                             ["../backend_run.py", "check", "--target", target.rawValue,
                              "--compiled", whole ? compiledName(units[0]) : ".", whole ? "../" + units[0].file : "../tiles",
                              "--inputs", "../inputs.npz", "--outputs", "outputs.npz"] + tolerance,
                             produces: ["outputs.npz"], title: "\(target.rawValue) run vs onnxruntime on the ONNX", showsOutput: true))
    }
    return plan
  }
}

/// onnxruntime on CPU: each unit optimized offline (`SessionOptions.optimized_model_filepath`, the
/// extended graph optimizations) into `build/<unit>.ort.onnx`.
public struct ONNXRuntimeBackend: Backend {
  public static let target = Target.onnxruntime
  public let settings: BuildSettings

  public init(_ settings: BuildSettings) throws {
    if let q = settings.quantize, q.lowercased() != "fp32" {
      throw BackendError("--quantize \(q): the onnxruntime target builds fp32 only (quantize with onnxruntime.quantization first).")
    }
    if let c = settings.chip, c.lowercased() != "cpu" {
      throw BackendError("--chip \(c): the onnxruntime target runs on cpu.")
    }
    self.settings = settings
  }

  public var toolchain: Toolchain {
    Toolchain(pythonModules: ["numpy", "onnxruntime"], install: "onnxruntime is not installed for the --python interpreter: pip install onnxruntime numpy")
  }

  public func validate(_ unit: CompileUnit) -> [Finding] {
    // onnxruntime 1.2x reads opset ≤ 23, IR ≤ 11 and runs dynamic shapes and contrib ops.
    Checks.versions(unit, compiler: "onnxruntime", maxOpset: 23, maxIR: 11, fix: "upgrade onnxruntime or --pass legalize-opset")
  }

  public func plan(_ units: [CompileUnit]) -> BuildPlan {
    PythonRuntimePlan.plan(units, target: Self.target, settings: settings, compiledName: { "\($0.name).ort.onnx" })
  }
}

/// OpenVINO on CPU: `ov.convert_model` per unit, saved as IR (`build/<unit>.xml` + `.bin`) and
/// loaded with `compile_model`, so a conversion or compilation error stops the build.
public struct OpenVINOBackend: Backend {
  public static let target = Target.openvino
  public let settings: BuildSettings
  public let precision: String

  public init(_ settings: BuildSettings) throws {
    precision = (settings.quantize ?? "fp32").lowercased()
    guard ["fp32", "fp16"].contains(precision) else {
      throw BackendError("--quantize \(settings.quantize!): the openvino target keeps weights fp32 or compresses them to fp16 (fp32, fp16).")
    }
    if let c = settings.chip, c.uppercased() != "CPU" {
      throw BackendError("--chip \(c): the openvino target compiles for CPU.")
    }
    self.settings = settings
  }

  public var toolchain: Toolchain {
    Toolchain(pythonModules: ["numpy", "openvino"], install: "OpenVINO is not installed for the --python interpreter: pip install openvino numpy")
  }

  public func validate(_ unit: CompileUnit) -> [Finding] {
    var found = Checks.versions(unit, compiler: "OpenVINO's ONNX front end", maxOpset: 22, maxIR: 11, fix: "--pass legalize-opset")
    found += Checks.foreignDomains(unit, compiler: "OpenVINO", allowed: ["com.microsoft"])
    return found
  }

  public func plan(_ units: [CompileUnit]) -> BuildPlan {
    PythonRuntimePlan.plan(units, target: Self.target, settings: settings, compiledName: { "\($0.name).xml" },
                           extra: precision == "fp16" ? ["--fp16"] : [])
  }
}
