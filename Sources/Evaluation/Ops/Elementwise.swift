import Foundation
import ONNXGraph

// Elementwise operators: unary math, broadcasting binary arithmetic, comparisons,
// logic, Where and the variadic Min/Max. Exporters build rotary tables, causal masks
// and position arithmetic from these.

/// Applies `f` to broadcast operands and rounds to `outType`.
func broadcastBinary(
  _ a: HostTensor, _ b: HostTensor, outType: DataType, ctx: OpContext,
  float f: (Double, Double) -> Double, int g: (Int64, Int64) throws -> Int64
) throws -> HostTensor {
  if case .string = a.storage { throw ctx.fail("\(ctx.node.opType) of strings is not folded") }
  if case .string = b.storage { throw ctx.fail("\(ctx.node.opType) of strings is not folded") }
  guard let shape = broadcast([a.shape, b.shape]) else {
    throw ctx.fail("shapes \(a.shape) and \(b.shape) do not broadcast")
  }
  let ia = broadcastIndices(from: a.shape, to: shape)
  let ib = broadcastIndices(from: b.shape, to: shape)
  switch (a.storage, b.storage) {
  case (.int(let x), .int(let y)) where !HostTensor.isFloat(outType):
    var out = [Int64](repeating: 0, count: ia.count)
    for k in 0..<ia.count { out[k] = try g(x[ia[k]], y[ib[k]]) }
    return HostTensor(outType, shape, ints: out)
  default:
    let x = a.doubles, y = b.doubles
    var out = [Double](repeating: 0, count: ia.count)
    for k in 0..<ia.count { out[k] = f(x[ia[k]], y[ib[k]]) }
    return HostTensor.isFloat(outType)
      ? HostTensor(outType, shape, floats: out)
      : HostTensor(outType, shape, ints: out.map { $0.isFinite ? Int64($0.rounded(.towardZero)) : 0 })
  }
}

/// Inference for ops whose output broadcasts its inputs, with the element type of `typeFrom`.
func broadcastInfer(_ ctx: OpContext, inputs: Range<Int>? = nil, outType: DataType? = nil, typeFrom: Int = 0)
  -> [TypeInfo?]
{
  let slots = inputs ?? 0..<ctx.inputCount
  let shapes = slots.map { ctx.shape($0) }
  let shape = shapes.contains { $0 == nil } ? nil : broadcast(shapes.map { $0! })
  return [.tensor(outType ?? ctx.elementType(typeFrom), shape)]
}

private func unary(_ f: @escaping (Double) -> Double, int: ((Int64) -> Int64)? = nil) -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(ctx.elementType(0), ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      if case .int(let v) = x.storage, let int { return [x.with(x.dataType, ints: v.map(int))] }
      guard x.isFloat else { throw ctx.fail("\(ctx.node.opType) of \(x.dataType.name) is not folded") }
      return [x.with(x.dataType, floats: x.doubles.map(f))]
    })
}

private func arithmetic(_ f: @escaping (Double, Double) -> Double, int: @escaping (Int64, Int64) throws -> Int64)
  -> OpRule
{
  OpRule(
    infer: { ctx in broadcastInfer(ctx) },
    evaluate: { ctx in
      let a = try ctx.value(0), b = try ctx.value(1)
      return [try broadcastBinary(a, b, outType: a.dataType, ctx: ctx, float: f, int: int)]
    })
}

private func comparison(_ f: @escaping (Double, Double) -> Bool, int: @escaping (Int64, Int64) -> Bool) -> OpRule {
  OpRule(
    infer: { ctx in broadcastInfer(ctx, outType: .bool) },
    evaluate: { ctx in
      let a = try ctx.value(0), b = try ctx.value(1)
      if case .string(let x) = a.storage, case .string(let y) = b.storage, ctx.node.opType == "Equal" {
        guard let shape = broadcast([a.shape, b.shape]) else { throw ctx.fail("shapes do not broadcast") }
        let ia = broadcastIndices(from: a.shape, to: shape), ib = broadcastIndices(from: b.shape, to: shape)
        return [HostTensor(.bool, shape, .int((0..<ia.count).map { x[ia[$0]] == y[ib[$0]] ? 1 : 0 }))]
      }
      if a.isFloat || b.isFloat {
        return [try broadcastBinary(a, b, outType: .bool, ctx: ctx, float: { f($0, $1) ? 1 : 0 }, int: { _, _ in 0 })]
      }
      return [try broadcastBinary(a, b, outType: .bool, ctx: ctx, float: { _, _ in 0 }, int: { int($0, $1) ? 1 : 0 })]
    })
}

