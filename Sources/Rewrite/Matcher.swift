import ONNXGraph

/// What a successful match bound.
public struct Match {
  /// `$name` bindings: values, attribute values.
  public var variables: [String: RValue] = [:]
  /// Pattern value names → the graph values they matched.
  public var values: [String: Value] = [:]
  /// Graph nodes matched, by pattern node index (nil: not matched yet).
  public var nodes: [Node?] = []
}

/// Why a rule did not match at a node: which check failed, at which operand.
public struct MatchFailure: Error, CustomStringConvertible {
  public var reason: String
  public var description: String { reason }
}

/// Matches one rule's pattern against the graph, anchored at a candidate root node and
/// walking producers (use-def), so a match costs the pattern's size, not the graph's.
struct Matcher {
  let rule: Rule
  let graph: Graph
  /// Pattern value name → (pattern node index, output index).
  let definitions: [String: (node: Int, output: Int)]
  /// Pattern nodes whose two operands may be swapped.
  let swappable: [Int]

  /// Ops whose two inputs may be swapped.
  static let commutative: Set<String> = ["Add", "Mul", "And", "Or", "Xor", "Equal", "Max", "Min", "Sum", "Mean"]

  init(rule: Rule, graph: Graph) {
    self.rule = rule
    self.graph = graph
    var defs: [String: (Int, Int)] = [:]
    for (i, p) in rule.pattern.enumerated() { for (k, o) in p.outputs.enumerated() { defs[o] = (i, k) } }
    definitions = defs
    swappable = rule.pattern.indices.filter {
      Self.commutative.contains(rule.pattern[$0].opType) && rule.pattern[$0].operands.count == 2
    }
  }

