import ONNXGraph

// Reductions, Softmax and normalisation.
// Immutable after initialisation; OpRule holds plain closures.
nonisolated(unsafe) let reductionRules: [String: OpRule] = [:]
