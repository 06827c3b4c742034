import Foundation
import ONNXGraph

// Shape and layout operators: Shape/Size, Reshape and friends, Transpose, Expand, Tile,
// Concat/Split, Slice, Pad, Trilu, CumSum, Identity and Dropout. Exporters compute every
// reshape target and attention mask from these, so their inference keeps symbolic dims.
// Indexing ops are in ShapesIndexing.swift, value producers and Cast in ShapesValues.swift.

// MARK: - Shared helpers

/// An integer list that is an attribute in older opsets and an input in newer ones.
enum IntsArgument {
  case absent
  /// Given as an input whose value is not constant.
  case unknown
  case known([Int64])

  /// Reads the attribute `name` before opset `inputSince`, else input `input`.
  init(_ ctx: OpContext, attribute name: String, input: Int, inputSince: Int) {
    if ctx.opset < inputSince {
      self = ctx.ints(name).map(IntsArgument.known) ?? .absent
    } else if !ctx.hasInput(input) {
      self = .absent
    } else {
      self = ctx.constantInts(input).map(IntsArgument.known) ?? .unknown
    }
  }
}

extension OpContext {
  /// Axes normalised to 0..<rank (rank + 1 positions where `inclusive`, as Flatten's axis).
  func normalize(axes: [Int64], rank: Int, inclusive: Bool = false) throws -> [Int] {
    let limit = inclusive ? rank + 1 : rank
    return try axes.map { a in
      let n = a < 0 ? Int(a) + rank : Int(a)
      guard n >= 0 && n < limit else { throw fail("axis \(a) is out of range for rank \(rank)") }
      return n
    }
  }

  /// The output type of an op that keeps its input's type and shape.
  var sameAsInput: [TypeInfo?] { [.tensor(elementType(0), shape(0))] }
}

/// Calls `f` with the multi-index of every element of `shape`, in row-major order.
func mapIndices<T>(_ shape: [Int], _ f: ([Int]) throws -> T) rethrows -> [T] {
  let n = shape.reduce(1, *)
  guard n > 0 else { return [] }
  var out: [T] = []
  out.reserveCapacity(n)
  var idx = [Int](repeating: 0, count: shape.count)
  for _ in 0..<n {
    out.append(try f(idx))
    var d = shape.count - 1
    while d >= 0 {
      idx[d] += 1
      if idx[d] < shape[d] { break }
      idx[d] = 0
      d -= 1
    }
  }
  return out
}

/// Flat row-major offset of a multi-index.
func flatIndex(_ idx: [Int], _ strides: [Int]) -> Int {
  zip(idx, strides).reduce(0) { $0 + $1.0 * $1.1 }
}

extension HostTensor {
  func reshaped(_ shape: [Int]) -> HostTensor { HostTensor(dataType, shape, storage) }

  /// The elements of all `parts` (of one element type) in order, as one flat tensor: a
  /// source that `elements(at:shape:)` picks from when an output mixes several tensors.
  static func joined(_ parts: [HostTensor], ctx: OpContext) throws -> HostTensor {
    guard let first = parts.first else { throw ctx.fail("no tensors to join") }
    guard parts.allSatisfy({ $0.dataType == first.dataType }) else {
      throw ctx.fail("inputs have different element types: \(parts.map(\.dataType.name))")
    }
    let total = parts.reduce(0) { $0 + $1.count }
    switch first.storage {
    case .float: return HostTensor(first.dataType, [total], .float(parts.flatMap(\.doubles)))
    case .int: return HostTensor(first.dataType, [total], .int(parts.flatMap(\.int64s)))
    case .string:
      return HostTensor(
        first.dataType, [total],
        .string(
          parts.flatMap { p -> [Data] in
            if case .string(let v) = p.storage { v } else { [] }
          }))
    }
  }

  /// A one-element tensor of this type holding zero (the fill of Trilu and Pad).
  var zero: HostTensor {
    switch storage {
    case .float: HostTensor(dataType, [1], .float([0]))
    case .int: HostTensor(dataType, [1], .int([0]))
    case .string: HostTensor(dataType, [1], .string([Data()]))
    }
  }
}

// MARK: - Shape and Size

