import Foundation
import ONNXGraph
import ONNXProto
import SwiftProtobuf

/// How `ModelWriter` lays out weights.
public struct SaveOptions: Sendable {
  public enum ExternalData: Sendable, Equatable {
    /// One file, unless it would pass protobuf's 2 GB limit; then as `.file(nil)`.
    case automatic
    /// Weights of at least `externalThreshold` bytes go to one data file beside the model,
    /// named `name` or, when nil, after the model file (`model.onnx.data`).
    case file(String?)
  }

  public var externalData: ExternalData = .automatic
  /// Smaller tensors stay inside the model file (onnx's own default threshold).
  public var externalThreshold = 1024
  public init(externalData: ExternalData = .automatic) { self.externalData = externalData }
}

/// What a save did.
public struct SaveReport: Sendable {
  public var modelBytes: Int
  /// The data file's name and size when weights were written externally.
  public var externalData: (name: String, bytes: Int)?
  /// true when external data was chosen because one file would pass 2 GB.
  public var switchedToExternalData: Bool
}

/// Saves a model, splicing unchanged weights straight from their mapped source files.
///
/// The structure (with markers in place of large `raw_data`) is encoded by swift-protobuf;
/// `WireRewriter` then recomputes the length prefixes for the real payloads and the file
/// is streamed out. Files are written under temporary names and renamed into place.
public enum ModelWriter {
  /// Protobuf cannot encode or parse a message of 2 GiB or more.
  static let protobufLimit = Int(Int32.max)
  /// Payloads at least this long are spliced instead of copied into the proto.
  static let spliceThreshold = 64

  @discardableResult
  public static func save(_ model: Model, to path: String, options: SaveOptions = .init()) throws
    -> SaveReport
  {
    if case .file(let name?) = options.externalData { try validateDataFileName(name, model: path) }
    var dataName: String? = nil
    if case .file(let name) = options.externalData { dataName = name ?? defaultDataName(path) }

    var layout = try encode(model, dataFile: dataName, options: options, path: path)
    var switched = false
    if dataName == nil && layout.plan.length > protobufLimit {
      dataName = defaultDataName(path)
      layout = try encode(model, dataFile: dataName, options: options, path: path)
      switched = true
    }
    guard layout.plan.length <= protobufLimit else {
      throw ModelFileError(
        file: path, "the model structure alone is \(layout.plan.length) bytes, over protobuf's 2 GB limit")
    }

    // Data file first, so the model never names a data file that is not there.
    var dataFile: AtomicFile? = nil
    var dataBytes = 0
    if let dataName, !layout.external.isEmpty {
      let dataPath = ((path as NSString).deletingLastPathComponent as NSString)
        .appendingPathComponent(dataName)
      let f = try AtomicFile(path: dataPath)
      var writer = LayoutWriter(path: dataPath, fd: f.fd)
      do {
        for (offset, bytes) in layout.external { try writer.append(bytes, at: offset) }
        try writer.finish()
      } catch let e as LayoutWriter.WriteError {
        throw ModelFileError(file: dataPath, "write failed: \(String(cString: strerror(e.errno)))")
      }
      dataBytes = writer.size
      dataFile = f
    }

    let out = try AtomicFile(path: path)
    var writer = LayoutWriter(path: path, fd: out.fd)
    do {
      try layout.structure.withUnsafeBytes { structure in
        for chunk in layout.plan.chunks {
          switch chunk {
          case .input(let s, let n):
            try writer.append(UnsafeRawBufferPointer(rebasing: structure[s..<(s + n)]))
          case .literal(let s, let n):
            try layout.plan.literals[s..<(s + n)].withUnsafeBytes { try writer.append($0) }
          case .splice(let id, _):
            try writer.append(layout.splices[id])
          }
        }
      }
      try writer.finish()
    } catch let e as LayoutWriter.WriteError {
      throw ModelFileError(file: path, "write failed: \(String(cString: strerror(e.errno)))")
    }
    try dataFile?.commit()
    try out.commit()
    return SaveReport(
      modelBytes: writer.size,
      externalData: dataFile == nil ? nil : (dataName!, dataBytes),
      switchedToExternalData: switched)
  }

  /// The encoded structure and what to splice into it.
  struct Layout {
    var structure: [UInt8]
    var plan: Wire.Plan
    var splices: [TensorBytes]
    var external: [(offset: Int, bytes: TensorBytes)]
  }

  static func encode(_ model: Model, dataFile: String?, options: SaveOptions, path: String) throws
    -> Layout
  {
    var dataOffset = 0
    let exporter = ProtoExporter { bytes in
      if let dataFile, bytes.count >= options.externalThreshold {
        let offset = align(dataOffset, for: bytes.count)
        dataOffset = offset + bytes.count
        return .external(location: dataFile, offset: offset)
      }
      if bytes.count >= spliceThreshold { return .splice }
      // A real payload that looks like a marker must not be mistaken for one.
      return bytes.withUnsafeBytes(RawDataMarker.looksLikeMarker) ? .splice : .inline
    }
    let structure: [UInt8]
    do {
      structure = try exporter.model(model).serializedBytes()
    } catch {
      throw ModelFileError(file: path, "cannot encode model: \(error)")
    }
    let splices = exporter.splices
    let plan = try structure.withUnsafeBytes { buffer in
      var rewriter = WireRewriter(input: buffer) { payload, buffer in
        let slot = RawDataMarker.slot(in: UnsafeRawBufferPointer(rebasing: buffer[payload]))
        return slot.map { .splice(id: $0, count: splices[$0].count) }
      }
      return try rewriter.rewriteModel()
    }
    return Layout(structure: structure, plan: plan, splices: splices, external: exporter.externalWrites)
  }

  /// Large tensors start on 64 KiB boundaries so runtimes can map them directly (64 KiB is
  /// Windows' mapping granularity, a multiple of every page size); small ones on 64 bytes.
  static func align(_ offset: Int, for count: Int) -> Int {
    let a = count >= 1 << 20 ? 1 << 16 : 64
    return (offset + a - 1) / a * a
  }

  static func defaultDataName(_ path: String) -> String {
    (path as NSString).lastPathComponent + ".data"
  }

  /// The data file is written beside the model and nowhere else.
  static func validateDataFileName(_ name: String, model path: String) throws {
    guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\\")
    else {
      throw ModelFileError(
        file: path, "external data name '\(name)' must be a plain file name (it is written beside the model)")
    }
    guard name != (path as NSString).lastPathComponent else {
      throw ModelFileError(file: path, "external data name '\(name)' is the model file itself")
    }
  }
}
