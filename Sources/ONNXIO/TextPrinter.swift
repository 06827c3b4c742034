import Foundation
import ONNXProto

/// ONNX's text syntax for a proto: byte for byte what `onnx.printer.to_text` writes (the C++
/// `onnx/defs/printer.cc` of onnx 1.23.2, ported function by function), so golden files can be
/// written and checked by either side.
///
/// printer.cc's quirks are kept on purpose, since matching it is the point: two spaces between
/// an initializer's `=` and its values, `...` for data types it does not print, a function's
/// attribute defaults left out. Where printer.cc throws (a `raw_data` whose size does not fit the
/// dims) this prints `...` instead, as it does for any data it cannot show.
///
/// Elision (`Options.elideTensorsAbove`): a tensor with more elements than the limit prints its
/// type, shape and name as usual and ` {...}` where the values would be, e.g.
/// `float[64,64] w =  {...}`. That keeps every line's shape and reads as "values left out";
/// onnx.parser rejects it ("Unexpected literal type"), which is right for a text that no longer
/// holds the model. Only `data_type` and `dims` of an elided tensor are read: the loader may have
/// left a marker in place of its bytes.
public struct TextPrinter: Sendable {
  public struct Options: Sendable {
    /// Tensors with more elements than this print without their values; nil prints every value,
    /// as onnx does.
    public var elideTensorsAbove: Int?

    public init(elideTensorsAbove: Int? = 32) {
      self.elideTensorsAbove = elideTensorsAbove
    }
  }

  public var options: Options

  public init(options: Options = .init()) {
    self.options = options
  }

  public func print(_ model: Onnx_ModelProto) -> String { render { $0.model(model) } }

  public func print(_ graph: Onnx_GraphProto) -> String { render { $0.graph(graph) } }

  public func print(_ function: Onnx_FunctionProto) -> String { render { $0.function(function) } }

  public func print(_ node: Onnx_NodeProto) -> String { render { $0.node(node) } }

  private func render(_ body: (inout TextWriter) -> Void) -> String {
    var writer = TextWriter(elideAbove: options.elideTensorsAbove)
    body(&writer)
    // Bytes attributes need not be UTF-8; onnx's Python binding fails on those, we substitute.
    return String(decoding: writer.out, as: UTF8.self)
  }
}

/// One rendering in progress: printer.cc's `ProtoPrinter`, writing bytes because attribute and
/// string-tensor values are bytes that printer.cc copies through unchanged.
private struct TextWriter {
  let elideAbove: Int?
  var out: [UInt8] = []
  /// Spaces before each node line; a sub-graph's nodes sit three deeper than their node.
  var indent = 3

  init(elideAbove: Int?) {
    self.elideAbove = elideAbove
  }

  // MARK: Model, function, graph, node

  mutating func model(_ model: Onnx_ModelProto) {
    write("<\n")
    spaces(indent)
    write("ir_version: ")
    number(model.irVersion)
    field("opset_import") { $0.list("[", ", ", "]", model.opsetImport) { $0.opset($1) } }
    if model.hasProducerName { field("producer_name") { $0.quoted(model.producerName) } }
    if model.hasProducerVersion { field("producer_version") { $0.quoted(model.producerVersion) } }
    if model.hasDomain { field("domain") { $0.quoted(model.domain) } }
    if model.hasModelVersion { field("model_version") { $0.number(model.modelVersion) } }
    if model.hasDocString { field("doc_string") { $0.quoted(model.docString) } }
    if !model.metadataProps.isEmpty {
      field("metadata_props") { $0.list("[", ", ", "]", model.metadataProps) { $0.entry($1) } }
    }
    write("\n>\n")
    graph(model.graph)
    for function in model.functions {
      write("\n")
      self.function(function)
    }
  }

  /// A model header line after the first: `,\n   key: value`.
  private mutating func field(_ key: String, _ value: (inout TextWriter) -> Void) {
    write(",\n")
    spaces(indent)
    write(key)
    write(": ")
    value(&self)
  }

