import Foundation

/// A byte count for people: 1536 -> "1.5 KiB" (powers of 1024, one decimal).
public func formatBytes(_ n: Int) -> String {
  let units = ["B", "KiB", "MiB", "GiB", "TiB"]
  var value = Double(n)
  var u = 0
  while value >= 1024 && u < units.count - 1 {
    value /= 1024
    u += 1
  }
  return u == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[u])
}
