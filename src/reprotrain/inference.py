"""Batched inference on a converted table, and turning raw outputs into labels and scores."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprotrain.batches import Collator, TableDataset, sorted_batches
from reprotrain.models import pad_token_id

log = logging.getLogger(__name__)

# Seconds between two progress lines, as for training (reprotrain.training.progress.EVERY_S,
# not imported here: that module imports Lightning, which batch prediction does not need).
EVERY_S = 30.0
BATCHES_PER_CHUNK = 8  # forward passes between two looks at the clock
CHARS_PER_TOKEN = 4  # for the time left: a text costs its characters, up to its truncation


@torch.inference_mode()
def predict_outputs(
    model: nn.Module, table: pd.DataFrame, batch_size: int, *, regression: bool = False
) -> np.ndarray:
    """Raw model outputs (logits, or predictions for regression) for every row, in row order.

    Texts go longest first (``sorted_batches``), padded per batch as in training.

    Args:
        model: A model from ``reprotrain.models.from_artifact`` (eval mode).
        table: A converted table (``input_ids`` or feature columns).
        batch_size: Rows per forward pass.
        regression: Whether the model predicts one float per row.

    Returns:
        A float32 array of shape ``(rows, outputs)``.
    """
    model = model.eval()
    dataset = TableDataset(table, regression=regression)
    collate = Collator(pad_token_id(model))
    outputs = None
    for idx in sorted_batches(dataset.lengths, batch_size):
        batch = collate([dataset[i] for i in idx])
        out = model(**{k: v for k, v in batch.items() if k != "labels"})
        out = getattr(out, "logits", out)
        if outputs is None:
            outputs = np.empty((len(table), out.shape[1]), dtype=np.float32)
        outputs[idx] = out.float().cpu().numpy()
    return outputs if outputs is not None else np.empty((len(table), 1), dtype=np.float32)


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


class RowProgress:
    """Logs ``rows done of total, rows/s`` and the time left, at most every ``every_s`` s.

    The time left comes from ``cost``, each row's share of the work (e.g. its length): a
    table predicted longest texts first speeds up as it goes, so counting rows would
    overestimate it.
    """

    def __init__(self, cost: np.ndarray, what: str, every_s: float = EVERY_S) -> None:
        self.cost, self.what, self.every_s = np.asarray(cost, dtype=np.float64), what, every_s
        self.total_cost = float(self.cost.sum())
        self.rows = 0
        self.done_cost = 0.0
        self._start = self._last = time.monotonic()

    def update(self, rows: np.ndarray) -> None:
        """Count ``rows`` (their positions) as done; log a line when ``every_s`` has passed."""
        self.rows += len(rows)
        self.done_cost += float(self.cost[rows].sum())
        now = time.monotonic()
        if now - self._last < self.every_s or self.rows == len(self.cost):
            return
        self._last = now
        elapsed = now - self._start
        share = self.done_cost / self.total_cost  # > 0: every row costs at least 1
        left = elapsed * (1 - share) / share
        log.info(
            "%s: %d of %d rows (%.0f%%), %.1f rows/s, about %s left",
            self.what,
            self.rows,
            len(self.cost),
            100 * self.rows / len(self.cost),
            self.rows / elapsed if elapsed else 0.0,
            datetime.timedelta(seconds=round(left)),
        )


def predict_rows(
    package: Any,
    rows: pd.DataFrame,
    *,
    batch_size: int,
    text_column: str | None = None,
    every_s: float = EVERY_S,
    what: str = "predict",
) -> pd.DataFrame:
    """``package.predict(rows)``, logging progress lines for a long text table.

    A text package pads little by sorting texts longest first; the rows go to it in chunks of
    whole batches cut from that same order, so every forward pass sees exactly the batch one
    ``package.predict`` call would: the predictions are identical. Tabular packages (an MLP,
    fast) predict in one call.

    Args:
        package: A loaded package (``reprotrain.packaging.TextPackage`` or ``TabularPackage``).
        rows: The table to predict.
        batch_size: Rows per forward pass.
        text_column: The text column (text packages); ``None``: the package's.
        every_s: Seconds between two progress lines.
        what: What the progress lines call the work (``predict``).

    Returns:
        As ``package.predict``: ``label``, ``label_id``, ``score`` or ``prediction``.
    """
    if not hasattr(package, "texts"):
        return package.predict(rows, batch_size=batch_size)
    texts = package.texts(rows, text_column)
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    outputs = np.empty((len(texts), package.width), dtype=np.float32)
    cost = np.minimum(lengths, CHARS_PER_TOKEN * package.max_length) + 1
    progress = RowProgress(cost, what, every_s)
    for chunk in sorted_batches(lengths, batch_size * BATCHES_PER_CHUNK):
        outputs[chunk] = package.outputs(
            [texts[i] for i in chunk], batch_size=batch_size, text_column=text_column
        )
        progress.update(chunk)
    return to_predictions(outputs, package.labels)
