import Dispatch
import Foundation
import ONNXGraph

#if canImport(Glibc)
import Glibc
#endif

/// Writes a file whose layout is known up front: small pieces are gathered and written
/// in order, while large tensor payloads are copied file-to-file at their final offsets
/// with `copy_file_range` on every core (no trip through user space), falling back to
/// `pwrite` from the mapping where the kernel or file system cannot.
struct LayoutWriter {
  let path: String
  let fd: Int32
  private var pending: [UInt8] = []
  private var pendingOffset = 0
  private(set) var size = 0
  private var copies: [(offset: Int, bytes: TensorBytes)] = []

  init(path: String, fd: Int32) {
    self.path = path
    self.fd = fd
  }

  struct WriteError: Error { let errno: Int32 }

  /// Appends bytes at the current end.
  mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
    if pending.count >= 1 << 20 { try flushPending() }
    if pending.isEmpty { pendingOffset = size }
    pending.append(contentsOf: bytes)
    size += bytes.count
  }

  mutating func append(_ tensorBytes: TensorBytes) throws {
    try append(tensorBytes, at: size)
  }

  /// Places tensor bytes at `offset` (at or past the end; a gap reads as zeros).
  mutating func append(_ tensorBytes: TensorBytes, at offset: Int) throws {
    precondition(offset >= size)
    if tensorBytes.count < 1 << 16 && offset == size {
      // Small mapped tensors are read with pread, not through the mapping: touching the
      // mapping would charge a whole page-cache folio (up to 2 MiB) to RSS per tensor.
      if let (file, source) = tensorBytes.mappedSource {
        let bytes = FileWindow.read(file.descriptor, source..<(source + tensorBytes.count))
        try bytes.withUnsafeBytes { try append($0) }
      } else {
        try tensorBytes.withUnsafeBytes { try append($0) }
      }
      return
    }
    try flushPending()
    copies.append((offset, tensorBytes))
    size = offset + tensorBytes.count
  }

  /// Writes everything out; the file then has exactly `size` bytes.
  mutating func finish() throws {
    try flushPending()
    guard ftruncate(fd, off_t(size)) == 0 else { throw WriteError(errno: errno) }
    let copies = self.copies
    let fd = self.fd
    let failure = FirstError()
    // Largest first so the cores finish together.
    let order = copies.indices.sorted { copies[$0].bytes.count > copies[$1].bytes.count }
    DispatchQueue.concurrentPerform(iterations: order.count) { i in
      let (offset, bytes) = copies[order[i]]
      do { try Self.copy(bytes, to: fd, at: offset) } catch { failure.record(error) }
    }
    if let e = failure.error { throw e }
  }

  private mutating func flushPending() throws {
    guard !pending.isEmpty else { return }
    try pending.withUnsafeBytes { try Self.pwriteAll(fd, $0, at: pendingOffset) }
    pending.removeAll(keepingCapacity: true)
  }

  private static func copy(_ bytes: TensorBytes, to fd: Int32, at offset: Int) throws {
    guard let (file, source) = bytes.mappedSource else {
      return try bytes.withUnsafeBytes { try pwriteAll(fd, $0, at: offset) }
    }
    if try copyFileRange(from: file.descriptor, at: source, to: fd, at: offset, count: bytes.count) { return }
    // Across file systems: copy through a small buffer rather than the mapping, so the
    // source's page-cache folios are not charged to our RSS.
    let chunk = 4 << 20
    var done = 0
    while done < bytes.count {
      let n = min(chunk, bytes.count - done)
      let buffer = FileWindow.read(file.descriptor, (source + done)..<(source + done + n))
      try buffer.withUnsafeBytes { try pwriteAll(fd, $0, at: offset + done) }
      done += n
    }
  }

  private static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
    var done = 0
    while done < bytes.count {
      let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
      if n < 0 {
        if errno == EINTR { continue }
        throw WriteError(errno: errno)
      }
      done += n
    }
  }

  /// false when copy_file_range is unavailable for these files (nothing was written then).
  private static func copyFileRange(
    from source: Int32, at sourceOffset: Int, to fd: Int32, at offset: Int, count: Int
  ) throws -> Bool {
    guard let copy = copyFileRangeFunction else { return false }
    var src = Int64(sourceOffset)
    var dst = Int64(offset)
    var left = count
    while left > 0 {
      let n = copy(source, &src, fd, &dst, left, 0)
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

/// The first error of several concurrent copies.
private final class FirstError: @unchecked Sendable {
  private let lock = NSLock()
  private(set) var error: Error?
  func record(_ e: Error) {
    lock.lock()
    if error == nil { error = e }
    lock.unlock()
  }
}

/// A file written under a temporary name in its destination folder and renamed into place
/// only when complete, so a failed save never leaves a partial output.
final class AtomicFile {
  let finalPath: String
  let tempPath: String
  let fd: Int32
  private var closed = false
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
    closed = true
    guard close(fd) == 0 else {
      throw ModelFileError(file: finalPath, "cannot finish writing: \(String(cString: strerror(errno)))")
    }
    guard rename(tempPath, finalPath) == 0 else {
      throw ModelFileError(file: finalPath, "cannot rename into place: \(String(cString: strerror(errno)))")
    }
    committed = true
  }

  deinit {
    if !closed { close(fd) }
    if !committed { unlink(tempPath) }
  }
}
