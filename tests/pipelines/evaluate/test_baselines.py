"""The classical baselines beside every model: fitted on the model's split, compared, warned."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from reprotrain.baselines import predict_baselines
from reprotrain.pipelines.evaluate.nodes import compute_metrics, fit_baselines, model_comparison
from tests.conftest import NEGATIVE, POSITIVE, make_reviews, make_task
from tests.factories import penguin_features, prediction_frame

LABELS = make_task(["negative", "positive"])


def text_split(n: int, seed: int) -> pd.DataFrame:
    raw = make_reviews(n, seed)
    return pd.DataFrame(
        {"id": raw["id"], "text": raw["text"], "label": (raw["sentiment"] > 0).astype(int)}
    )


def test_text_baseline_learns_from_the_training_split_only():
    train, val, test = text_split(120, 0), text_split(40, 1), text_split(40, 2)
    out = predict_baselines(train, val, test, regression=False, seed=0)
    assert list(out.columns) == ["tfidf_logreg"] and len(out) == len(test)
    assert (out["tfidf_logreg"].to_numpy() == test["label"].to_numpy()).mean() > 0.9
    # the same rows with the training labels swapped: the baseline follows its training split
    swapped = predict_baselines(
        train.assign(label=1 - train["label"]), val, test, regression=False, seed=0
    )
    assert (swapped["tfidf_logreg"].to_numpy() != test["label"].to_numpy()).mean() > 0.9


def test_text_baseline_sees_the_words():
    train = pd.DataFrame(
        {"text": [f"a {w} film" for w in POSITIVE + NEGATIVE], "label": [1] * 8 + [0] * 8}
    )
    test = pd.DataFrame({"text": ["a superb film", "a tedious film"], "label": [1, 0]})
    out = predict_baselines(train, None, test, regression=False, seed=0)
    assert out["tfidf_logreg"].tolist() == [1, 0]


def test_tabular_baselines_take_missing_values():
    train, test = penguin_features(60, seed=1), penguin_features(20, seed=2)
    assert train.isna().any().any()  # the factory leaves a NaN in
    out = predict_baselines(train, penguin_features(20, seed=3), test, regression=False, seed=0)
    assert list(out.columns) == ["logistic_regression", "gradient_boosting"]
    assert out.dtypes.tolist() == [np.int64, np.int64]


def test_regression_baselines_include_the_mean():
    train = penguin_features(60, seed=1).assign(label=lambda f: f["bill_depth_mm"] * 2.0)
    test = penguin_features(20, seed=2).assign(label=lambda f: f["bill_depth_mm"] * 2.0)
    out = predict_baselines(train, None, test, regression=True, seed=0)
    assert set(out.columns) == {"ridge", "gradient_boosting", "mean"}
    assert np.allclose(out["mean"], train["label"].mean())


def test_baselines_can_be_turned_off():
    test = text_split(10, 2)
    out = fit_baselines(text_split(20, 0), None, test, {"baselines": False}, LABELS)
    assert out.columns.empty and len(out) == len(test)


def test_max_rows_subsamples_the_training_split(caplog):
    train, test = text_split(200, 0), text_split(20, 2)
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        predict_baselines(train, None, test, regression=False, seed=0, max_rows=50)
    assert "fitting on 50 of 200 training rows" in caplog.text


def _model_predictions(actual: list[int], predicted: list[int]) -> pd.DataFrame:
    return prediction_frame(LABELS["labels"], actual, predicted)


def test_a_crippled_model_below_the_baseline_is_warned_about(caplog):
    actual = [0, 1, 0, 1, 0, 1]
    crippled = _model_predictions(actual, [0] * 6)  # always the first class
    baselines = pd.DataFrame({"tfidf_logreg": actual, "other": [1] * 6})
    with caplog.at_level(logging.WARNING, logger="reprotrain"):
        metrics = compute_metrics(crippled, LABELS, baselines)
    assert metrics["baselines"]["tfidf_logreg"]["f1_macro"] == 1.0
    assert metrics["best_baseline"] == "tfidf_logreg" and metrics["below_baseline"] is True
    assert metrics["margin_f1_macro"] == pytest.approx(metrics["f1_macro"] - 1.0)
    assert "does not beat the tfidf_logreg baseline" in caplog.text
    table = model_comparison(metrics)
    assert table["model"].tolist() == ["trained model", "tfidf_logreg", "other"]


def test_a_model_at_or_above_the_baseline_is_not_warned_about(caplog):
    actual = [0, 1, 0, 1]
    with caplog.at_level(logging.WARNING, logger="reprotrain"):
        metrics = compute_metrics(
            _model_predictions(actual, actual), LABELS, pd.DataFrame({"b": actual})
        )
    assert metrics["below_baseline"] is False and "baseline" not in caplog.text


def test_regression_compares_on_mse(caplog):
    frame = pd.DataFrame({"actual": [1.0, 2.0, 3.0], "predicted": [1.0, 2.0, 3.5]})
    baselines = pd.DataFrame({"mean": [2.0, 2.0, 2.0]})
    with caplog.at_level(logging.WARNING, logger="reprotrain"):
        metrics = compute_metrics(frame, make_task(type="regression"), baselines)
    assert metrics["baselines"]["mean"]["mse"] == pytest.approx(2 / 3)
    assert metrics["below_baseline"] is False and metrics["margin_mse"] < 0
