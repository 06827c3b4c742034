import Foundation
import ONNXGraph
import Testing

@testable import Tiling

/// A small residual stack: ids -> Gather(embedding) -> N x [x + MatMul(Relu(MatMul(x, W1)) * mask, W2)]
/// -> MatMul(lm_head). The mask is computed from a model input once and read by every layer.
/// With `parked`, every layer's output is also kept for a final Concat (as vision towers do).
func residualStack(layers: Int, names: Bool, parked: Bool = false) -> Model {
  let hidden = 8
  func weight(_ name: String, _ dims: [Int]) -> Tensor {
    Tensor(dataType: .float, dims: dims, raw: Data(count: dims.reduce(1, *) * 4))
  }
  let ids = Value(name: "ids", type: .tensor(.int64, [1, 4]))
  let mask = Value(name: "mask", type: .tensor(.int64, [1, 4]))
  let g = Graph(name: "stack", inputs: [ids, mask])
  func initializer(_ name: String, _ dims: [Int]) -> Value {
    g.addInitializer(Value(name: name), weight(name, dims))
  }
  var counter = 0
  func node(_ op: String, _ prefix: String, _ inputs: [Value]) -> Value {
    counter += 1
    let n = Node(op, name: names ? "\(prefix)/\(op)_\(counter)" : "", inputs: inputs, outputNames: ["v\(counter)"])
    g.append(n)
    return n.outputs[0]
  }
  var h = node("Gather", "/model/embed", [initializer("embed", [32, hidden]), ids])
  let cast = Node("Cast", name: "", inputs: [mask], outputNames: ["maskf"], attributes: [Attribute("to", .int(1))])
  g.append(cast)
  let axis = g.addInitializer(Value(name: "axis"), Tensor(dataType: .int64, dims: [1], raw: Data(count: 8)))
  let unsqueeze = Node("Unsqueeze", name: "", inputs: [cast.outputs[0], axis], outputNames: ["mask_f"])
  g.append(unsqueeze)
  let maskf = unsqueeze.outputs[0]
  var layerOutputs: [Value] = []
  for l in 0..<layers {
    let p = "/model/layers.\(l)"
    let a = node("MatMul", p, [h, initializer("w1_\(l)", [hidden, hidden])])
    let r = node("Relu", p, [a])
    let m = node("Mul", p, [r, maskf])
    let b = node("MatMul", p, [m, initializer("w2_\(l)", [hidden, hidden])])
    h = node("Add", p, [h, b])
    layerOutputs.append(h)
  }
  if parked {
    let concat = Node("Concat", name: "", inputs: layerOutputs, outputNames: ["all_layers"], attributes: [Attribute("axis", .int(0))])
    g.append(concat)
    h = concat.outputs[0]
  }
  let logits = node("MatMul", "/lm_head", [h, initializer("lm", [hidden, 32])])
  g.outputs = [logits]
  return Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
}

@Suite struct DiscoveryTests {
  @Test(arguments: [true, false])
  func findsTheLayersWithAndWithoutNames(names: Bool) throws {
    let tiler = try Tiler(model: residualStack(layers: 3, names: names), source: "stack.onnx")
    #expect(tiler.manifest.layers == 3)
    #expect(tiler.manifest.tiles.map(\.name) == ["embedding", "block_0", "block_1", "block_2", "lm_head"])
    // The mask is computed once, in the embedding tile, and fed to every block after the
    // hidden state from the tile before.
    let tiles = tiler.manifest.tiles
    #expect(tiles[0].inputs.map(\.name) == ["ids", "mask"])
    #expect(tiles[0].inputs.map(\.source?.modelInput) == ["ids", "mask"])
    #expect(tiles[0].outputs.map(\.name) == ["v1", "mask_f"])
    for k in 1...3 {
      let block = tiles[k]
      #expect(block.inputs.map(\.name) == [tiles[k - 1].outputs[0].name, "mask_f"])
      #expect(block.inputs[0].source == InputSource(modelInput: nil, tile: tiles[k - 1].name, output: tiles[k - 1].outputs[0].name))
      #expect(block.inputs[1].source == InputSource(modelInput: nil, tile: "embedding", output: "mask_f"))
      #expect(block.weightBytes == 2 * 8 * 8 * 4)
      #expect(block.activationBytes > 0 && block.activationsComplete)
    }
    #expect(tiles[4].outputs.map(\.name) == [tiler.model.graph.outputs[0].name])
    #expect(tiles[4].outputs[0].modelOutput == true)
    // Each tile is a model of its own over the source's weight bytes.
    let block1 = tiler.model(forTile: 2)
    #expect(block1.graph.nodeCount == 5)
    #expect(block1.graph.initializers.keys.sorted() == ["w1_1", "w2_1"])
  }

  @Test func layerOutputsKeptForTheEndDoNotHideTheCuts() throws {
    let tiler = try Tiler(model: residualStack(layers: 3, names: false, parked: true), source: "stack.onnx")
    #expect(tiler.manifest.layers == 3)
    let tiles = tiler.manifest.tiles
    #expect(tiles.map(\.name) == ["embedding", "block_0", "block_1", "block_2", "lm_head"])
    // Each block's output goes both to the next block and to the head's Concat.
    #expect(tiles[4].inputs.compactMap(\.source?.tile).sorted() == ["block_0", "block_1", "block_2"])
  }

  @Test func groupsConsecutiveLayers() throws {
    let tiler = try Tiler(model: residualStack(layers: 4, names: false), source: "stack.onnx", options: .init(group: 2))
    let blocks = tiler.manifest.tiles.filter { $0.kind == "block" }
    #expect(blocks.map(\.layers) == [[0, 1], [2, 3]])
  }

  @Test func budgetBelowTheLargestWeightIsAClearError() throws {
    #expect {
      _ = try Tiler(model: residualStack(layers: 2, names: true), source: "stack.onnx", options: .init(budgetBytes: 100))
    } throws: { error in
      "\(error)".contains("smaller than the largest weight 'embed'") && "\(error)".contains("by ")
    }
  }

  @Test func aStackWithoutRepeatsIsRejected() throws {
    #expect(throws: TilingError.self) {
      _ = try Tiler(model: residualStack(layers: 1, names: true), source: "one.onnx")
    }
  }

  @Test func layerNumbersFromNames() {
    #expect(LayerDiscovery.layerNumber("/model/layers.12/self_attn/MatMul") == 12)
    #expect(LayerDiscovery.layerNumber("/transformer/h.3/attn/Add") == 3)
    #expect(LayerDiscovery.layerNumber("node_linear_4") == nil)
  }
}
