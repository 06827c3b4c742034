import Foundation

/// A rule file that cannot be loaded: `file:line:col: error: message`.
public struct RuleError: Error, CustomStringConvertible, Equatable {
  public var location: SourceLocation
  public var message: String
  public var note: String?
  public var description: String {
    "\(location): error: \(message)" + (note.map { "\n\(location): note: \($0)" } ?? "")
  }
}

/// Parses the rule language (see `RuleSyntax.swift` and `Rewrites/README.md`).
public struct RuleParser {
  enum Token: Equatable {
    case ident(String), variable(String), int(Int64), float(Double), string(String), punct(String), end
  }

  let file: String
  private var tokens: [(Token, SourceLocation)] = []
  private var pos = 0

  public init(file: String, text: String) throws {
    self.file = file
    tokens = try Self.tokenize(text, file: file)
  }

  public static func parse(file: String, text: String) throws -> RuleFile {
    var p = try RuleParser(file: file, text: text)
    return try p.parseFile()
  }

  // MARK: Tokens

  static func tokenize(_ text: String, file: String) throws -> [(Token, SourceLocation)] {
    var out: [(Token, SourceLocation)] = []
    let chars = Array(text.unicodeScalars)
    var i = 0, line = 1, col = 1
    func loc() -> SourceLocation { SourceLocation(file: file, line: line, column: col) }
    func advance(_ n: Int = 1) {
      for _ in 0..<n {
        if chars[i] == "\n" { line += 1; col = 1 } else { col += 1 }
        i += 1
      }
    }
    func isIdentStart(_ c: Unicode.Scalar) -> Bool { c == "_" || CharacterSet.letters.contains(c) }
    func isIdent(_ c: Unicode.Scalar) -> Bool { isIdentStart(c) || CharacterSet.decimalDigits.contains(c) }
    while i < chars.count {
      let c = chars[i]
      if c == "#" {
        while i < chars.count && chars[i] != "\n" { advance() }
        continue
      }
      if CharacterSet.whitespacesAndNewlines.contains(c) { advance(); continue }
      let start = loc()
      if c == "$" {
        advance()
        var name = ""
        while i < chars.count && isIdent(chars[i]) { name.unicodeScalars.append(chars[i]); advance() }
        guard !name.isEmpty else { throw RuleError(location: start, message: "expected a variable name after '$'") }
        out.append((.variable(name), start))
      } else if isIdentStart(c) {
        var name = ""
        // Rule names are kebab-case: a '-' followed by a letter continues the name.
        while i < chars.count
          && (isIdent(chars[i]) || (chars[i] == "-" && i + 1 < chars.count && isIdentStart(chars[i + 1])))
        {
          name.unicodeScalars.append(chars[i])
          advance()
        }
        out.append((.ident(name), start))
      } else if CharacterSet.decimalDigits.contains(c) || (c == "-" && i + 1 < chars.count && CharacterSet.decimalDigits.contains(chars[i + 1])) {
        var s = ""
        repeat { s.unicodeScalars.append(chars[i]); advance() } while i < chars.count
          && (CharacterSet.decimalDigits.contains(chars[i]) || chars[i] == "." || chars[i] == "e" || chars[i] == "E"
            || ((chars[i] == "-" || chars[i] == "+") && (s.last == "e" || s.last == "E")))
        if let v = Int64(s) { out.append((.int(v), start)) } else if let v = Double(s) {
          out.append((.float(v), start))
        } else {
          throw RuleError(location: start, message: "malformed number '\(s)'")
        }
      } else if c == "\"" {
        advance()
        var s = ""
        while i < chars.count && chars[i] != "\"" && chars[i] != "\n" { s.unicodeScalars.append(chars[i]); advance() }
        guard i < chars.count && chars[i] == "\"" else { throw RuleError(location: start, message: "unterminated string") }
        advance()
        out.append((.string(s), start))
      } else {
        let two = i + 1 < chars.count ? String(String.UnicodeScalarView([c, chars[i + 1]])) : ""
        if ["==", "!=", "<=", ">="].contains(two) {
          advance(2)
          out.append((.punct(two), start))
        } else if "=<>(){}[],.".unicodeScalars.contains(c) {
          advance()
          out.append((.punct(String(c)), start))
        } else {
          throw RuleError(location: start, message: "unexpected character '\(c)'")
        }
      }
    }
    out.append((.end, loc()))
    return out
  }

