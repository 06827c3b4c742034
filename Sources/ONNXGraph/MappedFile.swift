#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory. Tensor bytes that come from a model file or an
/// external-data file are slices of one of these, so loading never copies weights and
/// saving can splice them straight from the source descriptor.
///
/// Immutable after init; the mapping lives as long as any slice references it.
public final class MappedFile: @unchecked Sendable {
  public let path: String
  /// Open read-only descriptor, kept for `copy_file_range` when saving.
  public let descriptor: Int32
  public let size: Int
  /// nil for an empty file (mmap of 0 bytes is an error).
  public let base: UnsafeRawPointer?

  public struct OpenError: Error, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    public let operation: String
    public var description: String {
      "cannot \(operation): \(String(cString: strerror(errno)))"
    }
  }

  public init(path: String) throws {
    self.path = path
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw OpenError(path: path, errno: errno, operation: "open") }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      let e = errno
      close(fd)
      throw OpenError(path: path, errno: e, operation: "stat")
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw OpenError(path: path, errno: EISDIR, operation: "read a regular file")
    }
    let size = Int(st.st_size)
    var base: UnsafeRawPointer? = nil
    if size > 0 {
      let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
      guard let p, p != MAP_FAILED else {
        let e = errno
        close(fd)
        throw OpenError(path: path, errno: e, operation: "map")
      }
      base = UnsafeRawPointer(p)
    }
    self.descriptor = fd
    self.size = size
    self.base = base
  }

  deinit {
    if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    close(descriptor)
  }

  /// The bytes of the whole file.
  public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

  /// A zero-copy slice; the caller checks bounds (`offset + count <= size`).
  public func slice(offset: Int, count: Int) -> TensorBytes {
    precondition(offset >= 0 && count >= 0 && offset + count <= size, "slice out of bounds")
    return TensorBytes(mapped: self, offset: offset, count: count)
  }
}
