"""Model builders: plain ``nn.Module`` architectures behind one small registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from torch import nn

from reprotrain.artifact import ModelArtifact
from reprotrain.models.mlp import MLP, build_mlp, mlp_from_spec
from reprotrain.models.transformer import (
    build_transformer,
    is_transformer,
    transformer_from_spec,
)
from reprotrain.params import FitParams, TaskParams

__all__ = [
    "MLP",
    "ModelArtifact",
    "build_model",
    "data_label_problem",
    "from_artifact",
    "label_order_problem",
    "model_labels",
    "model_from_spec",
    "pad_token_id",
    "to_artifact",
]

_BUILDERS: dict[str, Callable[[FitParams, TaskParams, pd.DataFrame], nn.Module]] = {
    "transformer": build_transformer,
    "mlp": build_mlp,
}
_FROM_SPEC: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "transformer": transformer_from_spec,
    "mlp": mlp_from_spec,
}


def build_model(p: FitParams, task: TaskParams, train_set: pd.DataFrame) -> nn.Module:
    """Build the model named by ``p.model.family`` for ``task`` (pretrained or initialised).

    Raises:
        ValueError: The training table's label ids were made for another label order
            (``data_label_problem``).
    """
    problem = data_label_problem(task.labels if task.type == "classification" else None, train_set)
    if problem:
        raise ValueError(problem)
    return _BUILDERS[p.model.family](p, task, train_set)


def data_label_problem(configured: list[str] | None, table: pd.DataFrame) -> str | None:
    """Describe how ``task.labels`` disagree with the labels a converted table's ids stand for.

    The convert step records them in ``table.attrs["labels"]`` (tables converted before it
    did are not checked). Returns ``None`` when they agree.
    """
    recorded = table.attrs.get("labels")
    if configured is None or recorded is None or list(recorded) == list(configured):
        return None
    return (
        f"task.labels {list(configured)} disagree with the labels {list(recorded)} the "
        "converted data's label ids were made for (the convert step ran with another "
        "task.labels): its ids would be read under the wrong class names. Rerun from convert on "
        "(`kedro run --pipelines=train` or `dvc repro`), or restore the label order in "
        "globals.yml (task.labels)."
    )


def model_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild an architecture (random weights) from the spec of ``to_artifact``."""
    family = spec.get("family")
    if family not in _FROM_SPEC:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(_FROM_SPEC)}")
    return _FROM_SPEC[family](spec)


def model_labels(model: nn.Module) -> list[str] | None:
    """The class names a trained model records, in output order (``None``: it records none).

    A transformer records them in its config (``id2label``, also what
    ``transformers.pipeline`` reports); an MLP in its spec (``labels``; MLPs trained before
    it did record none). Regression models have none.
    """
    config = getattr(model, "config", None)
    if config is not None:
        if getattr(config, "problem_type", None) == "regression":
            return None
        return [str(config.id2label[i]) for i in range(config.num_labels)]
    labels = getattr(model, "spec", {}).get("labels")
    return None if labels is None else [str(x) for x in labels]


def label_order_problem(
    configured: list[str] | None, recorded: list[str] | None, model_folder: str | None
) -> str | None:
    """Describe how the configured labels disagree with those a model was trained on.

    Returns:
        ``None`` when they agree (or the model records none), else one paragraph: the
        labels at the positions that differ, the model folder, and what to do.
    """
    if recorded is None or configured is None or list(configured) == list(recorded):
        return None
    configured, recorded = list(configured), list(recorded)
    if sorted(configured) == sorted(recorded):
        moved = [
            f"output {i}: trained as {r!r}, configured as {c!r}"
            for i, (r, c) in enumerate(zip(recorded, configured, strict=True))
            if r != c
        ]
        what = "the same labels in another order (" + "; ".join(moved) + ")"
    else:
        what = (
            f"other labels (only in the model: {sorted(set(recorded) - set(configured))}, "
            f"only configured: {sorted(set(configured) - set(recorded))})"
        )
    where = f" in {model_folder}" if model_folder else ""
    return (
        f"task.labels {configured} disagree with the model{where}, trained on labels "
        f"{recorded}: {what}. Scores would be reported under the wrong class names. "
        "Retrain (fit) from the convert step on, which maps names to ids (`kedro run "
        "--pipelines=train` or `dvc repro`), or restore the label order in globals.yml "
        "(task.labels)."
    )


def pad_token_id(model: nn.Module) -> int:
    """The id used to pad token sequences for ``model`` (0 when it has none)."""
    config = getattr(model, "config", None)
    return int(getattr(config, "pad_token_id", None) or 0)


def to_artifact(model: nn.Module) -> ModelArtifact:
    """Spec (JSON: the architecture) + weights of ``model``, for ``SafetensorsModelDataset``."""
    if is_transformer(model):
        spec = {"family": "transformer", "config": model.config.to_dict()}
    elif isinstance(model, MLP):
        spec = {"family": "mlp", **model.spec}
    else:
        raise TypeError(f"no spec for model type {type(model).__name__}")
    return ModelArtifact(spec, dict(model.state_dict()))


def from_artifact(artifact: ModelArtifact) -> nn.Module:
    """Rebuild the model saved by ``to_artifact``, in eval mode.

    Raises:
        ValueError: The weights do not fit the architecture (names or shapes differ).
    """
    model = model_from_spec(artifact.spec)
    try:
        model.load_state_dict(artifact.state_dict, strict=True)
    except RuntimeError as err:
        raise ValueError(f"saved weights do not match the saved architecture: {err}") from None
    return model.eval()
