"""Evaluate: test-split predictions, metrics (torchmetrics), plot data and figures."""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torchmetrics.functional import classification as C
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from reprotrain.inference import predict_outputs, to_predictions
from reprotrain.models import (
    ModelArtifact,
    data_label_problem,
    from_artifact,
    label_order_problem,
    model_labels,
)
from reprotrain.params import HEADLINE_METRICS, parse

log = logging.getLogger(__name__)

# the curves training_curves keeps (the last two: a regression's)
CURVE_COLUMNS = (
    *("train/loss", "val/loss", "train/acc", "val/acc", "train/f1", "val/f1"),
    *("train/mse", "val/mse"),
)
PREDICTION_BINS = 10  # a regression's confusion plot: deciles of the actual test values


def check_labels(
    test_set: pd.DataFrame,
    model: nn.Module,
    labels: list[str] | None,
    model_folder: str | None = None,
) -> None:
    """Fail when the test set holds classes the model never saw, or the label lists differ.

    The labels the model records (``reprotrain.models.model_labels``) must equal
    ``labels`` (``task.labels``; ``None`` for regression) in the same order: otherwise every
    score would be reported under the wrong class name.

    Raises:
        ValueError: Naming the ``label`` column, the unknown class ids and the known labels;
            or the labels that differ from the model's, its folder and what to do.
    """
    if "label" not in test_set.columns:
        raise ValueError(f"test_set lacks the column 'label'; it has {list(test_set.columns)}")
    if labels is None:
        return
    problem = label_order_problem(labels, model_labels(model), model_folder)
    problem = problem or data_label_problem(labels, test_set)
    if problem:
        raise ValueError(problem)
    values = test_set["label"]
    unknown = sorted({v for v in values.dropna().tolist() if v not in range(len(labels))})
    if values.isna().any() or unknown:
        raise ValueError(
            f"test_set column 'label' holds class ids {unknown or ['<missing>']} the model never "
            f"saw; it knows ids 0..{len(labels) - 1} = {labels}"
        )


def _labels(task: dict[str, Any]) -> list[str] | None:
    """The task's class names; ``None`` for a regression task."""
    t = parse("task", task)
    return list(t.labels or []) if t.type == "classification" else None


def predict_test_set(
    trained_model: ModelArtifact,
    test_set: pd.DataFrame,
    parameters: dict[str, Any],
    task: dict[str, Any],
) -> pd.DataFrame:
    """Predict every test row; keep the true value beside the prediction.

    Returns:
        Classification: ``actual``, ``predicted`` (label names), ``actual_id``,
        ``predicted_id``, ``score``. Regression: ``actual``, ``predicted``. Plus ``id``
        when the test set has one.
    """
    p = parse("evaluate", parameters)
    labels = _labels(task)
    model = from_artifact(trained_model)
    check_labels(test_set, model, labels, trained_model.source)
    regression = labels is None
    outputs = predict_outputs(model, test_set, p.batch_size, regression=regression)
    preds = to_predictions(outputs, labels)
    out = test_set[["id"]].reset_index(drop=True) if "id" in test_set.columns else pd.DataFrame()
    if regression:
        out["actual"] = test_set["label"].to_numpy(dtype=np.float64)
        out["predicted"] = preds["prediction"]
        return out
    names = np.asarray(labels, dtype=object)
    actual = test_set["label"].to_numpy(dtype=np.int64)
    out["actual"] = names[actual]
    out["predicted"] = preds["label"]
    out["actual_id"] = actual
    out["predicted_id"] = preds["label_id"]
    out["score"] = preds["score"]
    return out


def fit_baselines(
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    parameters: dict[str, Any],
    task: dict[str, Any],
) -> pd.DataFrame:
    """Cheap classical models fitted on the model's training split, predicting its test rows.

    Returns:
        One column per baseline (``reprotrain.baselines``), aligned with ``test_set``;
        no column when ``evaluate.baselines`` is off.
    """
    t = parse("task", task)
    p = parse("evaluate", parameters, t)
    if not p.baselines:
        return pd.DataFrame(index=range(len(test_set)))
    from reprotrain.baselines import predict_baselines  # scikit-learn: only when asked

    return predict_baselines(
        train_set,
        validation_set,
        test_set,
        regression=t.type == "regression",
        seed=t.seed,
        max_rows=p.baseline_max_rows,
    )


