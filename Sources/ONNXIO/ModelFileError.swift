/// A model file that cannot be read or written, with the file and the cause in one line:
/// `model.onnx: truncated: field 7 needs 1024 bytes, 12 left (at byte 118)`.
public struct ModelFileError: Error, CustomStringConvertible, Equatable {
  public var file: String
  public var message: String

  public init(file: String, _ message: String) {
    self.file = file
    self.message = message
  }

  public var description: String { "\(file): \(message)" }
}
