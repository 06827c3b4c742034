import XCTest

@testable import ONNXBackends

final class BackendSettingsTests: XCTestCase {
  func settings(quantize: String? = nil, chip: String? = nil) -> BuildSettings {
    var s = BuildSettings()
    s.quantize = quantize
    s.chip = chip
    return s
  }

  func testDefaultsAreWhatEachCompilerBuildsFirst() throws {
    let tpu = try TPUMLIRBackend(settings())
    XCTAssertEqual(tpu.chip, "bm1684x")
    XCTAssertEqual(tpu.quantize, "F16")
    XCTAssertEqual(try TensorRTBackend(settings()).precision, "fp16")
    XCTAssertEqual(try VastAIBackend(settings()).dtype, "fp16")
    XCTAssertEqual(try OpenVINOBackend(settings()).precision, "fp32")
  }

  func testQuantizeAndChipAreCheckedAgainstTheCompilersChoices() {
    XCTAssertNoThrow(try TPUMLIRBackend(settings(quantize: "w4f16", chip: "BM1688")))
    XCTAssertThrowsError(try TPUMLIRBackend(settings(quantize: "W4F16", chip: "cv183x"))) {
      XCTAssertTrue("\($0)".contains("weight-only quantization is for bm1684x, bm1688"))
    }
    XCTAssertThrowsError(try TPUMLIRBackend(settings(quantize: "INT8"))) { XCTAssertTrue("\($0)".contains("calibration table")) }
    XCTAssertThrowsError(try ONNXRuntimeBackend(settings(quantize: "fp16")))
    XCTAssertThrowsError(try VastAIBackend(settings(chip: "va1")))
  }

  func testShellWordsRoundTripThroughTheShell() {
    XCTAssertEqual(shellWord("--onnx=../tiles/block_0.onnx"), "--onnx=../tiles/block_0.onnx")
    XCTAssertEqual(shellWord("[[2,8],[2,8]]"), "'[[2,8],[2,8]]'")
    XCTAssertEqual(shellWord("it's"), "'it'\\''s'")
    XCTAssertEqual(shellWord(""), "''")
  }
}
