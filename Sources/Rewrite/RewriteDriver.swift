import Evaluation
import Foundation
import ONNXGraph

/// A rule set that does not terminate, or a rewrite that cannot be built.
public struct RewriteError: Error, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// Applies rules to a fixed point with a worklist.
///
/// Every node is visited once in graph order; a rewrite queues only what it touched
/// (the new nodes and the readers of the replaced value), so the cost is linear in the
/// graph for a fixed rule set. The order is deterministic: same input, same output.
public final class RewriteDriver {
  public struct Stats {
    public var applied: [String: Int] = [:]
    public var total: Int { applied.values.reduce(0, +) }
  }

  /// One rule tried at one node, for `--explain`.
  public struct Attempt: CustomStringConvertible {
    public var node: String
    public var rule: String
    public var result: String
    public var description: String { "\(node): \(rule): \(result)" }
  }

  private let byRoot: [String: [Rule]]
  /// Node name, output name or rule name to explain; attempts on it are recorded.
  public var explain: String?
  public private(set) var attempts: [Attempt] = []
  public private(set) var stats = Stats()
  /// A rewrite moved a value that earlier nodes may read: re-sort before returning.
  private var needsSort = false

  public init(rules: [Rule]) {
    var index: [String: [Rule]] = [:]
    for r in rules { index[r.root.opType, default: []].append(r) }
    // Higher benefit first; file order among equals.
    byRoot = index.mapValues { rs in
      rs.enumerated().sorted { a, b in a.element.benefit != b.element.benefit ? a.element.benefit > b.element.benefit : a.offset < b.offset }
        .map(\.element)
    }
  }

  /// Rewrites the main graph, its sub-graphs and function bodies; returns whether anything changed.
  @discardableResult
  public func run(on model: Model) throws -> Bool {
    let before = stats.total
    for g in model.allGraphs { try run(on: g) }
    return stats.total > before
  }

