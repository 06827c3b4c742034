import Foundation
import ONNXGraph
import ONNXProto
import SwiftProtobuf

/// Turns the typed graph back into protos. Large `raw_data` is not copied into the proto:
/// `place` decides, tensor by tensor, whether its bytes go inline, become a marker that
/// the writer splices from the source file, or move to an external-data file.
final class ProtoExporter {
  enum Placement {
    case inline
    /// Marker now, bytes spliced in by the writer.
    case splice
    /// Stored in the external data file at `offset`.
    case external(location: String, offset: Int)
  }

  /// Decides where each raw tensor's bytes go.
  var place: (TensorBytes) -> Placement
  /// Bytes behind each marker, by slot.
  private(set) var splices: [TensorBytes] = []
  /// Bytes to write to the external-data file, in file order.
  private(set) var externalWrites: [(offset: Int, bytes: TensorBytes)] = []

  init(place: @escaping (TensorBytes) -> Placement) { self.place = place }

  func model(_ m: Model) throws -> Onnx_ModelProto {
    var p = try restore(Onnx_ModelProto.self, m.preservedFields)
    p.irVersion = m.irVersion
    p.opsetImport = m.opsetImports.map(opset)
    if !m.producerName.isEmpty { p.producerName = m.producerName }
    if !m.producerVersion.isEmpty { p.producerVersion = m.producerVersion }
    if !m.domain.isEmpty { p.domain = m.domain }
    if m.modelVersion != 0 { p.modelVersion = m.modelVersion }
    if !m.docString.isEmpty { p.docString = m.docString }
    p.graph = try graph(m.graph)
    p.metadataProps = m.metadataProps.map(entry)
    p.trainingInfo = try m.trainingInfo.map { t in
      var tp = try restore(Onnx_TrainingInfoProto.self, t.preservedFields)
      if let g = t.initialization { tp.initialization = try graph(g) }
      if let g = t.algorithm { tp.algorithm = try graph(g) }
      tp.initializationBinding = t.initializationBinding.map(entry)
      tp.updateBinding = t.updateBinding.map(entry)
      return tp
    }
    p.functions = try m.functions.map(function)
    return p
  }

  func graph(_ g: Graph) throws -> Onnx_GraphProto {
    var p = try restore(Onnx_GraphProto.self, g.preservedFields)
    var nodes: [Onnx_NodeProto] = []
    nodes.reserveCapacity(g.nodeCount)
    for n in g.nodes { nodes.append(try node(n)) }
    p.node = nodes
    if !g.name.isEmpty { p.name = g.name }
    p.initializer = try g.initializers.values.map { v in
      var t = try tensor(v.constValue!)
      t.name = v.name
      return t
    }
    p.sparseInitializer = try g.sparseInitializers.map(sparseTensor)
    if !g.docString.isEmpty { p.docString = g.docString }
    p.input = try g.inputs.map(valueInfo)
    p.output = try g.outputs.map(valueInfo)
    p.valueInfo = try g.valueInfos.map(valueInfo)
    p.metadataProps = g.metadataProps.map(entry)
    return p
  }

  func function(_ f: Function) throws -> Onnx_FunctionProto {
    var p = try restore(Onnx_FunctionProto.self, f.preservedFields)
    p.name = f.name
    p.input = f.body.inputs.map(\.name)
    p.output = f.body.outputs.map(\.name)
    p.attribute = f.attributeNames
    p.attributeProto = try f.attributeDefaults.map(attribute)
    var nodes: [Onnx_NodeProto] = []
    for n in f.body.nodes { nodes.append(try node(n)) }
    p.node = nodes
    if !f.docString.isEmpty { p.docString = f.docString }
    p.opsetImport = f.opsetImports.map(opset)
    if !f.domain.isEmpty { p.domain = f.domain }
    if !f.overload.isEmpty { p.overload = f.overload }
    p.valueInfo = try f.body.valueInfos.map(valueInfo)
    p.metadataProps = f.metadataProps.map(entry)
    return p
  }

  func node(_ n: Node) throws -> Onnx_NodeProto {
    var p = try restore(Onnx_NodeProto.self, n.preservedFields)
    p.input = n.inputs.map { $0?.name ?? "" }
    p.output = n.outputs.map(\.name)
    if !n.name.isEmpty { p.name = n.name }
    p.opType = n.opType
    if !n.domain.isEmpty { p.domain = n.domain }
    if !n.overload.isEmpty { p.overload = n.overload }
    p.attribute = try n.attributes.map(attribute)
    if !n.docString.isEmpty { p.docString = n.docString }
    p.metadataProps = n.metadataProps.map(entry)
    return p
  }

  func attribute(_ a: Attribute) throws -> Onnx_AttributeProto {
    var p = try restore(Onnx_AttributeProto.self, a.preservedFields)
    p.name = a.name
    if !a.refAttrName.isEmpty { p.refAttrName = a.refAttrName }
    if !a.docString.isEmpty { p.docString = a.docString }
    // A reference carries only its type; the value comes from the function's caller.
    let withValue = a.refAttrName.isEmpty
    switch a.value {
    case .undefined: p.type = .undefined
    case .float(let v): p.type = .float; if withValue { p.f = v }
    case .int(let v): p.type = .int; if withValue { p.i = v }
    case .string(let v): p.type = .string; if withValue { p.s = v }
    case .tensor(let t): p.type = .tensor; if withValue { p.t = try tensor(t) }
    case .graph(let g): p.type = .graph; if withValue { p.g = try graph(g) }
    case .sparseTensor(let s): p.type = .sparseTensor; if withValue { p.sparseTensor = try sparseTensor(s) }
    case .type(let t): p.type = .typeProto; if withValue { p.tp = type(t) }
    case .floats(let v): p.type = .floats; p.floats = v
    case .ints(let v): p.type = .ints; p.ints = v
    case .strings(let v): p.type = .strings; p.strings = v
    case .tensors(let v): p.type = .tensors; p.tensors = try v.map(tensor)
    case .graphs(let v): p.type = .graphs; p.graphs = try v.map(graph)
    case .sparseTensors(let v): p.type = .sparseTensors; p.sparseTensors = try v.map(sparseTensor)
    case .types(let v): p.type = .typeProtos; p.typeProtos = v.map(type)
    }
    return p
  }

