"""Evaluate: test-split predictions, metrics (torchmetrics), plot data and figures."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchmetrics.functional import classification as C
from torchmetrics.functional import mean_absolute_error, mean_squared_error

from reprotrain.datasets import ModelArtifact
from reprotrain.inference import predict_outputs, to_predictions
from reprotrain.models import from_artifact
from reprotrain.params import EvaluateParams, parse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("train/loss", "val/loss", "train/acc", "val/acc", "train/f1", "val/f1")


def model_labels(model: nn.Module) -> list[str] | None:
    """The class names a model was built with (``None`` when it does not record them)."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "problem_type", None) != "regression":
        return [config.id2label[i] for i in range(config.num_labels)]
    return None


def check_labels(test_set: pd.DataFrame, model: nn.Module, p: EvaluateParams) -> None:
    """Fail when the test set holds classes the model never saw, or the label lists differ.

    Raises:
        ValueError: Naming the ``label`` column, the unknown class ids and the known labels.
    """
    if "label" not in test_set.columns:
        raise ValueError(f"test_set lacks the column 'label'; it has {list(test_set.columns)}")
    if p.task == "regression":
        return
    labels = list(p.labels or [])
    known = model_labels(model)
    if known is not None and known != labels:
        raise ValueError(f"the model was trained on labels {known}, parameters say {labels}")
    values = test_set["label"]
    unknown = sorted({v for v in values.dropna().tolist() if v not in range(len(labels))})
    if values.isna().any() or unknown:
        raise ValueError(
            f"test_set column 'label' holds class ids {unknown or ['<missing>']} the model never "
            f"saw; it knows ids 0..{len(labels) - 1} = {labels}"
        )