  // MARK: Grammar

  var token: Token { tokens[pos].0 }
  var location: SourceLocation { tokens[pos].1 }

  mutating func next() -> Token {
    defer { pos = min(pos + 1, tokens.count - 1) }
    return token
  }

  func fail(_ message: String, note: String? = nil) -> RuleError {
    RuleError(location: location, message: message, note: note)
  }

  func describe(_ t: Token) -> String {
    switch t {
    case .ident(let s): "'\(s)'"
    case .variable(let s): "'$\(s)'"
    case .int(let v): "'\(v)'"
    case .float(let v): "'\(v)'"
    case .string(let s): "\"\(s)\""
    case .punct(let p): "'\(p)'"
    case .end: "end of file"
    }
  }

  mutating func expect(_ p: String, _ what: String) throws {
    guard token == .punct(p) else { throw fail("expected '\(p)' \(what), found \(describe(token))") }
    _ = next()
  }

  mutating func ident(_ what: String) throws -> String {
    guard case .ident(let s) = token else { throw fail("expected \(what), found \(describe(token))") }
    _ = next()
    return s
  }

  mutating func parseFile() throws -> RuleFile {
    var rules: [Rule] = [], passes: [RulePassDecl] = []
    while token != .end {
      let start = location
      switch token {
      case .ident("rule"): _ = next(); rules.append(try parseRule(start))
      case .ident("pass"):
        _ = next()
        let name = try ident("a pass name")
        try expect("{", "to open the pass's rule list")
        var names = [try ident("a rule name")]
        while token == .punct(",") {
          _ = next()
          names.append(try ident("a rule name"))
        }
        try expect("}", "to close the pass's rule list")
        passes.append(RulePassDecl(name: name, rules: names, location: start))
      default:
        throw fail("expected 'rule' or 'pass', found \(describe(token))")
      }
    }
    return RuleFile(path: file, rules: rules, passes: passes)
  }

  mutating func parseRule(_ start: SourceLocation) throws -> Rule {
    let name = try ident("a rule name")
    var benefit = 1
    if token == .ident("benefit") {
      _ = next()
      guard case .int(let b) = next() else { throw fail("expected an integer benefit") }
      benefit = Int(b)
    }
    try expect("{", "to open rule '\(name)'")
    var pattern: [PatternNode] = [], constraints: [Expr] = []
    var action: Rule.Action?
    while token != .punct("}") {
      let here = location
      switch token {
      case .ident("where"):
        _ = next()
        constraints.append(try parseExpr())
        while token == .punct(",") {
          _ = next()
          constraints.append(try parseExpr())
        }
      case .ident("replace"):
        _ = next()
        let target = try ident("the pattern value to replace")
        guard try ident("'with'") == "with" else { throw RuleError(location: here, message: "expected 'with'") }
        action = .replace(target: target, with: try parseOperand(inRewrite: true))
      case .ident("rewrite"):
        _ = next()
        var targets = [try ident("the pattern value to rewrite")]
        while token == .punct(",") {
          _ = next()
          targets.append(try ident("a pattern value to rewrite"))
        }
        try expect("{", "to open the replacement nodes")
        var nodes: [PatternNode] = []
        while token != .punct("}") { nodes.append(try parseNode(inRewrite: true)) }
        _ = next()
        guard !nodes.isEmpty else { throw RuleError(location: here, message: "a rewrite needs at least one node") }
        action = .rewrite(targets: targets, nodes: nodes)
      case .ident:
        guard action == nil else { throw fail("pattern nodes come before 'replace' or 'rewrite'") }
        pattern.append(try parseNode(inRewrite: false))
      default:
        throw fail("expected a pattern node, 'where', 'replace' or 'rewrite', found \(describe(token))")
      }
    }
    _ = next()
    guard !pattern.isEmpty else { throw RuleError(location: start, message: "rule '\(name)' has no pattern") }
    guard let action else {
      throw RuleError(location: start, message: "rule '\(name)' has no 'replace' or 'rewrite'")
    }
    let rule = Rule(name: name, benefit: benefit, pattern: pattern, constraints: constraints, action: action, location: start)
    try RuleChecker.check(rule)
    return rule
  }

