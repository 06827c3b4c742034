import Foundation
import ONNXGraph

/// Finds the repeated blocks of a transformer by structure.
///
/// 1. Cut points: walking the stream nodes (see `GraphAnalysis`) in order, a position where
///    exactly one stream value is live is a place the graph separates: the residual stream.
///    Masks, rotary tables and position ids are side or constant values and do not count.
/// 2. Segments between consecutive cut points get a signature (op types, weight shapes).
/// 3. The longest run of N >= 2 repetitions of a period of P segments is the layer stack
///    (a pre-norm layer is two segments: attention and MLP). Before it: the embedding;
///    after it: the head. Node names like `/model/layers.3/` only break ties between
///    equally good phases, so stripped names lose nothing.
struct LayerDiscovery {
  /// Stream node indices (into `GraphAnalysis.nodes`) in order.
  var stream: [Int] = []
  /// Segments as ranges of positions in `stream`.
  var segments: [Range<Int>] = []
  /// The layer stack: first segment, segments per layer, layer count.
  var firstSegment = 0
  var period = 0
  var layers = 0

  init(_ a: GraphAnalysis) {
    stream = a.nodes.indices.filter { a.isStreamNode[$0] }
    guard !stream.isEmpty else { return }
    var position: [Int: Int] = [:]
    for (p, i) in stream.enumerated() { position[i] = p }
    let uses = stream.map { i in
      a.nodes[i].outputs.map { o in (a.consumers[ObjectIdentifier(o)] ?? []).compactMap { position[$0] } }
    }

    // A vision tower keeps some layers' outputs until a final Concat: read there, they would
    // stay live through every later layer and hide its cut points. So the search also tries
    // each of the nodes reaching furthest back as a horizon: reads at or after it do not keep
    // a value live (the value becomes an output of the tile that computes it).
    var reach: [(back: Int, at: Int)] = []
    for (p, i) in stream.enumerated() {
      var earliest = p
      for v in a.reads[i] {
        if let q = a.producer[ObjectIdentifier(v)].flatMap({ position[$0] }) { earliest = min(earliest, q) }
      }
      if p - earliest > 1 { reach.append((p - earliest, p)) }
    }
    let horizons = [stream.count] + reach.sorted { $0.back > $1.back }.prefix(4).map(\.at)
    var best: LayerDiscovery? = nil
    for horizon in horizons {
      var candidate = self
      candidate.segments = Self.segments(count: stream.count, uses: uses, horizon: horizon)
      candidate.findLayerStack(a)
      if let b = best, candidate.covered <= b.covered { continue }
      best = candidate
    }
    self = best!
  }

  /// Positions where at most one stream value is live end a segment.
  static func segments(count: Int, uses: [[[Int]]], horizon: Int) -> [Range<Int>] {
    var delta = [Int](repeating: 0, count: count + 1)
    for p in 0..<count {
      for outputUses in uses[p] {
        let kept = p < horizon ? outputUses.filter { $0 < horizon } : outputUses
        guard let last = kept.max(), last > p else { continue }
        delta[p] += 1
        delta[last] -= 1
      }
    }
    var out: [Range<Int>] = []
    var start = 0
    var live = 0
    for p in 0..<count {
      live += delta[p]
      if live <= 1 || p == count - 1 {
        out.append(start..<(p + 1))
        start = p + 1
      }
    }
    return out
  }

  /// Stream nodes in the layer stack.
  var covered: Int {
    guard layers > 0 else { return 0 }
    return segments[firstSegment..<(firstSegment + period * layers)].reduce(0) { $0 + $1.count }
  }

  private func signature(of segment: Range<Int>, _ a: GraphAnalysis) -> String {
    var out = ""
    for p in segment {
      let n = a.nodes[stream[p]]
      out += n.domain + ":" + n.opType + "("
      for v in n.inputs {
        guard let v else { out += "_,"; continue }
        if a.isConstant(v) {
          // Weights tied through Identity/Cast nodes are constant too, typed by inference.
          out += "w\(v.constValue?.dims.description ?? v.shape?.description ?? "?"),"
        } else {
          out += "x,"
        }
      }
      out += ");"
    }
    return out
  }

  /// The run of repeated signatures covering the most stream nodes; ties go to the shorter
  /// period, then to the phase that agrees with layer numbers in node names, then to the first.
  private mutating func findLayerStack(_ a: GraphAnalysis) {
    var ids: [String: Int] = [:]
    let s = segments.map { segment in
      let sig = signature(of: segment, a)
      if let id = ids[sig] { return id }
      ids[sig] = ids.count
      return ids.count - 1
    }
    firstSegment = 0
    period = 0
    layers = 0
    let m = s.count
    guard m >= 2 else { return }
    let sizes = segments.map(\.count)
    var prefix = [0]
    for c in sizes { prefix.append(prefix.last! + c) }
    var best: (cover: Int, period: Int, hint: Int, start: Int, count: Int)? = nil
    for p in 1...(m / 2) {
      // run[i]: how many consecutive j >= i have s[j] == s[j + p].
      var run = [Int](repeating: 0, count: m + 1)
      for i in stride(from: m - p - 1, through: 0, by: -1) { run[i] = s[i] == s[i + p] ? run[i + 1] + 1 : 0 }
      for i in 0..<(m - p) {
        let count = (run[i] + p) / p
        guard count >= 2 else { continue }
        let cover = prefix[i + count * p] - prefix[i]
        if let b = best, cover < b.cover || (cover == b.cover && p > b.period) { continue }
        let hint = nameHintScore(start: i, period: p, count: count, a)
        if let b = best, cover == b.cover, p == b.period, hint <= b.hint { continue }
        best = (cover, p, hint, i, count)
      }
    }
    if let best {
      firstSegment = best.start
      period = best.period
      layers = best.count
    }
  }

  /// How many layer boundaries fall where the layer number in node names changes.
  private func nameHintScore(start: Int, period: Int, count: Int, _ a: GraphAnalysis) -> Int {
    var score = 0
    for k in 0..<count {
      let seg = segments[start + k * period]
      guard let first = Self.layerNumber(a.nodes[stream[seg.lowerBound]].name) else { continue }
      let before = seg.lowerBound > 0 ? Self.layerNumber(a.nodes[stream[seg.lowerBound - 1]].name) : nil
      if before != first { score += 1 }
    }
    return score
  }

  static let layerPattern = try! NSRegularExpression(
    pattern: #"(?:^|[/._])(?:layers?|h|blocks?|layer_\w*?)[._](\d+)(?:[/._]|$)"#)

  /// The N of `/model/layers.N/`, `/transformer/h.N/`, `encoder.layer.N.` in a node name.
  static func layerNumber(_ name: String) -> Int? {
    let range = NSRange(name.startIndex..., in: name)
    guard let m = layerPattern.firstMatch(in: name, range: range), let r = Range(m.range(at: 1), in: name) else {
      return nil
    }
    return Int(name[r])
  }
}
