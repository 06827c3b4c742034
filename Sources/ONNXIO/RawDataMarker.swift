/// The stand-in written in place of a large `raw_data` payload while the structure of a
/// model is decoded or encoded: 8 magic bytes and a little-endian slot index.
///
/// A real 16-byte `raw_data` that happens to start with the magic is always routed
/// through a slot too, so a marker is never mistaken for data.
enum RawDataMarker {
  static let magic: [UInt8] = [0x00, 0x6F, 0x6E, 0x6E, 0x78, 0x72, 0x77, 0xA5]  // "\0onnxrw\xa5"
  static let size = 16

  static func make(slot: Int) -> [UInt8] {
    var out = magic
    withUnsafeBytes(of: UInt64(slot).littleEndian) { out.append(contentsOf: $0) }
    return out
  }

  /// The slot index if `bytes` is a marker.
  static func slot(in bytes: UnsafeRawBufferPointer) -> Int? {
    guard bytes.count == size, bytes.prefix(magic.count).elementsEqual(magic) else { return nil }
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(bytes[8 + i]) << (8 * UInt64(i)) }
    return Int(v)
  }

  static func looksLikeMarker(_ bytes: UnsafeRawBufferPointer) -> Bool {
    bytes.count == size && bytes.prefix(magic.count).elementsEqual(magic)
  }
}
