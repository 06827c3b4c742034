import ONNXGraph

// Linear algebra and other tensor operators.
// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let tensorRules: [String: OpRule] = [:]
