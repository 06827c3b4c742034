import Evaluation
import ONNXGraph

/// Small constant index tensors (ScatterND/GatherND indices) read as integers.
struct ConstantIndices {
  let shape: [Int]
  let values: [Int64]

  /// nil when `v` is not a constant integer tensor small enough to read (never pages in weights).
  init?(_ v: Value?, limit: Int = 1 << 20) {
    guard let t = v?.constValue, t.byteCount <= limit, let h = try? HostTensor(t), !h.isFloat else { return nil }
    shape = h.shape
    values = h.int64s
  }

  /// The last axis' length: how many leading data axes one index tuple addresses.
  var tupleLength: Int { shape.last ?? 0 }
  var tupleCount: Int { tupleLength == 0 ? 0 : values.count / tupleLength }

  /// Index tuple `i`, negative entries normalised against `dims`; nil when out of range.
  func tuple(_ i: Int, dims: [Int]) -> [Int]? {
    var out: [Int] = []
    for j in 0..<tupleLength {
      var v = Int(values[i * tupleLength + j])
      if v < 0 { v += dims[j] }
      guard v >= 0, v < dims[j] else { return nil }
      out.append(v)
    }
    return out
  }
}

extension Graph {
  /// A new int64 initializer named after `base`.
  func int64Constant(_ values: [Int64], shape: [Int]? = nil, base: String, names: NameScope) -> Value {
    let v = Value(name: names.fresh(base))
    let t = HostTensor(.int64, shape ?? [values.count], ints: values)
    v.type = .tensor(.int64, Shape(static: t.shape))
    return addInitializer(v, t.tensor(name: v.name))
  }
}
