"""ONNX targets: one per engine profile, the profiles written as data.

Measured facts (DESIGN.md): torch's ``torch.onnx.export`` defaults to the dynamo exporter with
external weight files, and asked for opset 9 it silently writes opset 18; so ``barracuda`` and
``sentis`` use the legacy TorchScript-based exporter (``dynamo=False``) and ``latest`` the dynamo
exporter with ``external_data=False``. The written opset is checked, and so is "one file".

Operator tables follow the engines' "supported operators" pages (Barracuda 3.0, Sentis 2.1),
trimmed to the standard ``ai.onnx`` domain and deliberately conservative.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from recap.ml.targets.base import Target, dynamic_axes, names

_COMMON = """
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
ConstantOfShape Conv ConvTranspose Cos DepthToSpace Div Dropout Elu Equal Exp Expand Flatten Floor
Gather Gemm GlobalAveragePool GlobalMaxPool Greater Identity InstanceNormalization LeakyRelu Less
Log LogSoftmax LRN LSTM MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not OneHot Or Pad
Pow PRelu RandomNormal RandomUniform Range Reciprocal ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum Relu Reshape Resize Round Selu Shape Sigmoid Sin Slice Softmax Softplus SpaceToDepth
Split Sqrt Squeeze Sub Sum Tanh Tile TopK Transpose Unsqueeze Upsample Where Xor
"""

BARRACUDA_OPS = frozenset(_COMMON.split()) | {
    "ReduceSumSquare",
    "Multinomial",
    "NonZero",
    "GreaterOrEqual",
    "LessOrEqual",
}

SENTIS_OPS = BARRACUDA_OPS | frozenset(
    """
Acos Acosh Asin Asinh Atan Atanh Bernoulli BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CastLike
Celu Compress CumSum Einsum Erf EyeLike Gelu GatherElements GatherND GlobalLpPool GridSample
GroupNormalization HardSigmoid HardSwish HardMax IsInf IsNaN LayerNormalization LpNormalization
MatMulInteger Mod Mish NonMaxSuppression ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp RoiAlign
ScatterElements ScatterND Shrink Sign Sinh Size Softsign Tan ThresholdedRelu Trilu Celu Swish
Dropout Upsample
""".split()
)


@dataclass(frozen=True)
class Profile:
    """One ONNX export profile (data, not code)."""

    name: str
    opset: int | None  # None: the newest opset the exporter knows
    dynamo: bool
    engine: str
    operators: frozenset[str] | None
    help: str


PROFILES = {
    "barracuda": Profile(
        "barracuda", 9, False, "barracuda", BARRACUDA_OPS,
        "Unity Barracuda: legacy exporter, opset 9, one file",
    ),
    "sentis": Profile(
        "sentis", 15, False, "sentis", SENTIS_OPS, "Unity Sentis: legacy exporter, opset 15"
    ),
    "latest": Profile(
        "latest", None, True, "onnxruntime", None, "dynamo exporter, newest opset, one file"
    ),
}  # fmt: skip


class UnsupportedOperators(Exception):
    """The exported graph uses operators the target engine cannot import."""


def latest_opset() -> int:
    from torch.onnx import _constants

    return int(_constants.ONNX_MAX_OPSET)


def operator_report(model_or_path, engine: str | None, supported: frozenset | None) -> dict:
    """Operator counts of an ONNX model and which of them ``supported`` lacks (None: no check)."""
    import onnx

    model = onnx.load(str(model_or_path)) if not hasattr(model_or_path, "graph") else model_or_path
    counts = Counter(n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx"))
    custom = sorted(
        {f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")}
    )
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


class OrtRunner:
    """onnxruntime on the CPU (deterministic: one thread, no graph rewrites)."""

    def __init__(self, path: Path, threads: int = 1, optimize: bool = False):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(self, inputs: dict) -> list:
        return self.session.run(None, inputs)


class OnnxTarget(Target):
    family = "onnx"
    model_file = "model.onnx"

    def __init__(self, profile: Profile):
        self.profile = profile
        self.name = profile.name
        self.engine = profile.engine
        self.operators = profile.operators
        self.help = profile.help

    def opset(self) -> int:
        return self.profile.opset if self.profile.opset is not None else latest_opset()

    def export(self, model, example: tuple, dest: Path, meta: dict) -> dict:
        import torch

        from recap.ml.bundle import ExportError

        path = Path(dest) / self.model_file
        in_names, out_names = names(meta)
        written_model = model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.profile.dynamo:
                torch.onnx.export(
                    model,
                    example,
                    str(path),
                    dynamo=True,
                    external_data=False,
                    opset_version=self.opset(),
                    input_names=in_names,
                    output_names=out_names,
                    dynamic_shapes=_dynamo_shapes(meta, example),
                    verbose=False,
                )
            else:
                # a model may name an equivalent form for this exporter (pose: deconvolutions
                # as phase convolutions); parity holds the file to the trained model
                form = getattr(model, "onnx_form", None)
                if callable(form):
                    written_model = form()
                torch.onnx.export(
                    written_model,
                    example,
                    str(path),
                    dynamo=False,
                    opset_version=self.opset(),
                    input_names=in_names,
                    output_names=out_names,
                    dynamic_axes=dynamic_axes(meta),
                    do_constant_folding=True,
                )
        written = _check(path, self.opset(), ExportError)
        exporter = "dynamo" if self.profile.dynamo else "legacy (TorchScript)"
        out = {"model": self.model_file, "opset": written, "exporter": f"torch.onnx {exporter}"}
        if written_model is not model:
            out["model_form"] = f"{type(model).__name__}.onnx_form"
        return out

    def load(self, dest: Path, meta: dict) -> OrtRunner:
        return OrtRunner(Path(dest) / self.model_file)

    def operator_report(self, dest: Path, meta: dict) -> dict:
        return operator_report(Path(dest) / self.model_file, self.engine, self.operators)


def _dynamo_shapes(meta: dict, example: tuple):
    """Dynamo's ``dynamic_shapes`` for the string dims of the inputs (None: all static)."""
    from torch.export import Dim

    shapes, any_dynamic = [], False
    dims: dict[str, object] = {}
    for spec in meta["inputs"]:
        axes = {}
        for i, d in enumerate(spec["shape"]):
            if isinstance(d, str):
                axes[i] = dims.setdefault(d, Dim.AUTO)
                any_dynamic = True
        shapes.append(axes or None)
    return tuple(shapes) if any_dynamic else None


def _check(path: Path, opset: int, error) -> int:
    """onnx's full check, the opset really written, one file; returns the opset."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    written = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:
        raise error(f"asked for opset {opset}, the exporter wrote {written}")
    external = [
        t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise error(f"weights were written to external files ({external[0]}, ...)")
    return written


PLUGINS = tuple(OnnxTarget(p) for p in PROFILES.values())
