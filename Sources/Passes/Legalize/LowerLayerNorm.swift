import Evaluation
import ONNXGraph

/// LayerNormalization (opset 17) for targets below 17, as the formula TorchScript wrote
/// before the op existed: (x - mean) / sqrt(var + epsilon) * scale + bias over the axes
/// from `axis` on. Native rather than a rule file: the ReduceMean form it writes (axes
/// attribute) and the axis list depend on the target opset and the input's rank.
/// float16/bfloat16 compute in float32 between Casts, as stash_type=1 specifies.
enum LowerLayerNorm {
  static func plan(_ n: Node, in g: Graph, names: NameScope, _ ctx: LegalizeContext) -> LoweringPlan {
    guard n.outputs.dropFirst().allSatisfy({ v in v.uses.isEmpty && !g.outputs.contains { $0 === v } }) else {
      return .unsupported("its Mean/InvStdDev outputs are read; only the normalized output can be lowered")
    }
    guard let x = n.inputs.first ?? nil, let scale = n.inputs.count > 1 ? n.inputs[1] : nil else {
      return .unsupported("has no input or no scale")
    }
    guard let type = x.constValue?.dataType ?? x.elementType, LegalizeHelpers.floatTypes.contains(type) else {
      return .unsupported("the input's element type is not a known float type")
    }
    let axis = n[attribute: "axis"]?.int ?? -1
    let axes: [Int64]
    if axis < 0 {
      axes = Array(axis...(-1))
    } else if let rank = x.shape?.rank ?? x.constValue?.dims.count {
      axes = Array(axis..<Int64(rank))
    } else {
      return .unsupported("axis \(axis) with an input of unknown rank")
    }
    let epsilon = Double(n[attribute: "epsilon"]?.float ?? 1e-5)
    let bias = n.inputs.count > 2 ? n.inputs[2] : nil
    let half = type == .float16 || type == .bfloat16
    let computeType: DataType = half ? .float : type
    return .rewrite {
      let base = n.outputs[0].name
      var created: [Node] = []
      func add(_ op: String, _ inputs: [Value?], _ attributes: [Attribute] = [], output: Value? = nil) -> Value {
        let out = output ?? Value(name: names.fresh("\(base)/\(op.lowercased())"))
        let node = Node(
          op, name: n.name.isEmpty ? "" : "\(n.name)/\(op)_\(created.count)", inputs: inputs, outputs: [out],
          attributes: attributes)
        created.append(node)
        return out
      }
      func scalar(_ v: Double) -> Value {
        let c = Value(name: names.fresh("\(base)/const"))
        g.addInitializer(c, HostTensor.scalar(computeType, v).tensor(name: c.name))
        return c
      }
      let y = n.outputs[0]
      n.setOutput(0, Value(name: names.fresh(base + "_replaced")))
      let u = half ? add("Cast", [x], [Attribute("to", .int(Int64(DataType.float.rawValue)))]) : x
      let reduce = [Attribute("axes", .ints(axes)), Attribute("keepdims", .int(1))]
      let mean = add("ReduceMean", [u], reduce)
      let d = add("Sub", [u, mean])
      let variance = add("ReduceMean", [add("Mul", [d, d])], reduce)
      let std = add("Sqrt", [add("Add", [variance, scalar(epsilon)])])
      var r = add("Div", [d, std])
      if half { r = add("Cast", [r], [Attribute("to", .int(Int64(type.rawValue)))]) }
      if let bias {
        _ = add("Add", [add("Mul", [r, scale]), bias], output: y)
      } else {
        _ = add("Mul", [r, scale], output: y)
      }
      for node in created { g.insert(node, before: n) }
      g.remove(n)
    }
  }
}
