import Evaluation
import Foundation
import ONNXGraph
import ONNXIO

/// How to tile.
public struct TilingOptions: Sendable {
  /// Each tile's weights + peak activations must fit (nil: no limit).
  public var budgetBytes: Int?
  /// Consecutive layers per block tile.
  public var group = 1
  public init(budgetBytes: Int? = nil, group: Int = 1) {
    self.budgetBytes = budgetBytes
    self.group = group
  }
}

/// Why a model cannot be tiled as asked.
public struct TilingError: Error, CustomStringConvertible {
  public var file: String
  public var reason: String
  public var description: String { "\(file): \(reason)" }
}

/// Splits a model into tiles: `embedding`, `block_0` … `block_{N-1}`, `lm_head` (see
/// `LayerDiscovery` for how the blocks are found), each a standalone ONNX model whose
/// weights are the source's mapped bytes, written without a copy.
///
/// Memory estimate per tile: the bytes of every initializer and constant it holds, plus
/// the peak, over its nodes in order, of the bytes of the activations live at that node
/// (from static shapes; a value of unknown shape counts 0 and the tile says so).
public final class Tiler {
  public let model: Model
  public let source: String
  public let options: TilingOptions
  public private(set) var manifest: TileManifest

  let analysis: GraphAnalysis
  let discovery: LayerDiscovery
  private(set) var plan: [PlannedTile] = []
  private(set) var layout: Layout

  struct PlannedTile {
    var name: String
    var kind: String
    var layers: [Int]
    /// Segment indices (into `discovery.segments`).
    var segments: Range<Int>
  }

  /// Which node goes to which tile, and each tile's boundary.
  struct Layout {
    var tiles: [TileContents]
  }

  struct TileContents {
    /// Node indices in source order, constant nodes included.
    var nodes: [Int] = []
    var inputs: [Value] = []
    var outputs: [Value] = []
    var initializers: [Value] = []
    var weightBytes = 0
    var activationBytes = 0
    var activationsComplete = true
    var total: Int { weightBytes + activationBytes }
  }

  public init(model: Model, source: String, options: TilingOptions = .init()) throws {
    guard options.group >= 1 else { throw TilingError(file: source, reason: "--group must be at least 1") }
    self.model = model
    self.source = source
    self.options = options
    // Types for every boundary value; shapes for the activation estimate.
    // Inference can know less than the file declares (a rank lost behind a dynamic Reshape);
    // keep the declared shape then.
    var declared: [ObjectIdentifier: Shape] = [:]
    for v in model.graph.inputs + model.graph.outputs + model.graph.valueInfos {
      if let shape = v.shape { declared[ObjectIdentifier(v)] = shape }
    }
    Propagator(model: model, options: .init(fold: false)).run(model.graph)
    for v in model.graph.inputs + model.graph.outputs + model.graph.valueInfos where v.shape == nil {
      if let shape = declared[ObjectIdentifier(v)] { v.shape = shape }
    }
    analysis = GraphAnalysis(model: model)
    discovery = LayerDiscovery(analysis)
    layout = Layout(tiles: [])
    manifest = TileManifest(source: source, layers: 0, group: 1, budgetBytes: nil, inputs: [], outputs: [], tiles: [])
    guard discovery.layers >= 2 else {
      throw TilingError(
        file: source,
        reason: "found no repeated blocks (\(discovery.segments.count) segments between cut points on "
          + "\(discovery.stream.count) hidden-state nodes); is this a transformer?")
    }
    plan = initialPlan()
    if let budget = options.budgetBytes { try fit(budget: budget) }
    layout = assign(plan)
    manifest = try makeManifest()
  }

  // MARK: Planning