/// Shape's [start, end) window over the dims, clamped as the spec says (start/end since opset 15).
private func shapeWindow(_ ctx: OpContext, rank: Int) -> Range<Int> {
  let clamp = { (v: Int64) in min(max(v < 0 ? Int(v) + rank : Int(v), 0), rank) }
  let start = clamp(ctx.int("start", default: 0))
  let end = clamp(ctx.int("end", default: Int64(rank)))
  return start..<max(start, end)
}

private func shapeRule() -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(.int64, ctx.shape(0).map { Shape(static: [shapeWindow(ctx, rank: $0.rank).count]) })] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      return [.int64s(x.shape[shapeWindow(ctx, rank: x.rank)].map(Int64.init))]
    })
}

private func sizeRule() -> OpRule {
  OpRule(
    infer: { _ in [.tensor(.int64, Shape([]))] },
    evaluate: { ctx in [HostTensor(.int64, [], ints: [Int64(try ctx.value(0).count)])] })
}

// MARK: - Reshape, Flatten, Squeeze, Unsqueeze

/// Reshape's target dims: 0 copies the input dim (unless allowzero), -1 takes what is left.
/// The -1 cancels symbols common to input and output, so [b, s, 4096] -> [0, 0, 32, -1]
/// gives [b, s, 32, 128].
private func reshapeDims(_ input: [Dim], _ target: [Int64], allowZero: Bool, ctx: OpContext) throws -> [Dim] {
  var out = try target.enumerated().map { i, t -> Dim in
    switch t {
    case 0 where !allowZero:
      guard i < input.count else { throw ctx.fail("shape copies dim \(i) of a rank-\(input.count) input") }
      return input[i]
    case -1: return .unknown
    case ..<0: throw ctx.fail("invalid reshape dim \(t)")
    default: return .value(Int(t))
    }
  }
  let inferred = target.indices.filter { target[$0] == -1 }
  guard inferred.count <= 1 else { throw ctx.fail("more than one -1 in the shape") }
  guard let hole = inferred.first else { return out }
  var rest = input
  var known = 1
  for (i, d) in out.enumerated() where i != hole {
    switch d {
    case .value(let v): known *= v
    case .symbol:
      guard let j = rest.firstIndex(of: d) else { return out }  // a symbol we cannot cancel
      rest.remove(at: j)
    case .unknown: return out
    }
  }
  var total = 1
  var symbols: [Dim] = []
  for d in rest {
    switch d {
    case .value(let v): total *= v
    case .symbol: symbols.append(d)
    case .unknown: return out
    }
  }
  guard known != 0 && total % known == 0 else {
    if symbols.isEmpty { throw ctx.fail("cannot reshape \(input) to \(target)") }
    return out
  }
  out[hole] = symbols.reduce(Dim.value(total / known), DimMath.mul)
  return out
}

private func reshapeRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let target = ctx.constantInts(1) else {
        // Rank is the target's length even when its values are unknown.
        let rank = ctx.shape(1)?.staticSizes?.first
        return [.tensor(type, rank.map { Shape(Array(repeating: .unknown, count: $0)) })]
      }
      let allowZero = ctx.int("allowzero", default: 0) == 1
      let input = ctx.shape(0)?.dims ?? Array(repeating: .unknown, count: target.count)
      return [.tensor(type, Shape(try reshapeDims(input, target, allowZero: allowZero, ctx: ctx)))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let target = try ctx.value(1).int64s
      let dims = try reshapeDims(
        x.shape.map(Dim.value), target, allowZero: ctx.int("allowzero", default: 0) == 1, ctx: ctx)
      guard let shape = Shape(dims).staticSizes, shape.reduce(1, *) == x.count else {
        throw ctx.fail("cannot reshape \(x.shape) to \(target)")
      }
      return [x.reshaped(shape)]
    })
}

private func flattenRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let shape = ctx.shape(0) else { return [.tensor(ctx.elementType(0), nil)] }
      let axis = try ctx.normalize(axes: [ctx.int("axis", default: 1)], rank: shape.rank, inclusive: true)[0]
      let outer = shape.dims[..<axis].reduce(Dim.value(1), DimMath.mul)
      let inner = shape.dims[axis...].reduce(Dim.value(1), DimMath.mul)
      return [.tensor(ctx.elementType(0), Shape([outer, inner]))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let axis = try ctx.normalize(axes: [ctx.int("axis", default: 1)], rank: x.rank, inclusive: true)[0]
      return [x.reshaped([x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])]
    })
}

