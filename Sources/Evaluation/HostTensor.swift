import Foundation
import ONNXGraph

/// A constant tensor decoded into host memory for the constant evaluator.
///
/// Floating-point types are held as `Double` and rounded to their element type after
/// every kernel (`rounded()`), which reproduces float32/float16/bfloat16 arithmetic for
/// + - * / and sqrt exactly and transcendental functions to within one ulp. Integers and
/// bools are held as `Int64` (uint64 above 2^63 wraps, as in its bit pattern).
public struct HostTensor: Equatable, Sendable {
  public enum Storage: Equatable, Sendable {
    case float([Double])
    case int([Int64])
    case string([Data])
  }

  public var dataType: DataType
  public var shape: [Int]
  public var storage: Storage

  public init(_ dataType: DataType, _ shape: [Int], _ storage: Storage) {
    self.dataType = dataType
    self.shape = shape
    self.storage = storage
  }

  public init(_ dataType: DataType, _ shape: [Int], floats: [Double]) {
    self.init(dataType, shape, .float(floats))
    self = rounded()
  }

  public init(_ dataType: DataType, _ shape: [Int], ints: [Int64]) {
    self.init(dataType, shape, .int(ints))
    self = rounded()
  }

  /// An int64 vector (shapes, axes, indices).
  public static func int64s(_ values: [Int64]) -> HostTensor { HostTensor(.int64, [values.count], .int(values)) }
  public static func scalar(_ dataType: DataType, _ value: Double) -> HostTensor {
    HostTensor.isFloat(dataType)
      ? HostTensor(dataType, [], floats: [value]) : HostTensor(dataType, [], ints: [Int64(value)])
  }

  public var count: Int { shape.reduce(1, *) }
  public var rank: Int { shape.count }

  public var doubles: [Double] {
    switch storage {
    case .float(let v): v
    case .int(let v): v.map(Double.init)
    case .string: []
    }
  }

  public var int64s: [Int64] {
    switch storage {
    case .float(let v): v.map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? 0 : 0 }
    case .int(let v): v
    case .string: []
    }
  }

  public var isFloat: Bool { Self.isFloat(dataType) }

  static func isFloat(_ t: DataType) -> Bool {
    t == .float || t == .float16 || t == .bfloat16 || t == .double
  }

  /// Element types the evaluator can hold.
  public static func supports(_ t: DataType) -> Bool {
    isFloat(t) || t == .string || t == .bool || integerRange(t) != nil
  }

  static func integerRange(_ t: DataType) -> ClosedRange<Int64>? {
    switch t {
    case .int8: Int64(Int8.min)...Int64(Int8.max)
    case .uint8: 0...Int64(UInt8.max)
    case .int16: Int64(Int16.min)...Int64(Int16.max)
    case .uint16: 0...Int64(UInt16.max)
    case .int32: Int64(Int32.min)...Int64(Int32.max)
    case .uint32: 0...Int64(UInt32.max)
    case .int64, .uint64: Int64.min...Int64.max
    case .bool: 0...1
    default: nil
    }
  }

  /// Values rounded (floats) or wrapped (integers) to the element type.
  public func rounded() -> HostTensor {
    var out = self
    switch storage {
    case .float(let v):
      switch dataType {
      case .float: out.storage = .float(v.map { Double(Float($0)) })
      case .float16: out.storage = .float(v.map { Double(Float(Float16(Float($0)))) })
      case .bfloat16: out.storage = .float(v.map { Double(Self.bfloat16Round(Float($0))) })
      default: break
      }
    case .int(let v):
      switch dataType {
      case .bool: out.storage = .int(v.map { $0 != 0 ? 1 : 0 })
      case .int8: out.storage = .int(v.map { Int64(Int8(truncatingIfNeeded: $0)) })
      case .uint8: out.storage = .int(v.map { Int64(UInt8(truncatingIfNeeded: $0)) })
      case .int16: out.storage = .int(v.map { Int64(Int16(truncatingIfNeeded: $0)) })
      case .uint16: out.storage = .int(v.map { Int64(UInt16(truncatingIfNeeded: $0)) })
      case .int32: out.storage = .int(v.map { Int64(Int32(truncatingIfNeeded: $0)) })
      case .uint32: out.storage = .int(v.map { Int64(UInt32(truncatingIfNeeded: $0)) })
      default: break
      }
    case .string: break
    }
    return out
  }

  /// Round-to-nearest-even to bfloat16, returned as the float it represents.
  static func bfloat16Round(_ f: Float) -> Float {
    if f.isNaN { return f }
    let bits = f.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
    return Float(bitPattern: rounded)
  }

  /// A tensor of the same shape with other values of another type.
  public func with(_ dataType: DataType, floats: [Double]) -> HostTensor {
    HostTensor(dataType, shape, floats: floats)
  }
  public func with(_ dataType: DataType, ints: [Int64]) -> HostTensor {
    HostTensor(dataType, shape, ints: ints)
  }
}

