import Foundation
import ONNXProto
import SwiftProtobuf
import XCTest

@testable import ONNXGraph
@testable import ONNXIO

final class RoundTripTests: XCTestCase {
  var dir: String!

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "onnxio-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: dir)
  }

  func floats(_ n: Int, _ start: Float = 0) -> Data {
    (0..<n).map { Float($0) + start }.withUnsafeBytes { Data($0) }
  }

  /// y = If(c) { x @ w + outer constant } else { x }, with a big and a small weight.
  func makeModel() -> Model {
    let x = Value(name: "x", type: .tensor(.float, ["batch", 32]))
    let c = Value(name: "c", type: .tensor(.bool, []))
    let g = Graph(name: "main", inputs: [x, c])
    let w = g.addInitializer(Value(name: "w"), Tensor(name: "w", dataType: .float, dims: [32, 32], raw: floats(1024)))
    let b = g.addInitializer(Value(name: "b"), Tensor(name: "b", dataType: .float, dims: [32], storage: .floats(Array(repeating: 0.5, count: 32))))
    let mm = Node("MatMul", name: "mm", inputs: [x, w], outputNames: ["xw"])
    g.append(mm)
    let thenG = Graph(name: "then")
    let add = Node("Add", inputs: [mm.outputs[0], b], outputNames: ["t"])
    thenG.append(add)
    thenG.outputs = [add.outputs[0]]
    let elseG = Graph(name: "else")
    let id = Node("Identity", inputs: [x], outputNames: ["e"])
    elseG.append(id)
    elseG.outputs = [id.outputs[0]]
    let ifNode = Node(
      "If", name: "branch", inputs: [c], outputNames: ["y"],
      attributes: [Attribute("then_branch", .graph(thenG)), Attribute("else_branch", .graph(elseG))])
    g.append(ifNode)
    ifNode.outputs[0].type = .tensor(.float, ["batch", 32])
    g.outputs = [ifNode.outputs[0]]
    let m = Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
    m.producerName = "test"
    return m
  }

  func testBuiltModelRoundTripsAndKeepsWeightsMapped() throws {
    let path = dir + "/m.onnx"
    try ModelWriter.save(makeModel(), to: path)
    let m = try ModelLoader.load(path: path)
    XCTAssertEqual(m.producerName, "test")
    XCTAssertEqual(m.graph.nodes.map(\.opType), ["MatMul", "If"])
    let w = try XCTUnwrap(m.graph.initializers["w"]?.constValue)
    XCTAssertEqual(w.rawBytes, TensorBytes(floats(1024)))
    XCTAssertEqual(w.rawBytes?.mappedSource?.file.path, path, "large raw_data is a slice of the mapped file")
    XCTAssertEqual(m.graph.initializers["b"]?.constValue?.storage, .floats(Array(repeating: 0.5, count: 32)))
    XCTAssertEqual(m.graph.inputs[0].shape, ["batch", 32])

    // The then-branch reads the outer MatMul's output: the same Value, so its use list sees it.
    let ifNode = try XCTUnwrap(m.graph.lastNode)
    let thenAdd = try XCTUnwrap(ifNode.subgraphs[0].firstNode)
    let mmOut = m.graph.firstNode!.outputs[0]
    XCTAssertTrue(thenAdd.inputs[0] === mmOut)
    XCTAssertTrue(mmOut.uses.contains { $0.node === thenAdd })

    let again = dir + "/again.onnx"
    try ModelWriter.save(m, to: again)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try Data(contentsOf: URL(fileURLWithPath: again)))
  }

  func testRawDataThatLooksLikeAMarkerIsKeptAsData() throws {
    let m = makeModel()
    var lookalike = RawDataMarker.make(slot: 0)
    lookalike[15] = 0x7f
    m.graph.addInitializer(Value(name: "l"), Tensor(name: "l", dataType: .uint8, dims: [16], raw: Data(lookalike)))
    let path = dir + "/m.onnx"
    try ModelWriter.save(m, to: path)
    let proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: path)))
    XCTAssertEqual(proto.graph.initializer.first { $0.name == "l" }?.rawData, Data(lookalike))
    let loaded = try ModelLoader.load(path: path)
    XCTAssertEqual(loaded.graph.initializers["l"]?.constValue?.rawBytes, TensorBytes(Data(lookalike)))
  }

  func testUnknownAndExplicitlyEmptyFieldsSurviveByteForByte() throws {
    var node = Onnx_NodeProto()
    node.opType = "Relu"
    node.input = ["x"]
    node.output = ["y"]
    node.domain = ""  // present but empty, as onnx.helper writes it
    // Field 1000 (varint 7) is unknown to onnx-ml.proto.
    node = try Onnx_NodeProto(serializedBytes: try node.serializedData() + Data([0xC0, 0x3E, 0x07]))
    XCTAssertFalse(node.unknownFields.data.isEmpty)
    var g = Onnx_GraphProto()
    g.name = "g"
    g.node = [node]
    var model = Onnx_ModelProto()
    model.irVersion = 9
    model.graph = g
    var opset = Onnx_OperatorSetIdProto()
    opset.version = 20
    model.opsetImport = [opset]
    let original = try model.serializedData() + Data([0xC0, 0x3E, 0x01])  // unknown top-level field
    let path = dir + "/u.onnx"
    try original.write(to: URL(fileURLWithPath: path))
    let out = dir + "/u2.onnx"
    try ModelWriter.save(try ModelLoader.load(path: path), to: out)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), original)
  }

  func testExternalDataIsAlignedAndReloads() throws {
    let m = makeModel()
    let big = floats(300_000, 1)  // 1.2 MB: aligned to 64 KiB
    m.graph.addInitializer(Value(name: "big"), Tensor(name: "big", dataType: .float, dims: [300_000], raw: big))
    let path = dir + "/e.onnx"
    let report = try ModelWriter.save(m, to: path, options: SaveOptions(externalData: .file("weights.bin")))
    XCTAssertEqual(report.externalData?.name, "weights.bin")
    let proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: path)))
    let entry = try XCTUnwrap(proto.graph.initializer.first { $0.name == "big" })
    XCTAssertEqual(entry.dataLocation, .external)
    let offset = try XCTUnwrap(Int(entry.externalData.first { $0.key == "offset" }!.value))
    XCTAssertEqual(offset % 65536, 0)
    let small = try XCTUnwrap(proto.graph.initializer.first { $0.name == "b" })
    XCTAssertEqual(small.dataLocation, .default, "typed float_data stays inline")

    let loaded = try ModelLoader.load(path: path)
    let t = try XCTUnwrap(loaded.graph.initializers["big"]?.constValue)
    XCTAssertEqual(t.rawBytes, TensorBytes(big))
    XCTAssertEqual(t.rawBytes?.mappedSource?.file.path.hasSuffix("weights.bin"), true)

    // And back to one file.
    let single = dir + "/single.onnx"
    let r2 = try ModelWriter.save(loaded, to: single)
    XCTAssertNil(r2.externalData)
    XCTAssertEqual(try ModelLoader.load(path: single).graph.initializers["big"]?.constValue?.rawBytes, TensorBytes(big))
  }

  func writeExternalModel(location: String, offset: Int = 0, length: Int = 16) throws -> String {
    var t = Onnx_TensorProto()
    t.name = "w"
    t.dataType = 1
    t.dims = [4]
    t.dataLocation = .external
    for (k, v) in [("location", location), ("offset", String(offset)), ("length", String(length))] {
      var e = Onnx_StringStringEntryProto()
      e.key = k
      e.value = v
      t.externalData.append(e)
    }
    var model = Onnx_ModelProto()
    model.irVersion = 8
    model.graph.initializer = [t]
    let path = dir + "/x.onnx"
    try model.serializedData().write(to: URL(fileURLWithPath: path))
    try Data(count: 16).write(to: URL(fileURLWithPath: dir + "/w.bin"))
    return path
  }

  func assertLoadFails(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try ModelLoader.load(path: path), file: file, line: line) { error in
      let e = error as? ModelFileError
      XCTAssertEqual(e?.file, path, file: file, line: line)
      XCTAssertTrue(e?.message.contains(fragment) == true, "\(error)", file: file, line: line)
    }
  }

  func testUntrustedExternalLocationsAreRejected() throws {
    XCTAssertNoThrow(try ModelLoader.load(path: writeExternalModel(location: "w.bin")))
    assertLoadFails(try writeExternalModel(location: "../w.bin"), "escapes the model's folder")
    assertLoadFails(try writeExternalModel(location: "a/../../w.bin"), "escapes the model's folder")
    assertLoadFails(try writeExternalModel(location: "/etc/hostname"), "is absolute")
    assertLoadFails(try writeExternalModel(location: "missing.bin"), "not found")
    assertLoadFails(try writeExternalModel(location: "w.bin", offset: 8), "past the end")
    assertLoadFails(try writeExternalModel(location: "w.bin", length: 12), "does not match its type and shape")
    let path = try writeExternalModel(location: "link.bin")
    try FileManager.default.createSymbolicLink(atPath: dir + "/link.bin", withDestinationPath: "/etc/hostname")
    assertLoadFails(path, "resolves outside the model's folder")
  }

  func testMalformedFilesFailWithTheirCause() throws {
    let good = dir + "/m.onnx"
    try ModelWriter.save(makeModel(), to: good)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
    let truncated = dir + "/t.onnx"
    try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
    assertLoadFails(truncated, "truncated or corrupt")
    let empty = dir + "/empty.onnx"
    try Data().write(to: URL(fileURLWithPath: empty))
    assertLoadFails(empty, "empty file")
    assertLoadFails(dir + "/nope.onnx", "no such file")
    let group = dir + "/g.onnx"
    try Data([0x0B, 0x0C]).write(to: URL(fileURLWithPath: group))  // field 1 start/end group
    assertLoadFails(group, "group fields")
  }

  func testFailedSaveLeavesNoFiles() throws {
    XCTAssertThrowsError(try ModelWriter.save(makeModel(), to: dir + "/no/such/dir/m.onnx"))
    XCTAssertThrowsError(
      try ModelWriter.save(makeModel(), to: dir + "/m.onnx", options: SaveOptions(externalData: .file("../w.bin"))))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
  }
}
