import Foundation
import ONNXProto
import SwiftProtobuf

/// Reads ONNX's text syntax: a port of onnx's `onnx/defs/parser.cc` (onnx 1.23.2), the parser
/// behind `onnx.parser.parse_model` / `parse_graph` / `parse_function` / `parse_node`. For any
/// text onnx accepts, the proto is the one onnx builds, field presence included (`domain: ""` on
/// every node, a scalar's empty shape), so the two serialize to the same bytes.
///
/// parser.cc's quirks are kept on purpose, since matching it is the point:
/// - Text after a complete graph, function or node is ignored (onnx's bindings never check for
///   the end); a model reads functions until the end.
/// - The text ends at its first NUL byte, as the C string onnx's binding passes does.
/// - A list attribute keeps only int, float and string elements (`[@a]` or a list of graphs
///   leaves just the type); an `int` attribute given a list becomes `ints`.
/// - A function's attribute default that fails to parse is kept as far as it got and parsing
///   goes on, since parser.cc drops that error (`<a: int = "x">` gives a string default).
///
/// Errors point at the offending token with a 1-based line and byte column, and say what was
/// expected; onnx's own messages are terser but fail on the same texts.
public struct TextParser: Sendable {
  public struct ParseError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String { "\(file):\(line):\(column): error: \(message)" }
  }

  /// The name errors give for the text.
  public let file: String

  public init(file: String = "<text>") {
    self.file = file
  }

  /// `<ir_version: 10, opset_import: ["" : 21]> main (float[2] x) => (float[2] y) { ... }`
  /// followed by any number of functions.
  public func parseModel(_ text: String) throws -> Onnx_ModelProto { try run(text) { try $0.model() } }

  public func parseGraph(_ text: String) throws -> Onnx_GraphProto {
    try run(text) { cursor in
      var graph = Onnx_GraphProto()
      try cursor.graph(into: &graph)
      return graph
    }
  }

  public func parseFunction(_ text: String) throws -> Onnx_FunctionProto {
    try run(text) { try $0.function() }
  }

  public func parseNode(_ text: String) throws -> Onnx_NodeProto {
    try run(text) { cursor in
      var node = Onnx_NodeProto()
      try cursor.node(into: &node)
      return node
    }
  }

  private func run<T>(_ text: String, _ body: (inout TextCursor) throws -> T) throws -> T {
    var cursor = TextCursor(Array(text.utf8.prefix { $0 != 0 }))
    do {
      return try body(&cursor)
    } catch let failure as TextFailure {
      let (line, column) = cursor.lineAndColumn(of: failure.offset)
      throw ParseError(file: file, line: line, column: column, message: failure.message)
    }
  }
}

/// What the cursor throws: a byte offset and a message, made into a `ParseError` once, at the end.
///
/// parser.cc fails in two ways: by returning an error status, which one caller (a function's
/// attribute defaults) ignores, and by a C++ exception from a number conversion, which nothing
/// catches. `isConversion` keeps them apart so that caller can do the same.
private struct TextFailure: Error {
  let offset: Int
  let message: String
  var isConversion = false
}

/// A literal as parser.cc's `ParserBase::Parse(Literal&)` scans it; `bytes` is a string's
/// unescaped content or a number's text.
private struct Literal {
  enum Kind { case undefined, int, float, string }

  let kind: Kind
  let bytes: [UInt8]
  let start: Int

  var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// parser.cc's `ParserBase` and `OnnxParser` in one: a cursor over the text's UTF-8 bytes, with
/// one parse function per C++ `Parse` overload, in the same order of reads and writes.
///
/// Functions that parse into an `inout` proto mirror parser.cc's `Parse(*list.Add())` and
/// `mutable_x()`: what they wrote before an error stays. That is visible only where an error is
/// ignored (a function's attribute default), and there it decides the proto onnx builds.
private struct TextCursor {
  private let input: [UInt8]
  private var pos = 0

  init(_ input: [UInt8]) {
    self.input = input
  }

  func lineAndColumn(of offset: Int) -> (line: Int, column: Int) {
    var line = 1
    var lineStart = 0
    for i in 0..<min(offset, input.count) where input[i] == Ch.newline {
      line += 1
      lineStart = i + 1
    }
    return (line, offset - lineStart + 1)
  }

  // MARK: Model, function, graph, node

