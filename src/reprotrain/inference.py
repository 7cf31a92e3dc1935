"""Batched inference on a converted table, and turning raw outputs into labels and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprotrain.models import pad_token_id
from reprotrain.training.data import make_loader


@torch.inference_mode()
def predict_outputs(
    model: nn.Module, table: pd.DataFrame, batch_size: int, *, regression: bool = False
) -> np.ndarray:
    """Raw model outputs (logits, or predictions for regression) for every row, in row order.

    Batches come from ``make_loader`` (texts grouped by length to pad little); the outputs
    are put back in the table's row order.

    Args:
        model: A model from ``reprotrain.models.from_artifact`` (eval mode).
        table: A converted table (``input_ids`` or feature columns).
        batch_size: Rows per forward pass.
        regression: Whether the model predicts one float per row.

    Returns:
        A float32 array of shape ``(rows, outputs)``.
    """
    model = model.eval()
    loader = make_loader(
        table, batch_size, train=False, pad_token_id=pad_token_id(model), regression=regression
    )
    order = np.concatenate([np.asarray(b, dtype=np.int64) for b in loader.batch_sampler] or [[]])
    chunks = []
    for batch in loader:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = model(inputs["features"]) if "features" in inputs else model(**inputs).logits
        chunks.append(out.float().cpu().numpy())
    width = chunks[0].shape[1] if chunks else 1
    outputs = np.empty((len(table), width), dtype=np.float32)
    if chunks:
        outputs[order] = np.concatenate(chunks)
    return outputs


def to_predictions(outputs: np.ndarray, labels: list[str] | None) -> pd.DataFrame:
    """Model outputs → ``label`` and ``score`` (softmax probability) or ``prediction``.

    Args:
        outputs: ``(rows, classes)`` logits, or ``(rows, 1)`` regression outputs.
        labels: Class names in output order; ``None`` for regression.

    Returns:
        Classification: ``label`` (name), ``label_id`` and ``score``. Regression:
        ``prediction``.
    """
    if labels is None:
        return pd.DataFrame({"prediction": outputs[:, 0].astype(np.float64)})
    probs = torch.softmax(torch.as_tensor(outputs, dtype=torch.float32), dim=-1).numpy()
    ids = probs.argmax(axis=1)
    return pd.DataFrame(
        {
            "label": np.asarray(labels, dtype=object)[ids],
            "label_id": ids.astype(np.int64),
            "score": probs[np.arange(len(ids)), ids].astype(np.float64),
        }
    )
