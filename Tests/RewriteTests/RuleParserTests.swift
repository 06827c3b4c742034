import XCTest

@testable import Rewrite

final class RuleParserTests: XCTestCase {
  func parseError(_ text: String) -> String {
    do {
      _ = try RuleParser.parse(file: "t.rules", text: text)
      return "parsed"
    } catch {
      return "\(error)"
    }
  }

  func testParsesRulesAndPasses() throws {
    let file = try RuleParser.parse(file: "t.rules", text: """
      # comment
      rule transpose-pair benefit 2 {
        t = Transpose <perm = $p> ($x)
        y = Transpose <perm = $q> (t)
        where $q == inverse($p), rank($x) >= 2
        replace y with $x
      }
      pass p { transpose-pair }
      """)
    XCTAssertEqual(file.rules.map(\.name), ["transpose-pair"])
    XCTAssertEqual(file.rules[0].benefit, 2)
    XCTAssertEqual(file.rules[0].pattern.map(\.opType), ["Transpose", "Transpose"])
    XCTAssertEqual(file.rules[0].constraints.map(\.description), ["$q == inverse($p)", "rank($x) >= 2"])
    XCTAssertEqual(file.passes.map(\.rules), [["transpose-pair"]])
  }

  func testErrorsNameFileLineAndColumn() {
    XCTAssertEqual(
      parseError("rule r {\n  y = Tranpose ($x)\n  replace y with $x\n}"),
      "t.rules:2:3: error: unknown op 'Tranpose'\nt.rules:2:3: note: did you mean 'Transpose'?")
    XCTAssertEqual(
      parseError("rule r {\n  y = Neg ($x)\n  where inverse2($x)\n  replace y with $x\n}"),
      "t.rules:3:9: error: unknown helper 'inverse2'\nt.rules:3:9: note: did you mean 'inverse'?")
    XCTAssertEqual(
      parseError("rule r {\n  y = Neg ($x)\n  replace y with $z\n}"),
      "t.rules:1:1: error: '$z' is not bound by the pattern")
    XCTAssertEqual(
      parseError("rule r {\n  y = Neg (t)\n  replace y with $x\n}"),
      "t.rules:2:3: error: 't' is not a value defined earlier in the rule")
    XCTAssertEqual(parseError("rule r {\n  y = Neg ($x\n}"), "t.rules:3:1: error: expected ')' to close the operand list of Neg, found '}'")
    XCTAssertEqual(parseError("rule r { y = Neg ($x) }"), "t.rules:1:1: error: rule 'r' has no 'replace' or 'rewrite'")
    XCTAssertEqual(
      parseError("rule r {\n  y = Concat ($xs..., $z)\n  replace y with $z\n}"),
      "t.rules:2:3: error: '$xs...' must be the last operand")
    XCTAssertEqual(parseError("pass p { nope }"), "parsed")  // resolved by the library
    var lib = RuleLibrary()
    XCTAssertThrowsError(try lib.add(RuleParser.parse(file: "t.rules", text: "pass p { nope }"))) {
      XCTAssertEqual("\($0)", "t.rules:1:1: error: pass 'p' names unknown rule 'nope'")
    }
  }
}