  func tensor(_ t: Tensor) throws -> Onnx_TensorProto {
    var p = try restore(Onnx_TensorProto.self, t.preservedFields)
    p.dims = t.dims.map { Int64($0) }
    p.dataType = t.dataType.rawValue
    if let s = t.segment {
      p.segment.begin = s.begin
      p.segment.end = s.end
    }
    if !t.name.isEmpty { p.name = t.name }
    if !t.docString.isEmpty { p.docString = t.docString }
    switch t.storage {
    case .raw(let bytes):
      switch place(bytes) {
      case .inline:
        p.rawData = bytes.data
      case .splice:
        p.rawData = Data(RawDataMarker.make(slot: splices.count))
        splices.append(bytes)
      case .external(let location, let offset):
        p.dataLocation = .external
        p.externalData = [
          entry(MetadataEntry("location", location)),
          entry(MetadataEntry("offset", String(offset))),
          entry(MetadataEntry("length", String(bytes.count))),
        ]
        externalWrites.append((offset, bytes))
      }
    case .floats(let v): p.floatData = v
    case .int32s(let v): p.int32Data = v
    case .int64s(let v): p.int64Data = v
    case .doubles(let v): p.doubleData = v
    case .uint64s(let v): p.uint64Data = v
    case .strings(let v): p.stringData = v
    case .empty: break
    }
    p.metadataProps = t.metadataProps.map(entry)
    return p
  }

  func sparseTensor(_ s: SparseTensor) throws -> Onnx_SparseTensorProto {
    var p = try restore(Onnx_SparseTensorProto.self, s.preservedFields)
    p.values = try tensor(s.values)
    p.indices = try tensor(s.indices)
    p.dims = s.dims.map { Int64($0) }
    return p
  }

  func valueInfo(_ v: Value) throws -> Onnx_ValueInfoProto {
    var p = try restore(Onnx_ValueInfoProto.self, v.preservedFields)
    p.name = v.name
    if let t = v.type { p.type = type(t) }
    if !v.docString.isEmpty { p.docString = v.docString }
    p.metadataProps = v.metadataProps.map(entry)
    return p
  }

  func type(_ t: TypeInfo) -> Onnx_TypeProto {
    var p = Onnx_TypeProto()
    switch t.kind {
    case .unspecified: break
    case .tensor(let e, let s):
      var tt = Onnx_TypeProto.Tensor()
      tt.elemType = e.rawValue
      if let s { tt.shape = shape(s) }
      p.tensorType = tt
    case .sparseTensor(let e, let s):
      var tt = Onnx_TypeProto.SparseTensor()
      tt.elemType = e.rawValue
      if let s { tt.shape = shape(s) }
      p.sparseTensorType = tt
    case .sequence(let e):
      var s = Onnx_TypeProto.Sequence()
      if let e { s.elemType = type(e) }
      p.sequenceType = s
    case .map(let k, let v):
      var m = Onnx_TypeProto.Map()
      m.keyType = k.rawValue
      if let v { m.valueType = type(v) }
      p.mapType = m
    case .optional(let e):
      var o = Onnx_TypeProto.Optional()
      if let e { o.elemType = type(e) }
      p.optionalType = o
    case .opaque(let d, let n):
      var o = Onnx_TypeProto.Opaque()
      if !d.isEmpty { o.domain = d }
      if !n.isEmpty { o.name = n }
      p.opaqueType = o
    }
    if !t.denotation.isEmpty { p.denotation = t.denotation }
    return p
  }

  func shape(_ s: Shape) -> Onnx_TensorShapeProto {
    var p = Onnx_TensorShapeProto()
    p.dim = s.dims.enumerated().map { i, d in
      var pd = Onnx_TensorShapeProto.Dimension()
      switch d {
      case .value(let v): pd.dimValue = Int64(v)
      case .symbol(let name): pd.dimParam = name
      case .unknown: break
      }
      if let den = s.denotations[i] { pd.denotation = den }
      return pd
    }
    return p
  }

  func opset(_ o: OpsetImport) -> Onnx_OperatorSetIdProto {
    var p = Onnx_OperatorSetIdProto()
    if !o.domain.isEmpty || o.writesEmptyDomain { p.domain = o.domain }
    p.version = o.version
    return p
  }

  func entry(_ e: MetadataEntry) -> Onnx_StringStringEntryProto {
    var p = Onnx_StringStringEntryProto()
    p.key = e.key
    p.value = e.value
    return p
  }

  /// A message holding the fields the IR keeps opaque, ready for the modelled ones.
  private func restore<M: SwiftProtobuf.Message>(_: M.Type, _ preserved: Data) throws -> M {
    preserved.isEmpty ? M() : try M(serializedBytes: preserved, partial: true)
  }
}
