"""Fit: build the model from parameters and the label set, then train it with Lightning."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import pandas as pd
from torch import nn

from reprotrain.models import ModelArtifact, to_artifact
from reprotrain.models import build_model as _build
from reprotrain.params import parse
from reprotrain.training.lock import task_lock
from reprotrain.training.trainer import fit

log = logging.getLogger(__name__)


def build_model(
    train_set: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> nn.Module:
    """Build the configured model, seeded, sized to the label set and training features.

    Fails before any training starts when the model family, checkpoint or labels are wrong.
    """
    t = parse("task", task)
    p = parse("fit", parameters, t)
    if t.type == "classification":
        seen = set(train_set["label"].unique().tolist())
        extra = sorted(seen - set(range(len(t.labels or []))))
        if extra:
            raise ValueError(
                f"the training set has label ids {extra} beyond the {len(t.labels or [])} "
                f"configured labels {t.labels}"
            )
    L.seed_everything(t.seed, verbose=False)
    model = _build(p, t, train_set)
    n = sum(w.numel() for w in model.parameters())
    log.info("built %s model with %.2fM parameters", p.model.family, n / 1e6)
    return model


def train_model(
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    parameters: dict[str, Any],
    task: dict[str, Any],
) -> tuple[ModelArtifact, pd.DataFrame]:
    """Train the model; return its best weights (as an artifact) and the training history.

    One run per task at a time: a second run of the same task is refused at once.
    """
    t = parse("task", task)
    p = parse("fit", parameters, t)
    world = p.trainer.devices * p.trainer.num_nodes
    with task_lock(p.checkpoint_dir):
        if world > 1:
            from reprotrain.training.launcher import launch

            trained, history = launch(model, train_set, validation_set, p, t)
        else:
            trained, history = fit(model, train_set, validation_set, p, t)
        return to_artifact(trained), history