  mutating func model() throws -> Onnx_ModelProto {
    var model = Onnx_ModelProto()
    if matches(Ch.less) {
      repeat {
        let (key, at) = try keyword()
        try match(Ch.colon)
        switch key {
        case .irVersion: model.irVersion = try int64("an IR version")
        // Repeated keys add to the list, as parser.cc does.
        case .opsetImport: model.opsetImport += try opsetImports()
        case .producerName: model.producerName = try string()
        case .producerVersion: model.producerVersion = try string()
        case .domain: model.domain = try string()
        case .modelVersion: model.modelVersion = try int64("a model version")
        case .docString: model.docString = try string()
        case .metadataProps:
          try match(Ch.lbracket)
          if !matches(Ch.rbracket) {
            try stringPairs(into: &model.metadataProps)
            try match(Ch.rbracket)
          }
        default:
          throw TextFailure(
            offset: at,
            message: "expected a model property (ir_version, opset_import, producer_name, "
              + "producer_version, domain, model_version, doc_string or metadata_props)")
        }
      } while matches(Ch.comma)
      try match(Ch.greater)
    }
    try graph(into: &model.graph)
    while !endOfInput() {
      model.functions.append(try function())
    }
    return model
  }

  mutating func function() throws -> Onnx_FunctionProto {
    var function = Onnx_FunctionProto()
    if matches(Ch.less) {
      repeat {
        let (key, at) = try keyword()
        try match(Ch.colon)
        switch key {
        case .opsetImport: function.opsetImport += try opsetImports()
        case .docString: function.docString = try string()
        case .domain: function.domain = try string()
        case .overload: function.overload = try string()
        default:
          throw TextFailure(
            offset: at, message: "expected a function property (opset_import, doc_string, domain or overload)")
        }
      } while matches(Ch.comma)
      try match(Ch.greater)
    }
    function.name = try quotableIdentifier("a function name")
    if matches(Ch.less) {
      try functionAttributes(&function)
      try match(Ch.greater)
    }
    try functionSignature(&function.input, &function.valueInfo)
    try matchArrow()
    try functionSignature(&function.output, &function.valueInfo)
    if nextChar() == Ch.less {
      try valueInfos(Ch.less, Ch.greater, into: &function.valueInfo)
    }
    try nodeList(into: &function.node)
    return function
  }

  /// `<name, name: type = default, ...>`: attribute names, and attributes with defaults.
  private mutating func functionAttributes(_ function: inout Onnx_FunctionProto) throws {
    repeat {
      let name = try quotableIdentifier("an attribute name")
      let next = nextChar()
      if next == Ch.colon || next == Ch.equals {
        do {
          try appending(to: &function.attributeProto) { try $0.attribute(&$1, named: name) }
        } catch let failure as TextFailure where !failure.isConversion {
          // parser.cc ignores the status here: the default stays as parsed so far.
        }
      } else {
        function.attribute.append(name)
      }
    } while matches(Ch.comma)
  }

  /// A function's inputs or outputs: names, each optionally typed; a typed one also adds a
  /// value-info, so inputs and outputs share `valueInfo`.
  private mutating func functionSignature(_ names: inout [String], _ infos: inout [Onnx_ValueInfoProto]) throws {
    names = []
    try match(Ch.lparen)
    guard !matches(Ch.rparen) else { return }
    repeat {
      let typeProto = nextIsType() ? try type() : nil
      let name = try quotableIdentifier("a name")
      names.append(name)
      if let typeProto {
        infos.append(.with { $0.type = typeProto; $0.name = name })
      }
    } while matches(Ch.comma)
    try match(Ch.rparen)
  }

  mutating func graph(into graph: inout Onnx_GraphProto) throws {
    graph.name = try quotableIdentifier("a graph name")
    // Inputs: `(type name, type name = values, ...)`; the parentheses may be left out.
    if matches(Ch.lparen), !matches(Ch.rparen) {
      repeat {
        let info = try valueInfo()
        graph.input.append(info)
        if matches(Ch.equals) {
          try initializer(info, into: &graph.initializer)
        }
      } while matches(Ch.comma)
      try match(Ch.rparen)
    }
    try matchArrow()
    try valueInfos(Ch.lparen, Ch.rparen, into: &graph.output)
    // Optional `<type name, type name = values, ...>`: value-infos and initializers.
    if matches(Ch.less), !matches(Ch.greater) {
      repeat {
        let info = try valueInfo()
        if matches(Ch.equals) {
          try initializer(info, into: &graph.initializer)
        } else {
          graph.valueInfo.append(info)
        }
      } while matches(Ch.comma)
      try match(Ch.greater)
    }
    try nodeList(into: &graph.node)
  }

  /// The values after `type name =`, as a tensor named after the value-info.
  private mutating func initializer(_ info: Onnx_ValueInfoProto, into tensors: inout [Onnx_TensorProto]) throws {
    try appending(to: &tensors) {
      $1.name = info.name
      try $0.tensorValues(&$1, type: info.type)
    }
  }

