import Foundation

/// A named value of a graph: a graph input, an initializer, or a node output.
///
/// Values know their producer and every consumer (use-def lists), so a rewrite can
/// find what it changes without scanning the graph.
public final class Value {
  public var name: String
  public var type: TypeInfo?
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  /// Serialized `ValueInfoProto` fields this IR does not model (and unknown fields).
  public var preservedFields = Data()

  /// The constant held when this value is an initializer.
  public var constValue: Tensor?

  /// The node computing this value; unowned(unsafe) rather than weak for speed (see
  /// `Node.prev`): a node clears it in `setOutput` and when it is freed.
  public internal(set) unowned(unsafe) var producer: Node?
  /// Which output of `producer` this is.
  public internal(set) var outputIndex: Int = 0

  /// A consumer: `node.inputs[index] === self`.
  public struct Use {
    public unowned let node: Node
    public let index: Int
  }
  public internal(set) var uses: [Use] = []

  public init(name: String, type: TypeInfo? = nil) {
    self.name = name
    self.type = type
  }

  public var elementType: DataType? { type?.elementType }
  public var shape: Shape? {
    get { type?.shape }
    set { type?.shape = newValue }
  }

  /// The consumers in use order; a node appears once per input slot it reads this from.
  public var consumers: [Node] { uses.map(\.node) }

  /// Redirects every use of this value to `other`. Graph outputs are not touched
  /// (see `Graph.replaceAllUses(of:with:)` for that).
  public func replaceAllUses(with other: Value) {
    precondition(other !== self)
    for use in uses { use.node.inputs[use.index] = other }  // didSet moves each use
  }

  func removeUse(node: Node, index: Int) {
    if let i = uses.firstIndex(where: { $0.node === node && $0.index == index }) {
      uses.remove(at: i)
    }
  }
}

extension Value: CustomStringConvertible {
  public var description: String { "%\(name)" + (type.map { ": \($0)" } ?? "") }
}
