import ONNXGraph

/// What each default-domain operator's schema looked like in every opset, from the
/// onnx 1.23 schema registry (`onnx.defs.get_all_schemas_with_history()`), so that
/// `legalize-opset` knows which ops differ between two opsets without onnx at hand.
///
/// Versions before 12 are listed by number only; from 12 on each entry says what the new
/// version added over the previous one: element types, attributes (with the default that
/// keeps the old behaviour when unset), or a changed input/output list (`signature`).
/// Regenerate with the script at the end of this file if onnx adds opsets.
enum OpsetHistory {
  struct Version {
    let version: Int
    /// Element types (ONNX names) this version accepts that the previous one did not.
    let addedTypes: [String]
    /// Attributes this version added, with their defaults (`.none`: no default).
    let addedAttributes: [String: AttributeDefault]
    /// Inputs or outputs changed (or an attribute went away): no generic check applies.
    let signatureChanged: Bool
    /// Nothing in the signature or the tensor types changed: the meaning did (Pad 19's
    /// "wrap", Mod 28's float modulo), or only non-tensor types (see `typeOnlyOpaque`).
    let opaque: Bool

    init(
      _ version: Int, types: [String] = [], attributes: [String: AttributeDefault] = [:], signature: Bool = false,
      opaque: Bool = false
    ) {
      self.version = version
      self.addedTypes = types
      self.addedAttributes = attributes
      self.signatureChanged = signature
      self.opaque = opaque
    }
  }

  enum AttributeDefault: Equatable {
    case none
    case int(Int64)
    case float(Float)
    case string(String)
  }

  /// The schema version of `op` in effect at `opset` (nil: the op does not exist there).
  static func sinceVersion(_ op: String, at opset: Int) -> Int? {
    versions[op]?.last(where: { $0.version <= opset })?.version
  }

  /// The versions of `op` introduced after `lower` and up to `upper`, oldest first.
  static func changes(_ op: String, after lower: Int, upTo upper: Int) -> [Version] {
    (versions[op] ?? []).filter { $0.version > lower && $0.version <= upper }
  }

  static func isKnown(_ op: String) -> Bool { versions[op] != nil }

  /// Opaque versions that only added sequence/optional types or split a type constraint
  /// (checked by reading the schemas): tensor programs mean the same before them.
  static let typeOnlyOpaque: Set<String> = [
    "BatchNormalization 15", "Bernoulli 22", "Identity 14", "Identity 16", "If 13", "Loop 13",
    "NegativeLogLikelihoodLoss 13", "Pow 15",
  ]

  /// The IR version each opset came with (onnx/helper.py VERSION_TABLE).
  static func irVersion(forOpset opset: Int) -> Int64 {
    switch opset {
    case ...8: 3
    case 9: 4
    case 10: 5
    case 11: 6
    case 12...14: 7
    case 15...18: 8
    case 19...20: 9
    case 21...22: 10
    case 23: 11
    case 24: 12
    case 25...27: 13
    default: 14
    }
  }

