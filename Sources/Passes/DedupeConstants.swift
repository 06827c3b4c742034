import Foundation
import ONNXGraph

/// Merges initializers with identical type, shape and bytes into one.
///
/// TorchScript exports repeat the same small constants (axes, shapes, 1.0, -inf) once per
/// use; after folding there can be thousands. Only tensors up to `maxBytes` are compared,
/// so weights are never read (and never paged in) for this.
public struct DedupeConstants: GraphPass {
  public static let name = "dedupe-constants"
  public static let summary = "Share identical small initializers (up to 64 KiB each)."
  public static let maxBytes = 64 << 10
  public init() {}

  struct Key: Hashable {
    let dataType: DataType
    let dims: [Int]
    let bytes: Data
  }

  public func run(on model: Model, options: PassOptions) throws -> PassResult {
    var merged = 0
    for g in model.allGraphs {
      let signature = Set((g.inputs + g.outputs).map(ObjectIdentifier.init))
      var first: [Key: Value] = [:]
      for (name, v) in g.initializers {
        guard let t = v.constValue, let raw = t.rawBytes, raw.count <= Self.maxBytes,
          !signature.contains(ObjectIdentifier(v))
        else { continue }
        let key = Key(dataType: t.dataType, dims: t.dims, bytes: raw.data)
        if let keep = first[key] {
          v.replaceAllUses(with: keep)
          g.removeInitializer(named: name)
          merged += 1
        } else {
          first[key] = v
        }
      }
    }
    return PassResult(modified: merged > 0)
  }
}
