import Foundation

/// Every rule and rule pass loaded from rule files (`*.rules`), by name.
public struct RuleLibrary {
  public private(set) var rules: [String: Rule] = [:]
  /// Pass name → its rules in order. A rule is also a pass of one rule.
  public private(set) var passes: [String: [Rule]] = [:]
  public private(set) var passOrder: [String] = []
  public private(set) var files: [String] = []

  public init() {}

  /// Loads a `.rules` file, or every `.rules` file under a folder (sorted, so the order is stable).
  public mutating func load(path: String) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw RuleError(location: SourceLocation(file: path, line: 0, column: 0), message: "no such rule file or folder")
    }
    if !isDir.boolValue { return try loadFile(path) }
    let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
      .filter { $0.hasSuffix(".rules") }.sorted()
    for rel in found { try loadFile((path as NSString).appendingPathComponent(rel)) }
  }

  public mutating func loadFile(_ path: String) throws {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw RuleError(location: SourceLocation(file: path, line: 0, column: 0), message: "cannot read: \(error.localizedDescription)")
    }
    try add(RuleParser.parse(file: path, text: text))
  }

  public mutating func add(_ file: RuleFile) throws {
    for r in file.rules {
      if let old = rules[r.name] {
        throw RuleError(location: r.location, message: "rule '\(r.name)' is already defined at \(old.location)")
      }
      rules[r.name] = r
    }
    for p in file.passes {
      guard passes[p.name] == nil else { throw RuleError(location: p.location, message: "pass '\(p.name)' is defined twice") }
      passes[p.name] = try p.rules.map { name in
        guard let r = rules[name] else {
          throw RuleError(
            location: p.location, message: "pass '\(p.name)' names unknown rule '\(name)'",
            note: closest(to: name, in: rules.keys).map { "did you mean '\($0)'?" })
        }
        return r
      }
      passOrder.append(p.name)
    }
    files.append(file.path)
  }

  /// The rules a `--pass NAME` runs: a declared pass, or a single rule.
  public func rules(forPass name: String) -> [Rule]? {
    passes[name] ?? rules[name].map { [$0] }
  }
}
