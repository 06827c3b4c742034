import Foundation

/// Walks ONNX protobuf wire bytes along the only paths that can reach a `TensorProto`
/// and rewrites the `raw_data` payloads found there, fixing every enclosing length prefix.
///
/// Loading uses it to swap large `raw_data` for short markers (so swift-protobuf decodes
/// a structure of a few MB instead of copying every weight); saving uses it the other way,
/// to expand markers back into the weights, spliced from their mapped source files.
/// Everything off those paths is copied as opaque byte ranges without being parsed.
enum Wire {
  /// Message types on the paths to `TensorProto` (field numbers from onnx-ml.proto).
  enum MessageKind {
    case model, trainingInfo, graph, node, attribute, function, sparseTensor, tensor

    /// The kind of a length-delimited field that can lead to a tensor, if any.
    func child(_ field: UInt64) -> MessageKind? {
      switch (self, field) {
      case (.model, 7): .graph  // graph
      case (.model, 20): .trainingInfo  // training_info
      case (.model, 25): .function  // functions
      case (.trainingInfo, 1), (.trainingInfo, 2): .graph  // initialization, algorithm
      case (.graph, 1): .node  // node
      case (.graph, 5): .tensor  // initializer
      case (.graph, 15): .sparseTensor  // sparse_initializer
      case (.node, 5): .attribute  // attribute
      case (.attribute, 5), (.attribute, 10): .tensor  // t, tensors
      case (.attribute, 6), (.attribute, 11): .graph  // g, graphs
      case (.attribute, 22), (.attribute, 23): .sparseTensor  // sparse_tensor(s)
      case (.function, 7): .node  // node
      case (.function, 11): .attribute  // attribute_proto
      case (.sparseTensor, 1), (.sparseTensor, 2): .tensor  // values, indices
      default: nil
      }
    }
  }

  static let rawDataField: UInt64 = 9

  /// What to put in place of one `raw_data` payload.
  enum Replacement {
    /// New payload bytes.
    case bytes([UInt8])
    /// `count` bytes supplied by the writer from splice source `id`.
    case splice(id: Int, count: Int)
  }

  /// A piece of the rewritten stream.
  enum Chunk {
    /// Bytes `start..<start+count` of the input.
    case input(start: Int, count: Int)
    /// Bytes of `literals`.
    case literal(start: Int, count: Int)
    case splice(id: Int, count: Int)
  }

  struct Plan {
    var chunks: [Chunk] = []
    var literals: [UInt8] = []
    var length = 0
  }

  struct MalformedError: Error {
    let offset: Int
    let reason: String
  }

  /// Protobuf's own default recursion limit.
  static let maxDepth = 100
}

/// See `Wire`: rewrites the `raw_data` payloads of one serialized `ModelProto`.
struct WireRewriter<Input: WireInput> {
  typealias MessageKind = Wire.MessageKind
  typealias Replacement = Wire.Replacement
  typealias Chunk = Wire.Chunk
  typealias Plan = Wire.Plan
  typealias MalformedError = Wire.MalformedError
  var input: Input
  let replace: (_ payload: Range<Int>, _ input: inout Input) throws -> Replacement?
  private var literals: [UInt8] = []
  private var maxDepth: Int { Wire.maxDepth }
  private var rawDataField: UInt64 { Wire.rawDataField }

  init(input: Input, replace: @escaping (Range<Int>, inout Input) throws -> Replacement?) {
    self.input = input
    self.replace = replace
  }

  /// Rewrites a whole `ModelProto`.
  mutating func rewriteModel() throws -> Plan {
    let all = 0..<input.count
    guard let (chunks, length) = try rewrite(.model, all, depth: 0) else {
      return Plan(chunks: [.input(start: 0, count: input.count)], literals: [], length: input.count)
    }
    return Plan(chunks: chunks, literals: literals, length: length)
  }

