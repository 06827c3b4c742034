import Foundation
import ONNXGraph

#if canImport(Glibc)
import Glibc
#endif

/// Resolves `external_data` locations of tensors to slices of memory-mapped files.
///
/// Locations come from the model file and are untrusted: only relative paths that stay
/// inside the model's folder (after following symlinks) are accepted, and every
/// offset/length must lie inside the file.
final class ExternalDataResolver {
  let modelPath: String
  let baseDirectory: String
  private lazy var realBase: String? = Self.realPath(baseDirectory)
  private var files: [String: MappedFile] = [:]

  init(modelPath: String) {
    self.modelPath = modelPath
    let dir = (modelPath as NSString).deletingLastPathComponent
    baseDirectory = dir.isEmpty ? "." : dir
  }

  /// Every distinct external file mapped so far.
  var mappedFiles: [MappedFile] { files.keys.sorted().compactMap { files[$0] } }

  func bytes(
    tensor: String, location: String, offset: Int64?, length: Int64?, expected: Int?
  ) throws -> TensorBytes {
    func fail(_ why: String) -> ModelFileError {
      ModelFileError(file: modelPath, "external data of tensor '\(tensor)': \(why)")
    }
    guard !location.isEmpty else { throw fail("empty location") }
    if location.hasPrefix("/") || location.hasPrefix("\\") || location.contains(":") {
      throw fail("location '\(location)' is absolute; only paths relative to the model's folder are allowed")
    }
    let parts = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
    if parts.contains(where: { $0 == ".." }) {
      throw fail("location '\(location)' escapes the model's folder ('..')")
    }
    let path = baseDirectory + "/" + location
    let file: MappedFile
    if let f = files[path] {
      file = f
    } else {
      guard let real = Self.realPath(path) else {
        throw fail("file '\(location)' not found next to the model")
      }
      guard let base = realBase, real.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
        throw fail("location '\(location)' resolves outside the model's folder (symlink to '\(real)')")
      }
      do {
        file = try MappedFile(path: real)
      } catch let e as MappedFile.OpenError {
        throw fail("'\(location)': \(e)")
      }
      files[path] = file
    }
    let start = offset ?? 0
    guard start >= 0, start <= Int64(file.size) else {
      throw fail("offset \(start) is past the end of '\(location)' (\(file.size) bytes)")
    }
    let count = length ?? (Int64(file.size) - start)
    guard count >= 0, count <= Int64(file.size) - start else {
      throw fail("offset \(start) + length \(count) is past the end of '\(location)' (\(file.size) bytes)")
    }
    if let expected, expected != Int(count) {
      throw fail("length \(count) does not match its type and shape (\(expected) bytes)")
    }
    return file.slice(offset: Int(start), count: Int(count))
  }

  static func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
  }
}