  private mutating func nodeList(into nodes: inout [Onnx_NodeProto]) throws {
    try match(Ch.lbrace)
    while !matches(Ch.rbrace) {
      // parser.cc would go on to report a missing '='; the real problem is the unclosed list.
      if endOfInput() { throw failure("expected '}' to close the node list") }
      try appending(to: &nodes) { try $0.node(into: &$1) }
    }
  }

  /// `[name] outputs = domain.Op:overload <attributes> (inputs)`; the attributes may also come
  /// after the inputs.
  mutating func node(into node: inout Onnx_NodeProto) throws {
    if matches(Ch.lbracket) {
      node.name = try optionalQuotableIdentifier()
      try match(Ch.rbracket)
    }
    node.output = try idList()
    try match(Ch.equals)
    var domain = ""
    var id = optionalIdentifier()
    while matches(Ch.dot) {
      if !domain.isEmpty { domain += "." }
      domain += id
      id = try identifier("an operator name")
    }
    node.domain = domain
    node.opType = id
    if matches(Ch.colon) {
      node.overload = try identifier("an overload name")
    }
    try attributeList(into: &node.attribute)
    try match(Ch.lparen)
    node.input = try idList()
    try match(Ch.rparen)
    if node.attribute.isEmpty {
      try attributeList(into: &node.attribute)
    }
  }

  /// Node inputs or outputs. An empty name is `""` or nothing before a comma, so `(,x)` is
  /// `["", "x"]`, `(,)` is `[""]` and `(x,)` is `["x"]`.
  private mutating func idList() throws -> [String] {
    var ids: [String] = []
    while let id = try idListItem() {
      ids.append(id)
      guard matches(Ch.comma) else { break }
    }
    return ids
  }

  private mutating func idListItem() throws -> String? {
    if nextChar() == Ch.quote { return try string() }
    let id = optionalIdentifier()
    return !id.isEmpty || nextChar() == Ch.comma ? id : nil
  }

  // MARK: Attributes

  private mutating func attributeList(into attributes: inout [Onnx_AttributeProto]) throws {
    guard matches(Ch.less) else { return }
    repeat {
      try appending(to: &attributes) {
        let name = try $0.identifier("an attribute name")
        try $0.attribute(&$1, named: name)
      }
    } while matches(Ch.comma)
    try match(Ch.greater)
  }

  /// `name [: type] = value` after the name; writes into `attribute` as it goes, since a
  /// function's defaults keep what was parsed before an error.
  private mutating func attribute(_ attribute: inout Onnx_AttributeProto, named name: String) throws {
    attribute.name = name
    if matches(Ch.colon) {
      let at = tokenStart()
      let typeName = try identifier("an attribute type")
      guard let type = Self.attributeTypes[typeName] else {
        throw TextFailure(
          offset: at, message: "expected an attribute type (int, ints, float, string, tensor, graph, ...)")
      }
      attribute.type = type
    }
    try match(Ch.equals)
    guard nextChar() == Ch.lbracket else {
      try singleAttributeValue(&attribute, expected: attribute.type)
      return
    }
    let open = tokenStart()
    try match(Ch.lbracket)
    if nextChar() != Ch.rbracket {
      repeat {
        // Recomputed per element: after `[1.5, 2` the list is floats and 2 becomes 2.0.
        var element = Onnx_AttributeProto()
        try singleAttributeValue(&element, expected: Self.elementType(attribute.type))
        switch element.type {
        case .int:
          attribute.type = .ints
          attribute.ints.append(element.i)
        case .float:
          attribute.type = .floats
          attribute.floats.append(element.f)
        case .string:
          attribute.strings.append(element.s)
          attribute.type = .strings
        default: break  // parser.cc drops other elements.
        }
      } while matches(Ch.comma)
    } else if attribute.type == .undefined {
      throw TextFailure(offset: open, message: "an empty list needs a type, as in `name: ints = []`")
    } else if Self.elementType(attribute.type) == attribute.type {
      throw TextFailure(offset: open, message: "a list given for an attribute of a single-value type")
    }
    try match(Ch.rbracket)
  }