  private func initialPlan() -> [PlannedTile] {
    let d = discovery
    let stackStart = d.firstSegment
    let stackEnd = d.firstSegment + d.period * d.layers
    // A vision tower starts with a patch-embedding Conv where a text model looks tokens up.
    let firstRoot = d.stream.first.map { analysis.nodes[$0].opType }
    let vision = firstRoot == "Conv" || analysis.nodes.contains { $0.name.lowercased().contains("vision") }
    let prefix = vision ? "vision_" : ""
    var out: [PlannedTile] = []
    if stackStart > 0 {
      out.append(PlannedTile(name: prefix + "embedding", kind: "embedding", layers: [], segments: 0..<stackStart))
    }
    var layer = 0
    var block = 0
    while layer < d.layers {
      let n = min(options.group, d.layers - layer)
      let segs = (stackStart + layer * d.period)..<(stackStart + (layer + n) * d.period)
      out.append(
        PlannedTile(name: "\(prefix)block_\(block)", kind: "block", layers: Array(layer..<(layer + n)), segments: segs))
      layer += n
      block += 1
    }
    if stackEnd < d.segments.count {
      let name = vision ? "vision_head" : "lm_head"
      out.append(PlannedTile(name: name, kind: "head", layers: [], segments: stackEnd..<d.segments.count))
    }
    return out
  }

  /// Splits tiles over the budget at their inner cut points, as late as still fits.
  private func fit(budget: Int) throws {
    let largest = model.graph.initializers.values.compactMap { v in v.constValue.map { (v.name, $0.byteCount) } }
      .max { $0.1 < $1.1 }
    if let (name, bytes) = largest, bytes > budget {
      throw TilingError(
        file: source,
        reason: "budget \(exactBytes(budget)) is smaller than the largest weight '\(name)' "
          + "(\(exactBytes(bytes))) by \(exactBytes(bytes - budget)); no tiling can fit")
    }
    var i = 0
    while i < plan.count {
      let current = assign(plan)
      if current.tiles[i].total <= budget {
        i += 1
        continue
      }
      let tile = plan[i]
      var split: [PlannedTile]? = nil
      for cut in stride(from: tile.segments.upperBound - 1, to: tile.segments.lowerBound, by: -1) {
        var head = tile
        var rest = tile
        head.segments = tile.segments.lowerBound..<cut
        rest.segments = cut..<tile.segments.upperBound
        var candidate = plan
        candidate.replaceSubrange(i...i, with: [head, rest])
        if assign(candidate).tiles[i].total <= budget {
          split = [head, rest]
          break
        }
      }
      guard let split else {
        let seg = discovery.segments[tile.segments.lowerBound]
        let first = analysis.nodes[discovery.stream[seg.lowerBound]]
        let last = analysis.nodes[discovery.stream[seg.upperBound - 1]]
        var single = plan
        var head = tile
        head.segments = tile.segments.lowerBound..<(tile.segments.lowerBound + 1)
        var tail: [PlannedTile] = []
        if tile.segments.count > 1 {
          var rest = tile
          rest.segments = (tile.segments.lowerBound + 1)..<tile.segments.upperBound
          tail = [rest]
        }
        single.replaceSubrange(i...i, with: [head] + tail)
        let need = assign(single).tiles[i]
        throw TilingError(
          file: source,
          reason: "tile \(tile.name) cannot fit the budget of \(exactBytes(budget)): its part from node "
            + "'\(first.displayName)' to '\(last.displayName)' has no inner cut point and needs "
            + "\(formatBytes(need.weightBytes)) of weights + \(formatBytes(need.activationBytes)) of activations, "
            + "\(exactBytes(need.total - budget)) over the budget")
      }
      plan.replaceSubrange(i...i, with: split)
      i += 1
    }
    // Name the parts of split tiles: block_3_part0, block_3_part1, …
    var counts: [String: Int] = [:]
    for t in plan { counts[t.name, default: 0] += 1 }
    var seen: [String: Int] = [:]
    for k in plan.indices where counts[plan[k].name]! > 1 {
      let base = plan[k].name
      plan[k].name = "\(base)_part\(seen[base, default: 0])"
      plan[k].kind += "-part"
      seen[base, default: 0] += 1
    }
  }

