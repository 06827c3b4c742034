import ArgumentParser
import Foundation
import ONNXBackends
import ONNXGraph
import ONNXIO
import Passes
import Tiling

struct Compile: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Rewrite, tile and hand a model to a device compiler: check it, write the build plan, and with --run build it.",
    discussion: """
      Runs the passes (--pass, as the default command does), cuts the model into per-layer tiles \
      with --tile (as 'onnx-rewrite tile'), checks every tile against what the target compiler \
      is known to reject (dynamic dimensions, ops it lacks or miscompiles, opset and IR version, \
      files over 2 GB) and prints each finding with the tile and node. Any error: nothing is \
      written and the exit status is 1.

      Otherwise writes into --out DIR: tiles/ (the tiles and manifest.json) or model.onnx, \
      compile.sh (the build plan in the target's own conventions: per tile model_transform + \
      model_deploy then model_tool --combine for tpu-mlir; trtexec per tile plus polygraphy.sh \
      for tensorrt; vamc/<tile>.yaml + vamc compile for vastai; compile + run for onnxruntime \
      and openvino), the helper scripts it calls, and inputs.npz with --test-input.

      --run executes compile.sh's steps here, each compiler's output appended to DIR/compile.log \
      and one progress line per step; the first failure stops it, naming the tile and the \
      compiler's own error line. A compiler that is not installed is reported with how to \
      install it. Targets: tpu-mlir (model_transform, model_deploy, model_tool on PATH), \
      onnxruntime and openvino (Python with them: --python), tensorrt (trtexec and an NVIDIA \
      GPU), vastai (vamc, which no public registry has: the plan is written, not run).
      """)

  @Argument(help: "The model to compile (.onnx).", completion: .file())
  var input: String

  @Option(help: ArgumentHelp("The compiler: \(Target.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "target"))
  var target: String

  @Option(name: .customLong("out"), help: "The folder for the tiles, the build plan and the build.", completion: .directory)
  var out: String

  @Flag(help: "Cut the model into per-layer tiles (embedding, block_N, lm_head) and build each.")
  var tile = false

  @Option(help: ArgumentHelp("With --tile: memory per tile (weights + peak activations), e.g. 2GiB. tpu-mlir (--chip bm1684x) implies 2GiB.", valueName: "bytes"))
  var budget: String? = nil

  @Option(help: "With --tile: consecutive layers per block tile.")
  var group: Int = 1

  @Option(help: ArgumentHelp("Passed to the compiler: tpu-mlir F32|F16|BF16|W8F16|W8BF16|W4F16|W4BF16 (default F16); tensorrt fp32|fp16|bf16 (fp16); openvino fp32|fp16 (fp32); vastai fp16.", valueName: "mode"))
  var quantize: String? = nil

  @Option(help: ArgumentHelp("Passed to the compiler: tpu-mlir bm1684x (default), bm1688, bm1684, cv18xx.", valueName: "chip"))
  var chip: String? = nil

  @Option(help: ArgumentHelp("How far the tpu-mlir plan goes: 'mlir' (model_transform only) or 'full' (bmodels, combined).", valueName: "mlir|full"))
  var stage: String = "full"

  @Option(
    name: .customLong("test-input"),
    help: ArgumentHelp("Model inputs (.npz keyed by input name): copied to DIR/inputs.npz so the compilers check their results on them (TPU-MLIR's --test_input per tile; onnxruntime/openvino run the build on them).", valueName: "file.npz"))
  var testInput: String? = nil

  @Flag(name: .customLong("run"), help: "Run the build plan here after writing it.")
  var runPlan = false

  @Option(help: ArgumentHelp("The Python interpreter for the plan's python steps (default: $ONNX_REWRITE_PYTHON, else python3 on PATH).", valueName: "path"))
  var python: String? = nil

  @OptionGroup var passes: PassArguments

  func validate() throws {
    guard let t = Target(rawValue: target) else {
      throw ValidationError("--target \(target): expected one of \(Target.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    do { _ = try t.backend(settings()) } catch let e as BackendError { throw ValidationError(e.message) }
    if BuildSettings.Stage(rawValue: stage) == nil { throw ValidationError("--stage \(stage): expected mlir or full.") }
    if group < 1 { throw ValidationError("--group \(group): give a positive number of layers per tile.") }
    if let budget, parseBytes(budget) == nil { throw ValidationError("--budget \(budget): give a byte count such as 2GiB, 512MiB or 1000000.") }
    if !tile && (budget != nil || group != 1) { throw ValidationError("--budget and --group need --tile.") }
  }

  func settings() -> BuildSettings {
    var s = BuildSettings()
    s.quantize = quantize
    s.chip = chip
    s.stage = BuildSettings.Stage(rawValue: stage) ?? .full
    s.hasTestInputs = testInput != nil
    s.modelName = Self.modelName(for: input)
    return s
  }

  /// `Fixtures/llama-ts/model.onnx` → `llama-ts`; `phi3.onnx` → `phi3`: a name compilers accept.
  static func modelName(for path: String) -> String {
    let url = URL(fileURLWithPath: path)
    var stem = url.deletingPathExtension().lastPathComponent
    if stem == "model" { stem = url.deletingLastPathComponent().lastPathComponent }
    let cleaned = String(stem.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    return cleaned.isEmpty ? "model" : cleaned
  }

  func run() throws {
    let backend = try Target(rawValue: target)!.backend(settings())
    try reportingErrors(file: input) {
      try checkOutputFolder()
      if let testInput, !FileManager.default.fileExists(atPath: testInput) {
        throw CompileError("\(testInput): no such file (--test-input)")
      }
      let model = try ModelLoader.load(path: input)
      try passes.run(on: model, file: input)

      let tiler: Tiler? = tile ? try tiled(model) : nil
      let units = tiler.map { t in
        t.manifest.tiles.enumerated().map { i, entry in
          CompileUnit(name: entry.name, file: CompileUnit.tileFolder + "/" + entry.file, model: t.model(forTile: i), weightBytes: entry.weightBytes)
        }
      } ?? [CompileUnit(name: settings().modelName, file: "model.onnx", model: model, weightBytes: weightBytes(model))]

      let findings = units.flatMap(backend.validate)
      for f in findings { FileHandle.standardError.write(Data("\(input): \(f)\n".utf8)) }
      let errors = findings.filter { $0.severity == .error }.count
      if errors > 0 {
        throw CompileError("\(errors) problem\(errors == 1 ? "" : "s") \(backend.target.rawValue) would reject (listed above); nothing written to \(out)")
      }

      let plan = backend.plan(units)
      try write(plan: plan, backend: backend, model: model, tiler: tiler, findings: findings)
      note("\(out): \(backend.target.rawValue) build plan for \(units.count) \(tiler == nil ? "model" : "tiles") (\(plan.steps.count) steps) in compile.sh; builds \(plan.product)")
      if runPlan { try execute(plan, backend: backend) }
    }
  }

  // MARK: - Writing

  /// Refuses to mix a build into a folder that holds something else.
  func checkOutputFolder() throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: out, isDirectory: &isDir) else { return }
    guard isDir.boolValue else { throw CompileError("\(out): exists and is not a folder (--out)") }
    let entries = try FileManager.default.contentsOfDirectory(atPath: out)
    if !entries.isEmpty && !entries.contains("compile.sh") {
      throw CompileError("\(out): the folder is not empty and holds no earlier compile.sh; give an empty or new folder (--out)")
    }
  }

  func tiled(_ model: Model) throws -> Tiler {
    // TPU-MLIR reads each tile as one protobuf file: its tiles keep to the chip's 2 GiB preset.
    let preset = chip ?? (Target(rawValue: target) == .tpuMLIR ? "bm1684x" : nil)
    let budgetBytes = budget.flatMap(parseBytes) ?? preset.flatMap { Tile.chips[$0.lowercased()] }
    do {
      return try Tiler(model: model, source: input, options: TilingOptions(budgetBytes: budgetBytes, group: group))
    } catch let e as TilingError { throw CompileError("\(e)") }
  }

  func weightBytes(_ model: Model) -> Int {
    model.graph.initializers.values.reduce(0) { $0 + ($1.constValue?.byteCount ?? 0) }
  }

  /// Writes the folder under a temporary name beside `--out` and renames it into place, so a
  /// failure (a full disk, a tile that cannot be written) leaves no half-written folder, and a
  /// second compile replaces the first one's tiles and build whole.
  func write(plan: BuildPlan, backend: any Backend, model: Model, tiler: Tiler?, findings: [Finding]) throws {
    let fm = FileManager.default
    let final = URL(fileURLWithPath: out).standardizedFileURL
    let staging = final.deletingLastPathComponent()
      .appendingPathComponent(".\(final.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
    do {
      try? fm.removeItem(at: staging)
      try fm.createDirectory(at: staging.appendingPathComponent("build"), withIntermediateDirectories: true)
      try fill(staging, plan: plan, backend: backend, model: model, tiler: tiler, findings: findings)
      if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
      try fm.moveItem(at: staging, to: final)
    } catch {
      try? fm.removeItem(at: staging)
      switch error {
      case is CompileError, is ModelFileError: throw error
      case let e as TilingError: throw CompileError("\(e)")
      default: throw CompileError("\(out): cannot write the build folder: \(error.localizedDescription)")
      }
    }
  }

  private func fill(_ dir: URL, plan: BuildPlan, backend: any Backend, model: Model, tiler: Tiler?, findings: [Finding]) throws {
    let fm = FileManager.default
    if let tiler {
      try tiler.write(to: dir.appendingPathComponent(CompileUnit.tileFolder).path)
    } else {
      try ModelWriter.save(model, to: dir.appendingPathComponent("model.onnx").path)
    }
    if let testInput { try fm.copyItem(atPath: testInput, toPath: dir.appendingPathComponent("inputs.npz").path) }
    for helper in plan.helpers {
      let name = (helper as NSString).deletingPathExtension
      guard let source = Bundle.module.path(forResource: name, ofType: "py") else {
        throw CompileError("\(helper) is missing from the onnx-rewrite installation")
      }
      try fm.copyItem(atPath: source, toPath: dir.appendingPathComponent(helper).path)
    }
    for file in plan.files {
      let url = dir.appendingPathComponent(file.path)
      try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(file.contents.utf8).write(to: url)
    }
    if !findings.isEmpty {
      try Data(findings.map(\.description).joined(separator: "\n").appending("\n").utf8)
        .write(to: dir.appendingPathComponent("findings.txt"))
    }
    let script = dir.appendingPathComponent("compile.sh")
    try Data(ShellScript.render(plan, target: backend.target, modelName: settings().modelName).utf8).write(to: script)
    try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
  }

  // MARK: - Running

  var interpreter: String { python ?? ProcessInfo.processInfo.environment["ONNX_REWRITE_PYTHON"] ?? "python3" }

  /// What of the toolchain is missing here, in words; nil when everything is.
  func missing(_ toolchain: Toolchain) -> String? {
    var lacks: [String] = []
    for program in toolchain.programs where findOnPath(program) == nil { lacks.append("'\(program)' is not on PATH") }
    if !toolchain.pythonModules.isEmpty {
      if findOnPath(interpreter) == nil && !FileManager.default.isExecutableFile(atPath: interpreter) {
        lacks.append("no Python interpreter '\(interpreter)'")
      } else {
        let check = toolchain.pythonModules.map { "import \($0)" }.joined(separator: "; ")
        if (try? runQuietly(interpreter, ["-c", check])) != 0 {
          lacks.append("\(interpreter) cannot import \(toolchain.pythonModules.joined(separator: ", "))")
        }
      }
    }
    if toolchain.needsNVIDIAGPU && (findOnPath("nvidia-smi") == nil || (try? runQuietly("nvidia-smi", ["-L"])) != 0) {
      lacks.append("no NVIDIA GPU (nvidia-smi lists none)")
    }
    return lacks.isEmpty ? nil : lacks.joined(separator: "; ")
  }

  func execute(_ plan: BuildPlan, backend: any Backend) throws {
    if let lacks = missing(backend.toolchain) {
      throw CompileError("cannot run the \(backend.target.rawValue) build here: \(lacks). \(backend.toolchain.install). The plan is in \(out)/compile.sh")
    }
    let dir = URL(fileURLWithPath: out)
    let build = dir.appendingPathComponent("build")
    let logURL = dir.appendingPathComponent("compile.log")
    if !FileManager.default.fileExists(atPath: logURL.path) {
      _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
    }
    let log = try FileHandle(forWritingTo: logURL)
    defer { try? log.close() }
    let total = plan.steps.count
    for (i, step) in plan.steps.enumerated() {
      let tool = step.tool == "python3" ? interpreter : step.tool
      let header = "\n$ cd build && \(shellLine([tool] + step.arguments))\n"
      log.seekToEndOfFile()
      let start = log.offsetInFile
      log.write(Data(header.utf8))
      FileHandle.standardError.write(Data("[\(i + 1)/\(total)] \(step.unit): \(step.title) ...".utf8))
      let began = Date()
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = [tool] + step.arguments
      process.currentDirectoryURL = build
      process.standardInput = FileHandle.nullDevice
      process.standardOutput = log
      process.standardError = log
      try process.run()
      process.waitUntilExit()
      let seconds = String(format: "%.1f", Date().timeIntervalSince(began))
      let lacking = step.produces.filter { !FileManager.default.fileExists(atPath: build.appendingPathComponent($0).path) }
      // Only this step's part of the log; a compiler's stray non-UTF-8 bytes must not hide its error line.
      let stepLog = try readLog(logURL, from: start + UInt64(header.utf8.count))
      if process.terminationStatus == 0 && lacking.isEmpty {
        FileHandle.standardError.write(Data(" ok (\(seconds) s)\n".utf8))
        if step.showsOutput {
          for line in stepLog.split(separator: "\n") { FileHandle.standardError.write(Data("    \(line)\n".utf8)) }
        }
        continue
      }
      FileHandle.standardError.write(Data(" failed (\(seconds) s)\n".utf8))
      let why = process.terminationStatus != 0
        ? "exit \(process.terminationStatus): \(CompilerLog.errorLine(in: stepLog))"
        : "it wrote no \(lacking.joined(separator: ", "))"
      throw CompileError("\(out): \(step.unit): \(step.title) failed (\(why)); its output is in \(logURL.path)")
    }
    note("\(out): built \(plan.product) in build/ (log: compile.log)")
  }

  private func readLog(_ url: URL, from offset: UInt64) throws -> String {
    let reader = try FileHandle(forReadingFrom: url)
    defer { try? reader.close() }
    try reader.seek(toOffset: offset)
    return String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
  }
}

struct CompileError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

func findOnPath(_ program: String) -> String? {
  if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
  for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
    let path = "\(dir)/\(program)"
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  return nil
}

/// Runs a program with no output; its exit status.
func runQuietly(_ program: String, _ arguments: [String]) throws -> Int32 {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = [program] + arguments
  p.standardInput = FileHandle.nullDevice
  p.standardOutput = FileHandle.nullDevice
  p.standardError = FileHandle.nullDevice
  try p.run()
  p.waitUntilExit()
  return p.terminationStatus
}
