/// One dimension of a tensor shape: a known size, a named symbol (`batch_size`), or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
  case value(Int)
  case symbol(String)
  case unknown

  public var intValue: Int? { if case .value(let v) = self { v } else { nil } }
  public var symbol: String? { if case .symbol(let s) = self { s } else { nil } }

  public var description: String {
    switch self {
    case .value(let v): String(v)
    case .symbol(let s): s
    case .unknown: "?"
    }
  }
}

extension Dim: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
  public init(integerLiteral value: Int) { self = .value(value) }
  public init(stringLiteral value: String) { self = .symbol(value) }
}

/// A tensor shape of known rank. An unknown rank is a nil `Shape?`.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
  public var dims: [Dim]
  /// Per-dimension denotations (`DATA_BATCH`, ...), by index; rarely present.
  public var denotations: [Int: String]

  public init(_ dims: [Dim], denotations: [Int: String] = [:]) {
    self.dims = dims
    self.denotations = denotations
  }
  public init(arrayLiteral elements: Dim...) { self.init(elements) }
  public init(static sizes: [Int]) { self.init(sizes.map(Dim.value)) }

  public var rank: Int { dims.count }
  /// The sizes when every dimension is known.
  public var staticSizes: [Int]? {
    var out: [Int] = []
    out.reserveCapacity(dims.count)
    for d in dims {
      guard case .value(let v) = d else { return nil }
      out.append(v)
    }
    return out
  }
  public var isStatic: Bool { staticSizes != nil }
  public var elementCount: Int? { staticSizes?.reduce(1, *) }

  public var description: String { "[" + dims.map(\.description).joined(separator: ",") + "]" }
}
