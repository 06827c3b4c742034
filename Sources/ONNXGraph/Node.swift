import Foundation

/// An operator application (`NodeProto`).
///
/// Inputs and outputs are `Value`s; setting an input updates the value's use list.
/// Nodes live in one graph at a time, in a doubly linked list that keeps their order.
public final class Node {
  public var name: String
  public var opType: String
  /// "" (or "ai.onnx") is the default ONNX domain.
  public var domain: String
  public var overload: String = ""
  public var attributes: [Attribute]
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  /// Serialized `NodeProto` fields this IR does not model (device configurations, unknown fields).
  public var preservedFields = Data()

  /// Inputs in order; nil is an omitted optional input ("" in ONNX).
  public var inputs: [Value?] {
    didSet { relinkInputs(old: oldValue) }
  }
  public private(set) var outputs: [Value]

  public internal(set) weak var graph: Graph?
  // Intrusive list links, owned by `graph`. `prev` is unowned(unsafe), not weak: a weak
  // reference gives every node a side table, which made each retain and release of a
  // node take the slow path (15% of a million-node rewrite). `prev` is always a node of
  // the same list, kept alive by its own `next`, and is cleared when a node is unlinked.
  var next: Node?
  unowned(unsafe) var prev: Node?

  /// The node before this one in its graph.
  public var previous: Node? { prev }
  /// The node after this one in its graph.
  public var following: Node? { next }

  public init(
    _ opType: String, domain: String = "", name: String = "", inputs: [Value?],
    outputs: [Value], attributes: [Attribute] = []
  ) {
    self.opType = opType
    self.domain = domain
    self.name = name
    self.inputs = inputs
    self.outputs = outputs
    self.attributes = attributes
    for (i, v) in inputs.enumerated() { v?.uses.append(Value.Use(node: self, index: i)) }
    for (i, v) in outputs.enumerated() {
      v.producer = self
      v.outputIndex = i
    }
  }

  /// Creates fresh output values with these names.
  public convenience init(
    _ opType: String, domain: String = "", name: String = "", inputs: [Value?],
    outputNames: [String], attributes: [Attribute] = []
  ) {
    self.init(
      opType, domain: domain, name: name, inputs: inputs,
      outputs: outputNames.map { Value(name: $0) }, attributes: attributes)
  }

  /// Keeps use lists exact: only slots whose value changed are relinked.
  deinit {
    // Values may outlive their producer; they must not point at a freed node.
    for v in outputs where v.producer === self { v.producer = nil }
  }

  private func relinkInputs(old: [Value?]) {
    for i in 0..<max(old.count, inputs.count) {
      let was = i < old.count ? old[i] : nil
      let now = i < inputs.count ? inputs[i] : nil
      if was === now { continue }
      was?.removeUse(node: self, index: i)
      now?.uses.append(Value.Use(node: self, index: i))
    }
  }

  /// Replaces one output, e.g. to rename it through a new value.
  public func setOutput(_ index: Int, _ value: Value) {
    let old = outputs[index]
    if old.producer === self { old.producer = nil }
    outputs[index] = value
    value.producer = self
    value.outputIndex = index
  }

  /// Drops this node's uses of its inputs (before it is discarded).
  func detachInputs() {
    for (i, v) in inputs.enumerated() { v?.removeUse(node: self, index: i) }
  }

  public func attribute(_ name: String) -> Attribute? { attributes.first { $0.name == name } }
  public subscript(attribute name: String) -> AttributeValue? { attribute(name)?.value }

  /// Sub-graphs held in attributes (If branches, Loop/Scan bodies), in attribute order.
  public var subgraphs: [Graph] {
    // Most nodes have no graph attribute; skip the allocation for them.
    guard attributes.contains(where: { if case .graph = $0.value { true } else if case .graphs = $0.value { true } else { false } })
    else { return [] }
    return attributes.flatMap(\.value.subgraphs)
  }

  public var isDefaultDomain: Bool { domain.isEmpty || domain == "ai.onnx" }
}

extension Node: CustomStringConvertible {
  public var description: String {
    let ins = inputs.map { $0?.name ?? "" }.joined(separator: ", ")
    let outs = outputs.map(\.name).joined(separator: ", ")
    return "\(outs) = \(domain.isEmpty ? "" : domain + ".")\(opType)(\(ins))"
      + (name.isEmpty ? "" : "  # \(name)")
  }
}
