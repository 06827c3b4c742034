import ONNXGraph

/// Removes Identity nodes, Casts to the type their input already has, and inference-mode
/// Dropout without a mask output, by reading their input directly.
///
/// Exporters leave them where a module returned its input; they cost a copy on devices.
/// One whose output is a graph output is kept unless its input can take that name
/// without clashing (a graph input or initializer keeps its own name).
public struct EliminateIdentity: GraphPass {
  public static let name = "eliminate-identity"
  public static let summary = "Remove Identity, no-op Cast and inference Dropout nodes."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var removed = 0
    for g in model.allGraphs {
      for n in g.nodes where isIdentity(n) {
        if let input = n.inputs[0], g.bypass(n, with: input) { removed += 1 }
      }
    }
    return PassResult(modified: removed > 0)
  }

  func isIdentity(_ n: Node) -> Bool {
    guard n.isDefaultDomain, n.inputs.first != nil else { return false }
    switch n.opType {
    case "Identity": return true
    case "Cast":
      // TorchScript casts float to float around every mask computation.
      guard let to = n[attribute: "to"]?.int, let from = n.inputs[0]?.elementType ?? n.inputs[0]?.constValue?.dataType
      else { return false }
      return Int64(from.rawValue) == to
    case "Dropout":
      // Only when no mask is read and training_mode is not a (possibly true) input.
      let maskUsed = n.outputs.count > 1 && !n.outputs[1].name.isEmpty
      let training = n.inputs.count > 2 && n.inputs[2] != nil
      return !maskUsed && !training
    default: return false
    }
  }
}
