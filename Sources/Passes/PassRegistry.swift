import ONNXGraph

/// What a pass did; `modified` lets a pipeline stop at a fixed point.
public struct PassResult: Sendable {
  public var modified: Bool
  public init(modified: Bool) { self.modified = modified }
}

/// Settings passes read; each pass uses the ones that concern it.
public struct PassOptions {
  /// `--input-shape name=1,128`: full shapes for graph inputs.
  public var inputShapes: [String: [Int]] = [:]
  /// `--dim name=128`: values for symbolic dimensions, wherever they appear.
  public var dimBindings: [String: Int] = [:]
  /// `--fold-limit`: the largest tensor constant folding may create.
  public var foldLimitBytes = 16 << 20
  /// `--strict`: what a pass would only report becomes an error.
  public var strict = false
  /// Receives one line per report (`--pass` reports go to stderr in the CLI).
  public var report: (String) -> Void = { _ in }
  /// Receives a remark about one node (`--explain`): where, then what.
  public var remark: (_ node: String, _ message: String) -> Void = { _, _ in }
  /// `--target-opset`: the default-domain opset `legalize-opset` lowers to (nil: the
  /// pass's own default, 17, what TPU-MLIR takes).
  public var targetOpset: Int? = nil
  /// `--linear-form`: how `falcon-linear` writes a canonical Linear.
  public var linearForm: LinearForm = .matmul
  /// `--kv-output`: what `kv-cache-io` makes each `present.N.*` output return.
  public var kvOutput: KVOutput = .new
  /// `--positions`: whether `kv-cache-io` makes `position_ids` a graph input.
  public var kvPositions: KVPositions = .computed
  /// `--mask`: whether `kv-cache-io` takes an additive `attention_bias` instead of `attention_mask`.
  public var kvMask: KVMask = .padding
  /// `--kv-layout`: the axis order of `kv-cache-io`'s past inputs and present outputs.
  public var kvLayout: KVLayout = .bhsd
  public init() {}
}

/// The two canonical forms of `y = x @ W.T + b` device compilers pattern-match.
public enum LinearForm: String, CaseIterable, Sendable {
  /// MatMul with a pre-transposed initializer, then Add (what TorchScript exports).
  case matmul
  /// Gemm transB=1 on the original weight, with Reshapes around it for 3-D inputs.
  case gemm
}

/// A whole-model transformation with a stable kebab-case name.
public protocol GraphPass {
  static var name: String { get }
  static var summary: String { get }
  init()
  func run(on model: Model, options: PassOptions) throws -> PassResult
}

/// The passes `--pass NAME` can name, in the order `onnx-rewrite passes` lists them.
public enum PassRegistry {
  nonisolated(unsafe) public static let all: [any GraphPass.Type] = [
    StaticShapes.self,
    FoldConstants.self,
    DeadCodeElimination.self,
    EliminateIdentity.self,
    EliminateNoOps.self,
    DedupeConstants.self,
    ScatterNDToConcat.self, GatherNDToGather.self, AttentionPermutes.self,
    LegalizeOpset.self,
    FalconLinear.self, CanonicalLinear.self, FP16SafeMasks.self,
    KVCacheIO.self,
  ]

  public static func pass(named name: String) -> (any GraphPass.Type)? {
    all.first { $0.name == name }
  }
}

/// A pass that cannot run on this model, with the node (or value) at fault.
public struct PassError: Error, CustomStringConvertible {
  public var pass: String
  public var location: String
  public var reason: String
  public init(pass: String, location: String, reason: String) {
    self.pass = pass
    self.location = location
    self.reason = reason
  }
  public var description: String { "\(location): \(pass): \(reason)" }
}

extension Node {
  /// How remarks and errors name a node: its name, else its first output.
  public var displayName: String { name.isEmpty ? (outputs.first?.name ?? opType) : name }
}