  private mutating func singleAttributeValue(
    _ attribute: inout Onnx_AttributeProto, expected: Onnx_AttributeProto.AttributeType
  ) throws {
    let start = tokenStart()
    let next = nextChar()
    if Ch.isAlpha(next) || next == Ch.underscore {
      if nextIsType() {
        let typeProto = try type()
        let after = nextChar()
        if after == Ch.lbrace || after == Ch.equals || nextIsIdentifier() {
          attribute.type = .tensor
          // Present even when empty, as parser.cc's mutable_name() makes it.
          attribute.t.name = try optionalQuotableIdentifier()
          _ = matches(Ch.equals)
          try tensorValues(&attribute.t, type: typeProto)
        } else {
          attribute.type = .typeProto
          attribute.tp = typeProto
        }
      } else if nextIsValidFloatString() {
        let literal = try literal()
        attribute.type = .float
        attribute.f = try float(literal)
      } else {
        attribute.type = .graph
        try graph(into: &attribute.g)
      }
    } else if matches(Ch.at) {
      attribute.refAttrName = try quotableIdentifier("the name of the referenced attribute")
    } else {
      let literal = try literal()
      switch literal.kind {
      case .undefined:
        throw failure("expected an attribute value", at: literal.start)
      case .int where expected == .float:
        // Converted from the text, which keeps "-0" negative.
        attribute.type = .float
        attribute.f = try float(literal)
      case .int:
        attribute.type = .int
        attribute.i = try int64(literal)
      case .float:
        attribute.type = .float
        attribute.f = try float(literal)
      case .string:
        attribute.type = .string
        attribute.s = Data(literal.bytes)
      }
    }
    if expected != .undefined && expected != attribute.type {
      let found =
        attribute.type == .undefined ? "a reference" : "a value of type \(Self.attributeTypeName(attribute.type))"
      throw TextFailure(
        offset: start, message: "expected a value of type \(Self.attributeTypeName(expected)), found \(found)")
    }
  }

  private static let attributeTypes: [String: Onnx_AttributeProto.AttributeType] = [
    "float": .float, "int": .int, "string": .string, "tensor": .tensor, "graph": .graph,
    "sparse_tensor": .sparseTensor, "type_proto": .typeProto, "floats": .floats, "ints": .ints,
    "strings": .strings, "tensors": .tensors, "graphs": .graphs, "sparse_tensors": .sparseTensors,
    "type_protos": .typeProtos,
  ]

  private static func attributeTypeName(_ type: Onnx_AttributeProto.AttributeType) -> String {
    attributeTypes.first { $0.value == type }?.key ?? "undefined"
  }

  /// The element type of a list type; any other type is its own.
  private static func elementType(_ type: Onnx_AttributeProto.AttributeType) -> Onnx_AttributeProto.AttributeType {
    switch type {
    case .floats: .float
    case .ints: .int
    case .strings: .string
    case .tensors: .tensor
    case .graphs: .graph
    case .sparseTensors: .sparseTensor
    case .typeProtos: .typeProto
    default: type
    }
  }

  // MARK: Types and value-infos

  private mutating func valueInfo() throws -> Onnx_ValueInfoProto {
    var info = Onnx_ValueInfoProto()
    try valueInfo(into: &info)
    return info
  }

  private mutating func valueInfo(into info: inout Onnx_ValueInfoProto) throws {
    if nextIsType() { try type(into: &info.type) }
    info.name = try quotableIdentifier("a name")
  }

  /// `open info, info, ... close`, appended to `infos`.
  private mutating func valueInfos(_ open: UInt8, _ close: UInt8, into infos: inout [Onnx_ValueInfoProto]) throws {
    try match(open)
    guard !matches(close) else { return }
    repeat {
      try appending(to: &infos) { try $0.valueInfo(into: &$1) }
    } while matches(Ch.comma)
    try match(close)
  }

  /// `float` (a scalar: rank 0), `float[]` (unknown rank), `float[N, 3, ?]`, `seq(T)`,
  /// `map(K, T)`, `optional(T)`, `sparse_tensor(float[N])`, `opaque(domain, name)`.
  private mutating func type() throws -> Onnx_TypeProto {
    var type = Onnx_TypeProto()
    try self.type(into: &type)
    return type
  }

