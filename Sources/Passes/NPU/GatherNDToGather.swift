import Evaluation
import ONNXGraph

/// `gathernd-to-gather`: GatherND with constant indices becomes Gather on axis 0, bit-exact.
///
/// Falcon's dynamo export splits its fused QKV with GatherND (constant indices picking one
/// slice of the leading axis); TPU-MLIR 1.30 miscompiles that silently (NaN logits) while its
/// Gather is right. `GatherND(data, idx)` with `batch_dims = 0` and index tuples of length k
/// reads whole slices `data[i0, …, ik-1]`: with k = 1 that is `Gather(data, idx[..., 0])`; with
/// k > 1 the first k axes (static) are merged by a Reshape and each tuple becomes one linear
/// index. The output shape `idx.shape[:-1] + data.shape[k:]` is Gather's exactly.
///
/// Native, not a rule file: the new indices are computed from the whole index tensor, and
/// the merge Reshape depends on k.
public struct GatherNDToGather: GraphPass {
  public static let name = "gathernd-to-gather"
  public static let summary = "GatherND with constant indices -> Gather on axis 0 (+ Reshape), bit-exact."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let rewritten = try rewriteEach("GatherND", in: model, pass: Self.name, options: options) { n, g, names in
      rewrite(n, in: g, names: names)
    }
    return PassResult(modified: rewritten > 0)
  }

  /// Rewrites one GatherND in place; returns why not when it cannot.
  func rewrite(_ n: Node, in g: Graph, names: NameScope) -> String? {
    guard let data = n.inputs[0], n.inputs.count > 1 else { return "malformed node" }
    guard (n[attribute: "batch_dims"]?.int ?? 0) == 0 else { return "batch_dims > 0 is not handled" }
    guard let idx = ConstantIndices(n.inputs[1]) else { return "indices are not constant" }
    let k = idx.tupleLength
    guard k >= 1 else { return "index tuples are empty" }
    guard let dims = data.shape?.staticSizes ?? data.constValue?.dims, dims.count >= k else {
      return "the data shape is not static"
    }
    var linear: [Int64] = []
    linear.reserveCapacity(idx.tupleCount)
    for i in 0..<idx.tupleCount {
      guard let t = idx.tuple(i, dims: dims) else { return "index tuple \(i) is out of range for shape \(dims)" }
      linear.append(Int64(flatten(t, dims)))
    }
    var source = data
    if k > 1 {
      let merged = [dims[..<k].reduce(1, *)] + dims[k...]
      let shape = g.int64Constant(merged.map(Int64.init), base: n.outputs[0].name + "_merged_shape", names: names)
      let flat = Value(name: names.fresh(data.name + "_merged"))
      if let e = data.elementType { flat.type = .tensor(e, Shape(static: merged)) }
      g.insert(Node("Reshape", name: n.name.isEmpty ? "" : n.name + "/merge", inputs: [data, shape], outputs: [flat]), before: n)
      source = flat
    }
    let indices = g.int64Constant(linear, shape: Array(idx.shape.dropLast()), base: n.outputs[0].name + "_indices", names: names)
    n.opType = "Gather"
    n.attributes = [Attribute("axis", .int(0))]
    n.inputs = [source, indices]
    return nil
  }

  func flatten(_ t: [Int], _ dims: [Int]) -> Int {
    var out = 0
    for (j, v) in t.enumerated() { out = out * dims[j] + v }
    return out
  }
}
