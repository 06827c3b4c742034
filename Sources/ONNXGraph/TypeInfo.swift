/// The type of a value (`TypeProto`): a tensor with an element type and maybe a shape,
/// or one of ONNX's container types.
public struct TypeInfo: Hashable, Sendable, CustomStringConvertible {
  public indirect enum Kind: Hashable, Sendable {
    /// A `TypeProto` with no type set.
    case unspecified
    /// `shape == nil` means the rank is unknown.
    case tensor(DataType, Shape?)
    case sparseTensor(DataType, Shape?)
    case sequence(TypeInfo?)
    case map(key: DataType, value: TypeInfo?)
    case optional(TypeInfo?)
    case opaque(domain: String, name: String)
  }

  public var kind: Kind
  public var denotation: String

  public init(_ kind: Kind, denotation: String = "") {
    self.kind = kind
    self.denotation = denotation
  }

  public static func tensor(_ type: DataType, _ shape: Shape?) -> TypeInfo {
    TypeInfo(.tensor(type, shape))
  }

  /// Element type of a (sparse) tensor type.
  public var elementType: DataType? {
    switch kind {
    case .tensor(let t, _), .sparseTensor(let t, _): t
    default: nil
    }
  }

  /// Shape of a (sparse) tensor type, when its rank is known.
  public var shape: Shape? {
    get {
      switch kind {
      case .tensor(_, let s), .sparseTensor(_, let s): s
      default: nil
      }
    }
    set {
      switch kind {
      case .tensor(let t, _): kind = .tensor(t, newValue)
      case .sparseTensor(let t, _): kind = .sparseTensor(t, newValue)
      default: break
      }
    }
  }

  public var description: String {
    switch kind {
    case .unspecified: "?"
    case .tensor(let t, let s): t.name + (s?.description ?? "")
    case .sparseTensor(let t, let s): "sparse_tensor(\(t.name)\(s?.description ?? ""))"
    case .sequence(let e): "seq(\(e?.description ?? "?"))"
    case .map(let k, let v): "map(\(k.name), \(v?.description ?? "?"))"
    case .optional(let e): "optional(\(e?.description ?? "?"))"
    case .opaque(let d, let n): "opaque(\(d), \(n))"
    }
  }
}