/// Squeeze's output dims; nil when they depend on unknown axes or (without axes) on
/// dims whose size is unknown.
private func squeezedDims(_ ctx: OpContext, _ dims: [Dim]) throws -> [Dim]? {
  switch IntsArgument(ctx, attribute: "axes", input: 1, inputSince: 13) {
  case .unknown: return nil
  case .absent:
    guard dims.allSatisfy({ $0.intValue != nil }) else { return nil }
    return dims.filter { $0 != .value(1) }
  case .known(let raw):
    let axes = try ctx.normalize(axes: raw, rank: dims.count)
    for a in axes where dims[a].intValue.map({ $0 != 1 }) ?? false {
      throw ctx.fail("cannot squeeze axis \(a) of size \(dims[a])")
    }
    return dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
  }
}

/// Unsqueeze's output dims (axes count in the output's rank); nil when the axes are unknown.
private func unsqueezedDims(_ ctx: OpContext, _ dims: [Dim]) throws -> [Dim]? {
  guard case .known(let raw) = IntsArgument(ctx, attribute: "axes", input: 1, inputSince: 13) else {
    return nil
  }
  let rank = dims.count + raw.count
  let axes = try ctx.normalize(axes: raw, rank: rank)
  guard Set(axes).count == axes.count else { throw ctx.fail("repeated axes \(raw)") }
  var rest = dims.makeIterator()
  return (0..<rank).map { axes.contains($0) ? .value(1) : rest.next()! }
}

/// Squeeze and Unsqueeze only change the shape, by `dims`.
private func reshapingRule(_ dims: @escaping (OpContext, [Dim]) throws -> [Dim]?) -> OpRule {
  OpRule(
    infer: { ctx in
      guard let shape = ctx.shape(0), let out = try dims(ctx, shape.dims) else {
        return [.tensor(ctx.elementType(0), nil)]
      }
      return [.tensor(ctx.elementType(0), Shape(out))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard let out = try dims(ctx, x.shape.map(Dim.value)), let shape = Shape(out).staticSizes else {
        throw ctx.fail("axes are not constant")
      }
      return [x.reshaped(shape)]
    })
}

// MARK: - Transpose, Expand, Tile

private func transposePerm(_ ctx: OpContext, rank: Int) throws -> [Int] {
  guard let raw = ctx.ints("perm") else { return Array((0..<rank).reversed()) }
  let perm = try ctx.normalize(axes: raw, rank: rank)
  guard perm.count == rank, Set(perm).count == rank else { throw ctx.fail("perm \(raw) is not a permutation") }
  return perm
}

private func transposeRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let shape = ctx.shape(0) else { return [.tensor(ctx.elementType(0), nil)] }
      return [.tensor(ctx.elementType(0), Shape(try transposePerm(ctx, rank: shape.rank).map { shape.dims[$0] }))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      return [x.transposed(perm: try transposePerm(ctx, rank: x.rank))]
    })
}

extension HostTensor {
  /// The tensor with its axes permuted (`perm` must be a permutation of 0..<rank).
  public func transposed(perm: [Int]) -> HostTensor {
    let s = strides(shape)
    let outStrides = perm.map { s[$0] }
    let outShape = perm.map { shape[$0] }
    return elements(at: mapIndices(outShape) { flatIndex($0, outStrides) }, shape: outShape)
  }
}

private func expandRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let input = ctx.shape(0) else { return [.tensor(type, nil)] }
      guard let target = ctx.constantInts(1) else {
        // The target's length gives the rank; input sizes other than 1 survive.
        guard let n = ctx.shape(1)?.staticSizes?.first else { return [.tensor(type, nil)] }
        return [.tensor(type, broadcast([input, Shape(Array(repeating: .unknown, count: n))]))]
      }
      return [.tensor(type, broadcast([input, Shape(static: target.map { Int($0) })]))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let target = try ctx.value(1).int64s.map { Int($0) }
      guard let shape = broadcast([x.shape, target]) else {
        throw ctx.fail("shape \(x.shape) does not broadcast to \(target)")
      }
      return [x.elements(at: broadcastIndices(from: x.shape, to: shape), shape: shape)]
    })
}

