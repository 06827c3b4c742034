import ONNXGraph

/// What a pass did; `modified` lets a pipeline stop at a fixed point.
public struct PassResult: Sendable {
  public var modified: Bool
  public init(modified: Bool) { self.modified = modified }
}

/// A whole-graph transformation with a stable kebab-case name.
public protocol GraphPass: Sendable {
  static var name: String { get }
  static var summary: String { get }
  init()
  func run(on model: Model) throws -> PassResult
}

/// The passes `--pass NAME` can name, in the order `onnx-rewrite passes` lists them.
public enum PassRegistry {
  public static let all: [any GraphPass.Type] = []

  public static func pass(named name: String) -> (any GraphPass.Type)? {
    all.first { $0.name == name }
  }
}

/// A pass that cannot run on this model, with the node (or value) at fault.
public struct PassError: Error, CustomStringConvertible {
  public var pass: String
  public var location: String
  public var reason: String
  public init(pass: String, location: String, reason: String) {
    self.pass = pass
    self.location = location
    self.reason = reason
  }
  public var description: String { "\(location): \(pass): \(reason)" }
}