  private mutating func type(into type: inout Onnx_TypeProto) throws {
    let start = tokenStart()
    let id = try identifier("a type")
    if let elementType = Self.primitiveTypes[id] {
      try tensorType(elementType, into: &type.tensorType)
      return
    }
    switch Keyword(rawValue: id) {
    case .seq:
      try match(Ch.lparen)
      try self.type(into: &type.sequenceType.elemType)
      try match(Ch.rparen)
    case .map:
      try match(Ch.lparen)
      type.mapType = .init()
      let keyStart = tokenStart()
      let keyName = try identifier("a map key type")
      guard let key = Self.primitiveTypes[keyName] else {
        throw TextFailure(offset: keyStart, message: "expected a primitive type as the map key type")
      }
      type.mapType.keyType = Int32(key.rawValue)
      try match(Ch.comma)
      try self.type(into: &type.mapType.valueType)
      try match(Ch.rparen)
    case .optional:
      try match(Ch.lparen)
      try self.type(into: &type.optionalType.elemType)
      try match(Ch.rparen)
    case .sparseTensor:
      try match(Ch.lparen)
      let elementStart = tokenStart()
      let elementName = try identifier("a sparse tensor element type")
      guard let element = Self.primitiveTypes[elementName] else {
        throw TextFailure(offset: elementStart, message: "expected a primitive type as the sparse tensor element type")
      }
      try tensorType(element, into: &type.sparseTensorType)
      try match(Ch.rparen)
    case .opaque:
      // `opaque()`, `opaque(name)` or `opaque(domain, name)`; a lone dotted name is the name.
      try match(Ch.lparen)
      type.opaqueType = .init()
      if !matches(Ch.rparen) {
        var domainOrName = try identifier("an opaque type name")
        while matches(Ch.dot) {
          let component = try identifier("an opaque type name")
          domainOrName += "." + component
        }
        if matches(Ch.comma) {
          type.opaqueType.domain = domainOrName
          type.opaqueType.name = try identifier("an opaque type name")
        } else {
          type.opaqueType.name = domainOrName
        }
        try match(Ch.rparen)
      }
    default:
      throw TextFailure(
        offset: start, message: "expected a type (float, int64, ..., seq, map, optional, sparse_tensor, opaque)")
    }
  }

  /// The element type and optional `[...]` after it; no brackets is a scalar (an empty shape),
  /// `[]` is unknown rank (no shape).
  private mutating func tensorType<T: ShapedType>(
    _ elementType: Onnx_TensorProto.DataType, into tensor: inout T
  ) throws {
    tensor.elemType = Int32(elementType.rawValue)
    if matches(Ch.lbracket) {
      if !matches(Ch.rbracket) {
        try shape(into: &tensor.shape)
        try match(Ch.rbracket)
      }
    } else {
      tensor.shape = Onnx_TensorShapeProto()
    }
  }

  private mutating func shape(into shape: inout Onnx_TensorShapeProto) throws {
    repeat {
      var dim = Onnx_TensorShapeProto.Dimension()
      if matches(Ch.question) {
        // An unknown dimension: neither value nor parameter.
      } else if nextChar() == Ch.quote {
        dim.dimParam = try string()
      } else {
        let id = optionalIdentifier()
        if !id.isEmpty {
          dim.dimParam = id
        } else {
          dim.dimValue = try int64("a dimension (a number, a name or ?)")
        }
      }
      shape.dim.append(dim)
    } while matches(Ch.comma)
  }

  /// parser.cc's PrimitiveTypeNameMap.
  private static let primitiveTypes: [String: Onnx_TensorProto.DataType] = [
    "float": .float, "uint8": .uint8, "int8": .int8, "uint16": .uint16, "int16": .int16,
    "int32": .int32, "int64": .int64, "string": .string, "bool": .bool, "float16": .float16,
    "double": .double, "uint32": .uint32, "uint64": .uint64, "complex64": .complex64,
    "complex128": .complex128, "bfloat16": .bfloat16, "float8e4m3fn": .float8E4M3Fn,
    "float8e4m3fnuz": .float8E4M3Fnuz, "float8e5m2": .float8E5M2, "float8e5m2fnuz": .float8E5M2Fnuz,
    "float8e8m0": .float8E8M0, "uint4": .uint4, "int4": .int4, "float4e2m1": .float4E2M1,
    "uint2": .uint2, "int2": .int2, "float6e2m3": .float6E2M3, "float6e3m2": .float6E3M2,
  ]

  private mutating func nextIsType() -> Bool {
    let id = peekIdentifier()
    if Self.primitiveTypes[id] != nil { return true }
    switch Keyword(rawValue: id) {
    case .seq, .map, .optional, .sparseTensor, .opaque: return true
    default: return false
    }
  }

  // MARK: Tensors

