// swift-tools-version: 6.1
// onnx-rewrite: rewrites ONNX exports of LLMs into graphs NPU compilers accept.
import PackageDescription

let package = Package(
  name: "onnx-rewrite",
  platforms: [.macOS(.v13)],
  products: [
    .library(name: "ONNXGraph", targets: ["ONNXGraph"]),
    .library(name: "ONNXIO", targets: ["ONNXIO"]),
    .library(name: "Evaluation", targets: ["Evaluation"]),
    .library(name: "Rewrite", targets: ["Rewrite"]),
    .library(name: "Passes", targets: ["Passes"]),
    .library(name: "Tiling", targets: ["Tiling"]),
    .library(name: "ONNXBackends", targets: ["ONNXBackends"]),
    .executable(name: "onnx-rewrite", targets: ["onnx-rewrite"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
  ],
  targets: [
    // Generated from Protos/onnx-ml.proto by Scripts/generate-proto; never edited by hand.
    .target(
      name: "ONNXProto",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
      exclude: []),
    // The typed graph users import. Knows nothing of protobuf.
    .target(
      name: "ONNXGraph",
      dependencies: [
        .product(name: "OrderedCollections", package: "swift-collections"),
        .product(name: "HeapModule", package: "swift-collections"),
      ]),
    // Load/save (zero-copy wire scanner + splicing writer), external data, text syntax.
    // The only target that sees ONNXProto.
    .target(
      name: "ONNXIO",
      dependencies: [
        "ONNXGraph", "ONNXProto",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]),
    // Shape inference and the native constant evaluator (one rule per op: infer + evaluate).
    .target(name: "Evaluation", dependencies: ["ONNXGraph"]),
    // The declarative rewrite engine: rule-file parser, matcher, worklist driver.
    .target(name: "Rewrite", dependencies: ["ONNXGraph", "Evaluation"]),
    // The rule files of Rewrites/, shipped as resources (one `.copy` per area folder).
    .target(
      name: "RewriteRules", path: "Rewrites", exclude: ["README.md"],
      sources: ["RewriteRules.swift"], resources: [.copy("generic"), .copy("legalize"), .copy("npu")]),
    // Graph passes and their registry.
    .target(name: "Passes", dependencies: ["ONNXGraph", "Evaluation", "Rewrite", "RewriteRules"]),
    // Per-layer tiling: finds the repeated blocks and cuts the model into one file per tile.
    .target(name: "Tiling", dependencies: ["ONNXGraph", "ONNXIO", "Evaluation"]),
    // Device-compiler handoff: what each compiler rejects, and its build plan (one file per target).
    .target(name: "ONNXBackends", dependencies: ["ONNXGraph"]),
    .executableTarget(
      name: "onnx-rewrite",
      dependencies: [
        "ONNXGraph", "ONNXIO", "Passes", "Tiling", "ONNXBackends",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      // verify.py: the onnxruntime side of `onnx-rewrite verify`; backend_run.py: the python steps
      // of `onnx-rewrite compile` plans (copied into the output folder) and the tile runner verify uses.
      resources: [.copy("Resources/verify.py"), .copy("Resources/backend_run.py")]),
    // Release-built I/O benchmark: `swift run -c release onnx-rewrite-bench MODEL`.
    .executableTarget(
      name: "onnx-rewrite-bench",
      dependencies: ["ONNXGraph", "ONNXIO", "Passes", "Rewrite"],
      path: "Benchmarks/IOBench"),
    .testTarget(name: "ONNXGraphTests", dependencies: ["ONNXGraph"]),
    .testTarget(
      name: "ONNXIOTests",
      dependencies: ["ONNXIO", "ONNXGraph", "ONNXProto"]),
    .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "ONNXGraph"]),
    .testTarget(name: "PassesTests", dependencies: ["Passes", "Evaluation", "ONNXGraph", "ONNXIO", "Rewrite"]),
    .testTarget(name: "RewriteTests", dependencies: ["Rewrite", "Evaluation", "ONNXGraph"]),
    .testTarget(name: "TilingTests", dependencies: ["Tiling", "ONNXGraph", "ONNXIO"]),
    .testTarget(name: "ONNXBackendsTests", dependencies: ["ONNXBackends", "ONNXGraph"]),
  ]
)