  mutating func function(_ function: Onnx_FunctionProto) {
    // printer.cc indents this header by a fixed two spaces, unlike the model's.
    write("<\n  domain: ")
    quoted(function.domain)
    write(",\n")
    if !function.overload.isEmpty {
      write("  overload: ")
      quoted(function.overload)
      write(",\n")
    }
    write("  opset_import: ")
    list("[", ",", "]", function.opsetImport) { $0.opset($1) }
    write("\n>\n")
    identifier(function.name)
    write(" ")
    if !function.attribute.isEmpty { list("<", ",", ">", function.attribute) { $0.write($1) } }
    identifiers("(", ", ", ")", function.input)
    write(" => ")
    identifiers("(", ", ", ")", function.output)
    write("\n")
    nodes(function.node)
  }

  mutating func graph(_ graph: Onnx_GraphProto) {
    identifier(graph.name)
    write(" ")
    valueInfos(graph.input)
    write(" => ")
    valueInfos(graph.output)
    write(" ")
    if !graph.initializer.isEmpty || !graph.valueInfo.isEmpty {
      write("\n")
      spaces(indent)
      write("<")
      var separator = ""
      for initializer in graph.initializer {
        write(separator)
        tensor(initializer, isInitializer: true)
        separator = ", "
      }
      for info in graph.valueInfo {
        write(separator)
        valueInfo(info)
        separator = ", "
      }
      write(">\n")
    }
    nodes(graph.node)
  }

  private mutating func nodes(_ nodes: [Onnx_NodeProto]) {
    write("{\n")
    for node in nodes { self.node(node) }
    if indent > 3 { spaces(indent - 3) }
    write("}")
  }

  mutating func node(_ node: Onnx_NodeProto) {
    spaces(indent)
    if node.hasName {
      write("[")
      identifier(node.name)
      write("] ")
    }
    identifiers("", ", ", "", node.output)
    write(" = ")
    if !node.domain.isEmpty {
      write(node.domain)
      write(".")
    }
    write(node.opType)
    if !node.overload.isEmpty {
      write(":")
      write(node.overload)
    }
    // Attributes holding graphs go after the inputs, so the inputs stay on the node's line.
    let hasSubgraph = node.attribute.contains { $0.hasG || !$0.graphs.isEmpty }
    if !hasSubgraph && !node.attribute.isEmpty { attributes(node.attribute) }
    identifiers(" (", ", ", ")", node.input)
    if hasSubgraph { attributes(node.attribute) }
    write("\n")
  }

  // MARK: Attributes

  private mutating func attributes(_ attributes: [Onnx_AttributeProto]) {
    list(" <", ", ", ">", attributes) { $0.attribute($1) }
  }

  private mutating func attribute(_ attribute: Onnx_AttributeProto) {
    write(attribute.name)
    write(": ")
    write(Self.attributeTypeName(attribute.type))
    write(" = ")
    // A reference to an attribute of the enclosing function.
    if attribute.hasRefAttrName {
      write("@")
      write(attribute.refAttrName)
      return
    }
    switch attribute.type {
    case .int: number(attribute.i)
    case .ints: list("[", ", ", "]", attribute.ints) { $0.number($1) }
    case .float: write(ShortestDecimal.text(attribute.f))
    case .floats: list("[", ", ", "]", attribute.floats) { $0.write(ShortestDecimal.text($1)) }
    case .string: quoted(attribute.s)
    case .strings: quotedList("[", attribute.strings, "]")
    case .graph:
      indent += 3
      graph(attribute.g)
      indent -= 3
    case .graphs:
      indent += 3
      list("[", ", ", "]", attribute.graphs) { $0.graph($1) }
      indent -= 3
    case .tensor: tensor(attribute.t)
    case .tensors: list("[", ", ", "]", attribute.tensors) { $0.tensor($1) }
    case .typeProto: type(attribute.tp)
    case .typeProtos: list("[", ", ", "]", attribute.typeProtos) { $0.type($1) }
    // printer.cc prints no value for these.
    case .undefined, .sparseTensor, .sparseTensors: break
    }
  }

  /// AttributeTypeNameMap::ToString.
  private static func attributeTypeName(_ type: Onnx_AttributeProto.AttributeType) -> String {
    switch type {
    case .undefined: "undefined"
    case .float: "float"
    case .int: "int"
    case .string: "string"
    case .tensor: "tensor"
    case .graph: "graph"
    case .sparseTensor: "sparse_tensor"
    case .typeProto: "type_proto"
    case .floats: "floats"
    case .ints: "ints"
    case .strings: "strings"
    case .tensors: "tensors"
    case .graphs: "graphs"
    case .sparseTensors: "sparse_tensors"
    case .typeProtos: "type_protos"
    }
  }

  // MARK: Tensors

