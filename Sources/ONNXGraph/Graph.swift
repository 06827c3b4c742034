import Foundation
import OrderedCollections

/// A computation graph (`GraphProto`): the model's main graph, an If/Loop/Scan body, or a
/// function body.
///
/// Nodes are kept in order in an intrusive doubly linked list, so inserting or removing a
/// node is O(1) and a rewrite costs what it touches, not the graph's size.
public final class Graph {
  public var name: String
  public var inputs: [Value]
  public var outputs: [Value]
  /// Initializers by name, in file order. A value can be both an input and an initializer
  /// (IR < 4 style default values).
  public var initializers: OrderedDictionary<String, Value> = [:]
  public var sparseInitializers: [SparseTensor] = []
  /// Values that carry a `value_info` entry, in file order.
  public var valueInfos: [Value] = []
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  /// Serialized `GraphProto` fields this IR does not model (quantization annotations, unknown fields).
  public var preservedFields = Data()

  public private(set) var nodeCount = 0
  private var head: Node?
  // unowned(unsafe): a weak reference would give every node that was ever last a side
  // table, slowing every retain of it (see Node.prev). The list keeps the tail alive.
  private unowned(unsafe) var tail: Node?

  public init(name: String = "", inputs: [Value] = [], outputs: [Value] = []) {
    self.name = name
    self.inputs = inputs
    self.outputs = outputs
  }

  deinit {
    // Unlink iteratively: releasing a long `next` chain recursively would overflow the stack.
    var n = head
    head = nil
    while let node = n {
      n = node.next
      node.next = nil
    }
  }

  // MARK: Nodes

  /// The nodes in order. Safe to mutate the graph while iterating: the iterator holds the
  /// next node before yielding the current one.
  public var nodes: NodeSequence { NodeSequence(first: head) }

  public struct NodeSequence: Sequence {
    let first: Node?
    public func makeIterator() -> Iterator { Iterator(next: first) }
    public struct Iterator: IteratorProtocol {
      var upcoming: Node?
      init(next: Node?) { upcoming = next }
      public mutating func next() -> Node? {
        guard let n = upcoming else { return nil }
        upcoming = n.next
        return n
      }
    }
  }

  public var firstNode: Node? { head }
  public var lastNode: Node? { tail }

  /// Appends a node (which must not be in a graph).
  public func append(_ node: Node) { insert(node, after: tail) }

  /// Inserts `node` right after `anchor` (at the front when `anchor` is nil).
  public func insert(_ node: Node, after anchor: Node?) {
    precondition(node.graph == nil, "node \(node) is already in a graph")
    precondition(anchor == nil || anchor!.graph === self, "anchor is not in this graph")
    node.graph = self
    if let anchor {
      node.prev = anchor
      node.next = anchor.next
      anchor.next?.prev = node
      anchor.next = node
      if tail === anchor { tail = node }
    } else {
      node.next = head
      head?.prev = node
      head = node
      if tail == nil { tail = node }
    }
    nodeCount += 1
  }

  public func insert(_ node: Node, before anchor: Node) { insert(node, after: anchor.prev) }

  /// Unlinks a node and drops its uses of its inputs. Its outputs keep their own uses:
  /// redirect them first (`replaceAllUses`) if anything still reads them.
  public func remove(_ node: Node) { remove(node, keepingUses: false) }

  /// Unlinks a node; with `keepingUses` its inputs keep it in their use lists (it is
  /// about to be linked again, e.g. by a reorder).
  func remove(_ node: Node, keepingUses: Bool) {
    precondition(node.graph === self, "node \(node) is not in this graph")
    if !keepingUses { node.detachInputs() }
    if let p = node.prev { p.next = node.next } else { head = node.next }
    if let n = node.next { n.prev = node.prev } else { tail = node.prev }
    node.next = nil
    node.prev = nil
    node.graph = nil
    nodeCount -= 1
  }

  // MARK: Values

  /// Adds an initializer value holding `tensor` (named after the value).
  @discardableResult
  public func addInitializer(_ value: Value, _ tensor: Tensor) -> Value {
    value.constValue = tensor
    initializers[value.name] = value
    return value
  }

  public func removeInitializer(named name: String) {
    initializers.removeValue(forKey: name)?.constValue = nil
  }

  /// Redirects every use of `old`, including graph outputs, to `new`.
  public func replaceAllUses(of old: Value, with new: Value) {
    old.replaceAllUses(with: new)
    for i in outputs.indices where outputs[i] === old { outputs[i] = new }
  }

  /// Every node of this graph and of its sub-graphs, depth first, in order.
  public func forEachNodeRecursive(_ body: (Node) throws -> Void) rethrows {
    for node in nodes {
      try body(node)
      for g in node.subgraphs { try g.forEachNodeRecursive(body) }
    }
  }
}
