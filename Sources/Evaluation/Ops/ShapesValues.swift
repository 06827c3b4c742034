import Foundation
import ONNXGraph

// Operators that make or convert values: Cast, CastLike, Constant, ConstantOfShape, Range.

// MARK: - Cast

/// `x` converted to `type` as Cast specifies: floats truncate toward zero into integers and
/// wrap to their width, anything nonzero is true, strings parse as numbers.
private func cast(_ x: HostTensor, to type: DataType, ctx: OpContext) throws -> HostTensor {
  // float8 and the sub-byte types (where `saturate` matters) have no host representation.
  guard HostTensor.supports(type) else { throw ctx.fail("casting to \(type.name) is not folded") }
  switch x.storage {
  case .string(let v):
    if type == .string { return x }
    let text = v.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
    let ints = text.compactMap { Int64($0) }
    if !HostTensor.isFloat(type) && ints.count == text.count { return x.with(type, ints: ints) }  // exact past 2^53
    let numbers = try text.map { s -> Double in
      guard let d = Double(s) else { throw ctx.fail("\"\(s)\" is not a number") }
      return d
    }
    return try cast(x.with(.double, floats: numbers), to: type, ctx: ctx)
  case .float(let v):
    if HostTensor.isFloat(type) { return x.with(type, floats: v) }
    if type == .bool { return x.with(type, ints: v.map { $0 != 0 ? 1 : 0 }) }
    // Float formatting is not pinned down by the spec; leave those casts to the runtime.
    guard type != .string else { throw ctx.fail("casting \(x.dataType.name) to string is not folded") }
    return x.with(
      type,
      ints: v.map { d in
        guard d.isFinite else { return 0 }
        let t = d.rounded(.towardZero)
        if type == .uint64 && t >= 0x1p63 && t < 0x1p64 { return Int64(bitPattern: UInt64(t)) }
        // Out-of-range values are undefined; saturate to int64, then wrap to the width.
        return t >= 0x1p63 ? .max : t < -0x1p63 ? .min : Int64(t)
      })
  case .int(let v):
    let unsigned = x.dataType == .uint64
    if HostTensor.isFloat(type) {
      return x.with(type, floats: v.map { unsigned ? Double(UInt64(bitPattern: $0)) : Double($0) })
    }
    if type == .string {
      guard x.dataType != .bool else { throw ctx.fail("casting bool to string is not folded") }
      return HostTensor(
        type, x.shape, .string(v.map { Data((unsigned ? String(UInt64(bitPattern: $0)) : String($0)).utf8) }))
    }
    return x.with(type, ints: v)
  }
}

private func castRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let to = ctx.int("to") else { throw ctx.fail("missing `to`") }
      return [.tensor(DataType(rawValue: Int32(to)), ctx.shape(0))]
    },
    evaluate: { ctx in
      guard let to = ctx.int("to") else { throw ctx.fail("missing `to`") }
      return [try cast(try ctx.value(0), to: DataType(rawValue: Int32(to)), ctx: ctx)]
    })
}

private func castLikeRule() -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(ctx.elementType(1), ctx.shape(0))] },
    evaluate: { ctx in [try cast(try ctx.value(0), to: try ctx.value(1).dataType, ctx: ctx)] })
}

// MARK: - Constant and ConstantOfShape

/// Constant's value, from whichever `value*` attribute it has.
private func constantValue(_ ctx: OpContext) throws -> HostTensor {
  let node = ctx.node
  if let t = node[attribute: "value"]?.tensor { return try HostTensor(t) }
  if let f = node[attribute: "value_float"]?.float { return HostTensor(.float, [], floats: [Double(f)]) }
  if let fs = node[attribute: "value_floats"]?.floats {
    return HostTensor(.float, [fs.count], floats: fs.map(Double.init))
  }
  if let i = ctx.int("value_int") { return HostTensor(.int64, [], ints: [i]) }
  if let i = ctx.ints("value_ints") { return .int64s(i) }
  if case .string(let s)? = node[attribute: "value_string"] { return HostTensor(.string, [], .string([s])) }
  if case .strings(let s)? = node[attribute: "value_strings"] { return HostTensor(.string, [s.count], .string(s)) }
  throw ctx.fail("no value attribute the evaluator reads (sparse_value is not folded)")
}

