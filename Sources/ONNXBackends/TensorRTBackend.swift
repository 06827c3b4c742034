import ONNXGraph

/// NVIDIA TensorRT: a `trtexec` engine build per unit (`build/<unit>.plan`), and beside it
/// `polygraphy.sh`, which checks each engine against onnxruntime. Needs an NVIDIA GPU: the plan is
/// always written, and only run (`--run`) where `trtexec` and a GPU exist.
public struct TensorRTBackend: Backend {
  public static let target = Target.tensorrt
  public let settings: BuildSettings
  public let precision: String

  static let precisions = ["fp32", "fp16", "bf16"]

  public init(_ settings: BuildSettings) throws {
    precision = (settings.quantize ?? "fp16").lowercased()
    if precision == "int8" {
      throw BackendError("--quantize int8: TensorRT needs a calibration cache or a Q/DQ model for it; this plan builds \(Self.precisions.joined(separator: ", ")).")
    }
    guard Self.precisions.contains(precision) else {
      throw BackendError("--quantize \(settings.quantize!): the tensorrt target builds \(Self.precisions.joined(separator: ", ")).")
    }
    if let c = settings.chip, c.lowercased() != "gpu" {
      throw BackendError("--chip \(c): TensorRT builds for the NVIDIA GPU it runs on (give no --chip).")
    }
    self.settings = settings
  }

  public var toolchain: Toolchain {
    Toolchain(programs: ["trtexec"], needsNVIDIAGPU: true,
              install: "TensorRT needs an NVIDIA GPU with its driver; install TensorRT (pip install tensorrt, or NVIDIA's packages, which ship trtexec) and put trtexec on PATH, then run compile.sh there")
  }

  public func validate(_ unit: CompileUnit) -> [Finding] {
    // The plan builds one static engine per unit: no optimization profiles for dynamic inputs.
    var found = Checks.staticIO(unit, compiler: "this TensorRT plan (one static engine per tile)")
    found += Checks.versions(unit, compiler: "TensorRT 10's ONNX parser", maxOpset: 22, maxIR: 10, fix: "--pass legalize-opset")
    found += Checks.foreignDomains(unit, compiler: "TensorRT (without a plugin)")
    return found
  }

  var precisionFlags: [String] { precision == "fp32" ? [] : ["--\(precision)"] }

  public func plan(_ units: [CompileUnit]) -> BuildPlan {
    var plan = BuildPlan(product: units.map { "\($0.name).plan" }.joined(separator: ", "))
    var polygraphy = [
      "#!/usr/bin/env bash",
      "# Checks each TensorRT engine's outputs against onnxruntime on random inputs (pip install polygraphy).",
      "# Written by `onnx-rewrite compile --target tensorrt`; run it on the GPU machine after compile.sh.",
      "set -euo pipefail",
      "cd \"$(dirname \"$0\")\"",
    ]
    for unit in units {
      let engine = "\(unit.name).plan"
      plan.steps.append(Step(unit: unit.name, tool: "trtexec",
                             ["--onnx=../\(unit.file)", "--saveEngine=\(engine)"] + precisionFlags,
                             produces: [engine]))
      polygraphy.append(shellLine(["polygraphy", "run", unit.file, "--trt", "--onnxrt"] + precisionFlags
                                  + ["--atol", precision == "fp32" ? "1e-4" : "1e-2", "--rtol", precision == "fp32" ? "1e-4" : "1e-2"]))
    }
    plan.files.append((path: "polygraphy.sh", contents: polygraphy.joined(separator: "\n") + "\n"))
    return plan
  }
}