  private mutating func tensor(_ tensor: Onnx_TensorProto, isInitializer: Bool = false) {
    write(Self.dataTypeName(tensor.dataType))
    if !tensor.dims.isEmpty { list("[", ",", "]", tensor.dims) { $0.number($1) } }
    if !tensor.name.isEmpty {
      write(" ")
      identifier(tensor.name)
    }
    if isInitializer { write(" = ") }
    // An external tensor prints where its data lives, which reads none of it.
    if tensor.hasDataLocation && tensor.dataLocation == .external {
      list("[", ", ", "]", tensor.externalData) { $0.entry($1) }
    } else if let limit = elideAbove, Self.elementCount(tensor.dims).map({ $0 > limit }) ?? true {
      // Dims with no element count (negative, overflowing) are not trusted to describe the data.
      write(" {...}")
    } else if tensor.hasRawData {
      rawValues(tensor)
    } else {
      fieldValues(tensor)
    }
  }

  /// Values from `raw_data`, widened as printer.cc widens them; 16-bit and 8-bit floats print
  /// their bit patterns, which the parser reads back.
  private mutating func rawValues(_ tensor: Onnx_TensorProto) {
    switch Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)) {
    case .int8: values(Self.rawElements(tensor, as: Int8.self)) { String($0) }
    case .uint8, .bool, .float8E4M3Fn, .float8E4M3Fnuz, .float8E5M2, .float8E5M2Fnuz, .float8E8M0:
      values(Self.rawElements(tensor, as: UInt8.self)) { String($0) }
    case .int16: values(Self.rawElements(tensor, as: Int16.self)) { String($0) }
    case .uint16, .float16, .bfloat16: values(Self.rawElements(tensor, as: UInt16.self)) { String($0) }
    case .int32: values(Self.rawElements(tensor, as: Int32.self)) { String($0) }
    case .uint32: values(Self.rawElements(tensor, as: UInt32.self)) { String($0) }
    case .int64: values(Self.rawElements(tensor, as: Int64.self)) { String($0) }
    case .uint64: values(Self.rawElements(tensor, as: UInt64.self)) { String($0) }
    case .float:
      values(Self.rawElements(tensor, as: UInt32.self)) { ShortestDecimal.text(Float(bitPattern: $0)) }
    case .double:
      values(Self.rawElements(tensor, as: UInt64.self)) { ShortestDecimal.text(Double(bitPattern: $0)) }
    // Sub-byte, complex and string data: printer.cc does not print these from raw_data.
    default: write("...")
    }
  }

  private mutating func fieldValues(_ tensor: Onnx_TensorProto) {
    switch Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType)) {
    case .int8, .int16, .int32, .uint8, .uint16, .bool, .float16, .bfloat16, .float8E4M3Fn, .float8E4M3Fnuz,
      .float8E5M2, .float8E5M2Fnuz, .float8E8M0:
      values(tensor.int32Data) { String($0) }
    case .int64: values(tensor.int64Data) { String($0) }
    case .uint32, .uint64: values(tensor.uint64Data) { String($0) }
    case .float: values(tensor.floatData) { ShortestDecimal.text($0) }
    case .double: values(tensor.doubleData) { ShortestDecimal.text($0) }
    // Unlike the numeric lists, no space before the brace.
    case .string: quotedList("{", tensor.stringData, "}")
    default: write("...")
    }
  }

  /// ` {v,v,v}`, or `...` where there are no values to show.
  private mutating func values<C: Collection>(_ values: C?, _ text: (C.Element) -> String) {
    guard let values else {
      write("...")
      return
    }
    list(" {", ",", "}", values) { $0.write(text($1)) }
  }

  /// The little-endian elements of `raw_data`; nil where its size is not exactly the dims'
  /// element count (printer.cc throws there).
  private static func rawElements<T: FixedWidthInteger>(_ tensor: Onnx_TensorProto, as: T.Type) -> [T]? {
    let size = MemoryLayout<T>.size
    let data = tensor.rawData
    guard let count = elementCount(tensor.dims), data.count % size == 0, data.count / size == count else {
      return nil
    }
    return data.withUnsafeBytes { bytes in
      (0..<count).map { T(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) }
    }
  }

  /// The product of `dims`; nil for a negative dim or an overflow, which no real tensor has.
  private static func elementCount(_ dims: [Int64]) -> Int? {
    var count = 1
    for dim in dims {
      guard dim >= 0, let d = Int(exactly: dim) else { return nil }
      let (product, overflow) = count.multipliedReportingOverflow(by: d)
      if overflow { return nil }
      count = product
    }
    return count
  }

  /// PrimitiveTypeNameMap::ToString, indexed by TensorProto.DataType.
  private static let dataTypeNames = [
    "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16",
    "double", "uint32", "uint64", "complex64", "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz",
    "float8e5m2", "float8e5m2fnuz", "uint4", "int4", "float4e2m1", "float8e8m0", "uint2", "int2",
    "float6e2m3", "float6e3m2",
  ]

  private static func dataTypeName(_ type: Int32) -> String {
    dataTypeNames.indices.contains(Int(type)) ? dataTypeNames[Int(type)] : "undefined"
  }

  // MARK: Types

  private mutating func valueInfos(_ infos: [Onnx_ValueInfoProto]) {
    list("(", ", ", ")", infos) { $0.valueInfo($1) }
  }

  private mutating func valueInfo(_ info: Onnx_ValueInfoProto) {
    type(info.type)
    write(" ")
    identifier(info.name)
  }

  private mutating func type(_ type: Onnx_TypeProto) {
    switch type.value {
    case .tensorType(let tensor):
      write(Self.dataTypeName(tensor.elemType))
      shape(tensor.hasShape ? tensor.shape : nil)
    case .sequenceType(let sequence):
      write("seq(")
      self.type(sequence.elemType)
      write(")")
    case .mapType(let map):
      write("map(")
      write(Self.dataTypeName(map.keyType))
      write(", ")
      self.type(map.valueType)
      write(")")
    case .optionalType(let optional):
      write("optional(")
      self.type(optional.elemType)
      write(")")
    case .sparseTensorType(let sparse):
      write("sparse_tensor(")
      write(Self.dataTypeName(sparse.elemType))
      shape(sparse.hasShape ? sparse.shape : nil)
      write(")")
    case .opaqueType(let opaque):
      write("opaque(")
      if !opaque.domain.isEmpty {
        write(opaque.domain)
        write(",")
      }
      write(opaque.name)
      write(")")
    case nil: break
    }
  }

  /// No shape (unknown rank) prints `[]`; a shape without dims (a scalar) prints nothing.
  private mutating func shape(_ shape: Onnx_TensorShapeProto?) {
    guard let shape else {
      write("[]")
      return
    }
    if !shape.dim.isEmpty { list("[", ",", "]", shape.dim) { $0.dimension($1) } }
  }

  private mutating func dimension(_ dim: Onnx_TensorShapeProto.Dimension) {
    switch dim.value {
    case .dimValue(let value): number(value)
    case .dimParam(let param): identifier(param)
    case nil: write("?")
    }
  }

  // MARK: Primitives

  private mutating func opset(_ opset: Onnx_OperatorSetIdProto) {
    quoted(opset.domain)
    write(" : ")
    number(opset.version)
  }

  private mutating func entry(_ entry: Onnx_StringStringEntryProto) {
    quoted(entry.key)
    write(": ")
    quoted(entry.value)
  }

  /// printSet: `open`, the items separated by `separator`, `close`.
  private mutating func list<C: Collection>(
    _ open: String, _ separator: String, _ close: String, _ items: C,
    _ item: (inout TextWriter, C.Element) -> Void
  ) {
    write(open)
    var first = true
    for element in items {
      if !first { write(separator) }
      first = false
      item(&self, element)
    }
    write(close)
  }

  /// printer.cc writes `open` before the first item only, so an empty list prints `close` alone.
  private mutating func quotedList(_ open: String, _ items: [Data], _ close: String) {
    for (i, item) in items.enumerated() {
      write(i == 0 ? open : ", ")
      quoted(item)
    }
    write(close)
  }

  private mutating func identifiers(_ open: String, _ separator: String, _ close: String, _ names: [String]) {
    list(open, separator, close, names) { $0.identifier($1) }
  }

  /// A name as is where the parser reads it as an identifier, else quoted.
  private mutating func identifier(_ name: String) {
    if Self.isIdentifier(name) { write(name) } else { quoted(name) }
  }

  /// `[A-Za-z_][A-Za-z0-9_]*`, ASCII only, as the parser's IsAlpha/IsAlnum.
  private static func isIdentifier(_ name: String) -> Bool {
    func isStart(_ c: UInt8) -> Bool {
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
        || c == UInt8(ascii: "_")
    }
    guard let first = name.utf8.first, isStart(first) else { return false }
    return name.utf8.dropFirst().allSatisfy { isStart($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
  }

  /// Quotes, escaping only `"` and `\`: every other byte goes through as is.
  private mutating func quoted<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
    out.append(UInt8(ascii: "\""))
    for byte in bytes {
      if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
      out.append(byte)
    }
    out.append(UInt8(ascii: "\""))
  }

  private mutating func quoted(_ text: String) { quoted(text.utf8) }

  private mutating func number(_ value: some BinaryInteger) { write(String(value)) }

  private mutating func spaces(_ count: Int) {
    out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: count))
  }

  private mutating func write(_ text: String) { out.append(contentsOf: text.utf8) }
}