  mutating func parseNode(inRewrite: Bool) throws -> PatternNode {
    let start = location
    var outs = [try ident("an output name")]
    while token == .punct(",") {
      _ = next()
      outs.append(try ident("an output name"))
    }
    try expect("=", "after the node's outputs")
    var parts = [try ident("an operator name")]
    while token == .punct(".") {
      _ = next()
      parts.append(try ident("an operator name"))
    }
    let op = parts.removeLast()
    var attrs: [(String, Expr)] = []
    if token == .punct("<") {
      _ = next()
      repeat {
        if token == .punct(",") { _ = next() }
        let name = try ident("an attribute name")
        try expect("=", "after attribute '\(name)'")
        attrs.append((name, try parsePrimary()))
      } while token == .punct(",")
      try expect(">", "to close the attribute list")
    }
    try expect("(", "to open the operand list of \(op)")
    var operands: [Operand] = []
    if token != .punct(")") {
      operands.append(try parseOperand(inRewrite: inRewrite))
      while token == .punct(",") {
        _ = next()
        operands.append(try parseOperand(inRewrite: inRewrite))
      }
    }
    try expect(")", "to close the operand list of \(op)")
    return PatternNode(
      outputs: outs, domain: parts.joined(separator: "."), opType: op, attributes: attrs, operands: operands,
      location: start)
  }

  mutating func parseOperand(inRewrite: Bool) throws -> Operand {
    switch token {
    case .variable(let v):
      _ = next()
      guard token == .punct(".") else { return .variable(v) }
      for _ in 0..<3 {
        guard token == .punct(".") else { throw fail("expected '...' after '$\(v)'") }
        _ = next()
      }
      return .rest(v)
    case .ident("_"): _ = next(); return .wildcard
    case .ident("const") where inRewrite:
      _ = next()
      try expect("(", "after 'const'")
      let e = try parseExpr()
      try expect(")", "to close 'const('")
      return .constant(e)
    case .ident(let n): _ = next(); return .name(n)
    default: throw fail("expected an operand ($var, a pattern value or _), found \(describe(token))")
    }
  }

  // Expressions: or < and < not < comparison < primary.
  mutating func parseExpr() throws -> Expr {
    var e = try parseAnd()
    while token == .ident("or") {
      _ = next()
      e = .binary("or", e, try parseAnd())
    }
    return e
  }

  mutating func parseAnd() throws -> Expr {
    var e = try parseNot()
    while token == .ident("and") {
      _ = next()
      e = .binary("and", e, try parseNot())
    }
    return e
  }

  mutating func parseNot() throws -> Expr {
    if token == .ident("not") {
      _ = next()
      return .not(try parseNot())
    }
    let lhs = try parsePrimary()
    for op in ["==", "!=", "<=", ">=", "<", ">"] where token == .punct(op) {
      _ = next()
      return .binary(op, lhs, try parsePrimary())
    }
    return lhs
  }

  mutating func parsePrimary() throws -> Expr {
    let here = location
    switch next() {
    case .int(let v): return .int(v)
    case .float(let v): return .float(v)
    case .string(let s): return .string(s)
    case .variable(let v): return .variable(v)
    case .punct("["):
      var items: [Expr] = []
      if token != .punct("]") {
        items.append(try parseExpr())
        while token == .punct(",") {
          _ = next()
          items.append(try parseExpr())
        }
      }
      try expect("]", "to close the list")
      return .list(items)
    case .punct("("):
      let e = try parseExpr()
      try expect(")", "to close the parenthesis")
      return e
    case .ident(let name):
      guard token == .punct("(") else { return .name(name) }
      _ = next()
      var args: [Expr] = []
      if token != .punct(")") {
        args.append(try parseExpr())
        while token == .punct(",") {
          _ = next()
          args.append(try parseExpr())
        }
      }
      try expect(")", "to close the call of '\(name)'")
      guard RewriteHelpers.isKnown(name) else {
        throw RuleError(
          location: here, message: "unknown helper '\(name)'",
          note: RewriteHelpers.suggestion(for: name).map { "did you mean '\($0)'?" })
      }
      return .call(name, args, here)
    case let t:
      pos -= 1
      throw fail("expected an expression, found \(describe(t))")
    }
  }
}

