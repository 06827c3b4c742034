import ONNXGraph

/// Sophgo's TPU-MLIR (BM1684X, BM1688, CV18xx): `model_transform` (ONNX → top MLIR) and
/// `model_deploy` (→ bmodel) per tile, then `model_tool --combine`, as the BM1684X LLM flows do.
///
/// The checks are what TPU-MLIR 1.30 was seen to reject on real exports
/// (../shared/notes/tpu-mlir.md): it pins onnx 1.14.1, so opset ≤ 19 and IR ≤ 9; its
/// front end lacks opset-20 Gelu and opset-18 Reduce* with axes as an input; it asserts on a
/// ScatterND with a `reduction` attribute and silently miscompiles GatherND.
public struct TPUMLIRBackend: Backend {
  public static let target = Target.tpuMLIR
  public let settings: BuildSettings
  /// The chip, lowercase as `model_deploy --chip` takes it.
  public let chip: String
  /// The quantization, as `model_deploy --quantize` takes it.
  public let quantize: String

  static let chips = ["bm1684x", "bm1688", "bm1684", "cv186x", "cv183x", "cv182x", "cv181x", "cv180x"]
  /// Weight-only modes exist for the chips with the LLM flow.
  static let quantizations = ["F32", "F16", "BF16", "W8F16", "W8BF16", "W4F16", "W4BF16"]
  static let weightOnlyChips: Set = ["bm1684x", "bm1688"]

  public init(_ settings: BuildSettings) throws {
    self.settings = settings
    chip = (settings.chip ?? "bm1684x").lowercased()
    quantize = (settings.quantize ?? "F16").uppercased()
    guard Self.chips.contains(chip) else {
      throw BackendError("--chip \(settings.chip!): TPU-MLIR chips are \(Self.chips.joined(separator: ", ")).")
    }
    if quantize == "INT8" {
      throw BackendError("--quantize INT8: TPU-MLIR needs a calibration table for it (run_calibration); this plan builds \(Self.quantizations.joined(separator: ", ")).")
    }
    guard Self.quantizations.contains(quantize) else {
      throw BackendError("--quantize \(settings.quantize!): TPU-MLIR takes \(Self.quantizations.joined(separator: ", ")).")
    }
    if quantize.hasPrefix("W"), !Self.weightOnlyChips.contains(chip) {
      throw BackendError("--quantize \(quantize): weight-only quantization is for \(Self.weightOnlyChips.sorted().joined(separator: ", ")), not \(chip).")
    }
  }

  public var toolchain: Toolchain {
    Toolchain(
      programs: ["model_transform", "model_deploy", "model_tool"], pythonModules: ["numpy", "onnxruntime"],
      install: "TPU-MLIR is not installed: Scripts/install-tpu-mlir does it (Python 3.10: pip install tpu-mlir==1.30.2 plus onnx==1.14.1 onnxruntime==1.16.3 torch; see its comments), then put its venv's bin/ first on PATH")
  }

  static let opRules: [String: (Finding.Severity, String)] = [
    "GatherND": (.error, "TPU-MLIR 1.30 miscompiles GatherND (values ~1e31 in its F32 validation); --pass gathernd-to-gather (in --pass npu) turns constant-index ones into Gather/Slice"),
    "Gelu": (.error, "TPU-MLIR 1.30 has no opset-20 Gelu (`Op not support:{'Gelu'}`); --pass legalize-opset writes its Erf/Tanh formula"),
  ]

