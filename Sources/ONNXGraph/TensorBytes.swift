import Foundation

/// The `raw_data` bytes of a tensor: either owned, or a slice of a memory-mapped file.
///
/// Weights stay slices of the mapped model (or external-data) file until a rewrite
/// replaces them, so a load is O(structure) and a save can copy file-to-file.
public struct TensorBytes: @unchecked Sendable, Equatable {
  public enum Backing: @unchecked Sendable {
    case owned(Data)
    case mapped(MappedFile, offset: Int)
  }

  public let backing: Backing
  public let count: Int

  public init(_ data: Data) {
    backing = .owned(data)
    count = data.count
  }

  public init<S: Sequence>(bytes: S) where S.Element == UInt8 { self.init(Data(bytes)) }

  init(mapped file: MappedFile, offset: Int, count: Int) {
    backing = .mapped(file, offset: offset)
    self.count = count
  }

  /// The source file and offset when these bytes are an unchanged slice of a mapped file.
  public var mappedSource: (file: MappedFile, offset: Int)? {
    if case .mapped(let f, let o) = backing { (f, o) } else { nil }
  }

  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch backing {
    case .owned(let d):
      return try d.withUnsafeBytes(body)
    case .mapped(let f, let o):
      return try body(UnsafeRawBufferPointer(start: f.base.map { $0 + o }, count: count))
    }
  }

  /// The bytes as `Data`; no copy for mapped slices (the Data keeps the mapping alive).
  public var data: Data {
    switch backing {
    case .owned(let d):
      return d
    case .mapped(let f, let o):
      guard count > 0, let base = f.base else { return Data() }
      return Data(
        bytesNoCopy: UnsafeMutableRawPointer(mutating: base + o), count: count,
        deallocator: .custom { _, _ in withExtendedLifetime(f) {} })
    }
  }

  /// Reads the bytes as an array of a trivial type (little-endian, as ONNX stores them).
  public func array<T: BitwiseCopyable>(of: T.Type) -> [T] {
    withUnsafeBytes { raw in
      let n = raw.count / MemoryLayout<T>.stride
      return [T](unsafeUninitializedCapacity: n) { buf, initialized in
        if n > 0 {
          UnsafeMutableRawBufferPointer(buf).copyMemory(
            from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * MemoryLayout<T>.stride)]))
        }
        initialized = n
      }
    }
  }

  public static func == (a: TensorBytes, b: TensorBytes) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
  }
}
