"""A multi-layer perceptron for tabular features, with train-split scaling built in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprotrain.features import feature_columns
from reprotrain.params import FitParams, TaskParams

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class MLP(nn.Module):
    """Standardise (mean-impute NaN), then Linear → activation → dropout blocks, then a head.

    The scaling statistics are buffers fitted on the training split, so they travel with the
    weights and the exported model needs no separate preprocessing step. For regression the
    head predicts the standardised target and the output is mapped back to the target's units
    (``target_mean``/``target_std``, also fitted on the training split; 0 and 1 otherwise).
    """

    def __init__(
        self,
        feature_names: list[str],
        out_features: int,
        hidden_sizes: list[int],
        activation: str = "relu",
        dropout: float = 0.0,
        init: str = "kaiming",
        bins: int = 0,
        labels: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "feature_names": list(feature_names),
            "out_features": out_features,
            "hidden_sizes": list(hidden_sizes),
            "activation": activation,
            "dropout": dropout,
            "init": init,
            "bins": bins,
        }
        if labels is not None:  # class names in output order: they travel with the weights
            if len(labels) != out_features:
                raise ValueError(f"{len(labels)} labels {labels} for {out_features} outputs")
            self.spec["labels"] = list(labels)
        n = len(feature_names)
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))
        self.register_buffer("target_mean", torch.zeros(out_features))
        self.register_buffer("target_std", torch.ones(out_features))
        if bins:
            # piecewise-linear encoding: bin edges (quantiles of the training split) and widths
            self.register_buffer("edges", torch.zeros(n, bins))
            self.register_buffer("widths", torch.ones(n, bins))
        layers: list[nn.Module] = []
        width = n * (1 + bins)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        self._init_weights(init, activation)

    def _init_weights(self, init: str, activation: str) -> None:
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                if init == "xavier":
                    nn.init.xavier_uniform_(m.weight)
                elif init == "kaiming":
                    nonlinearity = "relu" if activation in ("relu", "gelu") else "linear"
                    nn.init.kaiming_uniform_(m.weight, nonlinearity=nonlinearity)
                else:
                    nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def fit_scaling(self, features: np.ndarray) -> None:
        """Set the scaling buffers from training-split features (NaN ignored)."""
        mean = np.nan_to_num(np.nanmean(features, axis=0), nan=0.0)
        std = np.nan_to_num(np.nanstd(features, axis=0), nan=1.0)
        std[std < 1e-8] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        bins = self.spec["bins"]
        if bins:
            scaled = (features - mean) / std
            quantiles = np.linspace(0, 1, bins + 1)
            edges = np.nan_to_num(np.nanquantile(scaled, quantiles, axis=0).T, nan=0.0)
            widths = np.maximum(np.diff(edges, axis=1), 1e-3)  # a repeated edge: a step
            self.edges.copy_(torch.as_tensor(edges[:, :-1], dtype=torch.float32))
            self.widths.copy_(torch.as_tensor(widths, dtype=torch.float32))

    def fit_target_scaling(self, targets: np.ndarray) -> None:
        """Set the target buffers from training-split regression targets."""
        std = float(np.std(targets))
        self.target_mean.fill_(float(np.mean(targets)))
        self.target_std.fill_(std if std > 1e-8 else 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (classification) or predictions (regression) for a float feature batch."""
        x = (features - self.mean) / self.std
        x = torch.nan_to_num(x, nan=0.0)  # a missing value becomes the training mean
        if self.spec["bins"]:
            pieces = ((x.unsqueeze(-1) - self.edges) / self.widths).clamp(0.0, 1.0)
            x = torch.cat([x, pieces.flatten(1)], dim=1)
        return self.net(x) * self.target_std + self.target_mean


def build_mlp(p: FitParams, task: TaskParams, train_set: pd.DataFrame) -> MLP:
    """An MLP sized to the training table's features and ``task``, scaling fitted on them."""
    names = feature_columns(train_set)
    if not names:
        raise ValueError("the training table has no feature columns for an MLP")
    labels = None if task.type == "regression" else list(task.labels or [])
    m = p.model
    out = 1 if labels is None else len(labels)
    model = MLP(names, out, m.hidden_sizes, m.activation, m.dropout, m.init, m.bins, labels=labels)
    model.fit_scaling(train_set[names].to_numpy(dtype=np.float32))
    if labels is None:
        model.fit_target_scaling(train_set["label"].to_numpy(dtype=np.float64))
    return model


def mlp_from_spec(spec: dict[str, Any]) -> MLP:
    """Rebuild an MLP (scaling and weights to be loaded) from its spec."""
    return MLP(**{k: v for k, v in spec.items() if k != "family"})
