import Evaluation
import Foundation
import ONNXGraph

/// Removes nodes that, with static shapes, return their input unchanged, and merges
/// chains of reshapes into one.
///
/// After `static-shape` an export is full of them: Reshape/Expand/Squeeze/Unsqueeze to
/// the shape the tensor already has, full-range Slices, identity Transposes, zero Pads,
/// `x + 0` and `x * 1` from scaling code, and Reshape∘Reshape from view chains. Each is
/// a copy (or a launch) on a device. Every test is on static types, so nothing whose
/// shape could differ at run time is touched.
public struct EliminateNoOps: GraphPass {
  public static let name = "eliminate-noops"
  public static let summary = "Remove ops that return their input unchanged; merge reshape chains (static shapes)."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var changed = 0
    for g in model.allGraphs {
      let names = NameScope(g)
      for n in g.nodes where n.isDefaultDomain {
        if let input = passThrough(n), g.bypass(n, with: input) {
          changed += 1
        } else if mergeReshapeChain(n, in: g, names: names) {
          changed += 1
        }
      }
    }
    if changed > 0 { DeadCodeElimination().sweep(model.graph, keepInitializers: false) }
    return PassResult(modified: changed > 0)
  }

  /// The input this node returns unchanged, if it does.
  func passThrough(_ n: Node) -> Value? {
    guard let x = n.inputs.first ?? nil, n.outputs.count >= 1 else { return nil }
    let out = n.outputs[0]
    switch n.opType {
    case "Reshape", "Expand", "Squeeze", "Unsqueeze", "Flatten", "Tile":
      return sameStaticType(x, out) ? x : nil
    case "Slice":
      let steps = n.inputs.count > 4 ? constantInts(n.inputs[4]) : []
      return sameStaticType(x, out) && steps.map { $0.allSatisfy { $0 > 0 } } == true ? x : nil
    case "Transpose":
      guard sameStaticType(x, out), let rank = x.shape?.rank else { return nil }
      let perm = n[attribute: "perm"]?.ints ?? (0..<Int64(rank)).reversed()
      return perm == Array(0..<Int64(rank)) ? x : nil
    case "Pad":
      let pads = n.inputs.count > 1 ? constantInts(n.inputs[1]) : n[attribute: "pads"]?.ints
      return sameStaticType(x, out) && pads?.allSatisfy({ $0 == 0 }) == true ? x : nil
    case "Add", "Sub", "Mul", "Div", "Pow":
      // The unit may only stand second for Sub, Div and Pow.
      let unit: Double = n.opType == "Add" || n.opType == "Sub" ? 0 : 1
      let commutative = n.opType == "Add" || n.opType == "Mul"
      for (data, other) in [(0, 1), (1, 0)] where data == 0 || commutative {
        guard n.inputs.count == 2, let d = n.inputs[data], let c = n.inputs[other] else { continue }
        if sameStaticType(d, out), isUniform(c, unit) { return d }
      }
      return nil
    default:
      return nil
    }
  }

  /// Reshape(view(x)) → Reshape(x, static output shape), where `view` only reinterprets
  /// dims (Reshape, Flatten, Squeeze, Unsqueeze) and nothing else reads its result.
  func mergeReshapeChain(_ n: Node, in g: Graph, names: NameScope) -> Bool {
    guard n.opType == "Reshape", let mid = n.inputs[0], mid.uses.count == 1,
      !g.outputs.contains(where: { $0 === mid }),
      let producer = mid.producer, producer.graph === g, producer.isDefaultDomain,
      ["Reshape", "Flatten", "Squeeze", "Unsqueeze"].contains(producer.opType),
      let source = producer.inputs[0], let sizes = n.outputs[0].shape?.staticSizes
    else { return false }
    let shape = Value(name: names.fresh(n.outputs[0].name + "_shape"))
    g.addInitializer(shape, HostTensor.int64s(sizes.map(Int64.init)).tensor(name: shape.name))
    n.inputs = [source, shape]
    n.attributes.removeAll { $0.name == "allowzero" }
    return true
  }

  func sameStaticType(_ a: Value, _ b: Value) -> Bool {
    guard let ta = staticType(a), let tb = staticType(b) else { return false }
    return ta.0 == tb.0 && ta.1 == tb.1 && !ta.1.contains(0)
  }

  func staticType(_ v: Value) -> (DataType, [Int])? {
    if let t = v.constValue { return (t.dataType, t.dims) }
    guard let e = v.elementType, let s = v.shape?.staticSizes else { return nil }
    return (e, s)
  }

  func constantInts(_ v: Value?) -> [Int64]? {
    guard let t = v?.constValue else { return nil }
    return try? HostTensor(t).int64s
  }

  /// A constant whose every element equals `unit` (small ones only: never pages in weights).
  func isUniform(_ v: Value, _ unit: Double) -> Bool {
    guard let t = v.constValue, t.byteCount <= 1 << 16, let h = try? HostTensor(t), h.isFloat || unit == unit.rounded()
    else { return false }
    return h.doubles.allSatisfy { $0 == unit }
  }
}
