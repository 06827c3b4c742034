import Foundation
import ONNXGraph

// Reductions (Reduce*, ArgMax/ArgMin), Softmax/LogSoftmax and LayerNormalization.
// Exporters leave these on constant subgraphs (sums of masks, products of shape dims)
// and need their shapes inferred everywhere else.

extension HostTensor {
  /// Values computed in `Double`, stored as `dataType`: floats round, integers truncate toward
  /// zero (numpy's `astype`) and saturate to the type's range (log 0 = -inf gives its minimum).
  static func computed(_ dataType: DataType, _ shape: [Int], _ values: [Double]) -> HostTensor {
    if isFloat(dataType) { return HostTensor(dataType, shape, floats: values) }
    let range = integerRange(dataType) ?? Int64.min...Int64.max
    return HostTensor(
      dataType, shape,
      ints: values.map { v in
        guard !v.isNaN else { return 0 }
        let t = v.rounded(.towardZero)
        return t <= Double(range.lowerBound)
          ? range.lowerBound : t >= Double(range.upperBound) ? range.upperBound : Int64(t)
      })
  }
}

/// Splits a shape around `axis` into (elements before, size of the axis, elements after), the
/// layout of every kernel here that works along one axis.
func lanes(_ shape: [Int], axis: Int) -> (outer: Int, n: Int, inner: Int) {
  (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

/// `dims` with `axes` set to 1 (keepdims) or removed.
func reducedShape<D>(_ dims: [D], axes: [Int], keepdims: Bool, one: D) -> [D] {
  dims.enumerated().compactMap { i, d in axes.contains(i) ? (keepdims ? one : nil) : d }
}

// MARK: - Reduce*

/// One Reduce* operator: a fold from `initial`, then `finish` with the group size.
private struct Reduction {
  var initial: Double
  var step: (Double, Double) -> Double
  var finish: ((Double, Int) -> Double)?
  /// Exact integer fold, where the op has one (others reduce integers in Double and truncate).
  var intStep: ((Int64, Int64) -> Int64)?
}

/// The axes a Reduce* node reduces, normalised and sorted; `[]` is the identity
/// (noop_with_empty_axes). nil when they come from an input whose value is unknown.
private func reduceAxes(_ ctx: OpContext, rank: Int) throws -> [Int]? {
  // Axes moved from attribute to input in opset 13 for ReduceSum, in 18 for the rest.
  let axesIsInput = ctx.opset >= (ctx.node.opType == "ReduceSum" ? 13 : 18)
  var raw: [Int64] = []
  if axesIsInput {
    if ctx.hasInput(1) {
      guard let v = ctx.constantInts(1) else { return nil }
      raw = v
    }
    if raw.isEmpty && ctx.int("noop_with_empty_axes", default: 0) == 1 { return [] }
  } else {
    raw = ctx.ints("axes") ?? []
  }
  if raw.isEmpty { return Array(0..<rank) }
  return try Set(raw.map { try ctx.normalize(axis: $0, rank: rank) }).sorted()
}

private func reduceRule(_ r: Reduction) -> OpRule {
  OpRule(
    infer: { ctx in
      let keepdims = ctx.int("keepdims", default: 1) == 1
      guard let shape = ctx.shape(0) else { return [.tensor(ctx.elementType(0), nil)] }
      guard let axes = try reduceAxes(ctx, rank: shape.rank) else {
        // Unknown axes: keepdims still fixes the rank.
        return [.tensor(ctx.elementType(0), keepdims ? Shape(Array(repeating: .unknown, count: shape.rank)) : nil)]
      }
      return [
        .tensor(ctx.elementType(0), Shape(reducedShape(shape.dims, axes: axes, keepdims: keepdims, one: .value(1))))
      ]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard let axes = try reduceAxes(ctx, rank: x.rank) else { throw ctx.fail("axes are not constant") }
      return [reduce(x, axes: axes, keepdims: ctx.int("keepdims", default: 1) == 1, r)]
    })
}

private func reduce(_ x: HostTensor, axes: [Int], keepdims: Bool, _ r: Reduction) -> HostTensor {
  var kept = x.shape
  for a in axes { kept[a] = 1 }
  let outShape = reducedShape(x.shape, axes: axes, keepdims: keepdims, one: 1)
  // For each input element, the output element it folds into.
  let target = broadcastIndices(from: kept, to: x.shape)
  let outCount = kept.reduce(1, *)
  if case .int(let v) = x.storage, let intStep = r.intStep {
    // Max/Min of nothing is the type's lowest/highest value.
    let range = HostTensor.integerRange(x.dataType) ?? Int64.min...Int64.max
    let initial =
      r.initial == -.infinity ? range.lowerBound : r.initial == .infinity ? range.upperBound : Int64(r.initial)
    var acc = [Int64](repeating: initial, count: outCount)
    for k in 0..<v.count { acc[target[k]] = intStep(acc[target[k]], v[k]) }
    return HostTensor(x.dataType, outShape, ints: acc)
  }
  let v = x.doubles
  var acc = [Double](repeating: r.initial, count: outCount)
  for k in 0..<v.count { acc[target[k]] = r.step(acc[target[k]], v[k]) }
  if let finish = r.finish {
    let groupSize = outCount == 0 ? 0 : x.count / outCount
    acc = acc.map { finish($0, groupSize) }
  }
  return .computed(x.dataType, outShape, acc)
}

/// numpy's maximum/minimum: NaN wins.
private func nanMax(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
private func nanMin(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }

// MARK: - ArgMax / ArgMin

private func argRule(max: Bool) -> OpRule {
  OpRule(
    infer: { ctx in
      let keepdims = ctx.int("keepdims", default: 1) == 1
      guard let shape = ctx.shape(0) else { return [.tensor(.int64, nil)] }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: shape.rank)
      return [.tensor(.int64, Shape(reducedShape(shape.dims, axes: [axis], keepdims: keepdims, one: .value(1))))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: x.rank)
      let last = ctx.int("select_last_index", default: 0) == 1
      let (outer, n, inner) = lanes(x.shape, axis: axis)
      guard n > 0 else { throw ctx.fail("\(ctx.node.opType) over an empty axis") }
      let v = x.doubles
      // A strictly better value moves the pick; an equal one too with select_last_index.
      func better(_ a: Double, _ b: Double) -> Bool { a == b ? last : (a > b) == max }
      var out = [Int64](repeating: 0, count: outer * inner)
      for o in 0..<outer {
        for i in 0..<inner {
          let base = o * n * inner + i
          var best = 0
          for j in 1..<n where better(v[base + j * inner], v[base + best * inner]) { best = j }
          out[o * inner + i] = Int64(best)
        }
      }
      let shape = reducedShape(x.shape, axes: [axis], keepdims: ctx.int("keepdims", default: 1) == 1, one: 1)
      return [HostTensor(.int64, shape, ints: out)]
    })
}

// MARK: - Softmax / LogSoftmax

/// Softmax normalises along `axis` (default -1) since opset 13; before, the input is seen as
/// a matrix [prod(dims[..<axis]), prod(dims[axis...])] (default axis 1) and each row normalised.
private func softmaxRule(log: Bool) -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(ctx.elementType(0), ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let coerced = ctx.opset < 13
      let axis = try ctx.normalize(axis: ctx.int("axis", default: coerced ? 1 : -1), rank: x.rank)
      var (outer, n, inner) = lanes(x.shape, axis: axis)
      if coerced { (n, inner) = (n * inner, 1) }
      let v = x.doubles
      var out = v
      for o in 0..<outer {
        for i in 0..<inner {
          let lane = (0..<n).map { o * n * inner + i + $0 * inner }
          // Subtracting the maximum keeps exp finite (softmax_large_number).
          let m = lane.map { v[$0] }.max() ?? 0
          let logSum = Foundation.log(lane.reduce(0) { $0 + Foundation.exp(v[$1] - m) })
          for k in lane { out[k] = log ? v[k] - m - logSum : Foundation.exp(v[k] - m - logSum) }
        }
      }
      return [x.with(x.dataType, floats: out)]
    })
}

