// TEMPORARY until TextPrinter.swift lands.
import ONNXProto
public struct TextPrinter {
  public struct Options: Sendable { public var elideTensorsAbove: Int?; public init(elideTensorsAbove: Int? = 32) { self.elideTensorsAbove = elideTensorsAbove } }
  public init(options: Options = .init()) {}
  public func print(_ model: Onnx_ModelProto) -> String { "" }
}
