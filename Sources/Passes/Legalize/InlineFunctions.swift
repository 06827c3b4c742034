import ONNXGraph

/// Replaces every call of a model-local function (a node whose domain and op name a
/// `FunctionProto` of the model defines) by the function's body, with fresh value and
/// node names and `ref_attr_name` attributes bound to the call's attributes (or the
/// function's defaults; unset ones are left out, as ONNX specifies). Then drops the
/// functions, which nothing calls any more.
///
/// Dynamo exports can carry such functions; compilers that read only the main graph
/// (TPU-MLIR) and the opset lowering both need the ops in the graph itself.
enum InlineFunctions {
  /// Calls nested deeper than this are taken for recursion.
  static let depthLimit = 64

  struct Key: Hashable {
    let domain: String
    let name: String
    let overload: String
  }

  /// The number of calls inlined.
  static func run(on model: Model, pass: String) throws -> Int {
    guard !model.functions.isEmpty else { return 0 }
    var functions: [Key: Function] = [:]
    for f in model.functions { functions[Key(domain: f.domain, name: f.name, overload: f.overload)] = f }
    var count = 0
    var graphs: [Graph] = [model.graph]
    while let g = graphs.popLast() {
      let names = NameScope(g)
      // A worklist: inlined bodies may call functions themselves.
      var work: [(node: Node, depth: Int)] = g.nodes.map { ($0, 0) }
      var i = 0
      while i < work.count {
        let (call, depth) = work[i]
        i += 1
        guard let f = functions[Key(domain: call.domain, name: call.opType, overload: call.overload)] else {
          graphs.append(contentsOf: call.subgraphs)
          continue
        }
        guard depth < depthLimit else {
          throw PassError(pass: pass, location: call.displayName, reason: "calls of '\(f.name)' nest deeper than \(depthLimit): recursive function?")
        }
        let body = try inline(call, f, in: g, names: names, pass: pass)
        work.append(contentsOf: body.map { ($0, depth + 1) })
        count += 1
      }
    }
    // Imports the bodies needed (other domains) become the model's.
    for f in model.functions {
      for imp in f.opsetImports where model.opsetVersion(for: imp.domain) == nil { model.opsetImports.append(imp) }
    }
    model.functions = []
    return count
  }

  /// Inserts a copy of `f`'s body in place of `call`; returns the new nodes.
  static func inline(_ call: Node, _ f: Function, in g: Graph, names: NameScope, pass: String) throws -> [Node] {
    guard call.inputs.count <= f.body.inputs.count, call.outputs.count <= f.body.outputs.count else {
      throw PassError(
        pass: pass, location: call.displayName,
        reason: "calls '\(f.name)' with \(call.inputs.count) inputs and \(call.outputs.count) outputs; it takes \(f.body.inputs.count) and \(f.body.outputs.count)")
    }
    let prefix = call.name.isEmpty ? f.name : call.name
    var map: [ObjectIdentifier: Value?] = [:]
    for (i, formal) in f.body.inputs.enumerated() { map[ObjectIdentifier(formal)] = i < call.inputs.count ? call.inputs[i] : nil }
    let callOutputs = call.outputs
    let before = call.previous
    g.remove(call)
    // Body outputs computed by a body node are written straight into the call's values.
    var direct: [ObjectIdentifier: Value] = [:]
    for (j, formal) in f.body.outputs.enumerated() where j < callOutputs.count && !callOutputs[j].name.isEmpty {
      if formal.producer != nil, direct[ObjectIdentifier(formal)] == nil { direct[ObjectIdentifier(formal)] = callOutputs[j] }
    }
    var created: [Node] = []
    for n in f.body.nodes {
      if !n.subgraphs.isEmpty {
        throw PassError(pass: pass, location: call.displayName, reason: "function '\(f.name)' holds a sub-graph (node \(n.displayName)); inlining those is not supported")
      }
      let inputs: [Value?] = try n.inputs.map { v in
        guard let v else { return nil }
        guard let mapped = map[ObjectIdentifier(v)] else {
          throw PassError(pass: pass, location: call.displayName, reason: "function '\(f.name)' reads '\(v.name)', which nothing in it defines")
        }
        return mapped
      }
      let outputs = n.outputs.map { o -> Value in
        if let v = direct[ObjectIdentifier(o)] { return v }
        return Value(name: o.name.isEmpty ? "" : names.fresh("\(prefix)/\(o.name)"), type: o.type)
      }
      var attributes: [Attribute] = []
      for a in n.attributes {
        guard a.isReference else { attributes.append(a); continue }
        let bound = call.attribute(a.refAttrName) ?? f.attributeDefaults.first { $0.name == a.refAttrName }
        if let bound {
          var copy = Attribute(a.name, bound.value)
          copy.docString = a.docString
          attributes.append(copy)
        }
      }
      let copy = Node(
        n.opType, domain: n.domain, name: n.name.isEmpty ? "" : "\(prefix)/\(n.name)", inputs: inputs, outputs: outputs,
        attributes: attributes)
      copy.overload = n.overload
      copy.metadataProps = n.metadataProps
      for (o, v) in zip(n.outputs, outputs) { map[ObjectIdentifier(o)] = v }
      created.append(copy)
    }
    // Outputs that are a formal input (or repeat another output) need an Identity.
    for (j, formal) in f.body.outputs.enumerated() where j < callOutputs.count && !callOutputs[j].name.isEmpty {
      guard let value = map[ObjectIdentifier(formal)] ?? nil else {
        throw PassError(pass: pass, location: call.displayName, reason: "function '\(f.name)' does not compute its output '\(formal.name)'")
      }
      if value !== callOutputs[j] {
        created.append(Node("Identity", name: "\(prefix)/output_\(j)", inputs: [value], outputs: [callOutputs[j]]))
      }
    }
    var last = before
    for n in created {
      g.insert(n, after: last)
      last = n
    }
    return created
  }
}
