/// `compile.sh`: the plan's steps as a shell script anyone can run where the compiler is installed.
public enum ShellScript {
  public static func render(_ plan: BuildPlan, target: Target, modelName: String) -> String {
    var lines = [
      "#!/usr/bin/env bash",
      "# Build plan for \(target.rawValue), written by `onnx-rewrite compile` for \(modelName).",
      "# Run where the compiler is installed: bash compile.sh   (output: \(plan.product) in build/)",
      "# PYTHON names the interpreter for the python steps (default python3).",
      "set -euo pipefail",
      "cd \"$(dirname \"$0\")\"",
      "mkdir -p build && cd build",
      "PYTHON=${PYTHON:-python3}",
      "step() {",
      "  local unit=$1 index=$2; shift 2",
      "  echo \"[$index] $unit: $1\"",
      "  \"$@\" || { status=$?; echo \"error: $unit: $1 failed (exit $status)\" >&2; exit 1; }",
      "}",
    ]
    let total = plan.steps.count
    for (i, step) in plan.steps.enumerated() {
      let tool = step.tool == "python3" ? "\"$PYTHON\"" : shellWord(step.tool)
      lines.append("step \(shellWord(step.unit)) \(i + 1)/\(total) " + ([tool] + step.arguments.map(shellWord)).joined(separator: " "))
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

/// A word the shell reads back unchanged: bare when safe, else single-quoted.
func shellWord(_ s: String) -> String {
  let safe = !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }
  return safe ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A command line the shell reads back as these words.
public func shellLine(_ words: [String]) -> String { words.map(shellWord).joined(separator: " ") }