private func tileRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let shape = ctx.shape(0), let repeats = ctx.constantInts(1) else {
        return [.tensor(type, ctx.shape(0).map { Shape(Array(repeating: .unknown, count: $0.rank)) })]
      }
      guard repeats.count == shape.rank else { throw ctx.fail("repeats \(repeats) do not match rank \(shape.rank)") }
      return [.tensor(type, Shape(zip(shape.dims, repeats).map { DimMath.mul($0, .value(Int($1))) }))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let repeats = try ctx.value(1).int64s.map { Int($0) }
      guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
        throw ctx.fail("repeats \(repeats) do not match rank \(x.rank)")
      }
      let shape = zip(x.shape, repeats).map(*)
      let s = strides(x.shape)
      return [
        x.elements(
          at: mapIndices(shape) { idx in (0..<idx.count).reduce(0) { $0 + idx[$1] % x.shape[$1] * s[$1] } },
          shape: shape)
      ]
    })
}

// MARK: - Concat and Split

private func concatRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = (0..<ctx.inputCount).lazy.compactMap { ctx.elementType($0) }.first
      let shapes = (0..<ctx.inputCount).map { ctx.shape($0) }
      guard let rank = shapes.lazy.compactMap({ $0?.rank }).first else { return [.tensor(type, nil)] }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: rank)
      var dims = [Dim](repeating: .unknown, count: rank)
      for case let s? in shapes {
        guard s.rank == rank else { throw ctx.fail("inputs have ranks \(shapes.map { $0?.rank })") }
        // Off the axis every input has the same size: take the most specific one known.
        for (i, d) in s.dims.enumerated() where i != axis && (dims[i] == .unknown || d.intValue != nil) {
          dims[i] = d
        }
      }
      dims[axis] = shapes.reduce(Dim.value(0)) { sum, s in s.map { DimMath.add(sum, $0.dims[axis]) } ?? .unknown }
      return [.tensor(type, Shape(dims))]
    },
    evaluate: { ctx in
      let parts = try (0..<ctx.inputCount).map { try ctx.value($0) }
      let rank = parts[0].rank
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: rank)
      var shape = parts[0].shape
      shape[axis] = 0
      for p in parts {
        guard p.rank == rank, p.shape[..<axis] == shape[..<axis], p.shape[(axis + 1)...] == shape[(axis + 1)...] else {
          throw ctx.fail("shapes \(parts.map(\.shape)) do not concatenate along \(axis)")
        }
        shape[axis] += p.shape[axis]
      }
      // Output rows (before the axis) take each part's block of size n * inner in turn.
      let outer = shape[..<axis].reduce(1, *)
      let offsets = parts.reduce(into: [0]) { $0.append($0.last! + $1.count) }
      var picked: [Int] = []
      picked.reserveCapacity(shape.reduce(1, *))
      for o in 0..<outer {
        for (p, part) in parts.enumerated() {
          let block = part.count / max(outer, 1)
          picked.append(contentsOf: (offsets[p] + o * block)..<(offsets[p] + (o + 1) * block))
        }
      }
      return [try HostTensor.joined(parts, ctx: ctx).elements(at: picked, shape: shape)]
    })
}

/// Split's part sizes along an axis of size `size` (nil if unknown): the `split` list
/// (attribute before opset 13, input since), else `count` equal parts, the last smaller
/// when it does not divide (opset 18's num_outputs).
private func splitSizes(_ ctx: OpContext, size: Int?) throws -> [Int]? {
  let count = ctx.node.outputs.count
  switch IntsArgument(ctx, attribute: "split", input: 1, inputSince: 13) {
  case .known(let split):
    guard split.count == count, size.map({ Int(split.reduce(0, +)) == $0 }) ?? true else {
      throw ctx.fail("split \(split) does not cut \(size.map(String.init) ?? "?") into \(count) parts")
    }
    return split.map { Int($0) }
  case .unknown: return nil
  case .absent:
    guard let size else { return nil }
    let chunk = (size + count - 1) / count
    return (0..<count).map { max(0, min(chunk, size - $0 * chunk)) }
  }
}

