import Foundation

/// The rule files of this folder, shipped with the tool as resources so an installed
/// `onnx-rewrite` finds them. Each subfolder is one area (generic, attention, ...) and
/// must be listed in the `RewriteRules` target's resources in Package.swift.
public enum RewriteRules {
  /// Where the bundled `*.rules` files are.
  public static var folder: String? { Bundle.module.resourcePath }
}
