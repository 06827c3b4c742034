import Evaluation
import ONNXGraph

/// `scatternd-to-concat`: a ScatterND whose constant indices write one contiguous block
/// becomes Slice + Concat with the updates (or just the updates when the block is everything).
///
/// Exporters write ScatterND for slice assignment: transformers 4.46's causal mask
/// (`causal_mask[:, :, :, :mask_length] = …`) and the Llama-3.2 vision tower's
/// `attention_mask[:, :, -pad_patches:] = 0` (dynamo wraps that one in Transpose → ScatterND →
/// Transpose). NPU compilers reject ScatterND or run it on the host. Once `static-shape` has
/// made the indices constant, they are checked to enumerate, in row-major order, a box that
/// covers the full extent of every indexed axis but at most one; then the updates, reshaped to
/// the box, are the new values of that box and the rest of the data is kept by two Slices:
/// `Concat(data[..start], block, data[end..], axis)`. Anything else (scattered indices,
/// duplicates, a reduction) is left in place and reported; `--strict` makes that an error.
///
/// Native, not a rule file: the box test reads the whole index tensor, and the number of
/// Slices depends on where the block sits.
public struct ScatterNDToConcat: GraphPass {
  public static let name = "scatternd-to-concat"
  public static let summary = "ScatterND writing one contiguous block (constant indices) -> Slice + Concat."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    let rewritten = try rewriteEach("ScatterND", in: model, pass: Self.name, options: options) { n, g, names in
      rewrite(n, in: g, names: names)
    }
    return PassResult(modified: rewritten > 0)
  }

  /// The block the indices address: per indexed axis, `start..<end`.
  struct Box {
    var ranges: [Range<Int>]
  }

  /// The box, if the index tuples enumerate one in row-major order; else why not.
  func box(_ idx: ConstantIndices, dims: [Int]) -> Result<Box, Reason> {
    let k = idx.tupleLength
    guard k >= 1, k <= dims.count else { return .failure(Reason("index tuples of length \(k) for rank \(dims.count)")) }
    guard idx.tupleCount > 0, let first = idx.tuple(0, dims: dims), let last = idx.tuple(idx.tupleCount - 1, dims: dims)
    else { return .failure(Reason("indices are empty or out of range")) }
    let ranges = (0..<k).map { first[$0]..<(last[$0] + 1) }
    guard ranges.allSatisfy({ !$0.isEmpty }), ranges.reduce(1, { $0 * $1.count }) == idx.tupleCount else {
      return .failure(Reason("indices are not one contiguous block"))
    }
    // Row-major enumeration of the box: the last axis fastest.
    var expected = first
    for i in 0..<idx.tupleCount {
      guard let t = idx.tuple(i, dims: dims), t == expected else {
        return .failure(Reason("indices are not one contiguous block in row-major order (tuple \(i))"))
      }
      var a = k - 1
      while a >= 0 {
        expected[a] += 1
        if expected[a] < ranges[a].upperBound { break }
        expected[a] = ranges[a].lowerBound
        a -= 1
      }
    }
    return .success(Box(ranges: ranges))
  }

  struct Reason: Error { let text: String; init(_ t: String) { text = t } }

  func rewrite(_ n: Node, in g: Graph, names: NameScope) -> String? {
    guard n.inputs.count == 3, let data = n.inputs[0], let updates = n.inputs[2] else { return "malformed node" }
    if let r = n[attribute: "reduction"]?.string, !r.isEmpty, r != "none" {
      return "reduction '\(r)' is not a plain write"
    }
    guard let idx = ConstantIndices(n.inputs[1]) else { return "indices are not constant" }
    guard let dims = data.shape?.staticSizes ?? data.constValue?.dims else { return "the data shape is not static" }
    let box: Box
    switch self.box(idx, dims: dims) {
    case .success(let b): box = b
    case .failure(let r): return r.text
    }
    let k = box.ranges.count
    let partial = (0..<k).filter { box.ranges[$0] != 0..<dims[$0] }
    guard partial.count <= 1 else {
      return "the block is partial on axes \(partial), not one axis (Concat can only join along one)"
    }
    let out = n.outputs[0]
    let blockDims = box.ranges.map(\.count) + dims[k...]
    let element = data.elementType ?? out.elementType
    func typed(_ v: Value, _ shape: [Int]) -> Value {
      if let e = element { v.type = .tensor(e, Shape(static: shape)) }
      return v
    }
    let prefix = n.name.isEmpty ? "" : n.name + "/"
    var created: [Node] = []
    // The updates as the block: idx.shape[:-1] + dims[k:] → box dims + dims[k:].
    var block = updates
    if updates.shape?.staticSizes != blockDims {
      let shape = g.int64Constant(blockDims.map(Int64.init), base: out.name + "_block_shape", names: names)
      block = typed(Value(name: names.fresh(out.name + "_block")), blockDims)
      created.append(Node("Reshape", name: prefix.isEmpty ? "" : prefix + "block", inputs: [updates, shape], outputs: [block]))
    }
    guard let axis = partial.first else {
      // The whole tensor is overwritten: the result is the block.
      for c in created { g.insert(c, before: n) }
      out.replaceAllUses(with: block)
      if g.outputs.contains(where: { $0 === out }) {
        n.opType = "Identity"; n.attributes = []; n.inputs = [block]
      } else {
        g.remove(n)
      }
      return nil
    }
    var parts: [Value] = []
    func slice(_ range: Range<Int>, _ tag: String) {
      guard !range.isEmpty else { return }
      var shape = dims
      shape[axis] = range.count
      let starts = g.int64Constant([Int64(range.lowerBound)], base: out.name + "_\(tag)_start", names: names)
      let ends = g.int64Constant([Int64(range.upperBound)], base: out.name + "_\(tag)_end", names: names)
      let axes = g.int64Constant([Int64(axis)], base: out.name + "_\(tag)_axis", names: names)
      let v = typed(Value(name: names.fresh(out.name + "_\(tag)")), shape)
      created.append(Node("Slice", name: prefix.isEmpty ? "" : prefix + tag, inputs: [data, starts, ends, axes], outputs: [v]))
      parts.append(v)
    }
    slice(0..<box.ranges[axis].lowerBound, "before")
    parts.append(block)
    slice(box.ranges[axis].upperBound..<dims[axis], "after")
    for c in created { g.insert(c, before: n) }
    n.opType = "Concat"
    n.attributes = [Attribute("axis", .int(Int64(axis)))]
    n.inputs = parts
    return nil
  }
}