def predict_test_set(
    trained_model: ModelArtifact,
    test_set: pd.DataFrame,
    parameters: dict[str, Any],
    task: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Predict every test row; keep the true value beside the prediction.

    Returns:
        Classification: ``actual``, ``predicted`` (label names), ``actual_id``,
        ``predicted_id``, ``score``. Regression: ``actual``, ``predicted``. Plus ``id``
        when the test set has one.
    """
    p = parse("evaluate", parameters, task)
    model = from_artifact(trained_model)
    check_labels(test_set, model, p)
    regression = p.task == "regression"
    outputs = predict_outputs(model, test_set, p.batch_size, regression=regression)
    preds = to_predictions(outputs, None if regression else list(p.labels or []))
    out = test_set[["id"]].reset_index(drop=True) if "id" in test_set.columns else pd.DataFrame()
    if regression:
        out["actual"] = test_set["label"].to_numpy(dtype=np.float64)
        out["predicted"] = preds["prediction"]
        return out
    names = np.asarray(p.labels, dtype=object)
    actual = test_set["label"].to_numpy(dtype=np.int64)
    out["actual"] = names[actual]
    out["predicted"] = preds["label"]
    out["actual_id"] = actual
    out["predicted_id"] = preds["label_id"]
    out["score"] = preds["score"]
    return out


def compute_metrics(
    test_predictions: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Test metrics with torchmetrics, as a flat-ish dict for ``dvc metrics show``.

    Classification: ``accuracy``, macro ``precision``/``recall``/``f1`` and a ``per_class``
    block (precision, recall, f1, support per label). Macro averages skip a class that is
    absent from both the truth and the predictions (torchmetrics' convention). Regression:
    ``mse`` and ``mae``.
    """
    p = parse("evaluate", parameters, task)
    n = len(test_predictions)
    if p.task == "regression":
        pred = torch.tensor(test_predictions["predicted"].to_numpy(dtype=np.float64))
        true = torch.tensor(test_predictions["actual"].to_numpy(dtype=np.float64))
        return {
            "n_test": n,
            "mse": float(mean_squared_error(pred, true)),
            "mae": float(mean_absolute_error(pred, true)),
        }
    labels = list(p.labels or [])
    k = len(labels)
    pred = torch.tensor(test_predictions["predicted_id"].to_numpy(dtype=np.int64))
    true = torch.tensor(test_predictions["actual_id"].to_numpy(dtype=np.int64))
    per_class = {
        "precision": C.multiclass_precision(pred, true, k, average=None),
        "recall": C.multiclass_recall(pred, true, k, average=None),
        "f1": C.multiclass_f1_score(pred, true, k, average=None),
    }
    support = torch.bincount(true, minlength=k)
    metrics: dict[str, Any] = {
        "n_test": n,
        "accuracy": float(C.multiclass_accuracy(pred, true, k, average="micro")),
        "precision_macro": float(C.multiclass_precision(pred, true, k, average="macro")),
        "recall_macro": float(C.multiclass_recall(pred, true, k, average="macro")),
        "f1_macro": float(C.multiclass_f1_score(pred, true, k, average="macro")),
        "per_class": {
            label: {**{m: float(v[i]) for m, v in per_class.items()}, "support": int(support[i])}
            for i, label in enumerate(labels)
        },
    }
    log.info(
        "evaluate: accuracy %.4f, macro F1 %.4f on %d rows",
        metrics["accuracy"],
        metrics["f1_macro"],
        n,
    )
    return metrics


def confusion_plot_data(test_predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per test example, ``actual`` and ``predicted``, for ``dvc plots`` (confusion)."""
    return test_predictions[["actual", "predicted"]].copy()


def training_curves(training_history: pd.DataFrame) -> pd.DataFrame:
    """Lightning's sparse CSVLogger rows → one row per step with every logged curve.

    Column names lose their slash (``train/loss`` → ``train_loss``) so that plotting tools
    take them as plain field names.
    """
    present = [c for c in CURVE_COLUMNS if c in training_history.columns]
    keys = [c for c in ("step", "epoch") if c in training_history.columns]
    if not keys or not present:
        return pd.DataFrame(columns=["step", "epoch", *(c.replace("/", "_") for c in present)])
    curves = training_history[keys + present].groupby("step", as_index=False).first()
    curves = curves.dropna(subset=present, how="all").sort_values("step").reset_index(drop=True)
    return curves.rename(columns={c: c.replace("/", "_") for c in present})


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas: headless, and no pyplot global state or backend switch.

    matplotlib is imported here, so that pipelines that do not plot never import it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_confusion_matrix(
    test_predictions: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any] | None = None
) -> Figure:
    """The confusion matrix as a heat map (regression: predicted against actual)."""
    p = parse("evaluate", parameters, task)
    fig = _new_figure(5, 4.5)
    ax = fig.add_subplot()
    if p.task == "regression":
        ax.scatter(test_predictions["actual"], test_predictions["predicted"], s=6, alpha=0.5)
        ax.set(xlabel="actual", ylabel="predicted", title="Test predictions")
        return fig
    labels = list(p.labels or [])
    matrix = C.multiclass_confusion_matrix(
        torch.tensor(test_predictions["predicted_id"].to_numpy(dtype=np.int64)),
        torch.tensor(test_predictions["actual_id"].to_numpy(dtype=np.int64)),
        len(labels),
    ).numpy()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (test)",
    )
    return fig


def plot_training_curves(training_curves: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy / F1 (right) against the training step."""
    fig = _new_figure(10, 4)
    loss_ax, score_ax = fig.subplots(1, 2)
    for column in training_curves.columns:
        if column in ("step", "epoch"):
            continue
        ax = loss_ax if column.endswith("loss") else score_ax
        values = training_curves[["step", column]].dropna()
        style = "o-" if column.startswith("val") else "-"
        ax.plot(values["step"], values[column], style, label=column, markersize=4)
    loss_ax.set(xlabel="step", ylabel="loss", title="Loss")
    score_ax.set(xlabel="step", ylabel="score", title="Accuracy and F1")
    for ax in (loss_ax, score_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig
