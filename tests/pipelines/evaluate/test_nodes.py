"""Evaluate nodes: hand-checked metrics, label checks, plot data and figures, a pipeline slice."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from reprotrain.inference import predict_outputs
from reprotrain.models import to_artifact
from reprotrain.pipelines.evaluate import create_pipeline
from reprotrain.pipelines.evaluate.nodes import (
    compute_metrics,
    confusion_plot_data,
    model_comparison,
    plot_confusion_matrix,
    plot_training_curves,
    predict_test_set,
    training_curves,
)
from tests.conftest import make_task
from tests.factories import (
    PENGUIN_LABELS,
    REVIEW_LABELS,
    mlp_artifact,
    penguin_features,
    prediction_frame,
    tiny_bert,
    token_table,
)

CLASSIFICATION = make_task(["a", "b", "c"])
REGRESSION = make_task(type="regression")


def _predictions(actual: list[int], predicted: list[int]) -> pd.DataFrame:
    return prediction_frame(CLASSIFICATION["labels"], actual, predicted)


def test_compute_metrics_matches_hand_computed_values():
    # class a: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 1/2
    # class b: tp 2, fp 1, fn 0 -> P 2/3, R 1,   F1 4/5
    # class c: tp 1, fp 0, fn 1 -> P 1,   R 1/2, F1 2/3
    metrics = compute_metrics(_predictions([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]), CLASSIFICATION)
    assert metrics["n_test"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert metrics["per_class"]["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert metrics["per_class"]["c"]["precision"] == pytest.approx(1.0)
    assert metrics["per_class"]["a"]["support"] == 2


def test_compute_metrics_perfect_binary():
    p = make_task(["neg", "pos"])
    frame = pd.DataFrame(
        {
            "actual_id": [0, 1, 1],
            "predicted_id": [0, 1, 1],
            "actual": ["neg", "pos", "pos"],
            "predicted": ["neg", "pos", "pos"],
        }
    )
    metrics = compute_metrics(frame, p)
    assert metrics["accuracy"] == metrics["f1_macro"] == 1.0


def test_compute_metrics_regression_mse_mae_r2():
    frame = pd.DataFrame({"actual": [1.0, 2.0, 3.0], "predicted": [1.5, 2.0, 1.0]})
    metrics = compute_metrics(frame, REGRESSION)
    mse = (0.25 + 0 + 4) / 3
    assert metrics == pytest.approx(
        {"n_test": 3, "mse": mse, "mae": 2.5 / 3, "r2": 1 - mse / (2 / 3)}  # variance 2/3
    )


def test_predict_test_set_mlp_keeps_row_order_and_labels():
    table = penguin_features(20)
    artifact = mlp_artifact(table)
    out = predict_test_set(artifact, table, {"batch_size": 7}, make_task(PENGUIN_LABELS))
    assert list(out.columns) == ["actual", "predicted", "actual_id", "predicted_id", "score"]
    assert out["actual"].tolist() == [PENGUIN_LABELS[i] for i in table["label"]]
    assert out["score"].between(1 / 3, 1).all()
    assert table.equals(penguin_features(20))  # input untouched


def test_predict_test_set_text_restores_row_order(tiny_tokenizer_dir):
    texts = ["good film", "the plot was very dull and boring and flat", "awful", "a great movie"]
    table = token_table(tiny_tokenizer_dir, texts, [1, 0, 0, 1])
    model = tiny_bert()
    out = predict_test_set(to_artifact(model), table, {"batch_size": 2}, make_task(REVIEW_LABELS))
    with torch.no_grad():
        one_by_one = [
            model(input_ids=torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]).logits[0]
            for ids in table["input_ids"]
        ]
    expected = torch.stack(one_by_one).softmax(-1).max(-1).values.numpy()
    np.testing.assert_allclose(out["score"].to_numpy(), expected, atol=1e-5)
    assert predict_outputs(model, table, 3).shape == (4, 2)


def test_unseen_label_in_test_set_names_the_column():
    table = penguin_features(9)
    table.loc[4, "label"] = 5
    with pytest.raises(ValueError, match=r"column 'label' holds class ids \[5\]"):
        predict_test_set(mlp_artifact(table.assign(label=0)), table, {}, make_task(PENGUIN_LABELS))


def test_labels_differing_from_the_model_fail(tiny_tokenizer_dir):
    table = token_table(tiny_tokenizer_dir, ["good"], [0])
    with pytest.raises(ValueError, match="trained on labels"):
        predict_test_set(to_artifact(tiny_bert()), table, {}, make_task(["bad", "good"]))


def test_confusion_plot_data_has_actual_and_predicted():
    data = confusion_plot_data(_predictions([0, 1], [1, 1]))
    assert data.to_dict("list") == {"actual": ["a", "b"], "predicted": ["b", "b"]}


def test_training_curves_collapse_sparse_logger_rows():
    history = pd.DataFrame(
        {
            "epoch": [0, 0, 0, 1],
            "step": [9, 19, 19, 39],
            "train/loss": [0.7, 0.6, np.nan, 0.4],
            "val/loss": [np.nan, np.nan, 0.55, np.nan],
            "val/acc": [np.nan, np.nan, 0.8, np.nan],
            "lr-AdamW": [1, 1, 1, 1],
        }
    )
    curves = training_curves(history)
    assert list(curves.columns) == [
        *["step", "epoch", "train_loss", "val_loss", "val_acc"],
        "val_score",  # the score plot's curve: accuracy (regression: MSE)
    ]
    assert curves["val_score"].equals(curves["val_acc"])
    assert curves["step"].tolist() == [9, 19, 39]
    assert curves.loc[1, "train_loss"] == pytest.approx(0.6)
    assert curves.loc[1, "val_loss"] == pytest.approx(0.55)


def test_a_regression_plots_as_a_classification_does():
    """One dvc.yaml plots section: deciles for the confusion plot, MSE as the score."""
    actual = np.arange(1.0, 101.0)
    frame = pd.DataFrame({"actual": actual, "predicted": actual[::-1] + 1000})
    frame.loc[0, "predicted"] = -5.0
    data = confusion_plot_data(frame)
    deciles = np.quantile(actual, np.linspace(0, 1, 11))
    assert sorted(data["actual"].unique()) == [
        f"d{i:02d} {lo:.4g}-{hi:.4g}" for i, (lo, hi) in enumerate(pairwise(deciles), 1)
    ]
    assert data["actual"].value_counts().tolist() == [10] * 10  # 1-10.9, 10.9-20.8, ...
    assert data.loc[0, "predicted"].startswith("d01 ")  # below the range: the first bin
    assert set(data.loc[1:, "predicted"]) == {data["actual"].max()}  # above: the last
    history = pd.DataFrame({"epoch": [0], "step": [9], "train/mse": [2.0], "val/mse": [3.0]})
    assert training_curves(history)[["train_score", "val_score"]].values.tolist() == [[2.0, 3.0]]
    zero = pd.DataFrame({"zero": np.zeros(len(frame))})
    table = model_comparison(compute_metrics(frame, REGRESSION, zero))
    assert table["score"].tolist() == table["mse"].tolist()


def test_training_curves_of_an_empty_history():
    assert training_curves(pd.DataFrame({"epoch": [], "step": []})).empty


def test_figures_are_matplotlib_figures():
    fig = plot_confusion_matrix(_predictions([0, 1, 2], [0, 2, 2]), CLASSIFICATION)
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xlabel() == "predicted"
    curves = pd.DataFrame(
        {"step": [1, 2], "epoch": [0, 0], "train_loss": [1.0, 0.5], "val_acc": [np.nan, 0.7]}
    )
    fig = plot_training_curves(curves)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    regression = plot_confusion_matrix(
        pd.DataFrame({"actual": [1.0], "predicted": [2.0]}), REGRESSION
    )
    assert regression.axes[0].get_title() == "Test predictions"


def _evaluate_catalog(table: pd.DataFrame) -> DataCatalog:
    history = pd.DataFrame({"epoch": [0], "step": [5], "train/loss": [0.9], "val/loss": [0.8]})
    return DataCatalog(
        {
            "trained_model": MemoryDataset(mlp_artifact(table), copy_mode="assign"),
            "train_set": MemoryDataset(penguin_features(60, seed=1)),
            "validation_set": MemoryDataset(penguin_features(20, seed=2)),
            "test_set": MemoryDataset(table),
            "training_history": MemoryDataset(history),
            "params:evaluate": MemoryDataset({"batch_size": 8}),
            "params:task": MemoryDataset(
                {"name": "penguins", "raw_file": "penguins.csv", "labels": PENGUIN_LABELS}
            ),
        }
    )


def test_evaluate_pipeline_on_an_in_memory_catalog():
    table = penguin_features(24)
    catalog = _evaluate_catalog(table)
    SequentialRunner().run(create_pipeline(), catalog)
    assert isinstance(catalog.load("model_comparison_plot"), Figure)
    assert len(catalog.load("confusion_matrix")) == 24
    assert isinstance(catalog.load("confusion_matrix_plot"), Figure)
    # the runner releases what a later node consumed: the metrics from a slice that ends there
    catalog = _evaluate_catalog(table)
    SequentialRunner().run(create_pipeline().to_outputs("metrics"), catalog)
    metrics = catalog.load("metrics")
    assert metrics["n_test"] == 24
    assert 0 <= metrics["accuracy"] <= 1
    assert set(metrics["baselines"]) == {"logistic_regression", "gradient_boosting"}


def test_confusion_matrix_figure_grows_with_the_classes():
    labels = [f"class-{i:02d}" for i in range(30)]
    ids = list(range(30)) * 2
    frame = prediction_frame(labels, ids, ids[::-1])
    small = plot_confusion_matrix(_predictions([0, 1, 2], [0, 2, 2]), CLASSIFICATION)
    large = plot_confusion_matrix(frame, make_task(labels))
    assert large.get_size_inches()[1] >= 0.45 * 30 > small.get_size_inches()[1]
    texts = large.axes[0].texts
    assert texts and max(t.get_fontsize() for t in texts) <= 5.0  # counts shrink to fit
    assert large.axes[0].get_xticklabels()[0].get_rotation() == 45
