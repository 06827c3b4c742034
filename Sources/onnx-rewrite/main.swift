/// `--external-data [NAME]` takes an optional value, which ArgumentParser cannot express:
/// `--external-data=NAME`, or `--external-data NAME` where NAME is not an option or a
/// model file, becomes `--external-data --external-data-name NAME`.
func expandingOptionalValues(_ args: [String]) -> [String] {
  var out: [String] = []
  var i = 0
  while i < args.count {
    let a = args[i]
    if a.hasPrefix("--external-data=") {
      out += ["--external-data", "--external-data-name", String(a.dropFirst("--external-data=".count))]
    } else if a == "--external-data", i + 1 < args.count, !args[i + 1].hasPrefix("-"),
      !args[i + 1].hasSuffix(".onnx")
    {
      out += ["--external-data", "--external-data-name", args[i + 1]]
      i += 1
    } else {
      out.append(a)
    }
    i += 1
  }
  return out
}

OnnxRewrite.main(expandingOptionalValues(Array(CommandLine.arguments.dropFirst())))
