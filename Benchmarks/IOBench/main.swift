// Release-built benchmarks; each prints one JSON line per measurement.
//   swift run -c release onnx-rewrite-bench MODEL OUTDIR [--repeat N]   load, load + save, peak RSS
//   swift run -c release onnx-rewrite-bench rewrite-scale [N ...]       fold-transposes + dce on
//                                                                        generated graphs of N nodes
import Foundation
import ONNXGraph
import ONNXIO
import Passes
import Rewrite

func peakRSSBytes() -> Int {
  // VmHWM: the process's peak resident set size.
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
  for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
    return kb * 1024
  }
  return 0
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  try body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Blocks of Transpose, its inverse and a Relu, chained: every pair folds away.
func transposeChain(nodes: Int) -> Model {
  let x = Value(name: "x", type: .tensor(.float, [2, 8, 16, 64]))
  let g = Graph(name: "chain", inputs: [x])
  var v = x
  for i in 0..<(nodes / 3) {
    let t = Node("Transpose", inputs: [v], outputNames: ["t\(i)"], attributes: [Attribute("perm", .ints([0, 2, 1, 3]))])
    let u = Node("Transpose", inputs: [t.outputs[0]], outputNames: ["u\(i)"], attributes: [Attribute("perm", .ints([0, 2, 1, 3]))])
    let r = Node("Relu", inputs: [u.outputs[0]], outputNames: ["r\(i)"])
    for n in [t, u, r] { g.append(n) }
    v = r.outputs[0]
  }
  g.outputs = [v]
  return Model(irVersion: 8, opsetImports: [OpsetImport("", 17)], graph: g)
}

func rewriteScale(_ sizes: [Int]) throws {
  let rules = try RulePasses.library().rules(forPass: "fold-transposes")!
  for n in sizes {
    let model = transposeChain(nodes: n)
    let before = model.graph.nodeCount
    let driver = RewriteDriver(rules: rules)
    let rewrite = try seconds { try driver.run(on: model) }
    let dce = try seconds { _ = try DeadCodeElimination().run(on: model, options: PassOptions()) }
    print(
      #"{"nodes": \#(before), "after": \#(model.graph.nodeCount), "rewrites": \#(driver.stats.total), "rewrite_s": \#(rewrite), "dce_s": \#(dce), "total_s": \#(rewrite + dce)}"#)
  }
}

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "rewrite-scale" {
  do {
    try rewriteScale(args.count > 1 ? args.dropFirst().compactMap { Int($0) } : [10_000, 100_000, 1_000_000])
  } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
  }
  exit(0)
}
guard args.count >= 2 else {
  FileHandle.standardError.write(Data("usage: onnx-rewrite-bench MODEL OUTDIR [--repeat N]\n".utf8))
  exit(2)
}
let modelPath = args[0]
let outDir = args[1]
let repeats = args.firstIndex(of: "--repeat").flatMap { Int(args[$0 + 1]) } ?? 3
let size = (try? FileManager.default.attributesOfItem(atPath: modelPath)[.size] as? Int) ?? 0

do {
  for i in 0..<repeats {
    var model: Model!
    let load = try seconds { model = try ModelLoader.load(path: modelPath) }
    let out = outDir + "/bench-out.onnx"
    let save = try seconds { try ModelWriter.save(model, to: out) }
    print(
      #"{"run": \#(i), "model": "\#(modelPath)", "file_bytes": \#(size), "load_s": \#(load), "save_s": \#(save), "load_save_s": \#(load + save), "peak_rss_bytes": \#(peakRSSBytes())}"#)
  }
} catch {
  FileHandle.standardError.write(Data("error: \(error)\n".utf8))
  exit(1)
}
