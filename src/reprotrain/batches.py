"""Converted tables → tensor batches: rows, per-batch padding, and the longest-first order.

Shared by training (``reprotrain.training.data``), evaluation (``reprotrain.inference``) and
the package's predictors, so that all of them batch and pad a table the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from reprotrain.features import feature_columns


def sorted_batches(lengths: np.ndarray | list[int], batch_size: int) -> list[np.ndarray]:
    """Row positions in batches of ``batch_size``, longest rows first (for inference).

    Ties keep row order; a batch of similar lengths pads little.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class TableDataset(Dataset):
    """Rows of a converted table: token ids (text) or a float feature vector (tabular)."""

    def __init__(self, table: pd.DataFrame, regression: bool = False) -> None:
        self.is_text = "input_ids" in table.columns
        if self.is_text:
            self.inputs = [np.asarray(x, dtype=np.int64) for x in table["input_ids"]]
            self.lengths = np.fromiter(map(len, self.inputs), dtype=np.int64, count=len(table))
        else:
            names = feature_columns(table)
            # copy=True: pandas may hand out a read-only view, which torch warns about
            self.inputs = torch.from_numpy(table[names].to_numpy(dtype=np.float32, copy=True))
            self.lengths = np.ones(len(table), dtype=np.int64)
        labels = table["label"].to_numpy() if "label" in table.columns else np.zeros(len(table))
        self.labels = torch.as_tensor(labels.astype(np.float32 if regression else np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[object, torch.Tensor]:
        return self.inputs[i], self.labels[i]


class Collator:
    """Stack a batch; pad token ids to the longest sequence in the batch (not globally)."""

    def __init__(self, pad_token_id: int = 0) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[tuple[object, torch.Tensor]]) -> dict[str, torch.Tensor]:
        labels = torch.stack([y for _, y in items])
        if isinstance(items[0][0], torch.Tensor):
            return {"features": torch.stack([x for x, _ in items]), "labels": labels}
        width = max(len(x) for x, _ in items)
        ids = np.full((len(items), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(items), width), dtype=np.int64)
        for row, (x, _) in enumerate(items):
            ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": labels,
        }