  public func validate(_ unit: CompileUnit) -> [Finding] {
    let compiler = "TPU-MLIR"
    var found = Checks.staticIO(unit, compiler: compiler)
    found += Checks.versions(unit, compiler: compiler, maxOpset: 19, maxIR: 9, fix: "it pins onnx 1.14.1; --pass legalize-opset lowers to 17")
    found += Checks.foreignDomains(unit, compiler: compiler)
    found += Checks.singleFileLimit(unit, compiler: compiler)
    found += Checks.ops(unit, Self.opRules)
    if quantize != "F32" { found += Checks.halfPrecisionMasks(unit, compiler: "TPU-MLIR \(quantize)") }
    unit.model.graph.forEachNodeRecursive { node in
      guard node.isDefaultDomain else { return }
      if node.opType == "ScatterND" {
        if node.attributes.contains(where: { $0.name == "reduction" }) {
          found.append(Finding(.error, unit: unit.name, location: node.label,
                               "ScatterND with a reduction attribute stops TPU-MLIR (`assert not reduction`); --pass scatternd-to-concat (in --pass npu) replaces constant-index ScatterND"))
        } else {
          found.append(Finding(.warning, unit: unit.name, location: node.label,
                               "ScatterND reaches the chip as a scatter; --pass scatternd-to-concat (in --pass npu) turns a constant-index one into Slice + Concat"))
        }
      }
      if node.opType.hasPrefix("Reduce"), node.inputs.count > 1, node.inputs[1] != nil {
        found.append(Finding(.error, unit: unit.name, location: node.label,
                             "\(node.opType) takes axes as an input (opset 18); TPU-MLIR 1.30 reads only the attribute form (`Unsupport opset for \(node.opType)`); --pass legalize-opset"))
      }
    }
    return found
  }

  public func plan(_ units: [CompileUnit]) -> BuildPlan {
    let q = quantize.lowercased()
    var plan = BuildPlan(product: settings.stage == .mlir ? units.map { "\($0.name).mlir" }.joined(separator: ", ") : "\(settings.modelName)_\(chip)_\(q).bmodel")
    let test = settings.hasTestInputs
    let tiled = units.contains(where: \.isTile)
    if test && tiled {
      // Each tile's own inputs, from the model inputs run through the tiles in onnxruntime.
      plan.helpers.append("backend_run.py")
      plan.steps.append(Step(unit: settings.modelName, tool: "python3", ["../backend_run.py", "feeds", "../tiles", "../inputs.npz", "."],
                             produces: units.map { "\($0.name)_in.npz" }, title: "tile inputs (onnxruntime)"))
    }
    var bmodels: [String] = []
    for unit in units {
      let shapes = "[" + unit.inputs.map { "[" + $0.staticDims.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
      var transform = ["--model_name", unit.name, "--model_def", "../" + unit.file, "--input_shapes", shapes]
      if test {
        transform += ["--test_input", tiled ? "\(unit.name)_in.npz" : "../inputs.npz", "--test_result", "\(unit.name)_top_outputs.npz"]
      }
      transform += ["--mlir", "\(unit.name).mlir"]
      plan.steps.append(Step(unit: unit.name, tool: "model_transform", transform, produces: ["\(unit.name).mlir"]))
      guard settings.stage == .full else { continue }
      let bmodel = "\(unit.name)_\(chip)_\(q).bmodel"
      var deploy = ["--mlir", "\(unit.name).mlir", "--quantize", quantize, "--chip", chip]
      if test {
        // model_transform wrote the F32 inputs it validated with; the simulator must match its outputs.
        deploy += ["--test_input", "\(unit.name)_in_f32.npz", "--test_reference", "\(unit.name)_top_outputs.npz"]
      }
      deploy += ["--model", bmodel]
      plan.steps.append(Step(unit: unit.name, tool: "model_deploy", deploy, produces: [bmodel]))
      bmodels.append(bmodel)
    }
    if settings.stage == .full {
      let combined = "\(settings.modelName)_\(chip)_\(q).bmodel"
      if bmodels.count > 1 {
        plan.steps.append(Step(unit: settings.modelName, tool: "model_tool", ["--combine"] + bmodels + ["-o", combined], produces: [combined]))
      } else if let only = bmodels.first, only != combined {
        plan.steps.append(Step(unit: settings.modelName, tool: "cp", [only, combined], produces: [combined]))
      }
    }
    return plan
  }
}
