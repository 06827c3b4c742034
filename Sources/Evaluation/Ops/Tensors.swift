import Foundation
import ONNXGraph

// Linear algebra (MatMul, Gemm, Einsum in TensorsEinsum.swift), Conv inference and TopK.

/// Element arithmetic of the linear-algebra kernels: doubles for floats (rounded to the
/// element type afterwards), wrapping Int64 for integers (as onnxruntime).
protocol KernelNumber {
  static var zero: Self { get }
  static var one: Self { get }
  static func plus(_ a: Self, _ b: Self) -> Self
  static func times(_ a: Self, _ b: Self) -> Self
}

extension Double: KernelNumber {
  static var one: Double { 1 }
  static func plus(_ a: Double, _ b: Double) -> Double { a + b }
  static func times(_ a: Double, _ b: Double) -> Double { a * b }
}

extension Int64: KernelNumber {
  static var one: Int64 { 1 }
  static func plus(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
  static func times(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
}

/// Runs a kernel on exact integers when the operands and result are integer tensors, else on doubles.
func numericKernel(
  _ operands: [HostTensor], as type: DataType, shape: [Int],
  float: ([[Double]]) -> [Double], int: ([[Int64]]) -> [Int64]
) -> HostTensor {
  let ints = operands.compactMap { t -> [Int64]? in if case .int(let v) = t.storage { v } else { nil } }
  if ints.count == operands.count && !HostTensor.isFloat(type) { return HostTensor(type, shape, ints: int(ints)) }
  return .computed(type, shape, float(operands.map(\.doubles)))
}

extension HostTensor {
  /// The elements at these flat indices, as a tensor of `shape`.
  public func elements(at indices: [Int], shape: [Int]) -> HostTensor {
    switch storage {
    case .float(let v): HostTensor(dataType, shape, .float(indices.map { v[$0] }))
    case .int(let v): HostTensor(dataType, shape, .int(indices.map { v[$0] }))
    case .string(let v): HostTensor(dataType, shape, .string(indices.map { v[$0] }))
    }
  }

  /// The transpose of a matrix.
  func transposed2D() -> HostTensor {
    let (r, c) = (shape[0], shape[1])
    return elements(at: (0..<r * c).map { k in (k % r) * c + k / r }, shape: [c, r])
  }
}

// MARK: - MatMul and Gemm

/// `m×k · k×n` products for each pair of batch offsets (in matrices), in i-k-j order so the
/// inner loop runs along contiguous rows.
private func batchedMatMul<T: KernelNumber>(
  _ a: [T], _ b: [T], aBatch: [Int], bBatch: [Int], m: Int, k: Int, n: Int
) -> [T] {
  var out = [T](repeating: .zero, count: aBatch.count * m * n)
  for (t, (ia, ib)) in zip(aBatch, bBatch).enumerated() {
    let (ao, bo, oo) = (ia * m * k, ib * k * n, t * m * n)
    for i in 0..<m {
      for p in 0..<k {
        let x = a[ao + i * k + p]
        let row = bo + p * n
        let outRow = oo + i * n
        for j in 0..<n { out[outRow + j] = T.plus(out[outRow + j], T.times(x, b[row + j])) }
      }
    }
  }
  return out
}

/// numpy matmul: a 1-D left operand is a row and a 1-D right one a column (both dims dropped
/// from the result); the leading dims broadcast.
private func matMulRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let a = ctx.shape(0), let b = ctx.shape(1) else { return [.tensor(ctx.elementType(0), nil)] }
      guard a.rank >= 1, b.rank >= 1 else { throw ctx.fail("MatMul of a scalar") }
      var dims = broadcast([Shape(Array(a.dims.dropLast(2))), Shape(Array(b.dims.dropLast(2)))]).dims
      if a.rank >= 2 { dims.append(a.dims[a.rank - 2]) }
      if b.rank >= 2 { dims.append(b.dims[b.rank - 1]) }
      return [.tensor(ctx.elementType(0), Shape(dims))]
    },
    evaluate: { ctx in
      let a = try ctx.value(0)
      let b = try ctx.value(1)
      guard a.rank >= 1, b.rank >= 1 else { throw ctx.fail("MatMul of a scalar") }
      let aShape = a.rank == 1 ? [1] + a.shape : a.shape
      let bShape = b.rank == 1 ? b.shape + [1] : b.shape
      let (m, k) = (aShape[aShape.count - 2], aShape[aShape.count - 1])
      let (k2, n) = (bShape[bShape.count - 2], bShape[bShape.count - 1])
      let aBatch = Array(aShape.dropLast(2))
      let bBatch = Array(bShape.dropLast(2))
      guard k == k2, let batch = broadcast([aBatch, bBatch]) else {
        throw ctx.fail("shapes \(a.shape) and \(b.shape) do not multiply")
      }
      let ia = broadcastIndices(from: aBatch, to: batch)
      let ib = broadcastIndices(from: bBatch, to: batch)
      let shape = batch + (a.rank >= 2 ? [m] : []) + (b.rank >= 2 ? [n] : [])
      return [
        numericKernel(
          [a, b], as: a.dataType, shape: shape,
          float: { batchedMatMul($0[0], $0[1], aBatch: ia, bBatch: ib, m: m, k: k, n: n) },
          int: { batchedMatMul($0[0], $0[1], aBatch: ia, bBatch: ib, m: m, k: k, n: n) })
      ]
    })
}