private func logical(_ f: @escaping (Bool, Bool) -> Bool) -> OpRule {
  OpRule(
    infer: { ctx in broadcastInfer(ctx, outType: .bool) },
    evaluate: { ctx in
      let a = try ctx.value(0), b = try ctx.value(1)
      return [try broadcastBinary(a, b, outType: .bool, ctx: ctx, float: { _, _ in 0 }, int: { f($0 != 0, $1 != 0) ? 1 : 0 })]
    })
}

/// Variadic Min/Max/Sum/Mean: a left fold of the broadcasting binary op.
private func variadic(_ f: @escaping (Double, Double) -> Double, int: @escaping (Int64, Int64) -> Int64, mean: Bool = false)
  -> OpRule
{
  OpRule(
    infer: { ctx in broadcastInfer(ctx) },
    evaluate: { ctx in
      var acc = try ctx.value(0)
      for i in 1..<ctx.inputCount {
        acc = try broadcastBinary(acc, try ctx.value(i), outType: acc.dataType, ctx: ctx, float: f, int: int)
      }
      if mean { acc = acc.with(acc.dataType, floats: acc.doubles.map { $0 / Double(ctx.inputCount) }) }
      return [acc]
    })
}

private func intDiv(_ a: Int64, _ b: Int64) throws -> Int64 {
  guard b != 0 else { throw DivisionByZero() }
  return a / b  // truncation, as onnxruntime's integer Div
}
struct DivisionByZero: Error {}

/// Python-style (sign of divisor) or C-style (fmod=1) remainder.
private func modRule() -> OpRule {
  OpRule(
    infer: { ctx in broadcastInfer(ctx) },
    evaluate: { ctx in
      let a = try ctx.value(0), b = try ctx.value(1)
      let fmod = ctx.int("fmod", default: 0) == 1
      return [
        try broadcastBinary(
          a, b, outType: a.dataType, ctx: ctx,
          float: { x, y in
            // numpy's mod: C fmod, moved to the divisor's sign (so mod(-1, inf) is inf).
            let r = Foundation.fmod(x, y)
            return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y
          },
          int: { x, y in
            guard y != 0 else { throw DivisionByZero() }
            if fmod { return x % y }
            let r = x % y
            return r != 0 && (r < 0) != (y < 0) ? r + y : r
          })
      ]
    })
}

private func erf(_ x: Double) -> Double { Foundation.erf(x) }