  /// Tries each assignment of operand orders to the pattern's commutative nodes (2^k for
  /// k such nodes in the pattern — a handful at most — never more per graph node), so
  /// constraints see every way the operands can line up.
  func match(at root: Node) -> Result<Match, MatchFailure> {
    if swappable.isEmpty { return attempt(at: root, swapped: []) }
    var firstFailure: MatchFailure?
    for mask in 0..<(1 << swappable.count) {
      let swapped = Set(swappable.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element))
      switch attempt(at: root, swapped: swapped) {
      case .success(let m): return .success(m)
      case .failure(let f): firstFailure = firstFailure ?? f
      }
    }
    return .failure(firstFailure!)
  }

  private func attempt(at root: Node, swapped: Set<Int>) -> Result<Match, MatchFailure> {
    var m = Match(nodes: Array(repeating: nil, count: rule.pattern.count))
    if let failure = matchNode(rule.pattern.count - 1, root, swapped, &m) { return .failure(failure) }
    // Pattern nodes the root does not reach through producers (siblings that share an
    // input, e.g. q/k/v projections of one tensor) are found among the readers of values
    // already bound: O(readers) per such node, first fit.
    for index in rule.pattern.indices where m.nodes[index] == nil {
      if let failure = matchSibling(index, swapped, &m) { return .failure(failure) }
    }
    let ctx = HelperContext(graph: graph)
    for c in rule.constraints {
      do {
        guard case .bool(true) = try ExprEvaluator.evaluate(c, m, ctx) else {
          return .failure(MatchFailure(reason: "constraint '\(c)' is false" + ExprEvaluator.bindingsNote(c, m, ctx)))
        }
      } catch {
        return .failure(MatchFailure(reason: "constraint '\(c)' failed: \(error)"))
      }
    }
    return .success(m)
  }

  private func matchNode(_ index: Int, _ node: Node, _ swapped: Set<Int>, _ m: inout Match) -> MatchFailure? {
    let p = rule.pattern[index]
    let label = "\(p.opType) (\(p.outputs.joined(separator: ", ")))"
    guard node.opType == p.opType, node.isDefaultDomain == (p.domain.isEmpty || p.domain == "ai.onnx"),
      node.isDefaultDomain || node.domain == p.domain
    else { return MatchFailure(reason: "\(label): found \(node.opType)") }
    if let other = m.nodes.indices.first(where: { $0 != index && m.nodes[$0] === node }) {
      return MatchFailure(reason: "\(label): node already matched by pattern node \(other)")
    }
    guard p.outputs.count <= node.outputs.count else {
      return MatchFailure(reason: "\(label): node has \(node.outputs.count) outputs")
    }
    m.nodes[index] = node
    for (k, name) in p.outputs.enumerated() {
      if let bound = m.values[name], bound !== node.outputs[k] { return MatchFailure(reason: "\(name): bound twice") }
      m.values[name] = node.outputs[k]
    }
    let ctx = HelperContext(graph: graph)
    for (name, expr) in p.attributes {
      let actual = RValue(node[attribute: name])
      if case .variable(let v) = expr, m.variables[v] == nil {
        m.variables[v] = actual
        continue
      }
      guard let expected = try? ExprEvaluator.evaluate(expr, m, ctx) else {
        return MatchFailure(reason: "\(label): cannot evaluate attribute pattern \(name) = \(expr)")
      }
      guard actual == expected else {
        return MatchFailure(reason: "\(label): attribute \(name) is \(actual), the pattern wants \(expected)")
      }
    }
    // Trailing omitted inputs do not count.
    var inputs = node.inputs
    while let last = inputs.last, last == nil { inputs.removeLast() }
    if case .rest(let v)? = p.operands.last {
      let fixed = p.operands.count - 1
      guard inputs.count >= fixed else {
        return MatchFailure(reason: "\(label): node has \(inputs.count) inputs, the pattern at least \(fixed)")
      }
      let rest = RValue.list(inputs[fixed...].map { $0.map(RValue.value) ?? .none })
      if let bound = m.variables[v], bound != rest {
        return MatchFailure(reason: "\(label): $\(v)... is already \(bound)")
      }
      m.variables[v] = rest
      inputs.removeLast(inputs.count - fixed)
      for (k, operand) in p.operands.dropLast().enumerated() {
        let input = k < inputs.count ? inputs[k] : nil
        if let f = matchOperand(operand, input, label: "\(label) operand \(k)", swapped, &m) { return f }
      }
      return nil
    }
    guard inputs.count <= p.operands.count else {
      return MatchFailure(reason: "\(label): node has \(inputs.count) inputs, the pattern \(p.operands.count)")
    }
    let order = swapped.contains(index) ? [1, 0] : Array(0..<p.operands.count)
    for (k, operand) in p.operands.enumerated() {
      let slot = order[k]
      let input = slot < inputs.count ? inputs[slot] : nil
      if let f = matchOperand(operand, input, label: "\(label) operand \(k)", swapped, &m) { return f }
    }
    return nil
  }

  private func matchSibling(_ index: Int, _ swapped: Set<Int>, _ m: inout Match) -> MatchFailure? {
    let p = rule.pattern[index]
    var anchors: [Value] = []
    for operand in p.operands {
      switch operand {
      case .variable(let v): if case .value(let x)? = m.variables[v] { anchors.append(x) }
      case .name(let n): if let x = m.values[n] { anchors.append(x) }
      default: break
      }
    }
    guard let anchor = anchors.first else {
      return MatchFailure(reason: "\(p.opType) (\(p.outputs.joined(separator: ", "))): shares no bound value with the rest of the pattern")
    }
    for use in anchor.uses where use.node.opType == p.opType && use.node.graph === graph {
      var attempt = m
      if matchNode(index, use.node, swapped, &attempt) == nil {
        m = attempt
        return nil
      }
    }
    return MatchFailure(reason: "\(p.opType) (\(p.outputs.joined(separator: ", "))): no reader of %\(anchor.name) matches")
  }

  private func matchOperand(
    _ operand: Operand, _ input: Value?, label: String, _ swapped: Set<Int>, _ m: inout Match
  ) -> MatchFailure? {
    switch operand {
    case .wildcard:
      return nil
    case .variable(let v):
      guard let input else { return MatchFailure(reason: "\(label): input is omitted") }
      if let bound = m.variables[v] {
        return bound == .value(input) ? nil : MatchFailure(reason: "\(label): $\(v) is already \(bound), here %\(input.name)")
      }
      m.variables[v] = .value(input)
      return nil
    case .name(let n):
      guard let input else { return MatchFailure(reason: "\(label): input is omitted") }
      if let bound = m.values[n] {
        return bound === input ? nil : MatchFailure(reason: "\(label): \(n) is already %\(bound.name)")
      }
      guard let (index, output) = definitions[n], let producer = input.producer, producer.graph === graph else {
        return MatchFailure(reason: "\(label): %\(input.name) is not produced by a node of this graph")
      }
      guard input.outputIndex == output else {
        return MatchFailure(reason: "\(label): %\(input.name) is output \(input.outputIndex), the pattern wants \(output)")
      }
      return matchNode(index, producer, swapped, &m)
    case .constant:
      return MatchFailure(reason: "\(label): const() cannot be matched")
    case .rest:
      return MatchFailure(reason: "\(label): '...' must be the last operand")
    }
  }
}