// MARK: - LayerNormalization

/// Y = (X - mean) / sqrt(var + epsilon) * Scale + B over the axes from `axis` on; Mean and
/// InvStdDev keep the leading dims (trailing ones as 1) in the stash type.
private func layerNormalization() -> OpRule {
  OpRule(
    infer: { ctx in
      let stash = DataType(rawValue: Int32(ctx.int("stash_type", default: 1)))
      guard let shape = ctx.shape(0) else {
        return [.tensor(ctx.elementType(0), nil), .tensor(stash, nil), .tensor(stash, nil)]
      }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: -1), rank: shape.rank)
      let stats = Shape(shape.dims[..<axis] + Array(repeating: .value(1), count: shape.rank - axis))
      return [.tensor(ctx.elementType(0), shape), .tensor(stash, stats), .tensor(stash, stats)]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let scale = try ctx.value(1)
      let bias = ctx.hasInput(2) ? try ctx.value(2) : nil
      let stash = DataType(rawValue: Int32(ctx.int("stash_type", default: 1)))
      let epsilon = Double(ctx.float("epsilon", default: 1e-5))
      let axis = try ctx.normalize(axis: ctx.int("axis", default: -1), rank: x.rank)
      let rows = x.shape[..<axis].reduce(1, *)
      let cols = x.shape[axis...].reduce(1, *)
      for p in [scale, bias].compactMap({ $0 }) where broadcast([p.shape, x.shape]) != x.shape {
        throw ctx.fail("shape \(p.shape) does not broadcast to \(x.shape)")
      }
      let si = broadcastIndices(from: scale.shape, to: x.shape)
      let s = scale.doubles
      let bi = bias.map { broadcastIndices(from: $0.shape, to: x.shape) }
      let b = bias?.doubles
      let v = x.doubles
      var y = [Double](repeating: 0, count: v.count)
      var means = [Double](repeating: 0, count: rows)
      var invStd = means
      for r in 0..<rows {
        let row = r * cols..<(r + 1) * cols
        let mean = v[row].reduce(0, +) / Double(cols)
        let variance = v[row].reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
        means[r] = mean
        invStd[r] = 1 / (variance + epsilon).squareRoot()
        for k in row {
          y[k] = (v[k] - mean) * invStd[r] * s[si[k]]
          if let b, let bi { y[k] += b[bi[k]] }
        }
      }
      let stats = Array(x.shape[..<axis]) + Array(repeating: 1, count: x.rank - axis)
      return [
        x.with(x.dataType, floats: y), HostTensor(stash, stats, floats: means),
        HostTensor(stash, stats, floats: invStd),
      ]
    })
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let reductionRules: [String: OpRule] = [
  "ReduceSum": reduceRule(Reduction(initial: 0, step: +, intStep: { $0 &+ $1 })),
  "ReduceMean": reduceRule(Reduction(initial: 0, step: +, finish: { $0 / Double($1) })),
  "ReduceMax": reduceRule(Reduction(initial: -.infinity, step: nanMax, intStep: { Swift.max($0, $1) })),
  "ReduceMin": reduceRule(Reduction(initial: .infinity, step: nanMin, intStep: { Swift.min($0, $1) })),
  "ReduceProd": reduceRule(Reduction(initial: 1, step: *, intStep: { $0 &* $1 })),
  "ReduceL1": reduceRule(
    Reduction(initial: 0, step: { $0 + Swift.abs($1) }, intStep: { $0 &+ ($1 < 0 ? 0 &- $1 : $1) })),
  "ReduceL2": reduceRule(Reduction(initial: 0, step: { $0 + $1 * $1 }, finish: { acc, _ in acc.squareRoot() })),
  "ReduceLogSum": reduceRule(Reduction(initial: 0, step: +, finish: { acc, _ in Foundation.log(acc) })),
  "ReduceLogSumExp": reduceRule(
    Reduction(initial: 0, step: { $0 + Foundation.exp($1) }, finish: { acc, _ in Foundation.log(acc) })),
  "ReduceSumSquare": reduceRule(Reduction(initial: 0, step: { $0 + $1 * $1 }, intStep: { $0 &+ $1 &* $1 })),
  "ArgMax": argRule(max: true),
  "ArgMin": argRule(max: false),
  "Softmax": softmaxRule(log: false),
  "LogSoftmax": softmaxRule(log: true),
  "LayerNormalization": layerNormalization(),
]