def _scores(
    predicted: np.ndarray, actual: np.ndarray, labels: list[str] | None, per_class: bool = False
) -> dict:
    """Headline test metrics of one set of predictions (torchmetrics); with ``per_class``,
    also precision, recall, f1 and support per label (key ``per_class``)."""
    if labels is None:
        pred, true = torch.tensor(predicted, dtype=torch.float64), torch.tensor(actual)
        return {
            "mse": float(mean_squared_error(pred, true)),
            "mae": float(mean_absolute_error(pred, true)),
            "r2": float(r2_score(pred, true)),  # 1 - MSE / the test targets' variance
        }
    k = len(labels)
    pred, true = torch.tensor(predicted, dtype=torch.int64), torch.tensor(actual)
    scores: dict[str, Any] = {
        "accuracy": float(C.multiclass_accuracy(pred, true, k, average="micro")),
        "precision_macro": float(C.multiclass_precision(pred, true, k, average="macro")),
        "recall_macro": float(C.multiclass_recall(pred, true, k, average="macro")),
        "f1_macro": float(C.multiclass_f1_score(pred, true, k, average="macro")),
    }
    if per_class:
        by_class = {
            "precision": C.multiclass_precision(pred, true, k, average=None),
            "recall": C.multiclass_recall(pred, true, k, average=None),
            "f1": C.multiclass_f1_score(pred, true, k, average=None),
        }
        support = torch.bincount(true, minlength=k)
        scores["per_class"] = {
            label: {**{m: float(v[i]) for m, v in by_class.items()}, "support": int(support[i])}
            for i, label in enumerate(labels)
        }
    return scores


def primary_metric(regression: bool) -> tuple[str, bool]:
    """The metric that ranks models, and whether higher is better."""
    return ("mse", False) if regression else ("f1_macro", True)


def _compare(metrics: dict[str, Any], regression: bool) -> dict[str, Any]:
    """The best baseline on the primary metric, and the model's margin over it."""
    key, higher = primary_metric(regression)
    baselines = metrics["baselines"]
    best = (max if higher else min)(baselines, key=lambda name: baselines[name][key])
    margin = metrics[key] - baselines[best][key]
    below = margin < 0 if higher else margin > 0
    if below:
        log.warning(
            "the trained model does not beat the %s baseline on the test split: %s %.4f "
            "against %.4f. Train longer (fit.trainer.max_epochs, fit.budget), try another "
            "learning rate (fit.optimizer.lr), or ship the baseline: see metrics.json",
            best,
            key,
            metrics[key],
            baselines[best][key],
        )
    return {"best_baseline": best, f"margin_{key}": margin, "below_baseline": below}