/// Evaluates rule expressions against a match.
enum ExprEvaluator {
  static func evaluate(_ e: Expr, _ m: Match, _ ctx: HelperContext) throws -> RValue {
    switch e {
    case .int(let v): return .int(v)
    case .float(let v): return .float(v)
    case .string(let s): return .string(s)
    case .list(let es): return .list(try es.map { try evaluate($0, m, ctx) })
    case .variable(let v):
      guard let b = m.variables[v] else { throw HelperError("$\(v) is not bound") }
      return b
    case .name(let n):
      if n == "true" { return .bool(true) }
      if n == "false" { return .bool(false) }
      guard let v = m.values[n] else { throw HelperError("'\(n)' is not bound") }
      return .value(v)
    case .call(let f, let args, _):
      return try RewriteHelpers.call(f, try args.map { try evaluate($0, m, ctx) }, ctx)
    case .not(let x):
      guard case .bool(let b) = try evaluate(x, m, ctx) else { throw HelperError("'not' of a non-boolean") }
      return .bool(!b)
    case .binary(let op, let a, let b):
      let x = try evaluate(a, m, ctx)
      if op == "and" || op == "or" {
        guard case .bool(let l) = x else { throw HelperError("'\(op)' of a non-boolean") }
        if op == "and" && !l { return .bool(false) }
        if op == "or" && l { return .bool(true) }
        guard case .bool(let r) = try evaluate(b, m, ctx) else { throw HelperError("'\(op)' of a non-boolean") }
        return .bool(r)
      }
      let y = try evaluate(b, m, ctx)
      switch op {
      case "==": return .bool(x == y)
      case "!=": return .bool(x != y)
      default:
        guard let l = number(x), let r = number(y) else { throw HelperError("'\(op)' needs numbers, got \(x) and \(y)") }
        switch op {
        case "<": return .bool(l < r)
        case "<=": return .bool(l <= r)
        case ">": return .bool(l > r)
        default: return .bool(l >= r)
        }
      }
    }
  }

  static func number(_ v: RValue) -> Double? {
    switch v {
    case .int(let i): Double(i)
    case .float(let f): f
    default: nil
    }
  }

  /// " ($p = [0,2,1,3], $q = [0,1,3,2])": the bound variables an expression reads.
  static func bindingsNote(_ e: Expr, _ m: Match, _ ctx: HelperContext) -> String {
    var names: [String] = []
    func collect(_ e: Expr) {
      switch e {
      case .variable(let v): if !names.contains(v) { names.append(v) }
      case .list(let es): es.forEach(collect)
      case .call(_, let args, _): args.forEach(collect)
      case .binary(_, let a, let b): collect(a); collect(b)
      case .not(let x): collect(x)
      default: break
      }
    }
    collect(e)
    let parts = names.compactMap { n in m.variables[n].map { "$\(n) = \($0)" } }
    return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
  }
}
