"""ONNX export of an MLP (raw features → logits, dynamic batch) and running it with onnxruntime."""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprotrain.models.mlp import MLP
from reprotrain.packaging.format import ONNX_INPUT, ONNX_OUTPUT
from reprotrain.packaging.runtime import PackageError


class OnnxMissingError(PackageError):
    """The optional ONNX libraries (the ``onnx`` extra) are not installed."""


def require_onnx(module: str) -> Any:
    """Import ``module`` (onnx, onnxscript or onnxruntime), or say which extra provides it.

    Raises:
        OnnxMissingError: The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OnnxMissingError(
            f"ONNX models (an MLP package's model.onnx, package.onnx for text) need {module}: "
            "install the onnx extra (`pip install 'reprotrain[onnx]'`, or `make setup`)"
        ) from None


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """No warnings and no log records below ERROR while exporting: the exporters and the
    optimizer give advice (pre-process before quantising, embedding table sizes) that is not
    the user's to act on."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def onnx_outputs(path: str | Path, features: np.ndarray) -> np.ndarray:
    """Run an exported MLP with onnxruntime alone."""
    ort = require_onnx("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([ONNX_OUTPUT], {ONNX_INPUT: features.astype(np.float32)})[0]


def export_onnx(model: MLP, path: str | Path) -> None:
    """Export ``model`` (features → logits) to a single ONNX file with a dynamic batch axis."""
    require_onnx("onnxscript")  # torch's exporter needs it (and onnx)
    module = copy.deepcopy(model).eval()
    example = torch.zeros(2, len(model.spec["feature_names"]))
    with quiet_export():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    # The exporter records each node's Python stack trace, with absolute source paths: the
    # same model exported from another clone would give other bytes. Debug data only.
    onnx = require_onnx("onnx")
    proto = onnx.load(str(path))
    for node in proto.graph.node:
        del node.metadata_props[:]
    onnx.save(proto, str(path))