/// Y = alpha · A' · B' + beta · C, with A' and B' optionally transposed and C broadcast to [M, N].
private func gemmRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let a = ctx.shape(0), let b = ctx.shape(1), a.rank == 2, b.rank == 2 else {
        return [.tensor(ctx.elementType(0), nil)]
      }
      let m = ctx.int("transA", default: 0) == 1 ? a.dims[1] : a.dims[0]
      let n = ctx.int("transB", default: 0) == 1 ? b.dims[0] : b.dims[1]
      return [.tensor(ctx.elementType(0), Shape([m, n]))]
    },
    evaluate: { ctx in
      var a = try ctx.value(0)
      var b = try ctx.value(1)
      guard a.rank == 2, b.rank == 2 else { throw ctx.fail("Gemm operands must be matrices") }
      if ctx.int("transA", default: 0) == 1 { a = a.transposed2D() }
      if ctx.int("transB", default: 0) == 1 { b = b.transposed2D() }
      let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
      guard b.shape[0] == k else { throw ctx.fail("shapes \(a.shape) and \(b.shape) do not multiply") }
      let product = numericKernel(
        [a, b], as: a.dataType, shape: [m, n],
        float: { batchedMatMul($0[0], $0[1], aBatch: [0], bBatch: [0], m: m, k: k, n: n) },
        int: { batchedMatMul($0[0], $0[1], aBatch: [0], bBatch: [0], m: m, k: k, n: n) })
      let alpha = Double(ctx.float("alpha", default: 1))
      let beta = Double(ctx.float("beta", default: 1))
      let c = ctx.hasInput(2) ? try ctx.value(2) : nil
      if alpha == 1 && c == nil { return [product] }
      var y = product.doubles.map { alpha * $0 }
      if let c {
        guard broadcast([c.shape, [m, n]]) == [m, n] else {
          throw ctx.fail("C of shape \(c.shape) does not broadcast to \([m, n])")
        }
        let ci = broadcastIndices(from: c.shape, to: [m, n])
        let cv = c.doubles
        for i in y.indices { y[i] += beta * cv[ci[i]] }
      }
      return [.computed(a.dataType, [m, n], y)]
    })
}

// MARK: - Conv

/// Output size of one spatial axis: floor((in + pads - dilated kernel) / stride) + 1, or
/// ceil(in / stride) with SAME_* auto padding.
private func convOutputSize(_ input: Dim, kernel: Dim, stride: Int, dilation: Int, pads: Int, autoPad: String) -> Dim {
  if autoPad.hasPrefix("SAME") {
    if stride == 1 { return input }
    guard let size = input.intValue else { return .unknown }
    return .value((size + stride - 1) / stride)
  }
  guard let k = kernel.intValue else { return .unknown }
  let extent = (k - 1) * dilation + 1
  let pad = autoPad == "VALID" ? 0 : pads
  if let size = input.intValue { return .value((size + pad - extent) / stride + 1) }
  // A symbolic size keeps its name when the window preserves it.
  return stride == 1 && pad == extent - 1 ? input : .unknown
}