  /// The values after a tensor's type (and name): `{v, v, ...}`, `[ "key": "value", ... ]` for
  /// external data, or nothing. Values go to the typed field onnx's helper would use.
  private mutating func tensorValues(_ tensor: inout Onnx_TensorProto, type: Onnx_TypeProto) throws {
    let what = tensor.name.isEmpty ? "a tensor" : "tensor '\(tensor.name)'"
    guard case .tensorType(let tensorType)? = type.value else {
      throw failure("\(what) needs a tensor type")
    }
    tensor.dataType = tensorType.elemType
    guard tensorType.hasShape else {
      throw failure("\(what) needs a shape (float[] is of unknown rank)")
    }
    for dim in tensorType.shape.dim {
      guard case .dimValue(let value)? = dim.value else {
        throw failure("\(what) needs numeric dimensions")
      }
      tensor.dims.append(value)
    }
    if matches(Ch.lbrace) {
      guard !matches(Ch.rbrace) else { return }
      let elementType = Onnx_TensorProto.DataType(rawValue: Int(tensor.dataType))
      repeat {
        switch elementType {
        case .int2, .int4, .int8, .int16, .int32, .uint2, .uint4, .uint8, .uint16, .float16, .bfloat16,
          .float8E4M3Fn, .float8E4M3Fnuz, .float8E5M2, .float8E5M2Fnuz, .float6E2M3, .float6E3M2,
          .float8E8M0, .bool, .float4E2M1:
          // Stored as int32_data: bit patterns for the small float types, 0/1 for bool.
          let at = tokenStart()
          guard let value = Int32(exactly: try int64("an integer tensor element")) else {
            throw TextFailure(offset: at, message: "tensor element out of the int32 range")
          }
          tensor.int32Data.append(value)
        case .int64:
          tensor.int64Data.append(try int64("an integer tensor element"))
        case .uint32, .uint64:
          tensor.uint64Data.append(try uint64())
        case .float, .complex64:
          tensor.floatData.append(try float(try number("a numeric tensor element")))
        case .double, .complex128:
          tensor.doubleData.append(try double(try number("a numeric tensor element")))
        case .string:
          tensor.stringData.append(Data(try stringBytes()))
        case .undefined, nil:
          throw failure("tensor elements of data type \(tensor.dataType) are not supported")
        }
      } while matches(Ch.comma)
      try match(Ch.rbrace)
    } else if matches(Ch.lbracket) {
      tensor.dataLocation = .external
      try stringPairs(into: &tensor.externalData)
      try match(Ch.rbracket)
    }
  }

  // MARK: Lists of keys and values

  private mutating func opsetImports() throws -> [Onnx_OperatorSetIdProto] {
    var opsets: [Onnx_OperatorSetIdProto] = []
    try match(Ch.lbracket)
    guard !matches(Ch.rbracket) else { return opsets }
    repeat {
      var opset = Onnx_OperatorSetIdProto()
      opset.domain = try string()
      try match(Ch.colon)
      opset.version = try int64("an opset version")
      opsets.append(opset)
    } while matches(Ch.comma)
    try match(Ch.rbracket)
    return opsets
  }

  /// `"key": "value", ...` (at least one).
  private mutating func stringPairs(into entries: inout [Onnx_StringStringEntryProto]) throws {
    repeat {
      try appending(to: &entries) {
        $1.key = try $0.string()
        try $0.match(Ch.colon)
        $1.value = try $0.string()
      }
    } while matches(Ch.comma)
  }

  /// parser.cc's `Parse(*list.Add())`: an empty element goes in first and is parsed in place.
  private mutating func appending<Element: SwiftProtobuf.Message>(
    to list: inout [Element], _ parse: (inout TextCursor, inout Element) throws -> Void
  ) throws {
    list.append(Element())
    try parse(&self, &list[list.count - 1])
  }

  // MARK: Keywords and identifiers

  private enum Keyword: String {
    case irVersion = "ir_version", opsetImport = "opset_import", producerName = "producer_name"
    case producerVersion = "producer_version", domain, modelVersion = "model_version"
    case docString = "doc_string", metadataProps = "metadata_props", seq, map, optional
    case sparseTensor = "sparse_tensor", opaque, overload
  }

  /// A property name in a model's or function's `<...>`; nil when unknown, which parser.cc
  /// reports only after the `:`.
  private mutating func keyword() throws -> (Keyword?, at: Int) {
    let at = tokenStart()
    return (Keyword(rawValue: try identifier("a property name")), at)
  }

  /// `[A-Za-z_][A-Za-z0-9_]*`, or "" when none is next.
  private mutating func optionalIdentifier() -> String {
    skipWhitespace()
    let from = pos
    if pos < input.count && (Ch.isAlpha(input[pos]) || input[pos] == Ch.underscore) {
      pos += 1
      while pos < input.count && (Ch.isAlnum(input[pos]) || input[pos] == Ch.underscore) { pos += 1 }
    }
    return String(decoding: input[from..<pos], as: UTF8.self)
  }

  private mutating func identifier(_ what: String) throws -> String {
    let id = optionalIdentifier()
    if id.isEmpty { throw failure("expected \(what)") }
    return id
  }

  /// An identifier or a string literal (for names that are not identifiers).
  private mutating func quotableIdentifier(_ what: String) throws -> String {
    nextChar() == Ch.quote ? try string() : try identifier(what)
  }

  private mutating func optionalQuotableIdentifier() throws -> String {
    nextChar() == Ch.quote ? try string() : optionalIdentifier()
  }

  private mutating func peekIdentifier() -> String {
    let saved = pos
    defer { pos = saved }
    return optionalIdentifier()
  }

