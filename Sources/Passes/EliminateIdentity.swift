import ONNXGraph

/// Removes Identity nodes (and inference-mode Dropout without a mask output) by reading
/// their input directly.
///
/// Exporters leave them where a module returned its input; they cost a copy on devices.
/// One whose output is a graph output is kept unless its input can take that name
/// without clashing (a graph input or initializer keeps its own name).
public struct EliminateIdentity: GraphPass {
  public static let name = "eliminate-identity"
  public static let summary = "Remove Identity and inference Dropout nodes."
  public init() {}

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var removed = 0
    for g in model.allGraphs {
      let outputs = Set(g.outputs.map(ObjectIdentifier.init))
      for n in g.nodes where isIdentity(n) {
        guard let input = n.inputs[0] else { continue }
        let out = n.outputs[0]
        if outputs.contains(ObjectIdentifier(out)) {
          // Rename the producer's output instead, when it is an ordinary node output
          // read by nothing else.
          guard let producer = input.producer, producer.graph === g, input.uses.count == 1,
            !outputs.contains(ObjectIdentifier(input))
          else { continue }
          g.remove(n)
          input.name = out.name
          input.type = out.type ?? input.type
          g.replaceAllUses(of: out, with: input)
        } else {
          out.replaceAllUses(with: input)
          g.remove(n)
        }
        removed += 1
      }
    }
    return PassResult(modified: removed > 0)
  }

  func isIdentity(_ n: Node) -> Bool {
    guard n.isDefaultDomain, n.inputs.first != nil else { return false }
    switch n.opType {
    case "Identity": return true
    case "Dropout":
      // Only when no mask is read and training_mode is not a (possibly true) input.
      let maskUsed = n.outputs.count > 1 && !n.outputs[1].name.isEmpty
      let training = n.inputs.count > 2 && n.inputs[2] != nil
      return !maskUsed && !training
    default: return false
    }
  }
}
