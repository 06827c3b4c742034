import XCTest

@testable import ONNXBackends

final class CompilerLogTests: XCTestCase {
  func testATracebackGivesItsExceptionLine() {
    let log = """
      2026-12-01 INFO converting
      Traceback (most recent call last):
        File "model_transform.py", line 3, in <module>
      RuntimeError: Op not support:{'Gelu'}
      """
    XCTAssertEqual(CompilerLog.errorLine(in: log), "RuntimeError: Op not support:{'Gelu'}")
  }

  func testAToolThatFailedIsNamedWithItsOwnComplaint() {
    let log = """
      [Running]: tpuc-opt a.mlir --shape-infer -o b.mlir
      a.mlir:3: error: 'top.Reshape' op shape mismatch
      Traceback (most recent call last):
        File "mlir_shell.py", line 9, in _os_system
      RuntimeError: [!Error]: tpuc-opt a.mlir --shape-infer -o b.mlir
      """
    XCTAssertEqual(CompilerLog.errorLine(in: log), "tpuc-opt: a.mlir:3: error: 'top.Reshape' op shape mismatch")
  }

  func testWithoutATracebackTheFirstErrorLikeLineWins() {
    let log = "\u{1B}[1mbuilding\u{1B}[0m\n[E] Error Code 4: Internal Error (tensor has a dynamic shape)\nmore\n"
    XCTAssertEqual(CompilerLog.errorLine(in: log), "[E] Error Code 4: Internal Error (tensor has a dynamic shape)")
  }
}
