"""An optional ONNX copy of a text package's model, run with onnxruntime on the CPU.

``package.onnx: fp32`` (or ``int8``) in ``parameters_package.yml`` adds ``onnx/model.onnx``
(or ``onnx/model_quantized.onnx``, dynamic int8 weights) beside the Hugging Face files, so
plain ``transformers`` still loads the folder. Use it with

.. code-block:: python

    from reprotrain.packaging import load_package

    package = load_package("data/06_models/reviews/package", backend="onnx")
    package.predict(["a lovely, moving film"])

or ``kedro run --pipelines=predict --params=predict.backend=onnx``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from reprotrain.packaging.onnx import quiet_export, require_onnx
from reprotrain.packaging.runtime import (
    PackageError,
    PackageVerificationError,
    TextPackage,
    compare_predictions,
)

log = logging.getLogger(__name__)

FILES = {"fp32": "onnx/model.onnx", "int8": "onnx/model_quantized.onnx"}
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "logits"
# int8 weights may flip a borderline row: verification asks this share of the sample to agree
INT8_MIN_AGREEMENT = 0.9


class _Logits(nn.Module):
    """``model(input_ids, attention_mask).logits`` as a module with two tensor inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_text_onnx(model: nn.Module, folder: Path, precision: str) -> str:
    """Export ``model`` (token ids and mask → logits) into ``folder``; return the file's name.

    Batch and sequence axes are dynamic. The model is traced with eager attention and the
    graph fused by onnxruntime's transformer optimizer (attention, embedding and skip layer
    norms, bias + GELU: one kernel each), which is what makes it faster than torch on a CPU.
    The example batch holds padding, so the traced graph keeps the attention mask.

    Args:
        model: A Hugging Face sequence classifier.
        folder: The package folder being written.
        precision: ``fp32``, or ``int8`` (dynamic quantisation of the weights; only the
            quantised file is kept).
    """
    for module in ("onnx", "onnxruntime"):
        require_onnx(module)
    copy_ = copy.deepcopy(model).cpu().float().eval()
    with contextlib.suppress(AttributeError, ValueError):
        copy_.set_attn_implementation("eager")  # the attention pattern the optimizer fuses
    module = _Logits(copy_).eval()
    length = max(4, min(16, int(getattr(model.config, "max_position_embeddings", 16))))
    ids = torch.full((2, length), 1, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    fp32 = Path(folder) / FILES["fp32"]
    fp32.parent.mkdir(parents=True, exist_ok=True)
    traced = fp32.with_name(".traced.onnx")
    with quiet_export():
        torch.onnx.export(
            module,
            (ids, mask),
            str(traced),
            dynamo=False,  # the TorchScript graph is the one onnxruntime's optimizer fuses
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in INPUTS}
            | {OUTPUT: {0: "batch"}},
            opset_version=17,
        )
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(
            str(traced),
            model_type="bert",
            num_heads=int(getattr(model.config, "num_attention_heads", 0)),
            hidden_size=int(getattr(model.config, "hidden_size", 0)),
        )
        fused.save_model_to_file(str(fp32))
        traced.unlink()
        if precision == "fp32":
            return FILES["fp32"]
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = Path(folder) / FILES["int8"]
        quantize_dynamic(
            fp32,
            quantized,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops' outputs
        )
        fp32.unlink()
    return FILES["int8"]


@dataclass(eq=False, kw_only=True)
class OnnxTextPackage(TextPackage):
    """A text package whose forward pass runs in onnxruntime (same tokenizer, same outputs):
    no torch ``model``, the ONNX graph's ``session`` replaces it."""

    session: Any = field(default=None, repr=False)

    backend: ClassVar[str] = "onnx"

    def _logits(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="np"
        )
        feed = {name: enc[name].astype(np.int64) for name in INPUTS}
        return self.session.run([OUTPUT], feed)[0].astype(np.float32, copy=False)


def session_for(path: Path) -> Any:
    """An onnxruntime CPU session on ``path`` using as many threads as torch."""
    ort = require_onnx("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_onnx_package(folder: Path, info: dict[str, Any]) -> OnnxTextPackage:
    """The package in ``folder`` with its ONNX model (``package.json`` ``onnx`` entry).

    Raises:
        PackageError: The package is not a text package, or was built without ONNX.
    """
    entry = info.get("onnx") or {}
    if info.get("family") != "transformer" or "file" not in entry:
        raise PackageError(
            f"{folder} has no ONNX text model (package.json has no 'onnx' entry): set "
            "package.onnx: fp32 or int8 in parameters_package.yml and rerun "
            "`kedro run --pipelines=package`, or predict with backend 'torch'"
        )
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise PackageError(f"{folder}: package.json names {entry['file']}, which is missing")
    return OnnxTextPackage.from_folder(folder, info, session=session_for(path))


def verify_onnx(expected: Any, package: OnnxTextPackage, sample: Any, tolerance: float) -> None:
    """Compare the ONNX package's predictions on ``sample`` with the in-memory model's.

    fp32 must match as the reloaded torch package does (labels, scores within ``tolerance``).
    int8 weights change the scores by design: labels must agree on ``INT8_MIN_AGREEMENT`` of
    the sample; the agreement and the largest score gap are logged.

    Raises:
        PackageVerificationError: The ONNX model disagrees beyond that.
    """
    actual = package.predict(sample)
    if package.info["onnx"]["precision"] == "fp32":
        compare_predictions(expected, actual, tolerance, "ONNX export")
        return
    score = "score" if "score" in expected else "prediction"
    gap = float(np.abs(expected[score].to_numpy() - actual[score].to_numpy()).max())
    if "label" not in expected:
        log.info("ONNX int8: largest prediction gap on the sample %.3g", gap)
        return
    agree = float((expected["label"].to_numpy() == actual["label"].to_numpy()).mean())
    log.info(
        "ONNX int8: labels agree on %.1f%% of the sample, largest score gap %.3g", 100 * agree, gap
    )
    if agree < INT8_MIN_AGREEMENT:
        raise PackageVerificationError(
            f"ONNX int8 export: labels agree with the in-memory model on {100 * agree:.0f}% "
            f"of the sample, below {100 * INT8_MIN_AGREEMENT:.0f}%; use package.onnx: fp32"
        )
