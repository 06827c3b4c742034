import Foundation

/// An operator set a model imports (`OperatorSetIdProto`).
public struct OpsetImport: Hashable, Sendable {
  public var domain: String
  public var version: Int64
  /// Whether an empty domain is written out explicitly (onnx does; TorchScript exports
  /// leave it unset). Only the file's bytes depend on it, so equality ignores it.
  public var writesEmptyDomain = true

  public init(_ domain: String, _ version: Int64) {
    self.domain = domain
    self.version = version
  }

  public static func == (a: OpsetImport, b: OpsetImport) -> Bool {
    a.domain == b.domain && a.version == b.version
  }
  public func hash(into h: inout Hasher) {
    h.combine(domain)
    h.combine(version)
  }
}

/// A whole ONNX model (`ModelProto`).
public final class Model {
  public var irVersion: Int64
  public var opsetImports: [OpsetImport]
  public var producerName = ""
  public var producerVersion = ""
  public var domain = ""
  public var modelVersion: Int64 = 0
  public var docString = ""
  public var graph: Graph
  public var metadataProps: [MetadataEntry] = []
  public var trainingInfo: [TrainingInfo] = []
  public var functions: [Function] = []
  /// Serialized `ModelProto` fields this IR does not model (device configurations, unknown fields).
  public var preservedFields = Data()

  public init(irVersion: Int64, opsetImports: [OpsetImport], graph: Graph) {
    self.irVersion = irVersion
    self.opsetImports = opsetImports
    self.graph = graph
  }

  /// The imported version of a domain ("" and "ai.onnx" are the same domain).
  public func opsetVersion(for domain: String) -> Int64? {
    let isDefault = domain.isEmpty || domain == "ai.onnx"
    return opsetImports.first {
      isDefault ? ($0.domain.isEmpty || $0.domain == "ai.onnx") : $0.domain == domain
    }?.version
  }

  /// Every graph of the model: the main graph, sub-graphs, training graphs, function bodies.
  public var allGraphs: [Graph] {
    var out: [Graph] = []
    func visit(_ g: Graph) {
      out.append(g)
      for n in g.nodes { n.subgraphs.forEach(visit) }
    }
    visit(graph)
    for t in trainingInfo { [t.initialization, t.algorithm].compactMap { $0 }.forEach(visit) }
    for f in functions { visit(f.body) }
    return out
  }
}

/// `TrainingInfoProto`.
public struct TrainingInfo {
  public var initialization: Graph?
  public var algorithm: Graph?
  public var initializationBinding: [MetadataEntry]
  public var updateBinding: [MetadataEntry]
  public var preservedFields = Data()
  public init(
    initialization: Graph?, algorithm: Graph?, initializationBinding: [MetadataEntry],
    updateBinding: [MetadataEntry]
  ) {
    self.initialization = initialization
    self.algorithm = algorithm
    self.initializationBinding = initializationBinding
    self.updateBinding = updateBinding
  }
}

/// A model-local function (`FunctionProto`). Its body is a `Graph` whose inputs and
/// outputs are the formal parameters (untyped unless value_info says otherwise).
public final class Function {
  public var name: String
  public var domain: String
  public var overload = ""
  public var body: Graph
  /// Names of the attributes the function takes without defaults.
  public var attributeNames: [String] = []
  /// Attributes with default values.
  public var attributeDefaults: [Attribute] = []
  public var opsetImports: [OpsetImport] = []
  public var docString = ""
  public var metadataProps: [MetadataEntry] = []
  public var preservedFields = Data()

  public init(name: String, domain: String, body: Graph) {
    self.name = name
    self.domain = domain
    self.body = body
  }
}