/// `std::to_chars(value)` with no format, which printer.cc uses for every float and double: the
/// shortest digits that read back to the same value, in fixed or scientific notation, whichever
/// is shorter (fixed on a tie), and NaN spelled `nan`/`-nan` as printer.cc normalizes it.
enum ShortestDecimal {
  static func text(_ value: Float) -> String { format(value) }

  static func text(_ value: Double) -> String { format(value) }

  private static func format<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) -> String {
    let sign = value.sign == .minus ? "-" : ""
    if value.isNaN { return sign + "nan" }
    if value.isInfinite { return sign + "inf" }
    if value.isZero { return sign + "0" }
    // Swift's description picks the same digits (shortest, then nearest); only its layout differs.
    let (digits, exponent) = significantDigits(value.magnitude.description)
    let n = digits.count
    let exponentText = String(exponent.magnitude)
    let scientificLength = n + (n > 1 ? 1 : 0) + 2 + max(2, exponentText.count)
    let fixedLength = exponent < 0 ? n + 1 - exponent : (exponent + 1 >= n ? exponent + 1 : n + 1)
    let digitText = String(decoding: digits, as: UTF8.self)
    if fixedLength <= scientificLength {
      if exponent < 0 { return sign + "0." + String(repeating: "0", count: -exponent - 1) + digitText }
      if exponent + 1 < n {
        return sign + digitText.prefix(exponent + 1) + "." + digitText.dropFirst(exponent + 1)
      }
      return sign + integerText(Double(value.magnitude))
    }
    let mantissa = n > 1 ? digitText.prefix(1) + "." + digitText.dropFirst() : digitText
    return sign + mantissa + (exponent < 0 ? "e-" : "e+") + (exponentText.count < 2 ? "0" : "") + exponentText
  }

  /// The significant digits of a Swift float description ("1.25e-07", "123.5", "1e+16") and the
  /// power of ten of the first of them.
  private static func significantDigits(_ description: String) -> (digits: [UInt8], exponent: Int) {
    let parts = description.split(separator: "e", maxSplits: 1)
    var point = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    var digits: [UInt8] = []
    var beforePoint = true
    for c in parts[0].utf8 {
      if c == UInt8(ascii: ".") {
        beforePoint = false
      } else {
        digits.append(c)
        if beforePoint { point += 1 }
      }
    }
    let leadingZeros = digits.prefix { $0 == UInt8(ascii: "0") }.count
    digits.removeFirst(leadingZeros)
    while digits.last == UInt8(ascii: "0") { digits.removeLast() }
    return (digits, point - leadingZeros - 1)
  }

  /// The exact digits of a whole number. Fixed notation longer than the shortest digits shows
  /// the value itself, not the shortest digits padded with zeros: 123456792 for the float nearest
  /// 123456789, not 123456790.
  private static func integerText(_ value: Double) -> String {
    if value < 0x1p64 { return String(UInt64(value)) }
    // value = m · 2^k: double m's decimal digits (least significant first) k times.
    var digits = String(UInt64(1) << 52 | value.significandBitPattern).utf8.reversed().map {
      $0 - UInt8(ascii: "0")
    }
    for _ in 0..<(Int(value.exponent) - 52) {
      var carry: UInt8 = 0
      for i in digits.indices {
        let d = digits[i] * 2 + carry
        digits[i] = d % 10
        carry = d / 10
      }
      if carry > 0 { digits.append(carry) }
    }
    return String(decoding: digits.reversed().map { $0 + UInt8(ascii: "0") }, as: UTF8.self)
  }
}
