import Foundation
import ONNXGraph

#if canImport(Glibc)
import Glibc
#endif

/// A buffered writer to a file descriptor that copies mapped tensor bytes file-to-file
/// with `copy_file_range` (no trip through user space), falling back to `write` from the
/// mapping where the kernel or file system cannot.
struct FileSink {
  let path: String
  let fd: Int32
  private var buffer: [UInt8] = []
  private(set) var written = 0
  private static let bufferSize = 1 << 20

  init(path: String, fd: Int32) {
    self.path = path
    self.fd = fd
    buffer.reserveCapacity(Self.bufferSize)
  }

  struct WriteError: Error { let errno: Int32 }

  mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
    if buffer.count + bytes.count > Self.bufferSize { try flush() }
    if bytes.count >= Self.bufferSize {
      try writeAll(bytes)
    } else {
      buffer.append(contentsOf: bytes)
    }
    written += bytes.count
  }

  mutating func write(_ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try write($0) }
  }

  mutating func writeZeros(_ n: Int) throws {
    try write([UInt8](repeating: 0, count: n))
  }

  mutating func write(_ tensorBytes: TensorBytes) throws {
    if let (file, offset) = tensorBytes.mappedSource, tensorBytes.count >= 1 << 16 {
      try flush()
      if try copyFileRange(from: file.descriptor, offset: offset, count: tensorBytes.count) {
        written += tensorBytes.count
        return
      }
    }
    try tensorBytes.withUnsafeBytes { try write($0) }
  }

  mutating func flush() throws {
    guard !buffer.isEmpty else { return }
    try buffer.withUnsafeBytes { try writeAll($0) }
    buffer.removeAll(keepingCapacity: true)
  }

  private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
    var done = 0
    while done < bytes.count {
      let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
      if n < 0 {
        if errno == EINTR { continue }
        throw WriteError(errno: errno)
      }
      done += n
    }
  }

  /// false when copy_file_range is unavailable for these files (nothing was written then).
  private func copyFileRange(from source: Int32, offset: Int, count: Int) throws -> Bool {
    guard let copy = Self.copyFileRangeFunction else { return false }
    var off = Int64(offset)
    var left = count
    while left > 0 {
      let n = copy(source, &off, fd, nil, left, 0)
      if n < 0 {
        let e = errno
        if e == EINTR { continue }
        if left == count, [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(e) { return false }
        throw WriteError(errno: e)
      }
      if n == 0 { throw WriteError(errno: EIO) }  // source shorter than its mapping said
      left -= n
    }
    return true
  }

  private typealias CopyFileRange = @convention(c) (
    Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
  ) -> Int

  // Glibc's Swift overlay does not export copy_file_range (it sits behind _GNU_SOURCE).
  private static let copyFileRangeFunction: CopyFileRange? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
    return unsafeBitCast(sym, to: CopyFileRange.self)
  }()
}

/// A file written under a temporary name in its destination folder and renamed into place
/// only when complete, so a failed save never leaves a partial output.
final class AtomicFile {
  let finalPath: String
  let tempPath: String
  let fd: Int32
  private var committed = false

  init(path: String) throws {
    finalPath = path
    let dir = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    var template = Array(((dir.isEmpty ? "." : dir) + "/.\(base).tmp-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else {
      let why = errno == ENOENT ? "no such folder" : String(cString: strerror(errno))
      throw ModelFileError(file: path, "cannot create output: \(why)")
    }
    fchmod(fd, 0o644)
    self.fd = fd
    tempPath = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
  }

  func commit() throws {
    guard close(fd) == 0 else { throw ModelFileError(file: finalPath, "cannot finish writing: \(String(cString: strerror(errno)))") }
    guard rename(tempPath, finalPath) == 0 else {
      throw ModelFileError(file: finalPath, "cannot rename into place: \(String(cString: strerror(errno)))")
    }
    committed = true
  }

  deinit {
    if !committed {
      close(fd)
      unlink(tempPath)
    }
  }
}