private func gelu(_ approximate: String) -> (Double) -> Double {
  if approximate == "tanh" {
    return { x in 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
  }
  return { x in 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let elementwiseRules: [String: OpRule] = [
  "Neg": unary({ -$0 }, int: { 0 &- $0 }),
  "Abs": unary({ Swift.abs($0) }, int: { $0 < 0 ? 0 &- $0 : $0 }),
  "Sqrt": unary { $0.squareRoot() },
  "Reciprocal": unary { 1 / $0 },
  "Exp": unary { Foundation.exp($0) },
  "Log": unary { Foundation.log($0) },
  "Sin": unary { Foundation.sin($0) },
  "Cos": unary { Foundation.cos($0) },
  "Tan": unary { Foundation.tan($0) },
  "Tanh": unary { Foundation.tanh($0) },
  "Erf": unary(erf),
  "Sigmoid": unary { 1 / (1 + Foundation.exp(-$0)) },
  "Relu": unary({ Swift.max($0, 0) }, int: { Swift.max($0, 0) }),
  "Floor": unary { $0.rounded(.down) },
  "Ceil": unary { $0.rounded(.up) },
  "Round": unary { $0.rounded(.toNearestOrEven) },
  "Sign": unary({ $0 > 0 ? 1 : $0 < 0 ? -1 : 0 }, int: { $0.signum() }),
  "Softplus": unary { Foundation.log(1 + Foundation.exp($0)) },
  "Gelu": OpRule(
    infer: { ctx in [.tensor(ctx.elementType(0), ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      return [x.with(x.dataType, floats: x.doubles.map(gelu(ctx.string("approximate", default: "none"))))]
    }),
  "IsNaN": OpRule(
    infer: { ctx in [.tensor(.bool, ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      return [x.with(.bool, ints: x.doubles.map { $0.isNaN ? 1 : 0 })]
    }),
  "IsInf": OpRule(
    infer: { ctx in [.tensor(.bool, ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let pos = ctx.int("detect_positive", default: 1) == 1, neg = ctx.int("detect_negative", default: 1) == 1
      return [x.with(.bool, ints: x.doubles.map { ($0 == .infinity && pos) || ($0 == -.infinity && neg) ? 1 : 0 })]
    }),
  "Not": OpRule(
    infer: { ctx in [.tensor(.bool, ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      return [x.with(.bool, ints: x.int64s.map { $0 == 0 ? 1 : 0 })]
    }),
  "Add": arithmetic(+, int: { $0 &+ $1 }),
  "Sub": arithmetic(-, int: { $0 &- $1 }),
  "Mul": arithmetic(*, int: { $0 &* $1 }),
  "Div": arithmetic(/, int: intDiv),
  "Pow": OpRule(
    infer: { ctx in broadcastInfer(ctx) },  // the base's type, whatever the exponent's
    evaluate: { ctx in
      let a = try ctx.value(0), b = try ctx.value(1)
      return [
        try broadcastBinary(
          a, b, outType: a.dataType, ctx: ctx, float: { Foundation.pow($0, $1) },
          int: { x, y in Int64(Foundation.pow(Double(x), Double(y))) })
      ]
    }),
  "Mod": modRule(),
  "Equal": comparison(==, int: ==),
  "Less": comparison(<, int: <),
  "LessOrEqual": comparison(<=, int: <=),
  "Greater": comparison(>, int: >),
  "GreaterOrEqual": comparison(>=, int: >=),
  "And": logical { $0 && $1 },
  "Or": logical { $0 || $1 },
  "Xor": logical { $0 != $1 },
  "Max": variadic({ $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }, int: { Swift.max($0, $1) }),
  "Min": variadic({ $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }, int: { Swift.min($0, $1) }),
  "Sum": variadic(+, int: { $0 &+ $1 }),
  "Mean": variadic(+, int: { $0 &+ $1 }, mean: true),
  "Where": OpRule(
    infer: { ctx in broadcastInfer(ctx, typeFrom: 1) },
    evaluate: { ctx in
      let c = try ctx.value(0), x = try ctx.value(1), y = try ctx.value(2)
      guard let shape = broadcast([c.shape, x.shape, y.shape]) else {
        throw ctx.fail("shapes \(c.shape), \(x.shape) and \(y.shape) do not broadcast")
      }
      let ic = broadcastIndices(from: c.shape, to: shape)
      let ix = broadcastIndices(from: x.shape, to: shape)
      let iy = broadcastIndices(from: y.shape, to: shape)
      let cond = c.int64s
      switch (x.storage, y.storage) {
      case (.float(let a), .float(let b)):
        return [HostTensor(x.dataType, shape, .float((0..<ic.count).map { cond[ic[$0]] != 0 ? a[ix[$0]] : b[iy[$0]] }))]
      case (.int(let a), .int(let b)):
        return [HostTensor(x.dataType, shape, .int((0..<ic.count).map { cond[ic[$0]] != 0 ? a[ix[$0]] : b[iy[$0]] }))]
      case (.string(let a), .string(let b)):
        return [HostTensor(x.dataType, shape, .string((0..<ic.count).map { cond[ic[$0]] != 0 ? a[ix[$0]] : b[iy[$0]] }))]
      default:
        throw ctx.fail("Where branches have different element types")
      }
    }),
]
