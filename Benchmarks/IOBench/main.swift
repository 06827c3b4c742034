// Release-built I/O benchmark: load, load + save, and peak RSS for one model.
//   swift run -c release onnx-rewrite-bench MODEL OUTDIR [--repeat N]
// Prints one JSON line per measurement (consumed by Benchmarks/run.py).
import Foundation
import ONNXGraph
import ONNXIO

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

let args = Array(CommandLine.arguments.dropFirst())
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