  public func run(on graph: Graph) throws {
    needsSort = false
    defer { if needsSort { graph.sortTopologically() } }
    var queue: [Node] = Array(graph.nodes)
    var queued = Set(queue.map(ObjectIdentifier.init))
    var head = 0
    let budget = 10 * graph.nodeCount + 1000
    var done = 0
    // Collecting every name is O(graph); most rewrites never need a fresh one.
    var scope: NameScope?
    let names = { () -> NameScope in
      if let scope { return scope }
      let s = NameScope(graph)
      scope = s
      return s
    }
    let outputSet = Set(graph.outputs.map(ObjectIdentifier.init))
    let outputs = { (v: Value) in outputSet.contains(ObjectIdentifier(v)) }
    let matchers = byRoot.mapValues { $0.map { Matcher(rule: $0, graph: graph) } }
    while head < queue.count {
      let node = queue[head]
      head += 1
      queued.remove(ObjectIdentifier(node))
      // Removed, or dead (its result is dropped at the end anyway).
      guard node.graph === graph, node.outputs.contains(where: { !$0.uses.isEmpty || outputs($0) }) else { continue }
      for matcher in matchers[node.opType] ?? [] {
        let rule = matcher.rule
        let explaining =
          explain.map { target in target == rule.name || target == node.name || node.outputs.contains { $0.name == target } }
          ?? false
        switch matcher.match(at: node) {
        case .failure(let f):
          if explaining { attempts.append(Attempt(node: node.displayLabel, rule: rule.name, result: "no match: \(f)")) }
          continue
        case .success(let m):
          if explaining { attempts.append(Attempt(node: node.displayLabel, rule: rule.name, result: "applied")) }
          let touched = try apply(rule, m, in: graph, names: names)
          stats.applied[rule.name, default: 0] += 1
          done += 1
          if done > budget {
            let top = stats.applied.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) (\($0.value)x)" }
            throw RewriteError(
              message: "rewriting did not reach a fixed point after \(done) rewrites on \(graph.nodeCount) nodes; "
                + "rules applied most: \(top.joined(separator: ", ")) — they probably undo each other")
          }
          for n in touched where !queued.contains(ObjectIdentifier(n)) {
            queue.append(n)
            queued.insert(ObjectIdentifier(n))
          }
        }
        break  // the node changed (or is gone): later rules see it when it is requeued
      }
      if head > 4096 && head * 2 > queue.count {  // keep the queue's memory proportional to what is pending
        queue.removeFirst(head)
        head = 0
      }
    }
  }

  /// Performs a rule's action; returns the nodes to revisit.
  func apply(_ rule: Rule, _ m: Match, in graph: Graph, names: () -> NameScope) throws -> [Node] {
    let root = m.nodes[rule.pattern.count - 1]!
    let ctx = HelperContext(graph: graph)
    switch rule.action {
    case .replace(let target, let with):
      let old = m.values[target]!
      let new: Value
      switch with {
      case .variable(let v):
        guard case .value(let x)? = m.variables[v] else { throw RewriteError(message: "\(rule.name): $\(v) is not a value") }
        new = x
      case .name(let n): new = m.values[n]!
      case .constant(let e):
        let tensor = try constantTensor(e, rule, Match(variables: m.variables, values: m.values, nodes: m.nodes), ctx)
        if old.producer === root {
          // The value itself becomes the constant: same name, no extra node.
          let readers = old.consumers
          graph.remove(root)
          graph.addInitializer(old, tensor.tensor(name: old.name))
          return readers
        }
        new = Value(name: names().fresh(old.name + "_const"))
        graph.addInitializer(new, tensor.tensor(name: new.name))
      case .wildcard, .rest: throw RewriteError(message: "\(rule.name): cannot replace with \(with)")
      }
      if graph.outputs.contains(where: { $0 === old }) {
        // A graph output keeps its name: it becomes Identity of the replacement.
        guard let producer = old.producer else { return [] }
        let id = Node("Identity", name: producer.name, inputs: [new], outputs: [Value(name: names().fresh(old.name + "_replaced"))])
        graph.insert(id, before: producer)
        let type = old.type
        producer.setOutput(old.outputIndex, id.outputs[0])
        id.setOutput(0, old)
        old.type = type
        return [id] + new.consumers
      }
      let readers = old.consumers
      old.replaceAllUses(with: new)
      return readers
    case .rewrite(let targets, let specs):
      var local = m.values
      var created: [Node] = []
      // Each target leaves its old producer (which then dies unless read otherwise) and is
      // computed by the new node that names it.
      var taken: [String: Value] = [:]
      for name in targets {
        let v = m.values[name]!
        if let producer = v.producer {
          producer.setOutput(v.outputIndex, Value(name: names().fresh(v.name + "_replaced")))
        }
        taken[name] = v
      }
      // New nodes go where the root was; targets of earlier pattern nodes may have readers
      // before that point, so the graph is re-sorted at the end (stable, once per run).
      if targets.contains(where: { name in !rule.root.outputs.contains(name) }) { needsSort = true }
      let anchor = root.following
      for spec in specs {
        var inputs: [Value?] = []
        for operand in spec.operands {
          switch operand {
          case .variable(let v):
            guard case .value(let x)? = m.variables[v] else { throw RewriteError(message: "\(rule.name): $\(v) is not a value") }
            inputs.append(x)
          case .name(let n): inputs.append(local[n])
          case .constant(let e):
            let tensor = try constantTensor(e, rule, Match(variables: m.variables, values: local, nodes: m.nodes), ctx)
            let v = Value(name: names().fresh((root.outputs.first?.name ?? rule.name) + "_const"))
            graph.addInitializer(v, tensor.tensor(name: v.name))
            inputs.append(v)
          case .wildcard: inputs.append(nil)
          case .rest(let v):
            guard case .list(let items)? = m.variables[v] else { throw RewriteError(message: "\(rule.name): $\(v)... is not bound") }
            for item in items {
              if case .value(let x) = item { inputs.append(x) } else { inputs.append(nil) }
            }
          }
        }
        var attrs: [Attribute] = []
        for (name, e) in spec.attributes {
          let r = try ExprEvaluator.evaluate(e, Match(variables: m.variables, values: local, nodes: m.nodes), ctx)
          guard let a = r.attribute() else { throw RewriteError(message: "\(rule.name): attribute \(name) = \(r) has no ONNX form") }
          attrs.append(Attribute(name, a))
        }
        let outputs = spec.outputs.map { taken[$0] ?? Value(name: names().fresh($0)) }
        let node = Node(
          spec.opType, domain: spec.domain,
          name: specs.count == 1 || root.name.isEmpty ? root.name : "\(root.name)/\(rule.name)_\(created.count)",
          inputs: inputs, outputs: outputs, attributes: attrs)
        if let anchor { graph.insert(node, before: anchor) } else { graph.append(node) }
        for (n, v) in zip(spec.outputs, outputs) { local[n] = v }
        created.append(node)
      }
      // The root usually computed only targets: it is dead now, and goes at once.
      if root.outputs.allSatisfy({ v in v.uses.isEmpty && !graph.outputs.contains { $0 === v } }) { graph.remove(root) }
      return created + created.flatMap { $0.outputs.flatMap(\.consumers) }
    }
  }

}

extension RewriteDriver {
  /// A `const(expr)` operand's tensor: a helper's tensor, or an int64 vector of a list.
  func constantTensor(_ e: Expr, _ rule: Rule, _ m: Match, _ ctx: HelperContext) throws -> HostTensor {
    let r = try ExprEvaluator.evaluate(e, m, ctx)
    switch r {
    case .tensor(let t): return t
    case .int(let v): return HostTensor(.int64, [], ints: [v])
    default:
      guard let ints = r.ints else { throw RewriteError(message: "\(rule.name): const(\(e)) is \(r), not a tensor") }
      return .int64s(ints)
    }
  }
}

extension Node {
  var displayLabel: String { name.isEmpty ? (outputs.first?.name ?? opType) : name }
}
