import Foundation

/// A key/value pair of `metadata_props` (order and duplicates are kept).
public struct MetadataEntry: Hashable, Sendable {
  public var key: String
  public var value: String
  public init(_ key: String, _ value: String) {
    self.key = key
    self.value = value
  }
}

/// Where a tensor's elements live. `raw` is ONNX's `raw_data`; the typed cases are the
/// proto's repeated `*_data` fields, kept as they were so a round trip is lossless.
public enum TensorStorage: Sendable, Equatable {
  case raw(TensorBytes)
  /// `float_data`: float, complex64 (pairs).
  case floats([Float])
  /// `int32_data`: int32 and every narrower integer, bool, float16/bfloat16/float8 bit patterns.
  case int32s([Int32])
  case int64s([Int64])
  case doubles([Double])
  case uint64s([UInt64])
  case strings([Data])
  /// No data field at all (e.g. a zero-element tensor).
  case empty
}

/// A constant tensor (`TensorProto`): an initializer, or the value of a tensor attribute.
public struct Tensor: Sendable, Equatable {
  public var name: String
  public var dataType: DataType
  public var dims: [Int]
  public var storage: TensorStorage
  public var docString: String = ""
  /// `segment` (begin, end) of a chunked tensor; almost never present.
  public var segment: (begin: Int64, end: Int64)? = nil
  public var metadataProps: [MetadataEntry] = []
  /// Serialized proto fields this IR does not model (and unknown fields), written back unchanged.
  public var preservedFields = Data()

  public init(name: String = "", dataType: DataType, dims: [Int], storage: TensorStorage) {
    self.name = name
    self.dataType = dataType
    self.dims = dims
    self.storage = storage
  }

  /// A tensor from raw little-endian bytes.
  public init(name: String = "", dataType: DataType, dims: [Int], raw: Data) {
    self.init(name: name, dataType: dataType, dims: dims, storage: .raw(TensorBytes(raw)))
  }

  public var elementCount: Int { dims.reduce(1, *) }

  /// Bytes of the element data as stored in `raw_data` (0 for strings).
  public var byteCount: Int {
    if case .raw(let b) = storage { return b.count }
    return dataType.byteCount(elements: elementCount) ?? 0
  }

  /// The raw bytes when stored as `raw_data`.
  public var rawBytes: TensorBytes? {
    if case .raw(let b) = storage { b } else { nil }
  }

  public static func == (a: Tensor, b: Tensor) -> Bool {
    a.name == b.name && a.dataType == b.dataType && a.dims == b.dims && a.storage == b.storage
      && a.docString == b.docString && a.segment?.begin == b.segment?.begin
      && a.segment?.end == b.segment?.end && a.metadataProps == b.metadataProps
      && a.preservedFields == b.preservedFields
  }
}

/// A sparse tensor (`SparseTensorProto`).
public struct SparseTensor: Sendable, Equatable {
  public var values: Tensor
  public var indices: Tensor
  public var dims: [Int]
  public var preservedFields = Data()

  public init(values: Tensor, indices: Tensor, dims: [Int]) {
    self.values = values
    self.indices = indices
    self.dims = dims
  }
}
