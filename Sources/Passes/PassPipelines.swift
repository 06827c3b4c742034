/// Named lists of passes: `--pass npu` runs each member in order. A member may itself be
/// a pipeline, a native pass or a rule pass.
public enum PassPipelines {
  public struct Pipeline: Sendable {
    public let name: String
    public let members: [String]
  }

  public static let all: [Pipeline] = [
    Pipeline(
      name: "cleanup",
      members: ["eliminate-identity", "eliminate-noops", "fold-constants", "dedupe-constants", "dce"]),
    Pipeline(
      name: "npu",
      members: [
        "static-shape", "legalize-opset", "scatternd-to-concat", "gathernd-to-gather", "attention-permutes",
        "falcon-linear", "cleanup",
      ]),
  ]

  public static func pipeline(named name: String) -> Pipeline? { all.first { $0.name == name } }

  /// `names` with every pipeline replaced by its members, recursively.
  public static func expand(_ names: [String]) -> [String] {
    names.flatMap { name in pipeline(named: name).map { expand($0.members) } ?? [name] }
  }
}
