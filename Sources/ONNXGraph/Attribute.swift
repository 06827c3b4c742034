import Foundation

/// A node attribute (`AttributeProto`).
public struct Attribute {
  public var name: String
  public var value: AttributeValue
  /// In a function body: the name of the function attribute this one refers to
  /// (`alpha = @alpha`). Then `value` only carries the type.
  public var refAttrName: String = ""
  public var docString: String = ""
  /// Serialized proto fields this IR does not model (and unknown fields), written back unchanged.
  public var preservedFields = Data()

  public init(_ name: String, _ value: AttributeValue) {
    self.name = name
    self.value = value
  }

  public var isReference: Bool { !refAttrName.isEmpty }
}

public enum AttributeValue {
  /// The attribute's type is `UNDEFINED`.
  case undefined
  case float(Float)
  case int(Int64)
  /// Bytes, as ONNX stores them (UTF-8 by convention, not by rule).
  case string(Data)
  case tensor(Tensor)
  case graph(Graph)
  case sparseTensor(SparseTensor)
  case type(TypeInfo)
  case floats([Float])
  case ints([Int64])
  case strings([Data])
  case tensors([Tensor])
  case graphs([Graph])
  case sparseTensors([SparseTensor])
  case types([TypeInfo])

  public var int: Int64? { if case .int(let v) = self { v } else { nil } }
  public var float: Float? { if case .float(let v) = self { v } else { nil } }
  public var ints: [Int64]? { if case .ints(let v) = self { v } else { nil } }
  public var floats: [Float]? { if case .floats(let v) = self { v } else { nil } }
  public var tensor: Tensor? { if case .tensor(let v) = self { v } else { nil } }
  public var string: String? {
    if case .string(let d) = self { String(decoding: d, as: UTF8.self) } else { nil }
  }

  /// Sub-graphs held by this value (If/Loop/Scan bodies).
  public var subgraphs: [Graph] {
    switch self {
    case .graph(let g): [g]
    case .graphs(let gs): gs
    default: []
    }
  }
}

extension AttributeValue {
  public static func string(_ s: String) -> AttributeValue { .string(Data(s.utf8)) }
}
