import Foundation

/// Picks the line of a compiler's output that says why it failed, for a one-line error.
///
/// Python-based compilers (TPU-MLIR, OpenVINO) end with a traceback whose last line is the
/// cause, unless it only says that a tool it shelled out to failed (TPU-MLIR's
/// `[!Error]: tpuc-opt ...`): then that tool's own first complaint is. Otherwise the first line
/// that looks like an error.
public enum CompilerLog {
  public static func errorLine(in log: String) -> String {
    let lines = log.split(separator: "\n").map { stripANSI(String($0)).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    if let tb = lines.lastIndex(where: { $0.hasPrefix("Traceback (most recent call last)") }) {
      if let cause = lines[(tb + 1)...].first(where: isExceptionLine) {
        if cause.contains("[!Error]:"), let run = lines[..<tb].lastIndex(where: { $0.hasPrefix("[Running]:") }) {
          let output = lines[(run + 1)..<tb]
          if let complaint = output.first(where: looksLikeError) ?? output.first {
            let tool = lines[run].split(separator: " ").dropFirst().first.map(String.init) ?? "tool"
            return "\(tool): \(complaint)"
          }
        }
        return cause
      }
    }
    return lines.first(where: looksLikeError) ?? lines.last ?? "(no output)"
  }

  static func isExceptionLine(_ line: String) -> Bool {
    line.range(of: #"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b"#, options: .regularExpression) != nil
  }

  static func looksLikeError(_ line: String) -> Bool {
    isExceptionLine(line)
      || line.range(of: #"\b(error|not support|unsupport|unsupported|failed|assert)"#, options: [.regularExpression, .caseInsensitive]) != nil
  }

  static func stripANSI(_ s: String) -> String {
    s.replacingOccurrences(of: "\u{1B}\\[[0-9;]*[A-Za-z]", with: "", options: .regularExpression)
  }
}
