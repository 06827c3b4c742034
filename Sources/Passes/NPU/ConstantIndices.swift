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

/// Runs `rewrite` on every `opType` node of the model (after shape inference); it returns nil
/// when it rewrote the node, else why not. Kept nodes are reported, and with `--strict` the
/// first is an error naming it. Returns how many were rewritten.
func rewriteEach(
  _ opType: String, in model: Model, pass: String, options: PassOptions,
  _ rewrite: (Node, Graph, NameScope) -> String?
) throws -> Int {
  // Static shapes decide what can be rewritten: infer them (nothing is folded here).
  Propagator(model: model, options: .init(fold: false)).run(model.graph)
  var rewritten = 0
  var kept: [(String, String)] = []
  for g in model.allGraphs {
    let names = NameScope(g)
    for n in g.nodes where n.opType == opType && n.isDefaultDomain {
      if let reason = rewrite(n, g, names) { kept.append((n.displayName, reason)) } else { rewritten += 1 }
    }
  }
  if rewritten > 0 { DeadCodeElimination().sweep(model.graph, keepInitializers: false) }
  options.report("\(pass): \(rewritten) \(opType) rewritten, \(kept.count) left")
  for (node, reason) in kept {
    if options.strict { throw PassError(pass: pass, location: node, reason: reason) }
    options.report("\(pass): \(node): \(opType) kept: \(reason)")
  }
  return rewritten
}