  /// Puts every node in a tile and works out each tile's boundary and memory.
  func assign(_ plan: [PlannedTile]) -> Layout {
    let a = analysis
    let n = a.nodes.count
    var tileOf = [Int](repeating: -1, count: n)
    for (t, tile) in plan.enumerated() {
      for s in tile.segments { for p in discovery.segments[s] { tileOf[discovery.stream[p]] = t } }
    }
    // Side nodes: the earliest tile where their inputs exist (producers first) ...
    var earliest = [Int](repeating: 0, count: n)
    for i in 0..<n where !a.isConstantNode[i] && !a.isStreamNode[i] {
      for v in a.reads[i] {
        if let p = a.producer[ObjectIdentifier(v)], !a.isConstantNode[p] {
          earliest[i] = max(earliest[i], a.isStreamNode[p] ? tileOf[p] : earliest[p])
        }
      }
    }
    // ... and, consumers first, the one tile that reads them, else that earliest tile.
    for i in stride(from: n - 1, through: 0, by: -1) where !a.isConstantNode[i] && !a.isStreamNode[i] {
      var needed: Set<Int> = []
      for o in a.nodes[i].outputs {
        for c in a.consumers[ObjectIdentifier(o)] ?? [] {
          if a.isStreamNode[c] { needed.insert(tileOf[c]) } else if tileOf[c] >= 0 { needed.insert(tileOf[c]) }
        }
        if a.graphOutputs.contains(ObjectIdentifier(o)) { needed.insert(earliest[i]) }
      }
      tileOf[i] = needed.count == 1 ? needed.first! : (needed.isEmpty ? -1 : earliest[i])
    }
    var tiles = [TileContents](repeating: TileContents(), count: plan.count)
    var producedIn: [ObjectIdentifier: Int] = [:]
    for i in 0..<n where tileOf[i] >= 0 {
      for o in a.nodes[i].outputs { producedIn[ObjectIdentifier(o)] = tileOf[i] }
    }
    // Constants: each tile takes the constant nodes and initializers its nodes read.
    for t in plan.indices {
      var members = Set<Int>()
      var stack: [Int] = []
      var inits: [Value] = []
      var seenInit = Set<ObjectIdentifier>()
      var inputs: [Value] = []
      var seenInput = Set<ObjectIdentifier>()
      for i in 0..<n where tileOf[i] == t {
        members.insert(i)
        stack.append(i)
      }
      while let i = stack.popLast() {
        for v in a.reads[i] {
          let id = ObjectIdentifier(v)
          if let p = a.producer[id] {
            if a.isConstantNode[p] {
              if members.insert(p).inserted { stack.append(p) }
            } else if tileOf[p] != t, seenInput.insert(id).inserted {
              inputs.append(v)
            }
          } else if a.isConstant(v) {
            if seenInit.insert(id).inserted { inits.append(v) }
          } else if seenInput.insert(id).inserted {
            inputs.append(v)  // a model input
          }
        }
      }
      tiles[t].nodes = members.sorted()
      tiles[t].initializers = inits.sorted { $0.name < $1.name }
      // Inputs in the order the tile first reads them.
      var firstRead: [ObjectIdentifier: Int] = [:]
      for i in tiles[t].nodes.reversed() { for v in a.reads[i] { firstRead[ObjectIdentifier(v)] = i } }
      tiles[t].inputs = inputs.sorted {
        (firstRead[ObjectIdentifier($0)] ?? 0, $0.name) < (firstRead[ObjectIdentifier($1)] ?? 0, $1.name)
      }
    }
    // Outputs: what later tiles read, and the model's outputs.
    var outputSets = [Set<ObjectIdentifier>](repeating: [], count: plan.count)
    for t in plan.indices {
      for v in tiles[t].inputs {
        if let p = producedIn[ObjectIdentifier(v)], outputSets[p].insert(ObjectIdentifier(v)).inserted {
          tiles[p].outputs.append(v)
        }
      }
    }
    for v in model.graph.outputs {
      if let p = producedIn[ObjectIdentifier(v)], outputSets[p].insert(ObjectIdentifier(v)).inserted {
        tiles[p].outputs.append(v)
      }
    }
    for t in plan.indices {
      // Outputs in the order they are computed.
      tiles[t].outputs.sort {
        (a.producer[ObjectIdentifier($0)] ?? 0, $0.name) < (a.producer[ObjectIdentifier($1)] ?? 0, $1.name)
      }
      measure(&tiles[t])
    }
    return Layout(tiles: tiles)
  }