  private mutating func nextIsIdentifier() -> Bool { !peekIdentifier().isEmpty }

  // MARK: Literals

  /// parser.cc's `Parse(Literal&)`: a string, `[-]digits[.digits][(e|E)[+|-]digits]`, or
  /// `[-]inf|infinity|nan` in any case; `.undefined` (nothing read but a `-`) for anything else.
  private mutating func literal() throws -> Literal {
    var next = nextChar()
    let from = pos
    if next == Ch.quote {
      pos += 1
      var bytes: [UInt8] = []
      while pos < input.count && input[pos] != Ch.quote {
        // A backslash keeps the byte after it, whatever it is (`\n` is `n`).
        if input[pos] == Ch.backslash {
          pos += 1
          if pos >= input.count { break }
        }
        bytes.append(input[pos])
        pos += 1
      }
      guard pos < input.count else { throw failure("unterminated string literal", at: from) }
      pos += 1
      return Literal(kind: .string, bytes: bytes, start: from)
    }
    if next == Ch.minus {
      pos += 1
      next = nextChar()
    }
    if Ch.isAlpha(next) {
      guard nextIsValidFloatString() else { throw failure("expected a number, found a name", at: from) }
      while pos < input.count && Ch.isAlpha(input[pos]) { pos += 1 }
      // With a space after the `-`, onnx's conversion fails and the literal comes back undefined.
      let bytes = Array(input[from..<pos])
      let spaced = bytes.first == Ch.minus && !Ch.isAlpha(bytes[1])
      return Literal(kind: spaced ? .undefined : .float, bytes: spaced ? [] : bytes, start: from)
    }
    guard Ch.isDigit(next) else { return Literal(kind: .undefined, bytes: [], start: from) }
    pos += 1
    var isFloat = false
    while pos < input.count && (Ch.isDigit(input[pos]) || input[pos] == Ch.dot) {
      if input[pos] == Ch.dot {
        if isFloat { break }
        isFloat = true
      }
      pos += 1
    }
    if pos < input.count && (input[pos] == Ch.lowerE || input[pos] == Ch.upperE) {
      isFloat = true
      pos += 1
      if pos < input.count && (input[pos] == Ch.plus || input[pos] == Ch.minus) { pos += 1 }
      while pos < input.count && Ch.isDigit(input[pos]) { pos += 1 }
    }
    return Literal(kind: isFloat ? .float : .int, bytes: Array(input[from..<pos]), start: from)
  }

  /// Whether `inf`, `infinity` or `nan` (any case, not followed by a digit) is next; reads nothing.
  private mutating func nextIsValidFloatString() -> Bool {
    let next = nextChar()
    let from = pos
    defer { pos = from }
    guard Ch.isAlpha(next) else { return false }
    // parser.cc looks at no more than 9 letters, enough to tell "infinity" from longer words.
    while pos < input.count && Ch.isAlpha(input[pos]) && pos - from <= 8 { pos += 1 }
    if pos < input.count && Ch.isDigit(input[pos]) { return false }
    let word = String(decoding: input[from..<pos], as: UTF8.self).lowercased()
    return word == "inf" || word == "infinity" || word == "nan"
  }

  private mutating func stringBytes() throws -> [UInt8] {
    let literal = try literal()
    guard literal.kind == .string else { throw failure("expected a string literal", at: literal.start) }
    return literal.bytes
  }

  private mutating func string() throws -> String {
    String(decoding: try stringBytes(), as: UTF8.self)
  }

  private mutating func int64(_ what: String) throws -> Int64 {
    let literal = try literal()
    guard literal.kind == .int else { throw failure("expected \(what)", at: literal.start) }
    return try int64(literal)
  }

  /// std::stoull: a negative value wraps around.
  private mutating func uint64() throws -> UInt64 {
    let literal = try literal()
    guard literal.kind == .int else { throw failure("expected an integer tensor element", at: literal.start) }
    let text = literal.text
    let magnitude = text.hasPrefix("-") ? UInt64(text.dropFirst()) : UInt64(text)
    guard let magnitude else { throw conversionFailure(literal) }
    return text.hasPrefix("-") ? 0 &- magnitude : magnitude
  }

  /// An int or float literal.
  private mutating func number(_ what: String) throws -> Literal {
    let literal = try literal()
    guard literal.kind == .int || literal.kind == .float else { throw failure("expected \(what)", at: literal.start) }
    return literal
  }

  /// std::stoll; Swift's parser rejects what stoll does (a space after `-`, out of range).
  private func int64(_ literal: Literal) throws -> Int64 {
    guard let value = Int64(literal.text) else { throw conversionFailure(literal) }
    return value
  }

