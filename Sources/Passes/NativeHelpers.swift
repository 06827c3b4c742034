import Rewrite

/// Rule-language helpers written in Swift for the bundled rule files (the language cannot
/// say everything: which ScatterND indices form one block, say). Registered once, before
/// any rule file is parsed, because the parser checks helper names.
enum NativeHelpers {
  static let registered: Void = {
    // One line per helper family; each lives beside the pass that needs it.
    LegalizeHelpers.register()
    LinearHelpers.register()
  }()
}
