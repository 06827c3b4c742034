import Foundation
import ONNXGraph

/// What the shape inferencer and the constant evaluator know about one node.
public struct OpContext {
  public let node: Node
  /// The imported version of the node's domain.
  public let opset: Int
  /// Types of the inputs, by slot (nil: omitted input or unknown type).
  public let inputTypes: [TypeInfo?]
  /// Values of the inputs that are constant, by slot.
  public let constants: [HostTensor?]

  public init(node: Node, opset: Int, inputTypes: [TypeInfo?], constants: [HostTensor?]) {
    self.node = node
    self.opset = opset
    self.inputTypes = inputTypes
    self.constants = constants
  }

  public var inputCount: Int { node.inputs.count }
  public func hasInput(_ i: Int) -> Bool { i < node.inputs.count && node.inputs[i] != nil }
  public func shape(_ i: Int) -> Shape? { i < inputTypes.count ? inputTypes[i]?.shape : nil }
  public func elementType(_ i: Int) -> DataType? {
    (i < inputTypes.count ? inputTypes[i]?.elementType : nil)
      ?? (i < constants.count ? constants[i]?.dataType : nil)
  }
  public func constant(_ i: Int) -> HostTensor? { i < constants.count ? constants[i] : nil }
  /// A constant input read as integers (axes, shapes, indices).
  public func constantInts(_ i: Int) -> [Int64]? { constant(i)?.int64s }

  /// The input's constant value; the evaluator only runs when every present input has one.
  public func value(_ i: Int) throws -> HostTensor {
    guard let c = constant(i) else { throw fail("input \(i) is not constant") }
    return c
  }

  public func int(_ name: String) -> Int64? { node[attribute: name]?.int }
  public func int(_ name: String, default d: Int64) -> Int64 { int(name) ?? d }
  public func ints(_ name: String) -> [Int64]? { node[attribute: name]?.ints }
  public func float(_ name: String, default d: Float) -> Float { node[attribute: name]?.float ?? d }
  public func string(_ name: String, default d: String) -> String { node[attribute: name]?.string ?? d }

  public func fail(_ reason: String) -> EvaluationError {
    EvaluationError(node: node, reason: reason)
  }

  /// An axis attribute or input normalised to 0..<rank.
  public func normalize(axis: Int64, rank: Int) throws -> Int {
    let a = axis < 0 ? Int(axis) + rank : Int(axis)
    guard a >= 0 && a < max(rank, 1) else { throw fail("axis \(axis) is out of range for rank \(rank)") }
    return a
  }
}

/// A node the inferencer or evaluator cannot handle as written.
public struct EvaluationError: Error, CustomStringConvertible {
  /// The node's name, or its first output's when it has none.
  public let nodeName: String
  public let opType: String
  public let reason: String

  public init(node: Node, reason: String) {
    nodeName = node.name.isEmpty ? node.outputs.first?.name ?? node.opType : node.name
    opType = node.opType
    self.reason = reason
  }

  public var description: String { "\(nodeName) (\(opType)): \(reason)" }
}

/// Shape inference and constant evaluation of one operator.
public struct OpRule {
  /// Output types from input types and whichever inputs are constant; nil where unknown.
  public var infer: (OpContext) throws -> [TypeInfo?]
  /// Output values when every present input is constant; nil when the op is never folded.
  public var evaluate: ((OpContext) throws -> [HostTensor])?

  public init(
    infer: @escaping (OpContext) throws -> [TypeInfo?],
    evaluate: ((OpContext) throws -> [HostTensor])? = nil
  ) {
    self.infer = infer
    self.evaluate = evaluate
  }
}

/// The default-domain operators the inferencer and evaluator know, by op type.
///
/// Each family file (`Ops/*.swift`) contributes a table; a rule's `infer` must agree with
/// what its `evaluate` produces, which the node-test harness checks.
public enum OpRules {
  public static func rule(for node: Node) -> OpRule? {
    guard node.isDefaultDomain else { return nil }
    return table[node.opType]
  }

  public static var supportedOps: [String] { table.keys.sorted() }

  nonisolated(unsafe) static let table: [String: OpRule] = {
    var t: [String: OpRule] = [:]
    for family in [elementwiseRules, shapeRules, reductionRules, tensorRules, controlFlowRules] {
      t.merge(family) { a, _ in a }
    }
    return t
  }()
}

// MARK: - Helpers for rules

extension TypeInfo {
  static func tensor(_ t: DataType?, _ shape: Shape?) -> TypeInfo? {
    guard let t else { return nil }
    return TypeInfo(.tensor(t, shape))
  }
}

extension HostTensor {
  /// The type this constant has as a value.
  public var typeInfo: TypeInfo { TypeInfo(.tensor(dataType, Shape(static: shape))) }
}

/// Row-major strides of a shape.
func strides(_ shape: [Int]) -> [Int] {
  var s = [Int](repeating: 1, count: shape.count)
  var acc = 1
  for i in stride(from: shape.count - 1, through: 0, by: -1) {
    s[i] = acc
    acc *= shape[i]
  }
  return s
}

/// Numpy-style broadcast of static shapes; nil when they do not broadcast.
func broadcast(_ shapes: [[Int]]) -> [Int]? {
  let rank = shapes.map(\.count).max() ?? 0
  var out = [Int](repeating: 1, count: rank)
  for s in shapes {
    let pad = rank - s.count
    for (i, d) in s.enumerated() {
      let j = i + pad
      if out[j] == 1 { out[j] = d } else if d != 1 && d != out[j] { return nil }
    }
  }
  return out
}

/// Broadcast of possibly symbolic shapes: a known size wins over 1; equal symbols stay.
func broadcast(_ shapes: [Shape]) -> Shape {
  let rank = shapes.map(\.rank).max() ?? 0
  var out = [Dim](repeating: .value(1), count: rank)
  for s in shapes {
    let pad = rank - s.rank
    for (i, d) in s.dims.enumerated() {
      let j = i + pad
      switch (out[j], d) {
      case (.value(1), _): out[j] = d
      case (_, .value(1)): break
      case (.value(let a), .value(let b)) where a == b: break
      case (.value, _): break  // a known size > 1 decides
      case (_, .value): out[j] = d
      case (.symbol(let a), .symbol(let b)) where a == b: break
      default: out[j] = .unknown
      }
    }
  }
  return Shape(out)
}

/// For each output element, the flat index of the input element it reads after broadcasting.
func broadcastIndices(from shape: [Int], to out: [Int]) -> [Int] {
  let n = out.reduce(1, *)
  let pad = out.count - shape.count
  let inStrides = strides(shape)
  // Stride 0 on broadcast axes.
  let eff = (0..<out.count).map { j -> Int in
    let i = j - pad
    return i < 0 || shape[i] == 1 ? 0 : inStrides[i]
  }
  if shape == out { return Array(0..<n) }
  var result = [Int](repeating: 0, count: n)
  var idx = [Int](repeating: 0, count: out.count)
  var flat = 0
  for k in 0..<n {
    result[k] = flat
    var d = out.count - 1
    while d >= 0 {
      idx[d] += 1
      flat += eff[d]
      if idx[d] < out[d] { break }
      flat -= eff[d] * idx[d]
      idx[d] = 0
      d -= 1
    }
  }
  return result
}

/// Symbolic arithmetic on dimensions: values fold, symbols stay readable
/// (`past_sequence_length + sequence_length`).
enum DimMath {
  static func add(_ a: Dim, _ b: Dim) -> Dim {
    switch (a, b) {
    case (.value(let x), .value(let y)): .value(x + y)
    case (.value(0), _): b
    case (_, .value(0)): a
    case (.unknown, _), (_, .unknown): .unknown
    default: .symbol("\(a) + \(b)")
    }
  }
  static func mul(_ a: Dim, _ b: Dim) -> Dim {
    switch (a, b) {
    case (.value(let x), .value(let y)): .value(x * y)
    case (.value(1), _): b
    case (_, .value(1)): a
    case (.unknown, _), (_, .unknown): .unknown
    default: .symbol("\(paren(a))*\(paren(b))")
    }
  }
  static func paren(_ d: Dim) -> String {
    if case .symbol(let s) = d, s.contains(" ") { return "(\(s))" }
    return d.description
  }
}
