"""Model builders: plain ``nn.Module`` architectures behind one small registry.

``build_model`` makes a model from the ``fit.model`` parameters; ``model_spec`` /
``model_from_spec`` describe and rebuild its architecture as JSON, so that weights can live in
safetensors and nothing needs pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from torch import nn

from reprotrain.datasets import ModelArtifact
from reprotrain.models.mlp import MLP, build_mlp, mlp_from_spec
from reprotrain.models.transformer import (
    build_transformer,
    is_transformer,
    transformer_from_spec,
)
from reprotrain.params import FitParams

__all__ = [
    "MLP",
    "build_model",
    "from_artifact",
    "model_from_spec",
    "model_spec",
    "pad_token_id",
    "to_artifact",
]

_BUILDERS: dict[str, Callable[[FitParams, pd.DataFrame], nn.Module]] = {
    "transformer": build_transformer,
    "mlp": build_mlp,
}
_FROM_SPEC: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "transformer": transformer_from_spec,
    "mlp": mlp_from_spec,
}


def build_model(p: FitParams, train_set: pd.DataFrame) -> nn.Module:
    """Build the model named by ``p.model.family`` (weights pretrained or initialised)."""
    return _BUILDERS[p.model.family](p, train_set)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """A JSON-able description from which ``model_from_spec`` rebuilds the architecture."""
    if is_transformer(model):
        return {"family": "transformer", "config": model.config.to_dict()}
    if isinstance(model, MLP):
        return {"family": "mlp", **model.spec}
    raise TypeError(f"no spec for model type {type(model).__name__}")


def model_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild an architecture (random weights) from ``model_spec``'s output."""
    family = spec.get("family")
    if family not in _FROM_SPEC:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(_FROM_SPEC)}")
    return _FROM_SPEC[family](spec)


def pad_token_id(model: nn.Module) -> int:
    """The id used to pad token sequences for ``model`` (0 when it has none)."""
    config = getattr(model, "config", None)
    return int(getattr(config, "pad_token_id", None) or 0)


def to_artifact(model: nn.Module) -> ModelArtifact:
    """Spec + weights of ``model``, ready for ``SafetensorsModelDataset``."""
    return ModelArtifact(model_spec(model), dict(model.state_dict()))


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
