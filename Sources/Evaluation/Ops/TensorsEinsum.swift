import Foundation
import ONNXGraph

// Einsum: inference for any equation, evaluation by one generic contraction loop (which
// covers the batched matmuls, outer products, traces and transposes exporters emit).

/// An Einsum equation with each operand's `...` expanded into labels of its own, right-aligned
/// so ellipsis dims broadcast as in numpy.
private struct EinsumEquation {
  var inputs: [[Character]]
  var output: [Character]

  init(_ ctx: OpContext, ranks: [Int]) throws {
    let equation = ctx.string("equation", default: "").filter { !$0.isWhitespace }
    let sides = equation.components(separatedBy: "->")
    let terms = sides[0].components(separatedBy: ",")
    guard sides.count <= 2, terms.count == ranks.count else {
      throw ctx.fail("equation \"\(equation)\" does not fit \(ranks.count) operands")
    }
    func letters(_ term: String) -> [Character] { Array(term.replacingOccurrences(of: "...", with: "")) }
    // Dims each operand's ellipsis covers; operands without one must match their rank exactly.
    let ellipsisRanks = try zip(terms, ranks).map { term, rank -> Int in
      let named = letters(term)
      let covered = term.contains("...") ? rank - named.count : 0
      guard named.allSatisfy(\.isLetter), covered >= 0, named.count + covered == rank else {
        throw ctx.fail("term \"\(term)\" does not fit an operand of rank \(rank)")
      }
      return covered
    }
    // Labels outside the letters for the ellipsis dims.
    let ellipsis = (0..<(ellipsisRanks.max() ?? 0)).map { Character(Unicode.Scalar(UInt32(0x2460 + $0))!) }
    func expand(_ term: String, _ covered: Int) -> [Character] {
      guard let r = term.range(of: "...") else { return Array(term) }
      return Array(term[..<r.lowerBound]) + ellipsis.suffix(covered) + Array(term[r.upperBound...])
    }
    inputs = zip(terms, ellipsisRanks).map(expand)
    if sides.count == 2 {
      output = expand(sides[1], ellipsis.count)
      let known = Set(inputs.joined())
      guard letters(sides[1]).allSatisfy(\.isLetter), Set(output).count == output.count,
        output.allSatisfy(known.contains)
      else { throw ctx.fail("output term \"\(sides[1])\" is not valid") }
    } else {
      // Implicit output: the ellipsis, then the letters used once, in alphabetical order.
      let all = inputs.joined().filter(\.isLetter)
      output = ellipsis + Set(all).filter { l in all.filter { $0 == l }.count == 1 }.sorted()
    }
  }

  /// Labels summed over, in order of first appearance.
  var contracted: [Character] {
    var seen = Set(output)
    return inputs.joined().filter { seen.insert($0).inserted }
  }
}

/// Out[output] = Σ over the other labels of the product of the operands. Each loop label has a
/// stride per operand (repeated labels add up: diagonals; broadcast dims: 0) and in the output.
private func contract<T: KernelNumber>(
  _ operands: [[T]], strides: [[Int]], outStrides: [Int], sizes: [Int], outCount: Int
) -> [T] {
  var out = [T](repeating: .zero, count: outCount)
  let total = sizes.reduce(1, *)
  guard total > 0 else { return out }
  var idx = [Int](repeating: 0, count: sizes.count)
  var offsets = [Int](repeating: 0, count: operands.count)
  var o = 0
  for _ in 0..<total {
    var p = T.one
    for t in operands.indices { p = T.times(p, operands[t][offsets[t]]) }
    out[o] = T.plus(out[o], p)
    // Odometer step over the loop labels, last fastest.
    var d = sizes.count - 1
    while d >= 0 {
      idx[d] += 1
      o += outStrides[d]
      for t in offsets.indices { offsets[t] += strides[t][d] }
      if idx[d] < sizes[d] { break }
      o -= outStrides[d] * sizes[d]
      for t in offsets.indices { offsets[t] -= strides[t][d] * sizes[d] }
      idx[d] = 0
      d -= 1
    }
  }
  return out
}

func einsumRule() -> OpRule {
  OpRule(
    infer: { ctx in
      let shapes = (0..<ctx.inputCount).compactMap { ctx.shape($0) }
      guard shapes.count == ctx.inputCount else { return [.tensor(ctx.elementType(0), nil)] }
      let eq = try EinsumEquation(ctx, ranks: shapes.map(\.rank))
      var dims: [Character: [Shape]] = [:]
      for (labels, shape) in zip(eq.inputs, shapes) {
        for (l, d) in zip(labels, shape.dims) { dims[l, default: []].append(Shape([d])) }
      }
      return [.tensor(ctx.elementType(0), Shape(eq.output.map { broadcast(dims[$0]!).dims[0] }))]
    },
    evaluate: { ctx in
      let operands = try (0..<ctx.inputCount).map { try ctx.value($0) }
      let eq = try EinsumEquation(ctx, ranks: operands.map(\.rank))
      var size: [Character: Int] = [:]
      for (labels, t) in zip(eq.inputs, operands) {
        for (l, d) in zip(labels, t.shape) {
          guard let merged = broadcast([[size[l] ?? 1], [d]]) else {
            throw ctx.fail("label \(l) has sizes \(size[l]!) and \(d)")
          }
          size[l] = merged[0]
        }
      }
      // Output labels outermost so each output element's sum runs in the inner loops.
      let loop = eq.output + eq.contracted
      let opStrides = zip(eq.inputs, operands).map { labels, t in
        let st = strides(t.shape)
        return loop.map { l in labels.indices.filter { labels[$0] == l && t.shape[$0] != 1 }.reduce(0) { $0 + st[$1] } }
      }
      let shape = eq.output.map { size[$0]! }
      let outStrides = strides(shape) + Array(repeating: 0, count: loop.count - shape.count)
      let sizes = loop.map { size[$0]! }
      let count = shape.reduce(1, *)
      return [
        numericKernel(
          operands, as: operands[0].dataType, shape: shape,
          float: { contract($0, strides: opStrides, outStrides: outStrides, sizes: sizes, outCount: count) },
          int: { contract($0, strides: opStrides, outStrides: outStrides, sizes: sizes, outCount: count) })
      ]
    })
}