  private func measure(_ tile: inout TileContents) {
    let a = analysis
    var weights = tile.initializers.reduce(0) { $0 + ($1.constValue?.byteCount ?? 0) }
    var complete = true
    func bytes(_ v: Value) -> Int {
      guard let t = v.elementType, let count = v.shape?.elementCount, let b = t.byteCount(elements: count) else {
        complete = false
        return 0
      }
      return b
    }
    // Positions within the tile; constants are weights, the rest activations.
    var position: [Int: Int] = [:]
    var order: [Int] = []
    for i in tile.nodes {
      if a.isConstantNode[i] {
        for attr in a.nodes[i].attributes { if case .tensor(let t) = attr.value { weights += t.byteCount } }
        continue
      }
      position[i] = order.count
      order.append(i)
    }
    let end = order.count
    var delta = [Int](repeating: 0, count: end + 2)
    func live(_ v: Value, from: Int) {
      let size = bytes(v)
      guard size > 0 else { return }
      var last = from
      for c in a.consumers[ObjectIdentifier(v)] ?? [] { if let p = position[c] { last = max(last, p) } }
      if tile.outputs.contains(where: { $0 === v }) { last = max(last, end - 1) }
      delta[max(from, 0)] += size
      delta[last + 1] -= size
    }
    for v in tile.inputs { live(v, from: 0) }
    for (p, i) in order.enumerated() { for o in a.nodes[i].outputs where !o.name.isEmpty { live(o, from: p) } }
    var peak = 0
    var running = 0
    for d in delta {
      running += d
      peak = max(peak, running)
    }
    tile.weightBytes = weights
    tile.activationBytes = peak
    tile.activationsComplete = complete
  }

  // MARK: Manifest and files

  private func makeManifest() throws -> TileManifest {
    var producerTile: [ObjectIdentifier: String] = [:]
    for (t, tile) in layout.tiles.enumerated() {
      for v in tile.outputs { producerTile[ObjectIdentifier(v)] = plan[t].name }
    }
    let modelOutputs = analysis.graphOutputs
    var entries: [TileEntry] = []
    for (t, tile) in layout.tiles.enumerated() {
      let work = tile.nodes.filter { !analysis.isConstantNode[$0] }
      guard let first = work.first, let last = work.last else {
        throw TilingError(file: source, reason: "tile \(plan[t].name) came out empty")
      }
      // ONNX requires a type and a rank on every graph input and output.
      for v in tile.inputs + tile.outputs where v.elementType == nil || v.shape == nil {
        throw TilingError(
          file: source,
          reason: "value '\(v.name)' (at the boundary of tile \(plan[t].name)) has an unknown "
            + (v.elementType == nil ? "type" : "rank")
            + "; bind the input shapes with --input-shape/--dim so shape inference can type every tile boundary")
      }
      let inputs = tile.inputs.map { v -> TensorInfo in
        var info = TensorInfo(v)
        if let p = producerTile[ObjectIdentifier(v)] {
          info.source = InputSource(modelInput: nil, tile: p, output: v.name)
        } else {
          info.source = InputSource(modelInput: v.name, tile: nil, output: nil)
        }
        return info
      }
      let outputs = tile.outputs.map { v -> TensorInfo in
        var info = TensorInfo(v)
        info.modelOutput = modelOutputs.contains(ObjectIdentifier(v))
        return info
      }
      func ref(_ i: Int) -> NodeRef {
        let node = analysis.nodes[i]
        return NodeRef(index: i, name: node.name, opType: node.opType)
      }
      entries.append(
        TileEntry(
          name: plan[t].name, kind: plan[t].kind, file: plan[t].name + ".onnx", layers: plan[t].layers,
          nodes: tile.nodes.count, weightBytes: tile.weightBytes, activationBytes: tile.activationBytes,
          activationsComplete: tile.activationsComplete, inputs: inputs, outputs: outputs,
          firstNode: ref(first), lastNode: ref(last)))
    }
    let inputs = model.graph.inputs.filter { !analysis.isConstant($0) }.map(TensorInfo.init)
    return TileManifest(
      source: source, layers: discovery.layers, group: options.group, budgetBytes: options.budgetBytes,
      inputs: inputs, outputs: model.graph.outputs.map(TensorInfo.init), tiles: entries)
  }