/// Conv inference: X [N, C, D1...] and W [M, C/group, k1...] give [N, M, O1...].
private func convRule() -> OpRule {
  OpRule(infer: { ctx in
    guard let x = ctx.shape(0), x.rank >= 3 else { return [.tensor(ctx.elementType(0), nil)] }
    let w = ctx.shape(1)
    let spatial = x.rank - 2
    let kernel =
      ctx.ints("kernel_shape")?.map { Dim.value(Int($0)) }
      ?? w.map { Array($0.dims.dropFirst(2)) } ?? Array(repeating: .unknown, count: spatial)
    let strides = ctx.ints("strides") ?? Array(repeating: 1, count: spatial)
    let dilations = ctx.ints("dilations") ?? Array(repeating: 1, count: spatial)
    let pads = ctx.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
    guard kernel.count == spatial, strides.count == spatial, dilations.count == spatial, pads.count == 2 * spatial
    else {
      throw ctx.fail("kernel, strides, dilations or pads do not match \(spatial) spatial dims")
    }
    let autoPad = ctx.string("auto_pad", default: "NOTSET")
    let sizes = (0..<spatial).map { i in
      convOutputSize(
        x.dims[2 + i], kernel: kernel[i], stride: Int(strides[i]), dilation: Int(dilations[i]),
        pads: Int(pads[i] + pads[spatial + i]), autoPad: autoPad)
    }
    return [.tensor(ctx.elementType(0), Shape([x.dims[0], w?.dims.first ?? .unknown] + sizes))]
  })
}

// MARK: - TopK

/// The K largest (or smallest) elements along `axis`, sorted, ties by lower index; and their indices.
private func topKRule() -> OpRule {
  OpRule(
    infer: { ctx in
      guard let shape = ctx.shape(0) else { return [.tensor(ctx.elementType(0), nil), .tensor(.int64, nil)] }
      let axis = try ctx.normalize(axis: ctx.int("axis", default: -1), rank: shape.rank)
      var dims = shape.dims
      dims[axis] = ctx.constantInts(1)?.first.map { .value(Int($0)) } ?? .unknown
      return [.tensor(ctx.elementType(0), Shape(dims)), .tensor(.int64, Shape(dims))]
    },
    evaluate: { ctx in
      let x = try ctx.value(0)
      let axis = try ctx.normalize(axis: ctx.int("axis", default: -1), rank: x.rank)
      let largest = ctx.int("largest", default: 1) == 1
      let (outer, n, inner) = lanes(x.shape, axis: axis)
      guard let k = try ctx.value(1).int64s.first.map(Int.init), k >= 0, k <= n else {
        throw ctx.fail("K must be a number in 0...\(n)")
      }
      let v = x.doubles
      var picked = [Int](repeating: 0, count: outer * k * inner)
      var indices = [Int64](repeating: 0, count: picked.count)
      for o in 0..<outer {
        for i in 0..<inner {
          let base = o * n * inner + i
          let order = (0..<n).sorted { p, q in
            let (a, b) = (v[base + p * inner], v[base + q * inner])
            return a != b ? (largest ? a > b : a < b) : p < q
          }
          for (j, src) in order.prefix(k).enumerated() {
            picked[(o * k + j) * inner + i] = base + src * inner
            indices[(o * k + j) * inner + i] = Int64(src)
          }
        }
      }
      var shape = x.shape
      shape[axis] = k
      return [x.elements(at: picked, shape: shape), HostTensor(.int64, shape, ints: indices)]
    })
}

// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let tensorRules: [String: OpRule] = [
  "MatMul": matMulRule(),
  "Gemm": gemmRule(),
  "Einsum": einsumRule(),
  "Conv": convRule(),
  "TopK": topKRule(),
]
