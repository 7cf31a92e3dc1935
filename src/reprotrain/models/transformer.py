"""Hugging Face sequence classifiers, pretrained or randomly initialised from a config."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from torch import nn

from reprotrain.params import FitParams, TaskParams
from reprotrain.pretrained import resolve_checkpoint

log = logging.getLogger(__name__)


def is_transformer(model: nn.Module) -> bool:
    """Whether ``model`` is a Hugging Face ``PreTrainedModel``."""
    from transformers import PreTrainedModel

    return isinstance(model, PreTrainedModel)


def _head_kwargs(task: TaskParams) -> dict[str, Any]:
    if task.type == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    labels = list(task.labels or [])
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "single_label_classification",
    }


def build_transformer(
    p: FitParams, task: TaskParams, train_set: pd.DataFrame | None = None
) -> nn.Module:
    """``AutoModelForSequenceClassification`` from ``task.model_checkpoint``, or random from
    ``p.model.config``.

    Raises:
        FileNotFoundError: The checkpoint is neither a local folder nor a loadable hub id.
        ValueError: The checkpoint already has a classification head of another size.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    head = _head_kwargs(task)
    if p.model.config is not None:
        config = AutoConfig.for_model(**{**p.model.config, **head})
        return AutoModelForSequenceClassification.from_config(config)
    checkpoint = task.model_checkpoint
    if checkpoint is None:
        raise ValueError("a pretrained transformer needs task.model_checkpoint (it is null)")
    source = resolve_checkpoint(checkpoint)
    try:
        config = AutoConfig.from_pretrained(source)
    except OSError as err:
        raise FileNotFoundError(
            f"model checkpoint '{checkpoint}' is neither a local folder nor a hub model "
            f"available offline ({err.__class__.__name__}: {str(err).splitlines()[0]})"
        ) from None
    trained_head = any("ForSequenceClassification" in a for a in config.architectures or [])
    if trained_head and config.num_labels != head["num_labels"]:
        raise ValueError(
            f"checkpoint '{checkpoint}' has a classification head with {config.num_labels} "
            f"labels {list(config.id2label.values())}, but the task has {head['num_labels']} "
            f"({task.labels}); use the base model or matching labels"
        )
    log.info(
        "loading pretrained %s from %s%s",
        checkpoint,
        source,
        "" if trained_head else " with a new, randomly initialised classification head",
    )
    model = quietly(AutoModelForSequenceClassification.from_pretrained, source, **head)
    # Record the name the user gave, not this machine's folder: the saved spec (and so the
    # DVC hash of the trained model) must not depend on where the project is installed.
    model.config._name_or_path = checkpoint
    return model


def quietly(load: Any, *args: Any, **kwargs: Any) -> nn.Module:
    """Call a transformers loader without its progress bar and load report.

    Fine-tuning a base checkpoint always reports the new head's weights as missing; the log
    line above says so once, in words.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return load(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def transformer_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a sequence classifier (random weights) from its saved config dict."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model(**spec["config"])
    return AutoModelForSequenceClassification.from_config(config)