private func constantRule() -> OpRule {
  OpRule(
    infer: { ctx in
      // Typed from the attribute alone, so a large weight is not decoded to be typed.
      switch ctx.node[attribute: "value"] ?? ctx.node[attribute: "sparse_value"] {
      case .tensor(let t)?: return [.tensor(t.dataType, Shape(static: t.dims))]
      case .sparseTensor(let t)?: return [.tensor(t.values.dataType, Shape(static: t.dims))]
      default: return [try constantValue(ctx).typeInfo]
      }
    },
    evaluate: { ctx in [try constantValue(ctx)] })
}

/// ConstantOfShape's one-element fill, float 0 unless the `value` attribute says otherwise.
private func fillValue(_ ctx: OpContext) throws -> HostTensor {
  guard let t = ctx.node[attribute: "value"]?.tensor else { return HostTensor(.float, [1], floats: [0]) }
  let v = try HostTensor(t)
  guard v.count == 1 else { throw ctx.fail("value must hold one element") }
  return v.reshaped([1])
}

private func constantOfShapeRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.node[attribute: "value"]?.tensor?.dataType ?? .float
      if let sizes = ctx.constantInts(0) { return [.tensor(type, Shape(static: sizes.map { Int($0) }))] }
      return [.tensor(type, ctx.shape(0)?.staticSizes?.first.map { Shape(Array(repeating: .unknown, count: $0)) })]
    },
    evaluate: { ctx in
      let shape = try ctx.value(0).int64s.map { Int($0) }
      guard shape.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("negative dim in \(shape)") }
      return [try fillValue(ctx).elements(at: Array(repeating: 0, count: shape.reduce(1, *)), shape: shape)]
    })
}

// MARK: - Range

/// Range's elements: start + i * delta while short of limit.
private func rangeValues(_ start: HostTensor, _ limit: HostTensor, _ delta: HostTensor, ctx: OpContext) throws
  -> HostTensor
{
  guard start.count == 1, limit.count == 1, delta.count == 1 else { throw ctx.fail("Range takes scalars") }
  if case .int(let s) = start.storage, case .int(let l) = limit.storage, case .int(let d) = delta.storage {
    guard d[0] != 0 else { throw ctx.fail("delta is 0") }
    // Exact ceiling division, as floats would lose it past 2^53.
    let (span, step) = (l[0] - s[0], d[0])
    let n = max(0, span / step + (span % step != 0 && (span < 0) == (step < 0) ? 1 : 0))
    return HostTensor(start.dataType, [Int(n)], ints: (0..<n).map { s[0] + $0 * step })
  }
  let (s, l, d) = (start.doubles[0], limit.doubles[0], delta.doubles[0])
  guard d != 0 else { throw ctx.fail("delta is 0") }
  let n = Int(max(0, ((l - s) / d).rounded(.up)))
  return HostTensor(start.dataType, [n], floats: (0..<n).map { s + Double($0) * d })
}

private func rangeRule() -> OpRule {
  OpRule(
    infer: { ctx in
      if let s = ctx.constant(0), let l = ctx.constant(1), let d = ctx.constant(2) {
        return [try rangeValues(s, l, d, ctx: ctx).typeInfo]
      }
      return [.tensor(ctx.elementType(0), Shape([.unknown]))]
    },
    evaluate: { ctx in [try rangeValues(try ctx.value(0), try ctx.value(1), try ctx.value(2), ctx: ctx)] })
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let valueRules: [String: OpRule] = [
  "Cast": castRule(),
  "CastLike": castLikeRule(),
  "Constant": constantRule(),
  "ConstantOfShape": constantOfShapeRule(),
  "Range": rangeRule(),
]