/// Static checks of a parsed rule: every name it reads is bound before use.
enum RuleChecker {
  static func checkRestIsLast(_ node: PatternNode) throws {
    for (k, o) in node.operands.enumerated() {
      if case .rest(let v) = o, k != node.operands.count - 1 {
        throw RuleError(location: node.location, message: "'$\(v)...' must be the last operand")
      }
    }
  }

  static func check(_ rule: Rule) throws {
    var values: Set<String> = []
    var variables: Set<String> = []
    func checkOperand(_ o: Operand, at loc: SourceLocation, pattern: Bool) throws {
      switch o {
      case .variable(let v):
        if !pattern && !variables.contains(v) {
          throw RuleError(location: loc, message: "'$\(v)' is not bound by the pattern")
        }
        variables.insert(v)
      case .name(let n):
        guard values.contains(n) else {
          throw RuleError(location: loc, message: "'\(n)' is not a value defined earlier in the rule")
        }
      case .wildcard:
        if !pattern { throw RuleError(location: loc, message: "'_' can only match, not build") }
      case .rest(let v):
        if !pattern && !variables.contains(v) {
          throw RuleError(location: loc, message: "'$\(v)...' is not bound by the pattern")
        }
        variables.insert(v)
      case .constant(let e): try checkExpr(e, at: loc)
      }
    }
    func checkExpr(_ e: Expr, at loc: SourceLocation) throws {
      switch e {
      case .variable(let v):
        guard variables.contains(v) else { throw RuleError(location: loc, message: "'$\(v)' is not bound by the pattern") }
      case .name(let n):
        guard values.contains(n) || ["true", "false"].contains(n) else {
          throw RuleError(location: loc, message: "'\(n)' is not a value of the pattern")
        }
      case .list(let es): for x in es { try checkExpr(x, at: loc) }
      case .call(_, let args, let l): for x in args { try checkExpr(x, at: l) }
      case .binary(_, let a, let b):
        try checkExpr(a, at: loc)
        try checkExpr(b, at: loc)
      case .not(let x): try checkExpr(x, at: loc)
      default: break
      }
    }
    for node in rule.pattern {
      guard OperatorNames.isKnown(node.opType, domain: node.domain) else {
        throw RuleError(
          location: node.location, message: "unknown op '\(node.opType)'",
          note: OperatorNames.suggestion(for: node.opType).map { "did you mean '\($0)'?" })
      }
      try checkRestIsLast(node)
      for o in node.operands { try checkOperand(o, at: node.location, pattern: true) }
      // Attribute patterns bind unbound variables, so they count as binders.
      for (_, e) in node.attributes { if case .variable(let v) = e { variables.insert(v) } else { try checkExpr(e, at: node.location) } }
      for o in node.outputs { values.insert(o) }
    }
    for c in rule.constraints { try checkExpr(c, at: rule.location) }
    switch rule.action {
    case .replace(let target, let with):
      guard values.contains(target) else {
        throw RuleError(location: rule.location, message: "'\(target)' is not a value of the pattern")
      }
      try checkOperand(with, at: rule.location, pattern: false)
    case .rewrite(let targets, let nodes):
      for target in targets where !rule.pattern.contains(where: { $0.outputs.contains(target) }) {
        throw RuleError(location: rule.location, message: "'\(target)' is not a value of the pattern")
      }
      let built = Set(nodes.flatMap(\.outputs))
      for target in targets where !built.contains(target) {
        throw RuleError(location: rule.location, message: "the rewrite does not compute '\(target)'")
      }
      for node in nodes {
        guard OperatorNames.isKnown(node.opType, domain: node.domain) else {
          throw RuleError(
            location: node.location, message: "unknown op '\(node.opType)'",
            note: OperatorNames.suggestion(for: node.opType).map { "did you mean '\($0)'?" })
        }
        try checkRestIsLast(node)
        for o in node.operands { try checkOperand(o, at: node.location, pattern: false) }
        for (_, e) in node.attributes { try checkExpr(e, at: node.location) }
        for o in node.outputs { values.insert(o) }
      }
    }
  }
}