private func splitRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      let count = ctx.node.outputs.count
      guard let shape = ctx.shape(0) else { return Array(repeating: .tensor(type, nil), count: count) }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: shape.rank)
      let sizes = try splitSizes(ctx, size: shape.dims[axis].intValue)
      return (0..<count).map { i in
        var dims = shape.dims
        dims[axis] = sizes.map { .value($0[i]) } ?? (count == 1 ? dims[axis] : .unknown)
        return .tensor(type, Shape(dims))
      }
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: x.rank)
      guard let sizes = try splitSizes(ctx, size: x.shape[axis]) else { throw ctx.fail("split is not constant") }
      let (outer, _, inner) = lanes(x.shape, axis: axis)
      var start = 0
      return sizes.map { size in
        var shape = x.shape
        shape[axis] = size
        let picked = mapIndices([outer, size * inner]) { ($0[0] * x.shape[axis] + start) * inner + $0[1] }
        start += size
        return x.elements(at: picked, shape: shape)
      }
    })
}

// MARK: - Slice

/// One sliced axis: the first index read, the step and how many are read.
private struct SliceRange {
  var start: Int, step: Int, count: Int

  /// numpy slice semantics: negative starts/ends count from the end, then clamp (to
  /// [0, dim] going forward, [-1, dim - 1] going backward); INT64_MAX means "to the end".
  init(start: Int64, end: Int64, step: Int64, dim: Int) {
    let d = Int64(dim)
    func clamp(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { min(max(v < 0 ? v &+ d : v, lo), hi) }
    let s = step > 0 ? clamp(start, 0, d) : clamp(start, 0, d - 1)
    let e = step > 0 ? clamp(end, 0, d) : clamp(end, -1, d - 1)
    let n = step > 0 ? (e - s + step - 1) / step : (s - e - step - 1) / -step
    self.start = Int(s)
    self.step = Int(step)
    self.count = Int(max(n, 0))
  }
}

private typealias SliceAxis = (axis: Int, start: Int64, end: Int64, step: Int64)

/// Slice's bounds per sliced axis, from inputs (opset 10+) or attributes; nil when some
/// of them are not constant.
private func sliceParameters(_ ctx: OpContext, rank: Int) throws -> [SliceAxis]? {
  let starts: [Int64]
  let ends: [Int64]
  var axes: [Int64]?
  var steps: [Int64]?
  if ctx.opset < 10 {
    guard let s = ctx.ints("starts"), let e = ctx.ints("ends") else { throw ctx.fail("starts and ends are required") }
    (starts, ends, axes) = (s, e, ctx.ints("axes"))
  } else {
    guard let s = ctx.constantInts(1), let e = ctx.constantInts(2) else { return nil }
    (starts, ends) = (s, e)
    if ctx.hasInput(3) {
      guard let a = ctx.constantInts(3) else { return nil }
      axes = a
    }
    if ctx.hasInput(4) {
      guard let st = ctx.constantInts(4) else { return nil }
      steps = st
    }
  }
  let axisList = try ctx.normalize(axes: axes ?? Array(0..<Int64(starts.count)), rank: rank)
  let stepList = steps ?? Array(repeating: 1, count: starts.count)
  guard ends.count == starts.count, axisList.count == starts.count, stepList.count == starts.count,
    Set(axisList).count == axisList.count
  else {
    throw ctx.fail("starts, ends, axes and steps do not match")
  }
  guard !stepList.contains(0) else { throw ctx.fail("slice step 0") }
  return (0..<starts.count).map { (axisList[$0], starts[$0], ends[$0], stepList[$0]) }
}

private func sliceRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let shape = ctx.shape(0) else { return [.tensor(type, nil)] }
      guard let params = try sliceParameters(ctx, rank: shape.rank) else {
        // Bounds computed at run time (x[:, :seq_len]) still leave the other axes alone.
        var dims = shape.dims
        let axes = ctx.hasInput(3) ? ctx.constantInts(3) : ctx.shape(1)?.staticSizes.map { Array(0..<Int64($0[0])) }
        for a in try axes.map({ try ctx.normalize(axes: $0, rank: shape.rank) }) ?? Array(dims.indices) {
          dims[a] = .unknown
        }
        return [.tensor(type, Shape(dims))]
      }
      var dims = shape.dims
      for p in params {
        if let d = dims[p.axis].intValue {
          dims[p.axis] = .value(SliceRange(start: p.start, end: p.end, step: p.step, dim: d).count)
        } else if !(p.start == 0 && p.step == 1 && p.end >= Int64(Int32.max)) {
          dims[p.axis] = .unknown  // only x[0:] provably keeps a symbolic dim
        }
      }
      return [.tensor(type, Shape(dims))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard let params = try sliceParameters(ctx, rank: x.rank) else { throw ctx.fail("slice bounds are not constant") }
      var ranges = x.shape.map { SliceRange(start: 0, end: Int64($0), step: 1, dim: $0) }
      for p in params { ranges[p.axis] = SliceRange(start: p.start, end: p.end, step: p.step, dim: x.shape[p.axis]) }
      let s = strides(x.shape)
      let shape = ranges.map(\.count)
      let picked = mapIndices(shape) { idx in
        (0..<idx.count).reduce(0) { $0 + (ranges[$1].start + idx[$1] * ranges[$1].step) * s[$1] }
      }
      return [x.elements(at: picked, shape: shape)]
    })
}