  static let versions: [String: [Version]] = [
    "Abs": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "Acos": [.init(7), .init(22, types: ["bfloat16"])],
    "Acosh": [.init(9), .init(22, types: ["bfloat16"])],
    "Add": [.init(1), .init(6), .init(7), .init(13, types: ["bfloat16"]), .init(14, types: ["int16", "int8", "uint16", "uint8"])],
    "AffineGrid": [.init(20)],
    "And": [.init(1), .init(7)],
    "ArgMax": [.init(1), .init(11), .init(12, attributes: ["select_last_index": .int(0)]), .init(13, types: ["bfloat16"])],
    "ArgMin": [.init(1), .init(11), .init(12, attributes: ["select_last_index": .int(0)]), .init(13, types: ["bfloat16"])],
    "Asin": [.init(7), .init(22, types: ["bfloat16"])],
    "Asinh": [.init(9), .init(22, types: ["bfloat16"])],
    "Atan": [.init(7), .init(22, types: ["bfloat16"])],
    "Atanh": [.init(9), .init(22, types: ["bfloat16"])],
    "Attention": [.init(23), .init(24, signature: true), .init(25, attributes: ["left_window_size": .int(-1), "right_window_size": .int(-1)])],
    "AveragePool": [.init(1), .init(7), .init(10), .init(11), .init(19, attributes: ["dilations": .none]), .init(22, types: ["bfloat16"])],
    "BatchNormalization": [.init(1), .init(6), .init(7), .init(9), .init(14, types: ["bfloat16"], attributes: ["training_mode": .int(0)], signature: true), .init(15, opaque: true)],
    "Bernoulli": [.init(15), .init(22, opaque: true)],
    "BitCast": [.init(26)],
    "BitShift": [.init(11), .init(28, types: ["int16", "int32", "int64", "int8"])],
    "BitwiseAnd": [.init(18)],
    "BitwiseNot": [.init(18)],
    "BitwiseOr": [.init(18)],
    "BitwiseXor": [.init(18)],
    "BlackmanWindow": [.init(17)],
    "Cast": [.init(1), .init(6), .init(9), .init(13, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"], attributes: ["saturate": .int(1)]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"], attributes: ["round_mode": .string("up")]), .init(25, types: ["int2", "uint2"]), .init(28, types: ["float6e2m3", "float6e3m2"])],
    "CastLike": [.init(15), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"], attributes: ["saturate": .int(1)]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"], attributes: ["round_mode": .string("up")]), .init(25, types: ["int2", "uint2"])],
    "CausalConvWithState": [.init(27)],
    "Ceil": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "Celu": [.init(12), .init(28, types: ["bfloat16", "double", "float16"])],
    "CenterCropPad": [.init(18)],
    "Clip": [.init(1), .init(6), .init(11), .init(12, types: ["int16", "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8"]), .init(13, types: ["bfloat16"])],
    "Col2Im": [.init(18)],
    "Compress": [.init(9), .init(11), .init(28, types: ["bfloat16"])],
    "Concat": [.init(1), .init(4), .init(11), .init(13, types: ["bfloat16"])],
    "ConcatFromSequence": [.init(11)],
    "Constant": [.init(1), .init(9), .init(11), .init(12, attributes: ["value_float": .none, "value_floats": .none, "value_int": .none, "value_ints": .none, "value_string": .none, "value_strings": .none]), .init(13, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "ConstantOfShape": [.init(9), .init(20, types: ["bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Conv": [.init(1), .init(11), .init(22, types: ["bfloat16"])],
    "ConvInteger": [.init(10)],
    "ConvTranspose": [.init(1), .init(11), .init(22, types: ["bfloat16"])],
    "Cos": [.init(7), .init(22, types: ["bfloat16"])],
    "Cosh": [.init(9), .init(22, types: ["bfloat16"])],
    "CumProd": [.init(26)],
    "CumSum": [.init(11), .init(14, types: ["bfloat16", "float16"])],
    "DFT": [.init(17), .init(20, signature: true)],
    "DeformConv": [.init(19), .init(22, types: ["bfloat16"])],
    "DepthToSpace": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(28, opaque: true)],
    "DequantizeLinear": [.init(10), .init(13, attributes: ["axis": .int(1)]), .init(19, types: ["bfloat16", "float", "float16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int16", "int4", "uint16", "uint4"], attributes: ["block_size": .int(0)]), .init(23, types: ["float4e2m1"], attributes: ["output_dtype": .int(0)]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"]), .init(28, types: ["float6e2m3", "float6e3m2"])],
    "Det": [.init(11), .init(22, types: ["bfloat16"])],
    "Div": [.init(1), .init(6), .init(7), .init(13, types: ["bfloat16"]), .init(14, types: ["int16", "int8", "uint16", "uint8"])],
    "Dropout": [.init(1), .init(6), .init(7), .init(10), .init(12, attributes: ["seed": .none], signature: true), .init(13, types: ["bfloat16"]), .init(22, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"])],
    "DynamicQuantizeLinear": [.init(11)],
    "Einsum": [.init(12), .init(28, types: ["bfloat16"])],
    "Elu": [.init(1), .init(6), .init(22, types: ["bfloat16"])],
    "Equal": [.init(1), .init(7), .init(11), .init(13, types: ["bfloat16"]), .init(19, types: ["string"])],
    "Erf": [.init(9), .init(13, types: ["bfloat16"])],
    "Exp": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "Expand": [.init(8), .init(13, types: ["bfloat16"])],
    "EyeLike": [.init(9), .init(22, types: ["bfloat16"])],
    "Flatten": [.init(1), .init(9), .init(11), .init(13, types: ["bfloat16"]), .init(21, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Floor": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "GRU": [.init(1), .init(3), .init(7), .init(14, attributes: ["layout": .int(0)]), .init(22, types: ["bfloat16"])],
    "Gather": [.init(1), .init(11), .init(13, types: ["bfloat16"])],
    "GatherElements": [.init(11), .init(13, types: ["bfloat16"])],
    "GatherND": [.init(11), .init(12, attributes: ["batch_dims": .int(0)]), .init(13, types: ["bfloat16"])],
    "Gelu": [.init(20)],
    "Gemm": [.init(1), .init(6), .init(7), .init(9), .init(11), .init(13, types: ["bfloat16"])],
    "GlobalAveragePool": [.init(1), .init(22, types: ["bfloat16"])],
    "GlobalLpPool": [.init(1), .init(2), .init(22, types: ["bfloat16"])],
    "GlobalMaxPool": [.init(1), .init(22, types: ["bfloat16"])],
    "Greater": [.init(1), .init(7), .init(9), .init(13, types: ["bfloat16"])],
    "GreaterOrEqual": [.init(12), .init(16, types: ["bfloat16"])],
    "GridSample": [.init(16), .init(20, opaque: true), .init(22, types: ["bfloat16"])],
    "GroupNormalization": [.init(21)],
    "HammingWindow": [.init(17)],
    "HannWindow": [.init(17)],
    "HardSigmoid": [.init(1), .init(6), .init(22, types: ["bfloat16"])],
    "HardSwish": [.init(14), .init(22, types: ["bfloat16"])],
    "Hardmax": [.init(1), .init(11), .init(13, types: ["bfloat16"])],
    "Identity": [.init(1), .init(13, types: ["bfloat16"]), .init(14, opaque: true), .init(16, opaque: true), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "If": [.init(1), .init(11), .init(13, opaque: true), .init(16, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "ImageDecoder": [.init(20)],
    "InstanceNormalization": [.init(1), .init(6), .init(22, types: ["bfloat16"])],
    "IsInf": [.init(10), .init(20, types: ["bfloat16", "float16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"])],
    "IsNaN": [.init(9), .init(13, types: ["bfloat16"]), .init(20, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"])],
    "LRN": [.init(1), .init(13, types: ["bfloat16"])],
    "LSTM": [.init(1), .init(7), .init(14, attributes: ["layout": .int(0)]), .init(22, types: ["bfloat16"])],
    "LayerNormalization": [.init(17)],
    "LeakyRelu": [.init(1), .init(6), .init(16, types: ["bfloat16"])],
    "Less": [.init(1), .init(7), .init(9), .init(13, types: ["bfloat16"])],
    "LessOrEqual": [.init(12), .init(16, types: ["bfloat16"])],
    "LinearAttention": [.init(27)],
    "Log": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "LogSoftmax": [.init(1), .init(11), .init(13, types: ["bfloat16"])],
    "Loop": [.init(1), .init(11), .init(13, opaque: true), .init(16, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "LpNormalization": [.init(1), .init(22, types: ["bfloat16"])],
    "LpPool": [.init(1), .init(2), .init(11), .init(18, attributes: ["ceil_mode": .int(0), "dilations": .none]), .init(22, types: ["bfloat16"])],
    "MatMul": [.init(1), .init(9), .init(13, types: ["bfloat16"])],
    "MatMulInteger": [.init(10)],
    "Max": [.init(1), .init(6), .init(8), .init(12, types: ["int16", "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8"]), .init(13, types: ["bfloat16"])],
    "MaxPool": [.init(1), .init(8), .init(10), .init(11), .init(12, types: ["int8", "uint8"]), .init(22, types: ["bfloat16"])],
    "MaxRoiPool": [.init(1), .init(22, types: ["bfloat16"])],
    "MaxUnpool": [.init(9), .init(11), .init(22, types: ["bfloat16"])],
    "Mean": [.init(1), .init(6), .init(8), .init(13, types: ["bfloat16"])],
    "MeanVarianceNormalization": [.init(9), .init(13, types: ["bfloat16"])],
    "MelWeightMatrix": [.init(17)],
    "Min": [.init(1), .init(6), .init(8), .init(12, types: ["int16", "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8"]), .init(13, types: ["bfloat16"])],
    "Mish": [.init(18), .init(22, types: ["bfloat16"])],
    "Mod": [.init(10), .init(13, types: ["bfloat16"]), .init(28, opaque: true)],
    "Mul": [.init(1), .init(6), .init(7), .init(13, types: ["bfloat16"]), .init(14, types: ["int16", "int8", "uint16", "uint8"])],
    "Multinomial": [.init(7), .init(22, types: ["bfloat16"])],
    "Neg": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "NegativeLogLikelihoodLoss": [.init(12), .init(13, opaque: true), .init(22, types: ["bfloat16"])],
    "NonMaxSuppression": [.init(10), .init(11)],
    "NonZero": [.init(9), .init(13, types: ["bfloat16"])],
    "Not": [.init(1)],
    "OneHot": [.init(9), .init(11), .init(28, types: ["bfloat16"])],
    "Optional": [.init(15), .init(28, types: ["bfloat16", "float4e2m1", "float6e2m3", "float6e3m2", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float8e8m0", "int2", "int4", "uint2", "uint4"])],
    "OptionalGetElement": [.init(15), .init(18, opaque: true), .init(28, types: ["bfloat16", "float4e2m1", "float6e2m3", "float6e3m2", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float8e8m0", "int2", "int4", "uint2", "uint4"])],
    "OptionalHasElement": [.init(15), .init(18, types: ["complex128", "complex64", "double", "float", "float16", "int16", "int32", "int64", "int8", "string", "uint16", "uint32", "uint64", "uint8"], signature: true), .init(28, types: ["bfloat16", "float4e2m1", "float6e2m3", "float6e3m2", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float8e8m0", "int2", "int4", "uint2", "uint4"])],
    "Or": [.init(1), .init(7)],
    "PRelu": [.init(1), .init(6), .init(7), .init(9), .init(16, types: ["bfloat16"])],
    "Pad": [.init(1), .init(2), .init(11), .init(13, types: ["bfloat16", "bool", "complex128", "complex64", "string"]), .init(18, signature: true), .init(19, opaque: true), .init(21, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Pow": [.init(1), .init(7), .init(12, types: ["int16", "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8"]), .init(13, types: ["bfloat16"]), .init(15, opaque: true)],
    "QLinearConv": [.init(10)],
    "QLinearMatMul": [.init(10), .init(21, types: ["bfloat16", "float", "float16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"])],
    "QuantizeLinear": [.init(10), .init(13, attributes: ["axis": .int(1)]), .init(19, types: ["bfloat16", "float16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"], attributes: ["saturate": .int(1)]), .init(21, types: ["int16", "int4", "uint16", "uint4"], attributes: ["block_size": .int(0), "output_dtype": .int(0)]), .init(23, types: ["float4e2m1"], attributes: ["precision": .int(0)]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"]), .init(28, types: ["float6e2m3", "float6e3m2"])],
    "RMSNormalization": [.init(23)],
    "RNN": [.init(1), .init(7), .init(14, attributes: ["layout": .int(0)]), .init(22, types: ["bfloat16"])],
    "RandomNormal": [.init(1), .init(22, types: ["bfloat16"])],
    "RandomNormalLike": [.init(1), .init(22, types: ["bfloat16"])],
    "RandomUniform": [.init(1), .init(22, types: ["bfloat16"])],
    "RandomUniformLike": [.init(1), .init(22, types: ["bfloat16"])],
    "Range": [.init(11), .init(27, types: ["bfloat16", "float16"], attributes: ["stash_type": .int(1)])],
    "Reciprocal": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "ReduceL1": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "ReduceL2": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "ReduceLogSum": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true), .init(28)],
    "ReduceLogSumExp": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true), .init(28)],
    "ReduceMax": [.init(1), .init(11), .init(12, types: ["int8", "uint8"]), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true), .init(20, types: ["bool"])],
    "ReduceMean": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "ReduceMin": [.init(1), .init(11), .init(12, types: ["int8", "uint8"]), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true), .init(20, types: ["bool"])],
    "ReduceProd": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "ReduceSum": [.init(1), .init(11), .init(13, types: ["bfloat16"], attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "ReduceSumSquare": [.init(1), .init(11), .init(13, types: ["bfloat16"]), .init(18, attributes: ["noop_with_empty_axes": .int(0)], signature: true)],
    "RegexFullMatch": [.init(20)],
    "Relu": [.init(1), .init(6), .init(13, types: ["bfloat16"]), .init(14, types: ["int16", "int32", "int64", "int8"])],
    "Reshape": [.init(1), .init(5), .init(13, types: ["bfloat16"]), .init(14, attributes: ["allowzero": .int(0)]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Resize": [.init(10), .init(11), .init(13, types: ["bfloat16"], signature: true), .init(18, attributes: ["antialias": .int(0), "axes": .none, "keep_aspect_ratio_policy": .string("stretch")]), .init(19, opaque: true)],
    "ReverseSequence": [.init(10), .init(28, types: ["bfloat16"])],
    "RoiAlign": [.init(10), .init(16, attributes: ["coordinate_transformation_mode": .string("half_pixel")]), .init(22, types: ["bfloat16"])],
    "RotaryEmbedding": [.init(23)],
    "Round": [.init(11), .init(22, types: ["bfloat16"])],
    "STFT": [.init(17)],
    "Scan": [.init(8), .init(9), .init(11), .init(16, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Scatter": [.init(9)],
    "ScatterElements": [.init(11), .init(13, types: ["bfloat16"]), .init(16, attributes: ["reduction": .string("none")]), .init(18, opaque: true)],
    "ScatterND": [.init(11), .init(13, types: ["bfloat16"]), .init(16, attributes: ["reduction": .string("none")]), .init(18, opaque: true)],
    "Selu": [.init(1), .init(6), .init(22, types: ["bfloat16"])],
    "SequenceAt": [.init(11)],
    "SequenceConstruct": [.init(11)],
    "SequenceEmpty": [.init(11)],
    "SequenceErase": [.init(11)],
    "SequenceInsert": [.init(11)],
    "SequenceLength": [.init(11)],
    "SequenceMap": [.init(17)],
    "Shape": [.init(1), .init(13, types: ["bfloat16"]), .init(15, attributes: ["end": .none, "start": .int(0)]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Shrink": [.init(9)],
    "Sigmoid": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "Sign": [.init(9), .init(13, types: ["bfloat16"])],
    "Sin": [.init(7), .init(22, types: ["bfloat16"])],
    "Sinh": [.init(9), .init(22, types: ["bfloat16"])],
    "Size": [.init(1), .init(13, types: ["bfloat16"]), .init(19, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]), .init(21, types: ["int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Slice": [.init(1), .init(10), .init(11), .init(13, types: ["bfloat16"])],
    "Softmax": [.init(1), .init(11), .init(13, types: ["bfloat16"])],
    "SoftmaxCrossEntropyLoss": [.init(12), .init(13, types: ["bfloat16"])],
    "Softplus": [.init(1), .init(22, types: ["bfloat16"])],
    "Softsign": [.init(1), .init(22, types: ["bfloat16"])],
    "SpaceToDepth": [.init(1), .init(13, types: ["bfloat16"]), .init(28, attributes: ["mode": .string("DCR")])],
    "Split": [.init(1), .init(2), .init(11), .init(13, types: ["bfloat16"], signature: true), .init(18, attributes: ["num_outputs": .none])],
    "SplitToSequence": [.init(11), .init(24, types: ["bfloat16"])],
    "Sqrt": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "Squeeze": [.init(1), .init(11), .init(13, types: ["bfloat16"], signature: true), .init(21, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "StringConcat": [.init(20)],
    "StringNormalizer": [.init(10)],
    "StringSplit": [.init(20)],
    "Sub": [.init(1), .init(6), .init(7), .init(13, types: ["bfloat16"]), .init(14, types: ["int16", "int8", "uint16", "uint8"])],
    "Sum": [.init(1), .init(6), .init(8), .init(13, types: ["bfloat16"])],
    "SwiGLU": [.init(28)],
    "Swish": [.init(24)],
    "Tan": [.init(7), .init(22, types: ["bfloat16"])],
    "Tanh": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "TensorScatter": [.init(24)],
    "TfIdfVectorizer": [.init(9)],
    "ThresholdedRelu": [.init(10), .init(22, types: ["bfloat16"])],
    "Tile": [.init(1), .init(6), .init(13, types: ["bfloat16"])],
    "TopK": [.init(1), .init(10), .init(11), .init(24, types: ["bfloat16"])],
    "Transpose": [.init(1), .init(13, types: ["bfloat16"]), .init(21, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Trilu": [.init(14)],
    "Unique": [.init(11), .init(28, types: ["bfloat16"])],
    "Unsqueeze": [.init(1), .init(11), .init(13, types: ["bfloat16"], signature: true), .init(21, types: ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "int4", "uint4"]), .init(23, types: ["float4e2m1"]), .init(24, types: ["float8e8m0"]), .init(25, types: ["int2", "uint2"])],
    "Upsample": [.init(1), .init(7), .init(9)],
    "Where": [.init(9), .init(16, types: ["bfloat16"])],
    "Xor": [.init(1), .init(7)],
  ]
}

// Generator (run with the onnx the table should reflect; paste its output into `versions`):
// import onnx
// from onnx import defs
// import collections
// hist = collections.defaultdict(list)
// for s in defs.get_all_schemas_with_history():
//     if s.domain == '' and not s.deprecated: hist[s.name].append(s)
// def types(s):
//     out=set()
//     for tc in s.type_constraints:
//         for t in tc.allowed_type_strs:
//             if t.startswith('tensor('): out.add(t[7:-1])
//     return out
// def io(s): return ([(i.name, str(i.option)) for i in s.inputs], [(o.name, str(o.option)) for o in s.outputs])
// def default(a):
//     d = a.default_value
//     if d is None or d.type == 0: return '.none'
//     if d.type == onnx.AttributeProto.INT: return f'.int({d.i})'
//     if d.type == onnx.AttributeProto.FLOAT: return f'.float({d.f!r})'
//     if d.type == onnx.AttributeProto.STRING: return f'.string("{d.s.decode()}")'
//     return '.none'
// lines=[]
// for op in sorted(hist):
//     vs = sorted(hist[op], key=lambda s: s.since_version)
//     items=[]
//     prev=None
//     for cur in vs:
//         if prev is None or cur.since_version < 12:
//             items.append(f'.init({cur.since_version})')
//         else:
//             added = sorted(types(cur)-types(prev))
//             attrs = {k: default(a) for k,a in cur.attributes.items() if k not in prev.attributes}
//             other = io(cur)!=io(prev) or any(k not in cur.attributes for k in prev.attributes)
//             parts=[str(cur.since_version)]
//             if added: parts.append('types: [' + ', '.join(f'"{t}"' for t in added) + ']')
//             if attrs: parts.append('attributes: [' + ', '.join(f'"{k}": {v}' for k,v in sorted(attrs.items())) + ']')
//             if other: parts.append('signature: true')
//             if not (added or attrs or other or types(cur) != types(prev)): parts.append('opaque: true')
//             items.append('.init(' + ', '.join(parts) + ')')
//         prev=cur
//     lines.append(f'    "{op}": [{", ".join(items)}],')
// print('\n'.join(lines))
