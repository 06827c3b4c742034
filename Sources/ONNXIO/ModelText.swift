import ONNXGraph
import ONNXProto

/// The ONNX text syntax of a typed model (`onnx.printer.to_text`'s format), the format of
/// every golden file in the project.
public enum ModelText {
  /// Tensors with more than `elideTensorsAbove` elements print as type and shape only
  /// (their bytes are never read); nil prints every value.
  public static func render(_ model: Model, elideTensorsAbove: Int? = 32) -> String {
    // Bytes of tensors that will be elided stay where they are: a marker is enough.
    let inlineLimit = elideTensorsAbove.map { ($0 + 1) * 16 }
    let exporter = ProtoExporter { bytes in
      if let inlineLimit, bytes.count > inlineLimit { return .splice }
      return .inline
    }
    // Encoding cannot fail for a model that was loaded or built through the API: the only
    // throwing step decodes preserved fields that were encoded by this module.
    let proto = (try? exporter.model(model)) ?? Onnx_ModelProto()
    let printer = TextPrinter(options: .init(elideTensorsAbove: elideTensorsAbove))
    return printer.print(proto)
  }
}