// MARK: - Pad

/// Pad's begin and end amounts per axis (negative crops); nil when not constant. `pads` and
/// the fill value are attributes before opset 11; `axes` (opset 18) limits the padded axes.
private func padAmounts(_ ctx: OpContext, rank: Int) throws -> (begin: [Int], end: [Int])? {
  let pads: [Int64]
  switch IntsArgument(ctx, attribute: "pads", input: 1, inputSince: 11) {
  case .known(let p): pads = p
  case .unknown: return nil
  case .absent: throw ctx.fail("pads are required")
  }
  var axes = Array(0..<rank)
  switch IntsArgument(ctx, attribute: "axes", input: 3, inputSince: 18) {
  case .known(let a): axes = try ctx.normalize(axes: a, rank: rank)
  case .unknown: return nil
  case .absent: break  // (and before opset 18, which has no axes)
  }
  guard pads.count == 2 * axes.count else { throw ctx.fail("\(pads.count) pads for \(axes.count) axes") }
  var begin = [Int](repeating: 0, count: rank)
  var end = begin
  for (i, a) in axes.enumerated() {
    begin[a] = Int(pads[i])
    end[a] = Int(pads[axes.count + i])
  }
  return (begin, end)
}

/// The input index that output index `i` of a padded axis reads, or nil for the fill value.
private func padSource(_ i: Int, begin: Int, size: Int, mode: String) -> Int? {
  let j = i - begin
  if j >= 0 && j < size { return j }
  switch mode {
  case "edge": return min(max(j, 0), size - 1)
  case "wrap": return (j % size + size) % size
  case "reflect":
    // Mirror without repeating the edge: the pattern has period 2(size - 1).
    guard size > 1 else { return 0 }
    let period = 2 * (size - 1)
    let k = (j % period + period) % period
    return k < size ? k : period - k
  default: return nil
  }
}

private func padRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let shape = ctx.shape(0) else { return [.tensor(type, nil)] }
      guard let (begin, end) = try padAmounts(ctx, rank: shape.rank) else {
        return [.tensor(type, Shape(Array(repeating: .unknown, count: shape.rank)))]
      }
      return [.tensor(type, Shape(shape.dims.indices.map { DimMath.add(shape.dims[$0], .value(begin[$0] + end[$0])) }))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard let (begin, end) = try padAmounts(ctx, rank: x.rank) else { throw ctx.fail("pads are not constant") }
      let mode = ctx.string("mode", default: "constant")
      guard ["constant", "edge", "reflect", "wrap"].contains(mode) else { throw ctx.fail("unknown pad mode \(mode)") }
      let shape = x.shape.indices.map { x.shape[$0] + begin[$0] + end[$0] }
      guard shape.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("pads crop more than the input") }
      if mode != "constant" && x.count == 0 && shape.reduce(1, *) > 0 {
        throw ctx.fail("\(mode) padding of an empty tensor")
      }
      var fill = x.zero
      if ctx.opset < 11, x.isFloat {
        fill = HostTensor(x.dataType, [1], floats: [Double(ctx.float("value", default: 0))])
      } else if ctx.hasInput(2) {
        let v = try ctx.value(2)
        guard v.count == 1 else { throw ctx.fail("constant_value must hold one element") }
        fill = v.reshaped([1])
      }
      // Index x.count is the fill value, appended after the input's elements.
      let s = strides(x.shape)
      let picked = mapIndices(shape) { idx -> Int in
        var flat = 0
        for d in 0..<idx.count {
          guard let j = padSource(idx[d], begin: begin[d], size: x.shape[d], mode: mode) else { return x.count }
          flat += j * s[d]
        }
        return flat
      }
      return [try HostTensor.joined([x, fill], ctx: ctx).elements(at: picked, shape: shape)]
    })
}

