import ONNXGraph

/// Smaller per-op lowerings whose change the signature diff of `OpsetHistory` does not
/// show (a new attribute value, a changed default, a new meaning), or shows but is only
/// an attribute to drop.
enum LowerMisc {
  static func plan(_ n: Node, in g: Graph, names: NameScope, _ ctx: LegalizeContext) throws -> FamilyLowering? {
    switch n.opType {
    case "Reshape" where ctx.crosses("Reshape", 14):
      // allowzero=1 (dynamo writes it on every view) only differs when the shape has a 0.
      guard n[attribute: "allowzero"]?.int == 1 else { return nil }
      guard let shape = ctx.constantInts(n.inputs.count > 1 ? n.inputs[1] : nil, in: g), !shape.contains(0) else {
        return FamilyLowering(unsupported: "allowzero=1 needs opset 14 unless the shape is a constant without 0")
      }
      return FamilyLowering(handled: [14]) { n.attributes.removeAll { $0.name == "allowzero" } }
    case "Shape" where ctx.crosses("Shape", 15):
      // start/end (opset 15): the full shape, then a Slice of it.
      let start = n[attribute: "start"]?.int, end = n[attribute: "end"]?.int
      guard start != nil || end != nil else { return nil }
      return FamilyLowering(handled: [15]) {
        let out = n.outputs[0]
        let full = Value(name: names.fresh(out.name + "_full"))
        n.setOutput(0, full)
        n.attributes.removeAll { $0.name == "start" || $0.name == "end" }
        let slice = Node(
          "Slice", name: n.name.isEmpty ? "" : n.name + "/slice",
          inputs: [
            full, ctx.int64Initializer([start ?? 0], out.name + "_start", in: g, names: names),
            ctx.int64Initializer([end ?? Int64.max], out.name + "_end", in: g, names: names),
            ctx.int64Initializer([0], out.name + "_axis", in: g, names: names),
          ], outputs: [out])
        g.insert(slice, after: n)
      }
    case let op where (op == "Cast" || op == "CastLike") && ctx.crosses(op, 19):
      // saturate only affects float8 results, and float8 types are checked generically.
      guard n[attribute: "saturate"] != nil else { return FamilyLowering(handled: [19]) }
      return FamilyLowering(handled: [19]) { n.attributes.removeAll { $0.name == "saturate" } }
    case let op where ["Softmax", "LogSoftmax", "Hardmax"].contains(op) && ctx.crosses(op, 13):
      // Before 13 the op flattened to 2-D at `axis` (default 1); the two agree when the
      // axis is the last one, which is then written out.
      let axis = n[attribute: "axis"]?.int ?? -1
      guard let rank = (n.inputs.first ?? nil)?.shape?.rank else {
        return FamilyLowering(unsupported: "the input rank is not known; opset 13 changed what axis means")
      }
      guard axis == -1 || axis == Int64(rank - 1) else {
        return FamilyLowering(unsupported: "axis \(axis) is not the last axis; opset 13 changed what it means")
      }
      return FamilyLowering(handled: [13]) {
        n.attributes.removeAll { $0.name == "axis" }
        n.attributes.append(Attribute("axis", .int(Int64(rank - 1))))
      }
    case "GridSample" where ctx.crosses("GridSample", 20):
      // Opset 20 renamed the modes (bilinear -> linear, bicubic -> cubic) and allowed N-D.
      if let rank = (n.inputs.first ?? nil)?.shape?.rank, rank != 4 {
        return FamilyLowering(unsupported: "a rank-\(rank) input needs opset 20 (opset 16 takes 4-D only)")
      }
      let renamed = ["linear": "bilinear", "cubic": "bicubic"]
      let mode = n[attribute: "mode"]?.string ?? "linear"
      return FamilyLowering(handled: [20]) {
        n.attributes.removeAll { $0.name == "mode" }
        n.attributes.append(Attribute("mode", .string(renamed[mode] ?? mode)))
      }
    case "Resize" where ctx.crosses("Resize", 19):
      if n[attribute: "coordinate_transformation_mode"]?.string == "half_pixel_symmetric" {
        return FamilyLowering(unsupported: "coordinate_transformation_mode \"half_pixel_symmetric\" exists only from opset 19")
      }
      return FamilyLowering(handled: [19])
    case "RoiAlign" where ctx.crosses("RoiAlign", 16):
      // Opset 16 added coordinate_transformation_mode with a new default (half_pixel);
      // the old behaviour is "output_half_pixel".
      guard n[attribute: "coordinate_transformation_mode"]?.string == "output_half_pixel" else {
        return FamilyLowering(unsupported: "coordinate_transformation_mode is not \"output_half_pixel\", the only one before opset 16")
      }
      return FamilyLowering(handled: [16]) { n.attributes.removeAll { $0.name == "coordinate_transformation_mode" } }
    case let op where ["MaxPool", "AveragePool", "LpPool"].contains(op) && ctx.crosses(op, 22):
      // Opset 22 also fixed the ceil_mode output size (no window may start in the end
      // padding): with ceil_mode the older opsets may compute one more position.
      if n[attribute: "ceil_mode"]?.int == 1 {
        return FamilyLowering(unsupported: "ceil_mode=1 sizes the output by the rule of opset 22; older opsets may differ")
      }
      return FamilyLowering(handled: [])
    case "Mod" where ctx.crosses("Mod", 28):
      // Opset 28 allowed fmod=0 (floor modulo) on floats; before, only integers had it.
      let fmod = n[attribute: "fmod"]?.int ?? 0
      let isFloat = ctx.elementTypes(n).contains { [.float, .float16, .bfloat16, .double].contains($0) }
      if fmod == 0 && isFloat { return FamilyLowering(unsupported: "floor modulo (fmod=0) of floats exists only from opset 28") }
      return FamilyLowering(handled: [28])
    case "GroupNormalization" where ctx.crosses("GroupNormalization", 21):
      return FamilyLowering(unsupported: "opset 21 changed scale and bias from per-group to per-channel; no lowering is known")
    default:
      return nil
    }
  }
}

extension FamilyLowering {
  init(handled: Set<Int>, apply: @escaping () throws -> Void) {
    self.init(handled: handled, apply: apply, unsupported: nil)
  }
}
