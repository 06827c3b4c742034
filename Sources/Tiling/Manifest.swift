import Foundation
import ONNXGraph

/// `manifest.json` of a tiled model (format `onnx-rewrite.tiles/1`): the tiles in execution
/// order and how their inputs are fed.
public struct TileManifest: Codable, Equatable, Sendable {
  public static let currentFormat = "onnx-rewrite.tiles/1"

  public var format = TileManifest.currentFormat
  /// The file that was tiled (as given).
  public var source: String
  public var layers: Int
  public var group: Int
  public var budgetBytes: Int?
  public var inputs: [TensorInfo]
  public var outputs: [TensorInfo]
  public var tiles: [TileEntry]

  enum CodingKeys: String, CodingKey {
    case format, source, layers, group, inputs, outputs, tiles
    case budgetBytes = "budget_bytes"
  }
}

/// A tensor at a tile or model boundary.
public struct TensorInfo: Codable, Equatable, Sendable {
  public var name: String
  public var dtype: String
  /// Sizes; a symbolic dimension is its name, an unknown one null.
  public var shape: [DimEntry]?
  /// Where a tile input comes from (absent for outputs and model inputs).
  public var source: InputSource?
  /// Tile outputs: true when this is also an output of the whole model.
  public var modelOutput: Bool?

  enum CodingKeys: String, CodingKey {
    case name, dtype, shape, source
    case modelOutput = "model_output"
  }
}

public enum DimEntry: Codable, Equatable, Sendable {
  case size(Int)
  case symbol(String)
  case unknown

  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .unknown } else if let i = try? c.decode(Int.self) { self = .size(i) } else {
      self = .symbol(try c.decode(String.self))
    }
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .size(let i): try c.encode(i)
    case .symbol(let s): try c.encode(s)
    case .unknown: try c.encodeNil()
    }
  }
}

/// `{"model_input": name}` or `{"tile": name, "output": value}`.
public struct InputSource: Codable, Equatable, Sendable {
  public var modelInput: String?
  public var tile: String?
  public var output: String?

  enum CodingKeys: String, CodingKey {
    case modelInput = "model_input"
    case tile, output
  }
}

public struct TileEntry: Codable, Equatable, Sendable {
  public var name: String
  /// embedding, block, head; a block split to meet the budget is block-part.
  public var kind: String
  public var file: String
  /// Layer numbers (0-based, in the discovered stack) this tile computes.
  public var layers: [Int]
  public var nodes: Int
  public var weightBytes: Int
  /// Peak live activation bytes over the tile's node order (static shapes; unknown sizes count 0).
  public var activationBytes: Int
  public var activationsComplete: Bool
  public var inputs: [TensorInfo]
  public var outputs: [TensorInfo]
  /// The first and last node of the source graph the tile takes (by index and name).
  public var firstNode: NodeRef
  public var lastNode: NodeRef

  enum CodingKeys: String, CodingKey {
    case name, kind, file, layers, nodes, inputs, outputs
    case weightBytes = "weight_bytes"
    case activationBytes = "activation_bytes"
    case activationsComplete = "activations_complete"
    case firstNode = "first_node"
    case lastNode = "last_node"
  }
}

public struct NodeRef: Codable, Equatable, Sendable {
  public var index: Int
  public var name: String
  public var opType: String

  enum CodingKeys: String, CodingKey {
    case index, name
    case opType = "op_type"
  }
}

extension TileManifest {
  public func jsonData() throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try e.encode(self) + Data("\n".utf8)
  }
}

extension TensorInfo {
  init(_ v: Value) {
    name = v.name
    dtype = v.elementType?.name ?? "unknown"
    shape = v.shape.map {
      $0.dims.map { d in
        switch d {
        case .value(let i): .size(i)
        case .symbol(let s): .symbol(s)
        case .unknown: .unknown
        }
      }
    }
  }
}