// MARK: - Trilu and CumSum

private func triluRule() -> OpRule {
  OpRule(
    infer: { ctx in ctx.sameAsInput },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard x.rank >= 2 else { throw ctx.fail("Trilu needs a rank >= 2 input") }
      let k = ctx.hasInput(1) ? Int(try ctx.value(1).int64s.first ?? 0) : 0
      let upper = ctx.int("upper", default: 1) == 1
      let (rows, cols) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
      // Element (i, j) of each matrix stays where j - i is on the kept side of k; index x.count is zero.
      let picked = (0..<x.count).map { f in
        let j = f % cols
        let i = f / cols % rows
        return (upper ? j - i >= k : j - i <= k) ? f : x.count
      }
      return [try HostTensor.joined([x, x.zero], ctx: ctx).elements(at: picked, shape: x.shape)]
    })
}

private func cumulativeSum<T: KernelNumber>(_ v: [T], outer: Int, n: Int, inner: Int, exclusive: Bool, reverse: Bool)
  -> [T]
{
  var out = v
  for o in 0..<outer {
    for i in 0..<inner {
      var acc = T.zero
      for step in 0..<n {
        let at = o * n * inner + (reverse ? n - 1 - step : step) * inner + i
        if exclusive {
          out[at] = acc
          acc = T.plus(acc, v[at])
        } else {
          acc = T.plus(acc, v[at])
          out[at] = acc
        }
      }
    }
  }
  return out
}

private func cumSumRule() -> OpRule {
  OpRule(
    infer: { ctx in ctx.sameAsInput },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard let rawAxis = try ctx.value(1).int64s.first else { throw ctx.fail("axis is empty") }
      let axis = try ctx.normalize(axis: rawAxis, rank: x.rank)
      let (outer, n, inner) = lanes(x.shape, axis: axis)
      let exclusive = ctx.int("exclusive", default: 0) == 1
      let reverse = ctx.int("reverse", default: 0) == 1
      return [
        numericKernel(
          [x], as: x.dataType, shape: x.shape,
          float: { cumulativeSum($0[0], outer: outer, n: n, inner: inner, exclusive: exclusive, reverse: reverse) },
          int: { cumulativeSum($0[0], outer: outer, n: n, inner: inner, exclusive: exclusive, reverse: reverse) })
      ]
    })
}

// MARK: - Identity and Dropout

private func identityRule() -> OpRule {
  OpRule(
    // Any type passes through, sequences and optionals included.
    infer: { ctx in [(ctx.inputTypes.first ?? nil) ?? ctx.constant(0)?.typeInfo] },
    evaluate: { ctx in [try ctx.value(0)] })
}

/// Dropout at inference is the identity; its optional mask is all true.
private func dropoutRule() -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(ctx.elementType(0), ctx.shape(0)), .tensor(.bool, ctx.shape(0))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      // training_mode (opset 12+) with a nonzero ratio draws random numbers.
      if ctx.hasInput(2), try ctx.value(2).int64s.first != 0 {
        let ratio = ctx.hasInput(1) ? try ctx.value(1).doubles.first ?? 0.5 : 0.5
        guard ratio == 0 else { throw ctx.fail("Dropout in training mode is random") }
      }
      return [x, x.with(.bool, ints: Array(repeating: 1, count: x.count))]
    })
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let shapeRules: [String: OpRule] = [
  "Shape": shapeRule(),
  "Size": sizeRule(),
  "Reshape": reshapeRule(),
  "Flatten": flattenRule(),
  "Squeeze": reshapingRule(squeezedDims),
  "Unsqueeze": reshapingRule(unsqueezedDims),
  "Transpose": transposeRule(),
  "Expand": expandRule(),
  "Tile": tileRule(),
  "Concat": concatRule(),
  "Split": splitRule(),
  "Slice": sliceRule(),
  "Pad": padRule(),
  "Trilu": triluRule(),
  "CumSum": cumSumRule(),
  "Identity": identityRule(),
  "Dropout": dropoutRule(),
].merging(indexingRules) { a, _ in a }.merging(valueRules) { a, _ in a }
