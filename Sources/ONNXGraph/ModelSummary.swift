/// Counts that describe a model at a glance (`onnx-rewrite inspect`).
public struct ModelSummary: Sendable {
  public struct Port: Sendable {
    public var name: String
    public var type: String
  }
  public var irVersion: Int64
  public var producer: String
  public var opsets: [OpsetImport]
  public var inputs: [Port]
  public var outputs: [Port]
  /// Nodes of the main graph.
  public var nodes: Int
  /// Nodes in sub-graphs (If/Loop/Scan bodies) and function bodies.
  public var nestedNodes: Int
  /// Op type ("domain.Op" outside the default domain) → count, over every graph.
  public var opTypes: [(op: String, count: Int)]
  public var initializers: Int
  public var parameters: Int
  public var weightBytes: Int
  public var functions: Int
  /// Files other than the model that hold weights.
  public var externalFiles: [String]

  public init(_ model: Model, modelPath: String? = nil) {
    irVersion = model.irVersion
    producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
    opsets = model.opsetImports
    let g = model.graph
    inputs = g.inputs.filter { g.initializers[$0.name] == nil }.map {
      Port(name: $0.name, type: $0.type?.description ?? "?")
    }
    outputs = g.outputs.map { Port(name: $0.name, type: $0.type?.description ?? "?") }
    nodes = g.nodeCount
    var histogram: [String: Int] = [:]
    var total = 0
    var files: Set<String> = []
    var initializerCount = 0, parameterCount = 0, bytes = 0
    for graph in model.allGraphs {
      for n in graph.nodes {
        histogram[n.isDefaultDomain ? n.opType : "\(n.domain).\(n.opType)", default: 0] += 1
        total += 1
      }
      for v in graph.initializers.values {
        guard let t = v.constValue else { continue }
        initializerCount += 1
        parameterCount += t.elementCount
        bytes += t.byteCount
        if let src = t.rawBytes?.mappedSource?.file.path, src != modelPath { files.insert(src) }
      }
    }
    nestedNodes = total - nodes
    opTypes = histogram.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
      .map { ($0.key, $0.value) }
    initializers = initializerCount
    parameters = parameterCount
    weightBytes = bytes
    functions = model.functions.count
    externalFiles = files.sorted()
  }
}
