import ArgumentParser
import Passes
import Rewrite

struct Passes: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "List the passes '--pass' can name.")

  @Option(name: .customLong("rules"), help: ArgumentHelp("Also list the passes of these rule files or folders.", valueName: "path"))
  var ruleFiles: [String] = []

  func run() throws {
    let library = try RulePasses.library(adding: ruleFiles)
    var rows = PassRegistry.all.map { ($0.name, $0.summary) }
    rows += PassPipelines.all.map { ($0.name, "pipeline: " + $0.members.joined(separator: ", ")) }
    for name in library.passOrder {
      rows.append((name, "rules: " + (library.passes[name] ?? []).map(\.name).joined(separator: ", ")))
    }
    let width = rows.map(\.0.count).max() ?? 0
    for (name, summary) in rows {
      print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + summary)
    }
  }
}
