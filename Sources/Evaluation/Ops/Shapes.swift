import ONNXGraph

// Shape and layout operators.
// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let shapeRules: [String: OpRule] = [:]
