import Foundation
import ONNXGraph

// Indexing operators: Gather, GatherElements, GatherND, ScatterND, ScatterElements,
// OneHot and NonZero. Exporters gather single dims out of Shape outputs and scatter
// into KV caches; every kernel here reduces to picking or writing flat indices.

/// An index read from a tensor, made non-negative (negative ones count from the end).
private func normalizeIndex(_ i: Int64, size: Int, ctx: OpContext) throws -> Int {
  let n = i < 0 ? Int(i) + size : Int(i)
  guard n >= 0 && n < size else { throw ctx.fail("index \(i) is out of range for size \(size)") }
  return n
}

// MARK: - Gather

private func gatherRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      guard let data = ctx.shape(0), let indices = ctx.shape(1) else { return [.tensor(type, nil)] }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: data.rank)
      // A scalar index (the usual `Shape -> Gather(i)`) drops the axis.
      return [.tensor(type, Shape(data.dims[..<axis] + indices.dims + data.dims[(axis + 1)...]))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let indices = try ctx.value(1)
      let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: x.rank)
      let (outer, n, inner) = lanes(x.shape, axis: axis)
      let rows = try indices.int64s.map { try normalizeIndex($0, size: n, ctx: ctx) }
      var picked: [Int] = []
      picked.reserveCapacity(outer * rows.count * inner)
      for o in 0..<outer {
        for r in rows { picked.append(contentsOf: ((o * n + r) * inner)..<((o * n + r + 1) * inner)) }
      }
      return [x.elements(at: picked, shape: Array(x.shape[..<axis] + indices.shape + x.shape[(axis + 1)...]))]
    })
}

/// For each element of `indices`, the flat index into `data` it addresses along `axis`
/// (GatherElements reads there, ScatterElements writes there).
private func elementTargets(_ data: HostTensor, _ indices: HostTensor, ctx: OpContext) throws -> [Int] {
  guard indices.rank == data.rank else { throw ctx.fail("indices and data have different ranks") }
  let axis = try ctx.normalize(axis: ctx.int("axis", default: 0), rank: data.rank)
  let s = strides(data.shape)
  let values = indices.int64s
  var k = 0
  return try mapIndices(indices.shape) { idx in
    var flat = 0
    for d in 0..<idx.count {
      let i = d == axis ? try normalizeIndex(values[k], size: data.shape[d], ctx: ctx) : idx[d]
      guard i < data.shape[d] else { throw ctx.fail("indices shape \(indices.shape) exceeds data \(data.shape)") }
      flat += i * s[d]
    }
    k += 1
    return flat
  }
}

private func gatherElementsRule() -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(ctx.elementType(0), ctx.shape(1))] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let indices = try ctx.value(1)
      return [x.elements(at: try elementTargets(x, indices, ctx: ctx), shape: indices.shape)]
    })
}

// MARK: - GatherND and ScatterND

/// For each index tuple (the last axis of `indices`) after `batchDims` leading batch axes,
/// the flat offset in `data` of the slice it addresses, and that slice's size.
private func tupleOffsets(_ data: [Int], _ indices: HostTensor, batchDims b: Int, ctx: OpContext) throws
  -> (offsets: [Int], sliceSize: Int)
{
  guard let k = indices.shape.last, indices.rank > b, data.count >= b + k, indices.shape[..<b] == data[..<b] else {
    throw ctx.fail("indices \(indices.shape) do not index data \(data) with batch_dims \(b)")
  }
  let s = strides(data)
  let sliceSize = data[(b + k)...].reduce(1, *)
  let batchSize = data[b...].reduce(1, *)
  let tuplesPerBatch = indices.shape[b..<(indices.rank - 1)].reduce(1, *)
  let values = indices.int64s
  let offsets = try (0..<indices.shape.dropLast().reduce(1, *)).map { t -> Int in
    var flat = t / max(tuplesPerBatch, 1) * batchSize
    for j in 0..<k { flat += try normalizeIndex(values[t * k + j], size: data[b + j], ctx: ctx) * s[b + j] }
    return flat
  }
  return (offsets, sliceSize)
}

private func gatherNDRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(0)
      let b = Int(ctx.int("batch_dims", default: 0))
      guard let data = ctx.shape(0), let indices = ctx.shape(1), let k = indices.dims.last?.intValue else {
        return [.tensor(type, nil)]
      }
      guard data.rank >= b + k else { throw ctx.fail("indices of depth \(k) exceed data rank \(data.rank)") }
      return [.tensor(type, Shape(indices.dims.dropLast() + data.dims[(b + k)...]))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let indices = try ctx.value(1)
      let b = Int(ctx.int("batch_dims", default: 0))
      let (offsets, size) = try tupleOffsets(x.shape, indices, batchDims: b, ctx: ctx)
      let k = indices.shape.last ?? 0
      return [
        x.elements(at: offsets.flatMap { $0..<($0 + size) }, shape: indices.shape.dropLast() + x.shape[(b + k)...])
      ]
    })
}