  /// The tile as a standalone model sharing the source's weights (no bytes copied).
  public func model(forTile t: Int) -> Model {
    let tile = layout.tiles[t]
    let g = Graph(name: plan[t].name)
    var map: [ObjectIdentifier: Value] = [:]
    func mapped(_ v: Value) -> Value {
      if let m = map[ObjectIdentifier(v)] { return m }
      let m = Value(name: v.name, type: v.type)
      m.docString = v.docString
      map[ObjectIdentifier(v)] = m
      return m
    }
    g.inputs = tile.inputs.map(mapped)
    for v in tile.initializers {
      var tensor = v.constValue!
      tensor.name = v.name
      g.addInitializer(mapped(v), tensor)
      if model.irVersion < 4 { g.inputs.append(mapped(v)) }
    }
    for i in tile.nodes {
      let n = analysis.nodes[i]
      let copy = Node(
        n.opType, domain: n.domain, name: n.name, inputs: n.inputs.map { $0.map(mapped) },
        outputs: n.outputs.map(mapped), attributes: n.attributes)
      copy.overload = n.overload
      copy.docString = n.docString
      copy.metadataProps = n.metadataProps
      copy.preservedFields = n.preservedFields
      g.append(copy)
    }
    g.outputs = tile.outputs.map(mapped)
    let out = Model(irVersion: model.irVersion, opsetImports: model.opsetImports, graph: g)
    out.producerName = model.producerName
    out.producerVersion = model.producerVersion
    out.domain = model.domain
    out.modelVersion = model.modelVersion
    out.functions = model.functions
    out.metadataProps = model.metadataProps
    return out
  }

  /// Writes one ONNX file per tile and `manifest.json` into `directory` (created if needed).
  public func write(to directory: String, saveOptions: SaveOptions = .init()) throws {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw TilingError(file: directory, reason: "cannot create the output folder: \(error.localizedDescription)")
    }
    for (t, entry) in manifest.tiles.enumerated() {
      let path = (directory as NSString).appendingPathComponent(entry.file)
      try ModelWriter.save(model(forTile: t), to: path, options: saveOptions)
    }
    let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
    do { try manifest.jsonData().write(to: URL(fileURLWithPath: manifestPath), options: .atomic) } catch {
      throw TilingError(file: manifestPath, reason: "cannot write: \(error.localizedDescription)")
    }
  }
}

/// "1.5 KiB (1536 bytes)", for errors that say by how much.
func exactBytes(_ n: Int) -> String { n < 1024 ? "\(n) bytes" : "\(formatBytes(n)) (\(n) bytes)" }

extension Node {
  var displayName: String { name.isEmpty ? (outputs.first?.name ?? opType) : name }
}
