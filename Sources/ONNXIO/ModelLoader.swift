import Foundation
import ONNXGraph
import ONNXProto
import SwiftProtobuf

/// Loads an ONNX model without copying its weights.
///
/// The file is memory-mapped; `WireRewriter` replaces every large `raw_data` with a
/// 16-byte marker, swift-protobuf decodes only that small structure, and each marker
/// becomes a slice of the mapping. External data is mapped the same way.
public enum ModelLoader {
  /// `raw_data` payloads at least this long stay in the mapped file.
  static let sliceThreshold = 64

  /// The newest IR version this build understands (from the pinned onnx.proto).
  public static let maxIRVersion = Int64(Onnx_Version.allCases.map(\.rawValue).max() ?? 0)

  public static func load(path: String) throws -> Model {
    if path.hasSuffix(".onnxtxt") { return try loadText(path: path) }
    let file: MappedFile
    do {
      file = try MappedFile(path: path)
    } catch let e as MappedFile.OpenError {
      throw ModelFileError(file: path, e.errno == ENOENT ? "no such file" : e.description)
    }
    guard file.size > 0 else { throw ModelFileError(file: path, "empty file, not an ONNX model") }

    var slots: [(offset: Int, count: Int)] = []
    let window = FileWindow(descriptor: file.descriptor, count: file.size)
    var rewriter = WireRewriter(input: window) { payload, input in
      guard payload.count >= sliceThreshold
        || (payload.count == RawDataMarker.size
          && input.bytes(payload).withUnsafeBytes(RawDataMarker.looksLikeMarker))
      else { return nil }
      slots.append((payload.lowerBound, payload.count))
      return .bytes(RawDataMarker.make(slot: slots.count - 1))
    }
    let plan: Wire.Plan
    do {
      plan = try rewriter.rewriteModel()
    } catch let e as Wire.MalformedError {
      throw ModelFileError(
        file: path, "not a valid ONNX protobuf (truncated or corrupt): \(e.reason) at byte \(e.offset)")
    }
    let structure = plan.materialize(input: &rewriter.input)

    let proto: Onnx_ModelProto
    do {
      var options = BinaryDecodingOptions()
      options.messageDepthLimit = 256
      proto = try Onnx_ModelProto(serializedBytes: structure, partial: true, options: options)
    } catch {
      throw ModelFileError(file: path, "not a valid ONNX protobuf (truncated or corrupt): \(error)")
    }
    guard proto.hasIrVersion, proto.hasGraph || !proto.functions.isEmpty else {
      throw ModelFileError(file: path, "not an ONNX model (no ir_version or graph)")
    }
    guard proto.irVersion >= 1, proto.irVersion <= maxIRVersion else {
      throw ModelFileError(
        file: path, "unsupported IR version \(proto.irVersion) (this build reads 1...\(maxIRVersion))")
    }
    let importer = ProtoImporter(
      modelPath: path, slots: slots, modelFile: file,
      externalData: ExternalDataResolver(modelPath: path))
    return try importer.model(proto)
  }
}

extension ModelLoader {
  /// A model written in ONNX text syntax (golden-test inputs, hand-written cases).
  static func loadText(path: String) throws -> Model {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw ModelFileError(file: path, FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file")
    }
    let proto: Onnx_ModelProto
    do {
      proto = try TextParser(file: path).parseModel(text)
    } catch let e as TextParser.ParseError {
      throw ModelFileError(file: "\(path):\(e.line):\(e.column)", e.message)
    }
    let importer = ProtoImporter(
      modelPath: path, slots: [], modelFile: nil, externalData: ExternalDataResolver(modelPath: path))
    return try importer.model(proto)
  }
}

extension Wire.Plan {
  /// The rewritten bytes in memory (only used for structures with no splices).
  func materialize<Input: WireInput>(input: inout Input) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(length)
    for c in chunks {
      switch c {
      case .input(let s, let n): out.append(contentsOf: input.bytes(s..<(s + n)))
      case .literal(let s, let n): out.append(contentsOf: literals[s..<(s + n)])
      case .splice: preconditionFailure("splices are written by ModelWriter")
      }
    }
    return out
  }
}