  /// LocaleIndependentStof: correctly rounded; underflow gives zero or a subnormal, overflow fails.
  private func float(_ literal: Literal) throws -> Float {
    guard let value = Float(literal.text), value.isFinite || Self.isSpecial(literal) else {
      throw conversionFailure(literal)
    }
    return value
  }

  private func double(_ literal: Literal) throws -> Double {
    guard let value = Double(literal.text), value.isFinite || Self.isSpecial(literal) else {
      throw conversionFailure(literal)
    }
    return value
  }

  /// `inf` or `nan` spelled out, whose infinity is no overflow (a number ends in a digit or `.`).
  private static func isSpecial(_ literal: Literal) -> Bool { literal.bytes.last.map(Ch.isAlpha) ?? false }

  private func conversionFailure(_ literal: Literal) -> TextFailure {
    TextFailure(offset: literal.start, message: "'\(literal.text)' is malformed or out of range", isConversion: true)
  }

  // MARK: Characters

  private mutating func skipWhitespace() {
    while pos < input.count {
      if Ch.isSpace(input[pos]) {
        pos += 1
      } else if input[pos] == Ch.hash {
        // A comment runs to the end of the line.
        while pos < input.count && input[pos] != Ch.newline { pos += 1 }
      } else {
        return
      }
    }
  }

  /// The next byte after whitespace and comments, 0 at the end.
  private mutating func nextChar() -> UInt8 {
    skipWhitespace()
    return pos < input.count ? input[pos] : 0
  }

  private mutating func tokenStart() -> Int {
    skipWhitespace()
    return pos
  }

  private mutating func matches(_ char: UInt8, skipSpace: Bool = true) -> Bool {
    if skipSpace { skipWhitespace() }
    guard pos < input.count && input[pos] == char else { return false }
    pos += 1
    return true
  }

  private mutating func match(_ char: UInt8, skipSpace: Bool = true) throws {
    if !matches(char, skipSpace: skipSpace) {
      throw failure("expected '\(Character(Unicode.Scalar(char)))', found \(found())")
    }
  }

  /// `=>`, with nothing between the two characters.
  private mutating func matchArrow() throws {
    if !matches(Ch.equals) || !matches(Ch.greater, skipSpace: false) {
      throw failure("expected '=>', found \(found())")
    }
  }

  private mutating func endOfInput() -> Bool {
    skipWhitespace()
    return pos >= input.count
  }

  /// What is at the cursor, for error messages: a word, one character, or the end.
  private func found() -> String {
    guard pos < input.count else { return "end of input" }
    var end = pos
    while end < input.count && end - pos < 24 && (Ch.isAlnum(input[end]) || input[end] == Ch.underscore) { end += 1 }
    if end == pos {
      // One whole character, however many bytes.
      end = pos + 1
      while end < input.count && input[end] & 0xC0 == 0x80 { end += 1 }
    }
    return "'" + String(decoding: input[pos..<end], as: UTF8.self) + "'"
  }

  private mutating func failure(_ message: String, at offset: Int? = nil) -> TextFailure {
    TextFailure(offset: offset ?? tokenStart(), message: message)
  }
}

/// A tensor or sparse tensor type, whose element type and shape parse the same way.
private protocol ShapedType {
  var elemType: Int32 { get set }
  var shape: Onnx_TensorShapeProto { get set }
}

extension Onnx_TypeProto.Tensor: ShapedType {}
extension Onnx_TypeProto.SparseTensor: ShapedType {}

/// ASCII bytes and parser.cc's locale-independent classes.
private enum Ch {
  static let newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
  static let hash = UInt8(ascii: "#"), comma = UInt8(ascii: ","), colon = UInt8(ascii: ":")
  static let equals = UInt8(ascii: "="), less = UInt8(ascii: "<"), greater = UInt8(ascii: ">")
  static let lparen = UInt8(ascii: "("), rparen = UInt8(ascii: ")"), lbracket = UInt8(ascii: "[")
  static let rbracket = UInt8(ascii: "]"), lbrace = UInt8(ascii: "{"), rbrace = UInt8(ascii: "}")
  static let dot = UInt8(ascii: "."), at = UInt8(ascii: "@"), question = UInt8(ascii: "?")
  static let minus = UInt8(ascii: "-"), plus = UInt8(ascii: "+"), underscore = UInt8(ascii: "_")
  static let lowerE = UInt8(ascii: "e"), upperE = UInt8(ascii: "E")

  static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (0x09...0x0D).contains(c) }
  static func isAlpha(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x41...0x5A).contains(c) }
  static func isDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
  static func isAlnum(_ c: UInt8) -> Bool { isAlpha(c) || isDigit(c) }
}