  /// nil when nothing inside `range` changed, so the caller keeps the bytes as they are.
  private mutating func rewrite(_ kind: MessageKind, _ range: Range<Int>, depth: Int) throws -> (
    [Chunk], Int
  )? {
    guard depth < maxDepth else {
      throw MalformedError(offset: range.lowerBound, reason: "messages nested deeper than \(maxDepth)")
    }
    var chunks: [Chunk] = []
    var length = 0
    var changed = false
    var runStart = range.lowerBound  // start of the pending unchanged bytes
    var pos = range.lowerBound
    let end = range.upperBound

    func flushRun(to stop: Int, _ chunks: inout [Chunk], _ length: inout Int) {
      if stop > runStart {
        chunks.append(.input(start: runStart, count: stop - runStart))
        length += stop - runStart
      }
    }

    while pos < end {
      let fieldStart = pos
      let key = try readVarint(&pos, end)
      let field = key >> 3
      guard field != 0, field <= 0x1FFF_FFFF else {
        throw MalformedError(offset: fieldStart, reason: "invalid field number \(field)")
      }
      switch key & 7 {
      case 0: _ = try readVarint(&pos, end)
      case 1: try skip(&pos, 8, end)
      case 5: try skip(&pos, 4, end)
      case 2:
        let tagEnd = pos
        let n = try readVarint(&pos, end)
        guard n <= UInt64(end - pos) else {
          throw MalformedError(offset: fieldStart, reason: "field \(field) needs \(n) bytes, \(end - pos) left")
        }
        let payload = pos..<(pos + Int(n))
        pos = payload.upperBound
        if kind == .tensor && field == rawDataField {
          guard let r = try replace(payload, &input) else { continue }
          flushRun(to: fieldStart, &chunks, &length)
          changed = true
          switch r {
          case .bytes(let b):
            appendLiteral(input.bytes(fieldStart..<tagEnd) + varint(UInt64(b.count)) + b, &chunks, &length)
          case .splice(let id, let count):
            appendLiteral(input.bytes(fieldStart..<tagEnd) + varint(UInt64(count)), &chunks, &length)
            chunks.append(.splice(id: id, count: count))
            length += count
          }
          runStart = pos
        } else if let child = kind.child(field),
          let (sub, subLength) = try rewrite(child, payload, depth: depth + 1)
        {
          flushRun(to: fieldStart, &chunks, &length)
          changed = true
          appendLiteral(input.bytes(fieldStart..<tagEnd) + varint(UInt64(subLength)), &chunks, &length)
          chunks.append(contentsOf: sub)
          length += subLength
          runStart = pos
        }
      case 3, 4:
        throw MalformedError(offset: fieldStart, reason: "group fields (wire type \(key & 7)) are not used by ONNX")
      default:
        throw MalformedError(offset: fieldStart, reason: "invalid wire type \(key & 7)")
      }
    }
    guard changed else { return nil }
    flushRun(to: end, &chunks, &length)
    return (chunks, length)
  }

  private mutating func appendLiteral(_ bytes: [UInt8], _ chunks: inout [Chunk], _ length: inout Int) {
    chunks.append(.literal(start: literals.count, count: bytes.count))
    literals.append(contentsOf: bytes)
    length += bytes.count
  }

  private mutating func readVarint(_ pos: inout Int, _ end: Int) throws -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    let start = pos
    while true {
      guard pos < end else { throw MalformedError(offset: start, reason: "truncated varint") }
      let b = input.byte(at: pos)
      pos += 1
      guard shift < 64 else { throw MalformedError(offset: start, reason: "varint longer than 10 bytes") }
      result |= UInt64(b & 0x7f) << shift
      if b & 0x80 == 0 { return result }
      shift += 7
    }
  }

  private func skip(_ pos: inout Int, _ n: Int, _ end: Int) throws {
    guard end - pos >= n else { throw MalformedError(offset: pos, reason: "truncated fixed-size field") }
    pos += n
  }
}

/// Random access to the bytes being rewritten.
protocol WireInput {
  var count: Int { get }
  mutating func byte(at offset: Int) -> UInt8
  mutating func bytes(_ range: Range<Int>) -> [UInt8]
}

extension UnsafeRawBufferPointer: WireInput {
  func byte(at offset: Int) -> UInt8 { self[offset] }
  func bytes(_ range: Range<Int>) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: self[range])) }
}

/// Reads a file through a small window with `pread` instead of through its mapping.
///
/// Touching a mapped page-cache folio charges the whole folio (up to 2 MiB) to our RSS;
/// scanning a model's structure through the mapping would touch one beside every weight.
struct FileWindow: WireInput {
  let descriptor: Int32
  let count: Int
  private var window: [UInt8] = []
  private var windowStart = 0
  private static let windowSize = 1 << 16

  init(descriptor: Int32, count: Int) {
    self.descriptor = descriptor
    self.count = count
  }

  mutating func byte(at offset: Int) -> UInt8 {
    if offset < windowStart || offset >= windowStart + window.count { fill(at: offset) }
    return window[offset - windowStart]
  }

  mutating func bytes(_ range: Range<Int>) -> [UInt8] {
    if range.lowerBound >= windowStart && range.upperBound <= windowStart + window.count {
      return Array(window[(range.lowerBound - windowStart)..<(range.upperBound - windowStart)])
    }
    return Self.read(descriptor, range)
  }

  private mutating func fill(at offset: Int) {
    windowStart = offset
    window = Self.read(descriptor, offset..<min(count, offset + Self.windowSize))
  }

  /// Reads exactly `range` (callers stay inside the file, whose size was taken at open).
  static func read(_ fd: Int32, _ range: Range<Int>) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: range.count) { buf, initialized in
      var done = 0
      while done < range.count {
        let n = pread(fd, buf.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        done += n
      }
      // A file that shrank under us reads as zeros, which the decoder then rejects.
      if done < range.count { (buf.baseAddress! + done).initialize(repeating: 0, count: range.count - done) }
      initialized = range.count
    }
  }
}

/// Protobuf base-128 varint encoding.
func varint(_ value: UInt64) -> [UInt8] {
  var v = value
  var out: [UInt8] = []
  while v >= 0x80 {
    out.append(UInt8(v & 0x7f) | 0x80)
    v >>= 7
  }
  out.append(UInt8(v))
  return out
}