/// `updates` written into a copy of `data` at flat `targets`, combined with what is there
/// by `reduction` (none/add/mul since opset 16, max/min since 18), in order.
private func scatter(_ data: HostTensor, _ updates: HostTensor, targets: [Int], ctx: OpContext) throws -> HostTensor {
  let reduction = ctx.string("reduction", default: "none")
  guard ["none", "add", "mul", "max", "min"].contains(reduction) else {
    throw ctx.fail("unknown reduction \(reduction)")
  }
  guard updates.dataType == data.dataType, updates.count == targets.count else {
    throw ctx.fail("updates do not match the indices or the data type")
  }
  func combine<T: KernelNumber & Comparable>(_ out: [T], _ u: [T]) -> [T] {
    let f: (T, T) -> T =
      switch reduction {
      case "add": T.plus
      case "mul": T.times
      case "max": { max($0, $1) }
      case "min": { min($0, $1) }
      default: { $1 }
      }
    var out = out
    for (k, t) in targets.enumerated() { out[t] = f(out[t], u[k]) }
    return out
  }
  switch (data.storage, updates.storage) {
  case (.float(let d), .float(let u)): return data.with(data.dataType, floats: combine(d, u))
  case (.int(let d), .int(let u)): return data.with(data.dataType, ints: combine(d, u))
  case (.string(var d), .string(let u)) where reduction == "none":
    for (k, t) in targets.enumerated() { d[t] = u[k] }
    return HostTensor(data.dataType, data.shape, .string(d))
  default: throw ctx.fail("\(reduction) scatter of \(data.dataType.name) is not folded")
  }
}

private func scatterNDRule() -> OpRule {
  OpRule(
    infer: { ctx in ctx.sameAsInput },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let indices = try ctx.value(1)
      let updates = try ctx.value(2)
      let (offsets, size) = try tupleOffsets(x.shape, indices, batchDims: 0, ctx: ctx)
      return [try scatter(x, updates, targets: offsets.flatMap { $0..<($0 + size) }, ctx: ctx)]
    })
}

/// ScatterElements, and Scatter (its deprecated name before opset 11).
private func scatterElementsRule() -> OpRule {
  OpRule(
    infer: { ctx in ctx.sameAsInput },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let indices = try ctx.value(1)
      let updates = try ctx.value(2)
      guard updates.shape == indices.shape else { throw ctx.fail("updates and indices have different shapes") }
      return [try scatter(x, updates, targets: try elementTargets(x, indices, ctx: ctx), ctx: ctx)]
    })
}

// MARK: - OneHot and NonZero

private func oneHotRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let type = ctx.elementType(2)
      guard let indices = ctx.shape(0) else { return [.tensor(type, nil)] }
      let axis = try ctx.normalize(axes: [ctx.int("axis", default: -1)], rank: indices.rank + 1)[0]
      var dims = indices.dims
      dims.insert(ctx.constantInts(1)?.first.map { .value(Int($0)) } ?? .unknown, at: axis)
      return [.tensor(type, Shape(dims))]
    },
    evaluate: { ctx in
      let indices = try ctx.value(0)
      let values = try ctx.value(2)
      guard let depth = try ctx.value(1).int64s.first.map(Int.init), depth > 0 else {
        throw ctx.fail("depth must be positive")
      }
      guard values.count == 2 else { throw ctx.fail("values must hold [off, on]") }
      let axis = try ctx.normalize(axes: [ctx.int("axis", default: -1)], rank: indices.rank + 1)[0]
      var shape = indices.shape
      shape.insert(depth, at: axis)
      let hot = indices.int64s.map { Int($0 < 0 ? $0 + Int64(depth) : $0) }  // out of range: no hot element
      let s = strides(indices.shape)
      // Value 0 is off, 1 is on.
      let picked = mapIndices(shape) { idx in
        var at = idx
        let position = at.remove(at: axis)
        return hot[flatIndex(at, s)] == position ? 1 : 0
      }
      return [values.reshaped([2]).elements(at: picked, shape: shape)]
    })
}

private func nonZeroRule() -> OpRule {
  OpRule(
    infer: { ctx in [.tensor(.int64, ctx.shape(0).map { Shape([.value($0.rank), .unknown]) })] },
    evaluate: { ctx in
      let x = try ctx.value(0)
      guard x.rank > 0 else { throw ctx.fail("NonZero of a scalar is not folded") }
      let nonzero: [Bool]
      switch x.storage {
      case .float(let v): nonzero = v.map { $0 != 0 }
      case .int(let v): nonzero = v.map { $0 != 0 }
      case .string(let v): nonzero = v.map { !$0.isEmpty }
      }
      let hits = mapIndices(x.shape) { $0 }.enumerated().filter { nonzero[$0.offset] }.map(\.element)
      // Row d lists the d-th coordinate of every hit.
      let coordinates = (0..<x.rank).flatMap { d in hits.map { Int64($0[d]) } }
      return [HostTensor(.int64, [x.rank, hits.count], ints: coordinates)]
    })
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let indexingRules: [String: OpRule] = [
  "Gather": gatherRule(),
  "GatherElements": gatherElementsRule(),
  "GatherND": gatherNDRule(),
  "ScatterND": scatterNDRule(),
  "ScatterElements": scatterElementsRule(),
  "Scatter": scatterElementsRule(),
  "OneHot": oneHotRule(),
  "NonZero": nonZeroRule(),
]
