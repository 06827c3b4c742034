import ONNXGraph

/// A device compiler `onnx-rewrite compile --target` hands models to.
public enum Target: String, CaseIterable, Sendable {
  case tpuMLIR = "tpu-mlir"
  case onnxruntime
  case openvino
  case tensorrt
  case vastai

  /// The backend for this target with the user's build settings (a bad --quantize/--chip throws).
  public func backend(_ settings: BuildSettings) throws -> any Backend {
    switch self {
    case .tpuMLIR: try TPUMLIRBackend(settings)
    case .onnxruntime: try ONNXRuntimeBackend(settings)
    case .openvino: try OpenVINOBackend(settings)
    case .tensorrt: try TensorRTBackend(settings)
    case .vastai: try VastAIBackend(settings)
    }
  }
}

/// One model file a compiler is run on: a tile, or the whole model when not tiled.
public struct CompileUnit {
  /// The tile's name (`embedding`, `block_0`, …) or the model's.
  public var name: String
  /// The ONNX file, relative to the output folder (`tiles/block_0.onnx`, `model.onnx`).
  public var file: String
  public var model: Model
  /// Bytes of its weights: what decides protobuf's 2 GB single-file limit.
  public var weightBytes: Int

  public init(name: String, file: String, model: Model, weightBytes: Int) {
    self.name = name
    self.file = file
    self.model = model
    self.weightBytes = weightBytes
  }

  /// Whether it is one of several tiles (in the output folder's tiles/, with manifest.json).
  public var isTile: Bool { file.hasPrefix(Self.tileFolder + "/") }
  /// Where compile writes tiles, relative to the output folder.
  public static let tileFolder = "tiles"

  /// The graph inputs that are not initializers, in order (compilers take shapes positionally).
  public var inputs: [Value] { model.graph.inputs.filter { model.graph.initializers[$0.name] == nil } }
}

/// The user's `--quantize`, `--chip` and friends, before a backend checks them.
public struct BuildSettings: Sendable {
  /// `--quantize` as the user spelled it; nil: the backend's default.
  public var quantize: String?
  /// `--chip`; nil: the backend's default.
  public var chip: String?
  /// Whether `inputs.npz` (the model inputs, `--test-input`) is in the output folder: backends
  /// that can check their result against onnxruntime then do.
  public var hasTestInputs = false
  /// `--stage`: how far the plan goes (TPU-MLIR: `mlir` stops after model_transform).
  public var stage: Stage = .full
  /// The name of the model as a whole (the combined bmodel, the plan's comments).
  public var modelName = "model"

  public enum Stage: String, CaseIterable, Sendable {
    case mlir
    case full
  }

  public init() {}
}

/// What a compiler is known to reject, found before it runs.
public struct Finding: CustomStringConvertible, Sendable, Equatable {
  public enum Severity: String, Sendable { case error, warning }
  public var severity: Severity
  /// The compile unit (tile) it is in.
  public var unit: String
  /// The node (its name, else its first output) or graph input/output it is about; nil: the whole unit.
  public var location: String?
  public var reason: String

  public init(_ severity: Severity, unit: String, location: String? = nil, _ reason: String) {
    self.severity = severity
    self.unit = unit
    self.location = location
    self.reason = reason
  }

  public var description: String {
    "\(severity.rawValue): \(unit)\(location.map { ": \($0)" } ?? ""): \(reason)"
  }
}

/// One compiler invocation of a build plan; it runs in the plan's build folder.
public struct Step: Sendable, Equatable {
  /// The unit it builds (a tile name), or the model's name for steps over all of them.
  public var unit: String
  /// The program (`model_transform`, `trtexec`, `vamc`; `python3` is the interpreter of --python).
  public var tool: String
  public var arguments: [String]
  /// Files (relative to the build folder) it must leave behind; missing ones make it a failure.
  public var produces: [String]
  /// What the step does, for progress lines (default: the tool's name).
  public var title: String
  /// Whether its output is worth showing on success too (a comparison's table).
  public var showsOutput: Bool

  public init(unit: String, tool: String, _ arguments: [String], produces: [String] = [], title: String? = nil,
              showsOutput: Bool = false) {
    self.unit = unit
    self.tool = tool
    self.arguments = arguments
    self.produces = produces
    self.title = title ?? tool
    self.showsOutput = showsOutput
  }
}

/// A build plan in the target's own conventions: the steps (also written as `compile.sh`) and the
/// configuration files they read.
public struct BuildPlan: Sendable {
  public var steps: [Step] = []
  /// Files written beside compile.sh (vamc YAML, Polygraphy commands), path relative to the output folder.
  public var files: [(path: String, contents: String)] = []
  /// Helper scripts shipped with onnx-rewrite that the steps call, copied into the output folder.
  public var helpers: [String] = []
  /// What the plan builds, for the summary line.
  public var product: String
  public init(product: String) { self.product = product }
}

/// What running a plan needs on this machine, and how to get it.
public struct Toolchain: Sendable {
  /// Programs that must be on PATH.
  public var programs: [String] = []
  /// Python modules `--python` must import.
  public var pythonModules: [String] = []
  /// Needs an NVIDIA GPU (`nvidia-smi` must list one).
  public var needsNVIDIAGPU = false
  /// The install instruction shown when something is missing.
  public var install: String
}

public struct BackendError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// A device compiler: what it rejects, and how to build for it.
public protocol Backend {
  static var target: Target { get }
  /// Checks and keeps the user's settings (a `BackendError` names the bad one and the choices).
  init(_ settings: BuildSettings) throws
  var settings: BuildSettings { get }
  var toolchain: Toolchain { get }
  /// Everything in `unit` this compiler is known to reject (errors) or handle badly (warnings).
  func validate(_ unit: CompileUnit) -> [Finding]
  /// The build plan over all units, in order.
  func plan(_ units: [CompileUnit]) -> BuildPlan
}

extension Backend {
  public var target: Target { Self.target }
}