def compute_metrics(
    test_predictions: pd.DataFrame,
    task: dict[str, Any],
    baseline_predictions: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Test metrics of the model and of the baselines, for ``dvc metrics show``.

    Classification: ``accuracy``, macro ``precision``/``recall``/``f1`` and a ``per_class``
    block (precision, recall, f1, support per label). Macro averages skip a class that is
    absent from both the truth and the predictions (torchmetrics' convention). Regression:
    ``mse``, ``mae`` and ``r2`` (the share of the test targets' variance explained). Then
    ``baselines`` (the same headline metrics for each baseline, same test rows),
    ``best_baseline``, the model's margin over it on the primary metric
    (macro-F1; regression: MSE) and ``below_baseline``, true (with a warning) when the model
    scores worse than the best baseline (a tie is not below).
    """
    labels = _labels(task)
    regression = labels is None
    column = "predicted" if regression else "predicted_id"
    actual = test_predictions["actual" if regression else "actual_id"].to_numpy()
    metrics: dict[str, Any] = {
        "n_test": len(test_predictions),
        **_scores(test_predictions[column].to_numpy(), actual, labels, per_class=True),
    }
    if baseline_predictions is not None and len(baseline_predictions.columns):
        metrics["baselines"] = {
            name: _scores(baseline_predictions[name].to_numpy(), actual, labels)
            for name in baseline_predictions.columns
        }
        metrics.update(_compare(metrics, regression))
    key, _ = primary_metric(regression)
    log.info(
        "evaluate: %s %.4f on %d test rows%s",
        key,
        metrics[key],
        len(test_predictions),
        "".join(f"; {b} {m[key]:.4f}" for b, m in metrics.get("baselines", {}).items()),
    )
    return metrics


def model_comparison(metrics: dict[str, Any]) -> pd.DataFrame:
    """The model and each baseline, one row each, on the headline metrics (``dvc plots``),
    and ``score``: the primary metric (macro-F1; regression: MSE), whatever the task type."""
    headline = [k for k in HEADLINE_METRICS if k in metrics]
    key, _ = primary_metric("f1_macro" not in metrics)
    models = {"trained model": metrics, **metrics.get("baselines", {})}
    rows = [
        {"model": name, **{k: scores[k] for k in headline}, "score": scores[key]}
        for name, scores in models.items()
    ]
    return pd.DataFrame(rows, columns=["model", *headline, "score"])


def confusion_plot_data(test_predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per test example, ``actual`` and ``predicted``, for ``dvc plots`` (confusion).

    A regression's values are binned into the deciles of the actual test values (labels
    such as ``d01 326-837``; a prediction outside their range falls in the first or last
    bin), so that the confusion plot reads as it does for classes.
    """
    data = test_predictions[["actual", "predicted"]].copy()
    if "actual_id" in test_predictions.columns or data.empty:
        return data
    actual = data["actual"].to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(actual, np.linspace(0, 1, PREDICTION_BINS + 1)))
    if len(edges) < 2:  # one value only
        edges = np.array([edges[0], edges[0]])
    names = [f"d{i:02d} {lo:.4g}-{hi:.4g}" for i, (lo, hi) in enumerate(pairwise(edges), 1)]
    inner = edges[1:-1]  # bin i holds (edge i, edge i+1]; the first also holds its low edge

    def binned(values: pd.Series) -> list[str]:
        return [names[i] for i in np.searchsorted(inner, values.to_numpy(np.float64), "left")]

    return pd.DataFrame({"actual": binned(data["actual"]), "predicted": binned(data["predicted"])})


def training_curves(training_history: pd.DataFrame) -> pd.DataFrame:
    """Lightning's sparse CSVLogger rows → one row per step with every logged curve.

    Column names lose their slash (``train/loss`` → ``train_loss``) so that plotting tools
    take them as plain field names. ``train_score`` and ``val_score`` repeat the accuracy
    (regression: the MSE), so that one ``dvc plots`` definition serves both task types.
    """
    present = [c for c in CURVE_COLUMNS if c in training_history.columns]
    keys = [c for c in ("step", "epoch") if c in training_history.columns]
    if not keys or not present:
        return pd.DataFrame(columns=["step", "epoch", *(c.replace("/", "_") for c in present)])
    curves = training_history[keys + present].groupby("step", as_index=False).first()
    curves = curves.dropna(subset=present, how="all").sort_values("step").reset_index(drop=True)
    curves = curves.rename(columns={c: c.replace("/", "_") for c in present})
    score = "mse" if "val/mse" in present else "acc"  # the score plot's curves, by task type
    for split in ("train", "val"):
        if f"{split}_{score}" in curves.columns:
            curves[f"{split}_score"] = curves[f"{split}_{score}"]
    return curves


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas: headless, and no pyplot global state or backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_confusion_matrix(test_predictions: pd.DataFrame, task: dict[str, Any]) -> Figure:
    """The confusion matrix as a heat map (regression: predicted against actual).

    The figure grows with the number of classes and the counts' font shrinks, so that up to
    ~50 classes stay readable.
    """
    labels = _labels(task)
    if labels is None:
        fig = _new_figure(5, 4.5)
        ax = fig.add_subplot()
        ax.scatter(test_predictions["actual"], test_predictions["predicted"], s=6, alpha=0.5)
        ax.set(xlabel="actual", ylabel="predicted", title="Test predictions")
        return fig
    k = len(labels)
    side = max(4.5, 0.45 * k + 2.5)
    fig = _new_figure(side + 0.8, side)
    ax = fig.add_subplot()
    matrix = C.multiclass_confusion_matrix(
        torch.tensor(test_predictions["predicted_id"].to_numpy(dtype=np.int64)),
        torch.tensor(test_predictions["actual_id"].to_numpy(dtype=np.int64)),
        k,
    ).numpy()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    size = max(5.0, min(10.0, 120 / max(k, 1)))
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=size)
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (test)",
    )
    ax.set_xticklabels(labels, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticklabels(labels)
    return fig


def plot_model_comparison(model_comparison: pd.DataFrame) -> Figure:
    """The model beside its baselines on the test split: one bar per model and metric."""
    metrics = [c for c in model_comparison.columns if c not in ("model", "score")]
    fig = _new_figure(4 + 2.5 * len(metrics), 1.2 + 0.5 * len(model_comparison))
    for n, metric in enumerate(metrics, start=1):
        ax = fig.add_subplot(1, len(metrics), n)
        names = model_comparison["model"].tolist()
        values = model_comparison[metric].to_numpy(dtype=float)
        colours = ["tab:blue" if i == 0 else "tab:gray" for i in range(len(names))]
        ax.barh(range(len(names)), values, color=colours)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3f}", va="center", fontsize=8)
        ax.set_yticks(range(len(names)), names if n == 1 else [""] * len(names))
        ax.invert_yaxis()
        ax.set(title=metric, xlim=(0, max(values.max() * 1.25, 1e-9)))
    fig.suptitle("Trained model and baselines (test split)")
    return fig


def plot_training_curves(training_curves: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy / F1 (regression: MSE) (right) against the training step."""
    fig = _new_figure(10, 4)
    loss_ax, score_ax = fig.subplots(1, 2)
    curves = [c for c in training_curves.columns if c not in ("step", "epoch")]
    for column in [c for c in curves if not c.endswith("_score")]:  # those repeat a curve
        ax = loss_ax if column.endswith("loss") else score_ax
        values = training_curves[["step", column]].dropna()
        style = "o-" if column.startswith("val") or len(values) < 20 else "-"
        ax.plot(values["step"], values[column], style, label=column, markersize=4)
    loss_ax.set(xlabel="step", ylabel="loss", title="Loss")
    mse = any(c.endswith("_mse") for c in curves)
    score_ax.set(xlabel="step", ylabel="score", title="MSE" if mse else "Accuracy and F1")
    for ax in (loss_ax, score_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig
