import Evaluation
import Foundation
import ONNXGraph

/// A value an expression of the rule language computes.
public enum RValue: CustomStringConvertible, Equatable {
  case none
  case bool(Bool)
  case int(Int64)
  case float(Double)
  case string(String)
  case list([RValue])
  case value(Value)
  case tensor(HostTensor)

  public var description: String {
    switch self {
    case .none: "none"
    case .bool(let b): String(b)
    case .int(let v): String(v)
    case .float(let v): String(v)
    case .string(let s): "\"\(s)\""
    case .list(let l): "[" + l.map(\.description).joined(separator: ",") + "]"
    case .value(let v): "%\(v.name)"
    case .tensor(let t): "tensor<\(t.dataType.name)\(t.shape)>"
    }
  }

  public static func == (a: RValue, b: RValue) -> Bool {
    switch (a, b) {
    case (.none, .none): true
    case (.bool(let x), .bool(let y)): x == y
    case (.int(let x), .int(let y)): x == y
    case (.float(let x), .float(let y)): x == y
    case (.int(let x), .float(let y)), (.float(let y), .int(let x)): Double(x) == y
    case (.string(let x), .string(let y)): x == y
    case (.list(let x), .list(let y)): x == y
    case (.value(let x), .value(let y)): x === y
    case (.tensor(let x), .tensor(let y)): x == y
    default: false
    }
  }

  var ints: [Int64]? {
    guard case .list(let l) = self else { return nil }
    var out: [Int64] = []
    for e in l {
      guard case .int(let v) = e else { return nil }
      out.append(v)
    }
    return out
  }

  static func ints(_ v: [Int64]) -> RValue { .list(v.map(RValue.int)) }

  init(_ attribute: AttributeValue?) {
    switch attribute {
    case nil: self = .none
    case .int(let v)?: self = .int(v)
    case .float(let v)?: self = .float(Double(v))
    case .ints(let v)?: self = .ints(v)
    case .floats(let v)?: self = .list(v.map { .float(Double($0)) })
    case .string(let d)?: self = .string(String(decoding: d, as: UTF8.self))
    case .strings(let v)?: self = .list(v.map { .string(String(decoding: $0, as: UTF8.self)) })
    case .tensor(let t)?: self = (try? HostTensor(t)).map(RValue.tensor) ?? .none
    default: self = .none
    }
  }

  /// The attribute this value becomes in a built node.
  func attribute() -> AttributeValue? {
    switch self {
    case .int(let v): .int(v)
    case .bool(let b): .int(b ? 1 : 0)
    case .float(let v): .float(Float(v))
    case .string(let s): .string(s)
    case .tensor(let t): .tensor(t.tensor(name: ""))
    case .list(let l):
      if let ints = self.ints { .ints(ints) } else if l.allSatisfy({ if case .float = $0 { true } else if case .int = $0 { true } else { false } }) {
        .floats(l.map { if case .float(let f) = $0 { Float(f) } else if case .int(let i) = $0 { Float(i) } else { 0 } })
      } else { nil }
    default: nil
    }
  }
}

/// What a helper sees besides its arguments.
public struct HelperContext {
  public let graph: Graph
}

/// A helper failed: the constraint is false, with this reason.
public struct HelperError: Error, CustomStringConvertible {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Named native functions rules call in `where` constraints and when computing new
/// attributes and constants. Register more from Swift with `register(_:_:)`.
public enum RewriteHelpers {
  public typealias Function = ([RValue], HelperContext) throws -> RValue

  nonisolated(unsafe) private static var table: [String: Function] = builtins

  public static func register(_ name: String, _ f: @escaping Function) { table[name] = f }
  public static func isKnown(_ name: String) -> Bool { table[name] != nil }
  static func suggestion(for name: String) -> String? { closest(to: name, in: table.keys) }

  static func call(_ name: String, _ args: [RValue], _ ctx: HelperContext) throws -> RValue {
    guard let f = table[name] else { throw HelperError("unknown helper '\(name)'") }
    return try f(args, ctx)
  }

  static func perm(_ v: RValue, _ what: String) throws -> [Int64] {
    guard let p = v.ints else { throw HelperError("\(what) is \(v), not a permutation") }
    guard Set(p) == Set(0..<Int64(p.count)) else { throw HelperError("\(p) is not a permutation") }
    return p
  }

  static func value(_ v: RValue, _ what: String) throws -> Value {
    guard case .value(let x) = v else { throw HelperError("\(what) is \(v), not a value") }
    return x
  }

  static func constant(_ v: RValue) throws -> HostTensor {
    if case .tensor(let t) = v { return t }
    let x = try value(v, "the operand")
    guard let t = x.constValue else { throw HelperError("'\(x.name)' is not a constant") }
    do { return try HostTensor(t) } catch { throw HelperError("'\(x.name)': \(error)") }
  }

  static func arity(_ args: [RValue], _ n: Int, _ name: String) throws {
    guard args.count == n else { throw HelperError("\(name) takes \(n) argument(s), got \(args.count)") }
  }

  nonisolated(unsafe) static let builtins: [String: Function] = [
    // inverse(p): the permutation that undoes p.
    "inverse": { args, _ in
      try arity(args, 1, "inverse")
      let p = try perm(args[0], "the argument")
      var inv = [Int64](repeating: 0, count: p.count)
      for (i, v) in p.enumerated() { inv[Int(v)] = Int64(i) }
      return .ints(inv)
    },
    // compose(p, q): Transpose(Transpose(x, p), q) == Transpose(x, compose(p, q)).
    "compose": { args, _ in
      try arity(args, 2, "compose")
      let p = try perm(args[0], "the first argument"), q = try perm(args[1], "the second argument")
      guard p.count == q.count else { throw HelperError("\(p) and \(q) have different ranks") }
      return .ints(q.map { p[Int($0)] })
    },
    "is_identity": { args, _ in
      try arity(args, 1, "is_identity")
      let p = try perm(args[0], "the argument")
      return .bool(p == Array(0..<Int64(p.count)))
    },
    "is_constant": { args, _ in
      try arity(args, 1, "is_constant")
      return .bool(try value(args[0], "the argument").constValue != nil)
    },
    // one_use(v): v is read once and is not a graph output.
    "one_use": { args, ctx in
      try arity(args, 1, "one_use")
      let v = try value(args[0], "the argument")
      return .bool(v.uses.count == 1 && !ctx.graph.outputs.contains { $0 === v })
    },
    "rank": { args, _ in
      try arity(args, 1, "rank")
      let v = try value(args[0], "the argument")
      if let t = v.constValue { return .int(Int64(t.dims.count)) }
      guard let r = v.shape?.rank else { throw HelperError("the rank of '\(v.name)' is not known") }
      return .int(Int64(r))
    },
    "shape": { args, _ in
      try arity(args, 1, "shape")
      let v = try value(args[0], "the argument")
      if let t = v.constValue { return .ints(t.dims.map(Int64.init)) }
      guard let s = v.shape?.staticSizes else { throw HelperError("the shape of '\(v.name)' is not static") }
      return .ints(s.map(Int64.init))
    },
    // values(c): a constant's elements as a list (shapes, axes).
    "values": { args, _ in
      try arity(args, 1, "values")
      let t = try constant(args[0])
      guard t.count <= 1 << 16 else { throw HelperError("constant of \(t.count) elements is too large to list") }
      switch t.storage {
      case .int(let v): return .ints(v)
      case .float(let v): return .list(v.map(RValue.float))
      case .string(let v): return .list(v.map { .string(String(decoding: $0, as: UTF8.self)) })
      }
    },
    "contains": { args, _ in
      try arity(args, 2, "contains")
      guard case .list(let l) = args[0] else { throw HelperError("contains needs a list, got \(args[0])") }
      return .bool(l.contains(args[1]))
    },
    // outputs(v): how many outputs the node computing v has (Split, LayerNormalization).
    "outputs": { args, _ in
      try arity(args, 1, "outputs")
      let v = try value(args[0], "the argument")
      guard let producer = v.producer else { throw HelperError("'\(v.name)' is not computed by a node") }
      return .int(Int64(producer.outputs.count))
    },
    // dtype(v): the element type's ONNX name ("float", "int64", ...).
    "dtype": { args, _ in
      try arity(args, 1, "dtype")
      let v = try value(args[0], "the argument")
      guard let t = v.constValue?.dataType ?? v.elementType else { throw HelperError("the type of '\(v.name)' is not known") }
      return .string(t.name)
    },
    // slice(c, axis, start, end): the constant c restricted to start..<end on one axis.
    "slice": { args, _ in
      try arity(args, 4, "slice")
      let t = try constant(args[0])
      guard case .int(let a) = args[1], case .int(let start) = args[2], case .int(let end) = args[3] else {
        throw HelperError("slice takes a constant and three integers")
      }
      let axis = a < 0 ? Int(a) + t.rank : Int(a)
      guard axis >= 0, axis < t.rank, 0 <= start, start <= end, Int(end) <= t.shape[axis] else {
        throw HelperError("slice \(start)..<\(end) on axis \(a) of shape \(t.shape)")
      }
      var shape = t.shape
      shape[axis] = Int(end - start)
      let inner = t.shape[(axis + 1)...].reduce(1, *)
      let outer = t.shape[..<axis].reduce(1, *)
      var indices: [Int] = []
      indices.reserveCapacity(shape.reduce(1, *))
      for o in 0..<outer {
        for i in Int(start)..<Int(end) {
          let base = (o * t.shape[axis] + i) * inner
          indices.append(contentsOf: base..<(base + inner))
        }
      }
      return .tensor(t.elements(at: indices, shape: shape))
    },
    "len": { args, _ in
      try arity(args, 1, "len")
      guard case .list(let l) = args[0] else { throw HelperError("len of \(args[0]), which is not a list") }
      return .int(Int64(l.count))
    },
    // transpose(c, p): the constant c with its axes permuted by p.
    "transpose": { args, _ in
      try arity(args, 2, "transpose")
      let t = try constant(args[0])
      let p = try perm(args[1], "the permutation").map { Int($0) }
      guard p.count == t.rank else { throw HelperError("permutation \(p) for a rank-\(t.rank) constant") }
      return .tensor(t.transposed(perm: p))
    },
  ]
}