// MARK: - Decoding from and encoding to graph tensors

extension HostTensor {
  public struct UnsupportedType: Error, CustomStringConvertible {
    public let dataType: DataType
    public var description: String { "the constant evaluator does not handle \(dataType.name) tensors" }
  }

  /// Decodes a graph tensor (any storage ONNX allows for these types).
  public init(_ t: Tensor) throws {
    let dt = t.dataType
    guard Self.supports(dt) else { throw UnsupportedType(dataType: dt) }
    let n = t.elementCount
    dataType = dt
    shape = t.dims
    switch t.storage {
    case .raw(let bytes):
      storage = try Self.decodeRaw(bytes, dt, n)
    case .floats(let v): storage = .float(v.map(Double.init))
    case .doubles(let v): storage = .float(v)
    case .int64s(let v): storage = .int(v)
    case .uint64s(let v): storage = .int(v.map { Int64(bitPattern: $0) })
    case .strings(let v): storage = .string(v)
    case .int32s(let v):
      // int32_data holds the bit patterns of 16-bit floats.
      switch dt {
      case .float16: storage = .float(v.map { Double(Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0)))) })
      case .bfloat16: storage = .float(v.map { Double(Float(bitPattern: UInt32(UInt16(truncatingIfNeeded: $0)) << 16)) })
      default: storage = Self.isFloat(dt) ? .float(v.map(Double.init)) : .int(v.map(Int64.init))
      }
    case .empty:
      storage = dt == .string ? .string([]) : Self.isFloat(dt) ? .float([]) : .int([])
    }
    let got: Int
    switch storage {
    case .float(let v): got = v.count
    case .int(let v): got = v.count
    case .string(let v): got = v.count
    }
    guard got == n else { throw DecodeError(expected: n, got: got) }
  }

  public struct DecodeError: Error, CustomStringConvertible {
    public let expected: Int, got: Int
    public var description: String { "tensor holds \(got) elements, its shape says \(expected)" }
  }

  static func decodeRaw(_ bytes: TensorBytes, _ dt: DataType, _ n: Int) throws -> Storage {
    func read<T: BitwiseCopyable>(_: T.Type) throws -> [T] {
      guard bytes.count == n * MemoryLayout<T>.size else {
        throw DecodeError(expected: n, got: bytes.count / max(MemoryLayout<T>.size, 1))
      }
      return bytes.array(of: T.self)
    }
    switch dt {
    case .float: return .float(try read(Float.self).map(Double.init))
    case .double: return .float(try read(Double.self))
    case .float16: return .float(try read(UInt16.self).map { Double(Float(Float16(bitPattern: $0))) })
    case .bfloat16: return .float(try read(UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) })
    case .int8: return .int(try read(Int8.self).map(Int64.init))
    case .uint8, .bool: return .int(try read(UInt8.self).map(Int64.init))
    case .int16: return .int(try read(Int16.self).map(Int64.init))
    case .uint16: return .int(try read(UInt16.self).map(Int64.init))
    case .int32: return .int(try read(Int32.self).map(Int64.init))
    case .uint32: return .int(try read(UInt32.self).map(Int64.init))
    case .int64: return .int(try read(Int64.self))
    case .uint64: return .int(try read(UInt64.self).map { Int64(bitPattern: $0) })
    default: throw UnsupportedType(dataType: dt)
    }
  }

  /// Encodes as `raw_data` (strings as `string_data`), the form exporters write.
  public func tensor(name: String) -> Tensor {
    func raw<T>(_ values: [T]) -> Tensor {
      Tensor(name: name, dataType: dataType, dims: shape, raw: values.withUnsafeBytes { Data($0) })
    }
    switch storage {
    case .string(let v):
      return Tensor(name: name, dataType: dataType, dims: shape, storage: .strings(v))
    case .float(let v):
      switch dataType {
      case .double: return raw(v)
      case .float16: return raw(v.map { Float16(Float($0)).bitPattern })
      case .bfloat16: return raw(v.map { UInt16(Float($0).bitPattern >> 16) })
      default: return raw(v.map { Float($0) })
      }
    case .int(let v):
      switch dataType {
      case .int8: return raw(v.map { Int8(truncatingIfNeeded: $0) })
      case .uint8, .bool: return raw(v.map { UInt8(truncatingIfNeeded: $0) })
      case .int16: return raw(v.map { Int16(truncatingIfNeeded: $0) })
      case .uint16: return raw(v.map { UInt16(truncatingIfNeeded: $0) })
      case .int32: return raw(v.map { Int32(truncatingIfNeeded: $0) })
      case .uint32: return raw(v.map { UInt32(truncatingIfNeeded: $0) })
      default: return raw(v)
      }
    }
  }

  /// Bytes this tensor takes once encoded.
  public var byteCount: Int { dataType.byteCount(elements: count) ?? count * 16 }
}
