import Evaluation
import ONNXGraph
import Rewrite

/// Rule helpers for `Rewrites/legalize`: the rule language has int64 `const([...])` but no
/// typed scalar, and a lowering like Gelu's formula needs its constants in the type it
/// computes in (a float32 constant beside a float16 tensor would not type-check), and the
/// ONNX code of a type for a `Cast <to = ...>` back.
enum LegalizeHelpers {
  static func register() {
    // scalar(type, c): a scalar tensor of the named element type ("float", "double", ...) holding c.
    RewriteHelpers.register("scalar") { args, _ in
      guard args.count == 2, case .string(let name) = args[0] else {
        throw HelperError("scalar takes a type name and a number")
      }
      guard let type = floatTypes.first(where: { $0.name == name }) else {
        throw HelperError("scalar: '\(name)' is not a float type")
      }
      switch args[1] {
      case .float(let f): return .tensor(HostTensor.scalar(type, f))
      case .int(let i): return .tensor(HostTensor.scalar(type, Double(i)))
      default: throw HelperError("scalar: \(args[1]) is not a number")
      }
    }
    // float_kind(v): "full" for float/double, "half" for float16/bfloat16 (formulas are
    // computed in float32 for those, as onnxruntime's own kernels do), else "none".
    RewriteHelpers.register("float_kind") { args, _ in
      guard args.count == 1, case .value(let v) = args[0] else { throw HelperError("float_kind takes a value") }
      switch v.constValue?.dataType ?? v.elementType {
      case .float?, .double?: return .string("full")
      case .float16?, .bfloat16?: return .string("half")
      default: return .string("none")
      }
    }
    // dtype_code(v): the TensorProto.DataType number of v's element type (Cast's `to`).
    RewriteHelpers.register("dtype_code") { args, _ in
      guard args.count == 1, case .value(let v) = args[0] else { throw HelperError("dtype_code takes a value") }
      guard let type = v.constValue?.dataType ?? v.elementType else {
        throw HelperError("the type of '\(v.name)' is not known")
      }
      return .int(Int64(type.rawValue))
    }
  }

  static let floatTypes: [DataType] = [.float, .double, .float16, .bfloat16]
}
