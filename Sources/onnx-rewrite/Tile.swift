import ArgumentParser
import Foundation
import ONNXGraph
import ONNXIO
import Passes
import Tiling

struct Tile: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Split a transformer into per-layer tiles (embedding, block_0 … block_N-1, lm_head).",
    discussion: """
      Finds the repeated blocks by structure: cut points are places where only the hidden state \
      is live (masks, rotary tables and position ids, computed from model inputs or constants, \
      do not count); segments between them are grouped by op types and weight shapes, and the \
      longest repeated run is the layer stack. Node names (/model/layers.N/) only break ties.

      Writes DIR/<tile>.onnx per tile and DIR/manifest.json (format onnx-rewrite.tiles/1): the \
      tiles in execution order, their inputs and where each comes from, their outputs, weight \
      and activation bytes. A value several tiles need (the attention mask) is computed by the \
      earliest tile that can and fed to the others.

      Memory estimate per tile = bytes of its weights + the peak, over its nodes in order, of \
      the bytes of live activations (from static shapes: bind them with --input-shape/--dim, \
      which runs static-shape first). With --budget, a tile over it is split at an inner cut \
      point (e.g. between attention and MLP); a part that still does not fit, or a weight \
      larger than the budget, is an error saying by how much.

      --chip bm1684x sets the budget to 2GiB: each tile then stays under protobuf's 2 GB \
      limit, so TPU-MLIR reads it as one file, and far below the chip's device memory, which \
      also holds the compiler's working copies; a 7B-model layer in F16 (~0.4 GB) fits whole.
      """)

  @Argument(help: "The model to tile (.onnx).", completion: .file())
  var input: String

  @Option(name: .customLong("out"), help: "The folder to write the tiles and manifest.json to.", completion: .directory)
  var out: String? = nil

  @Flag(name: .customLong("dry-run"), help: "Print the tiles found; write nothing.")
  var dryRun = false

  @Option(help: ArgumentHelp("Memory per tile (weights + peak activations), e.g. 2GiB.", valueName: "bytes"))
  var budget: String? = nil

  @Option(help: ArgumentHelp("A budget preset: bm1684x (2GiB).", valueName: "chip"))
  var chip: String? = nil

  @Option(help: "Consecutive layers per block tile.")
  var group: Int = 1

  @Flag(name: .customLong("external-data"), help: "Write each tile's weights of 1 KiB or more to TILE.onnx.data.")
  var externalData = false

  @OptionGroup var shapes: ShapeArguments

  static let chips = ["bm1684x": 2 << 30]

  func validate() throws {
    if out == nil && !dryRun { throw ValidationError("Give --out DIR to write the tiles, or --dry-run to list them.") }
    if group < 1 { throw ValidationError("--group \(group): give a positive number of layers per tile.") }
    if budget != nil && chip != nil { throw ValidationError("Give --budget or --chip, not both.") }
    if let chip, Self.chips[chip] == nil {
      throw ValidationError("--chip \(chip): known chips are \(Self.chips.keys.sorted().joined(separator: ", ")).")
    }
    if let budget, parseBytes(budget) == nil {
      throw ValidationError("--budget \(budget): give a byte count such as 2GiB, 512MiB or 1000000.")
    }
    _ = try shapeOptions()
  }

  /// --input-shape and --dim as static-shape takes them.
  func shapeOptions() throws -> PassOptions {
    var o = PassOptions()
    try shapes.bind(into: &o)
    return o
  }

  func run() throws {
    try reportingErrors(file: input) {
      do {
        let model = try ModelLoader.load(path: input)
        if !shapes.isEmpty {
          var options = try shapeOptions()
          options.report = { note("\(input): \($0)") }
          _ = try StaticShapes().run(on: model, options: options)
        }
        let budgetBytes = budget.flatMap(parseBytes) ?? chip.flatMap { Self.chips[$0] }
        let tiler = try Tiler(model: model, source: input, options: TilingOptions(budgetBytes: budgetBytes, group: group))
        if dryRun {
          print(table(tiler.manifest))
          return
        }
        var save = SaveOptions()
        if externalData { save.externalData = .file(nil) }
        try tiler.write(to: out!, saveOptions: save)
        note("\(out!): \(tiler.manifest.tiles.count) tiles, \(tiler.manifest.layers) layers found")
      } catch let e as TilingError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode(1)
      }
    }
  }

  func table(_ m: TileManifest) -> String {
    let header = ["tile", "nodes", "weight bytes", "peak activation bytes", "inputs", "outputs"]
    var rows = [header]
    for t in m.tiles {
      rows.append([
        t.name, String(t.nodes), String(t.weightBytes), String(t.activationBytes) + (t.activationsComplete ? "" : "+"),
        t.inputs.map(\.name).joined(separator: ", "), t.outputs.map(\.name).joined(separator: ", "),
      ])
    }
    let widths = header.indices.map { c in rows.map { $0[c].count }.max()! }
    var lines = rows.map { r in r.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
    lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
    lines.append("\(m.layers) layers found; activation bytes with '+' miss values of unknown shape")
    return lines.joined(separator: "\n")
  }
}
