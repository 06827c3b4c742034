import Foundation
import ONNXGraph
import ONNXProto
import SwiftProtobuf

/// Turns decoded protos into the typed graph: resolves names to `Value`s scope by scope,
/// raw-data markers to slices of the mapped model file, and external data to slices of
/// mapped data files.
struct ProtoImporter {
  let modelPath: String
  /// The wire scanner's slots: (offset, count) of each large `raw_data` in the model file.
  let slots: [(offset: Int, count: Int)]
  let modelFile: MappedFile?
  let externalData: ExternalDataResolver

  /// Names visible in a graph: its own values, then the enclosing graphs' (for sub-graphs).
  final class Scope {
    let parent: Scope?
    var values: [String: Value] = [:]
    init(parent: Scope?) { self.parent = parent }
    func lookup(_ name: String) -> Value? { values[name] ?? parent?.lookup(name) }
  }

  func model(_ p: Onnx_ModelProto) throws -> Model {
    let m = Model(
      irVersion: p.irVersion, opsetImports: p.opsetImport.map(opset),
      graph: try graph(p.graph, parent: nil))
    m.producerName = p.producerName
    m.producerVersion = p.producerVersion
    m.domain = p.domain
    m.modelVersion = p.modelVersion
    m.docString = p.docString
    m.metadataProps = p.metadataProps.map(entry)
    m.trainingInfo = try p.trainingInfo.map { t in
      var info = TrainingInfo(
        initialization: t.hasInitialization ? try graph(t.initialization, parent: nil) : nil,
        algorithm: t.hasAlgorithm ? try graph(t.algorithm, parent: nil) : nil,
        initializationBinding: t.initializationBinding.map(entry),
        updateBinding: t.updateBinding.map(entry))
      info.preservedFields = t.unknownFields.data
      return info
    }
    m.functions = try p.functions.map(function)
    m.preservedFields = try preserved(p, Onnx_ModelProto()) { rest in
      rest.configuration = p.configuration
      if p.hasProducerName && p.producerName.isEmpty { rest.producerName = "" }
      if p.hasProducerVersion && p.producerVersion.isEmpty { rest.producerVersion = "" }
      if p.hasDomain && p.domain.isEmpty { rest.domain = "" }
      if p.hasModelVersion && p.modelVersion == 0 { rest.modelVersion = 0 }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    return m
  }

  func graph(_ p: Onnx_GraphProto, parent: Scope?) throws -> Graph {
    let scope = Scope(parent: parent)
    let g = Graph(name: p.name)
    g.docString = p.docString
    g.metadataProps = p.metadataProps.map(entry)
    g.preservedFields = try preserved(p, Onnx_GraphProto()) { rest in
      rest.quantizationAnnotation = p.quantizationAnnotation
      if p.hasName && p.name.isEmpty { rest.name = "" }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    g.inputs = try p.input.map { vi in
      let v = try value(vi)
      scope.values[v.name] = v
      return v
    }
    for t in p.initializer {
      let tensor = try self.tensor(t)
      // An initializer with the name of an input is that input's default value.
      let v = scope.values[t.name] ?? Value(name: t.name)
      scope.values[t.name] = v
      g.addInitializer(v, tensor)
    }
    g.sparseInitializers = try p.sparseInitializer.map { s in
      let sparse = try sparseTensor(s)
      let name = sparse.values.name
      if scope.values[name] == nil { scope.values[name] = Value(name: name) }
      return sparse
    }
    for n in p.node { g.append(try node(n, scope: scope)) }
    g.valueInfos = try p.valueInfo.map { vi in
      guard let v = scope.values[vi.name] else { return try value(vi) }  // names nothing: kept as is
      try annotate(v, vi)
      return v
    }
    g.outputs = try p.output.map { vi in
      guard let v = scope.lookup(vi.name) else { return try value(vi) }
      try annotate(v, vi)
      return v
    }
    return g
  }

  func function(_ p: Onnx_FunctionProto) throws -> Function {
    let scope = Scope(parent: nil)
    let body = Graph()
    body.inputs = p.input.map { name in
      let v = Value(name: name)
      scope.values[name] = v
      return v
    }
    for n in p.node { body.append(try node(n, scope: scope)) }
    body.outputs = p.output.map { scope.lookup($0) ?? Value(name: $0) }
    body.valueInfos = try p.valueInfo.map { vi in
      guard let v = scope.values[vi.name] else { return try value(vi) }
      try annotate(v, vi)
      return v
    }
    let f = Function(name: p.name, domain: p.domain, body: body)
    f.overload = p.overload
    f.attributeNames = p.attribute
    f.attributeDefaults = try p.attributeProto.map { try attribute($0, scope: scope) }
    f.opsetImports = p.opsetImport.map(opset)
    f.docString = p.docString
    f.metadataProps = p.metadataProps.map(entry)
    f.preservedFields = try preserved(p, Onnx_FunctionProto()) { rest in
      if p.hasDomain && p.domain.isEmpty { rest.domain = "" }
      if p.hasOverload && p.overload.isEmpty { rest.overload = "" }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    return f
  }

  func node(_ p: Onnx_NodeProto, scope: Scope) throws -> Node {
    let inputs: [Value?] = p.input.map { name in
      if name.isEmpty { return nil }
      if let v = scope.lookup(name) { return v }
      // Read before any definition (an invalid model, or a name bound by the caller of a
      // function body): keep the name so the model is written back as it was.
      let v = Value(name: name)
      scope.values[name] = v
      return v
    }
    // Attributes first: sub-graphs see the enclosing scope, not this node's outputs.
    let attributes = try p.attribute.map { try attribute($0, scope: scope) }
    let outputs = p.output.map { Value(name: $0) }
    for v in outputs where !v.name.isEmpty { scope.values[v.name] = v }
    let n = Node(
      p.opType, domain: p.domain, name: p.name, inputs: inputs, outputs: outputs,
      attributes: attributes)
    n.overload = p.overload
    n.docString = p.docString
    n.metadataProps = p.metadataProps.map(entry)
    n.preservedFields = try preserved(p, Onnx_NodeProto()) { rest in
      rest.deviceConfigurations = p.deviceConfigurations
      if p.hasName && p.name.isEmpty { rest.name = "" }
      if p.hasDomain && p.domain.isEmpty { rest.domain = "" }
      if p.hasOverload && p.overload.isEmpty { rest.overload = "" }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    return n
  }

  func attribute(_ p: Onnx_AttributeProto, scope: Scope) throws -> Attribute {
    let value: AttributeValue
    switch p.type {
    case .undefined: value = .undefined
    case .float: value = .float(p.f)
    case .int: value = .int(p.i)
    case .string: value = .string(p.s)
    case .tensor: value = .tensor(try tensor(p.t))
    case .graph: value = .graph(try graph(p.g, parent: scope))
    case .sparseTensor: value = .sparseTensor(try sparseTensor(p.sparseTensor))
    case .typeProto: value = .type(type(p.tp))
    case .floats: value = .floats(p.floats)
    case .ints: value = .ints(p.ints)
    case .strings: value = .strings(p.strings)
    case .tensors: value = .tensors(try p.tensors.map(tensor))
    case .graphs: value = .graphs(try p.graphs.map { try graph($0, parent: scope) })
    case .sparseTensors: value = .sparseTensors(try p.sparseTensors.map(sparseTensor))
    case .typeProtos: value = .types(p.typeProtos.map(type))
    }
    var a = Attribute(p.name, value)
    a.refAttrName = p.refAttrName
    a.docString = p.docString
    a.preservedFields = try preserved(p, Onnx_AttributeProto()) { rest in
      if p.hasRefAttrName && p.refAttrName.isEmpty { rest.refAttrName = "" }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    return a
  }

  func tensor(_ p: Onnx_TensorProto) throws -> Tensor {
    let dataType = DataType(rawValue: p.dataType)
    let dims = p.dims.map { Int($0) }
    let storage: TensorStorage
    if p.dataLocation == .external {
      var location = "", offset: Int64? = nil, length: Int64? = nil
      for e in p.externalData {
        switch e.key {
        case "location": location = e.value
        case "offset": offset = Int64(e.value)
        case "length": length = Int64(e.value)
        default: break  // checksum and other keys carry no bytes
        }
      }
      let elements = dims.reduce(1) { $0 * max($1, 0) }
      storage = .raw(
        try externalData.bytes(
          tensor: p.name, location: location, offset: offset, length: length,
          expected: dataType.byteCount(elements: elements)))
    } else if p.hasRawData {
      storage = .raw(try rawBytes(p.rawData, tensor: p.name))
    } else if !p.floatData.isEmpty {
      storage = .floats(p.floatData)
    } else if !p.int32Data.isEmpty {
      storage = .int32s(p.int32Data)
    } else if !p.int64Data.isEmpty {
      storage = .int64s(p.int64Data)
    } else if !p.doubleData.isEmpty {
      storage = .doubles(p.doubleData)
    } else if !p.uint64Data.isEmpty {
      storage = .uint64s(p.uint64Data)
    } else if !p.stringData.isEmpty {
      storage = .strings(p.stringData)
    } else {
      storage = .empty
    }
    var t = Tensor(name: p.name, dataType: dataType, dims: dims, storage: storage)
    t.docString = p.docString
    if p.hasSegment { t.segment = (p.segment.begin, p.segment.end) }
    t.metadataProps = p.metadataProps.map(entry)
    t.preservedFields = try preserved(p, Onnx_TensorProto()) { rest in
      if p.hasName && p.name.isEmpty { rest.name = "" }
      if p.hasDataLocation && p.dataLocation == .default { rest.dataLocation = .default }
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
    return t
  }

  /// Inline `raw_data`, or the mapped slice a marker stands for.
  private func rawBytes(_ data: Data, tensor: String) throws -> TensorBytes {
    let slot = data.withUnsafeBytes { RawDataMarker.slot(in: $0) }
    guard let slot else { return TensorBytes(data) }
    guard slot < slots.count, let modelFile else {
      throw ModelFileError(file: modelPath, "tensor '\(tensor)': dangling raw-data marker")
    }
    return modelFile.slice(offset: slots[slot].offset, count: slots[slot].count)
  }

  func sparseTensor(_ p: Onnx_SparseTensorProto) throws -> SparseTensor {
    var s = SparseTensor(
      values: try tensor(p.values), indices: try tensor(p.indices), dims: p.dims.map { Int($0) })
    s.preservedFields = p.unknownFields.data
    return s
  }

  func value(_ p: Onnx_ValueInfoProto) throws -> Value {
    let v = Value(name: p.name)
    try annotate(v, p)
    return v
  }

  /// Copies a `ValueInfoProto`'s type and docs onto a value.
  func annotate(_ v: Value, _ p: Onnx_ValueInfoProto) throws {
    if p.hasType { v.type = type(p.type) }
    if !p.docString.isEmpty { v.docString = p.docString }
    if !p.metadataProps.isEmpty { v.metadataProps = p.metadataProps.map(entry) }
    v.preservedFields = try preserved(p, Onnx_ValueInfoProto()) { rest in
      if p.hasDocString && p.docString.isEmpty { rest.docString = "" }
    }
  }

  func type(_ p: Onnx_TypeProto) -> TypeInfo {
    let kind: TypeInfo.Kind
    switch p.value {
    case nil: kind = .unspecified
    case .tensorType(let t):
      kind = .tensor(DataType(rawValue: t.elemType), t.hasShape ? shape(t.shape) : nil)
    case .sparseTensorType(let t):
      kind = .sparseTensor(DataType(rawValue: t.elemType), t.hasShape ? shape(t.shape) : nil)
    case .sequenceType(let s): kind = .sequence(s.hasElemType ? type(s.elemType) : nil)
    case .mapType(let m):
      kind = .map(key: DataType(rawValue: m.keyType), value: m.hasValueType ? type(m.valueType) : nil)
    case .optionalType(let o): kind = .optional(o.hasElemType ? type(o.elemType) : nil)
    case .opaqueType(let o): kind = .opaque(domain: o.domain, name: o.name)
    }
    return TypeInfo(kind, denotation: p.denotation)
  }

  func shape(_ p: Onnx_TensorShapeProto) -> Shape {
    var denotations: [Int: String] = [:]
    let dims = p.dim.enumerated().map { (i, d) -> Dim in
      if d.hasDenotation { denotations[i] = d.denotation }
      switch d.value {
      case .dimValue(let v): return .value(Int(v))
      case .dimParam(let s): return .symbol(s)
      case nil: return .unknown
      }
    }
    return Shape(dims, denotations: denotations)
  }

  /// The serialized fields the IR keeps opaque: unknown fields, fields it does not model
  /// (`fill` copies them), and fields present but empty, which the exporter would
  /// otherwise drop (onnx writes `domain: ""` explicitly, for one).
  func preserved<M: SwiftProtobuf.Message & Equatable>(_ p: M, _ empty: M, fill: (inout M) -> Void) throws -> Data {
    var rest = empty
    fill(&rest)
    rest.unknownFields = p.unknownFields
    return rest == empty ? Data() : try rest.serializedBytes()
  }

  func opset(_ p: Onnx_OperatorSetIdProto) -> OpsetImport {
    var o = OpsetImport(p.domain, p.version)
    o.writesEmptyDomain = p.hasDomain
    return o
  }
  func entry(_ p: Onnx_StringStringEntryProto) -> MetadataEntry { MetadataEntry(p.key, p.value) }
}
