import ArgumentParser
import Passes

struct Passes: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "List the passes '--pass' can name.")

  func run() throws {
    if PassRegistry.all.isEmpty {
      print("No passes are registered yet.")
      return
    }
    let width = PassRegistry.all.map { $0.name.count }.max() ?? 0
    for p in PassRegistry.all {
      print(p.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + p.summary)
    }
  }
}
