"""Which ONNX operators each target engine imports, and a report of a model against one.

The lists follow the engines' "supported operators" pages (Barracuda 3.0 "SupportedOperators",
Sentis 2.1 "Supported ONNX operators"), trimmed to the standard ``ai.onnx`` domain. They are
deliberately conservative: an operator missing here fails the export, which is cheaper than
finding out in the Unity editor.
"""

from __future__ import annotations

from collections import Counter

_COMMON = """
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
ConstantOfShape Conv ConvTranspose Cos DepthToSpace Div Dropout Elu Equal Exp Expand Flatten Floor
Gather Gemm GlobalAveragePool GlobalMaxPool Greater Identity InstanceNormalization LeakyRelu Less
Log LogSoftmax LRN LSTM MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not OneHot Or Pad
Pow PRelu RandomNormal RandomUniform Range Reciprocal ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum Relu Reshape Resize Round Selu Shape Sigmoid Sin Slice Softmax Softplus SpaceToDepth
Split Sqrt Squeeze Sub Sum Tanh Tile TopK Transpose Unsqueeze Upsample Where Xor
"""

BARRACUDA = frozenset(_COMMON.split()) | {
    "ReduceSumSquare",
    "Multinomial",
    "NonZero",
    "GreaterOrEqual",
    "LessOrEqual",
}

SENTIS = BARRACUDA | frozenset(
    """
Acos Acosh Asin Asinh Atan Atanh Bernoulli BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CastLike
Celu Compress CumSum Einsum Erf EyeLike Gelu GatherElements GatherND GlobalLpPool GridSample
GroupNormalization HardSigmoid HardSwish HardMax IsInf IsNaN LayerNormalization LpNormalization
MatMulInteger Mod Mish NonMaxSuppression ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp RoiAlign
ScatterElements ScatterND Shrink Sign Sinh Size Softsign Tan ThresholdedRelu Trilu Celu Swish
Dropout Upsample
""".split()
)

ENGINES = {"barracuda": BARRACUDA, "sentis": SENTIS}


class UnsupportedOperators(Exception):
    """The exported graph uses operators the target engine cannot import."""


def operator_report(model_or_path, engine: str | None) -> dict:
    """Operator counts of an ONNX model and which of them ``engine`` lacks (None: no check)."""
    import onnx

    model = onnx.load(str(model_or_path)) if not hasattr(model_or_path, "graph") else model_or_path
    counts = Counter(n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx"))
    custom = sorted(
        {f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")}
    )
    supported = ENGINES.get(engine) if engine else None
    unsupported = sorted(op for op in counts if supported is not None and op not in supported)
    if supported is not None:
        unsupported += custom  # an engine never imports custom-domain operators
    return {
        "engine": engine,
        "operators": dict(sorted(counts.items())),
        "custom_domain": custom,
        "unsupported": unsupported,
        "ok": not unsupported,
    }
