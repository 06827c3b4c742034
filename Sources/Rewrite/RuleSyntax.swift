/// The parsed form of a rule file (`Rewrites/**/*.rules`).
///
/// A rule matches a small graph written in ONNX node syntax, checks `where` constraints,
/// then either forwards a value (`replace y with $x`) or builds new nodes (`rewrite y { … }`).
/// A `pass` names an ordered set of rules.

/// Where something was written, for error messages (`file:line:col`).
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int
  public var description: String { "\(file):\(line):\(column)" }
}

public struct RuleFile: Sendable {
  public var path: String
  public var rules: [Rule]
  public var passes: [RulePassDecl]
}

public struct RulePassDecl: Sendable {
  public var name: String
  public var rules: [String]
  public var location: SourceLocation
}

public struct Rule: Sendable {
  public var name: String
  public var benefit: Int
  /// Pattern nodes in order; the last one is the root the rule rewrites.
  public var pattern: [PatternNode]
  public var constraints: [Expr]
  public var action: Action
  public var location: SourceLocation

  public enum Action: Sendable {
    /// Readers of `target` read `value` instead.
    case replace(target: String, with: Operand)
    /// New nodes compute the targets (outputs of pattern nodes): a new output named like
    /// a target takes over its value, so its readers and its name stay.
    case rewrite(targets: [String], nodes: [PatternNode])
  }

  public var root: PatternNode { pattern[pattern.count - 1] }
}

/// `outs = domain.Op <attr = expr, …> (operands)` in a pattern or a rewrite.
public struct PatternNode: Sendable {
  public var outputs: [String]
  public var domain: String
  public var opType: String
  public var attributes: [(name: String, value: Expr)]
  public var operands: [Operand]
  public var location: SourceLocation
}

public enum Operand: Sendable, CustomStringConvertible {
  /// `$x`: any value, bound on first use.
  case variable(String)
  /// `t`: an output of an earlier pattern (or rewrite) node.
  case name(String)
  /// `_`: any value or none.
  case wildcard
  /// `$xs...` as the last operand: every remaining input (Concat, Sum, Max), bound as a
  /// list; in a rewrite it expands to those inputs again.
  case rest(String)
  /// A computed constant in a rewrite: `const(expr)`.
  case constant(Expr)

  public var description: String {
    switch self {
    case .variable(let v): "$\(v)"
    case .name(let n): n
    case .wildcard: "_"
    case .rest(let v): "$\(v)..."
    case .constant(let e): "const(\(e))"
    }
  }
}

public indirect enum Expr: Sendable, CustomStringConvertible {
  case int(Int64)
  case float(Double)
  case string(String)
  case list([Expr])
  case variable(String)
  case name(String)
  case call(String, [Expr], SourceLocation)
  case binary(String, Expr, Expr)
  case not(Expr)

  public var description: String {
    switch self {
    case .int(let v): String(v)
    case .float(let v): String(v)
    case .string(let s): "\"\(s)\""
    case .list(let es): "[" + es.map(\.description).joined(separator: ", ") + "]"
    case .variable(let v): "$\(v)"
    case .name(let n): n
    case .call(let f, let args, _): "\(f)(" + args.map(\.description).joined(separator: ", ") + ")"
    case .binary(let op, let a, let b): "\(a) \(op) \(b)"
    case .not(let e): "not \(e)"
    }
  }
}
