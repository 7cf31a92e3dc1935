"""Cheap classical baselines, fitted on the model's own training split.

A deep model that loses to a linear model trained in seconds should say so. The evaluate step
fits these on exactly the rows the model trained on and scores them on exactly its test rows:

- text: TF-IDF of word 1-2-grams and character 2-5-grams, logistic regression;
- tables: logistic regression (mean-imputed, standardised) and gradient-boosted trees
  (scikit-learn's HistGradientBoosting, which takes missing values as they are);
- regression: ridge regression and the training mean.

The regularisation strength of the linear models is chosen on the validation split (the
model's early stopping sees the same split), as anyone building the baseline by hand would.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, mean_squared_error
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from reprotrain.features import feature_columns

log = logging.getLogger(__name__)

# Inverse regularisation strengths tried on the validation split (ridge: alpha = 1 / C).
C_GRID = (0.3, 3.0, 30.0)


def _text_features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
                ),
            ),
        ]
    )


def _linear(regression: bool, c: float, seed: int) -> BaseEstimator:
    if regression:
        return Ridge(alpha=1.0 / c)
    return LogisticRegression(C=c, max_iter=3000, random_state=seed)


def _dense_linear(regression: bool, c: float, seed: int) -> BaseEstimator:
    return make_pipeline(
        SimpleImputer(strategy="mean", keep_empty_features=True),
        StandardScaler(),
        _linear(regression, c, seed),
    )


def _score(y_true: np.ndarray, y_pred: np.ndarray, regression: bool) -> float:
    """Higher is better: macro-F1, or minus the MSE."""
    if regression:
        return -float(mean_squared_error(y_true, y_pred))
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _tuned(
    make: Callable[[float], BaseEstimator],
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray | None,
    regression: bool,
) -> BaseEstimator:
    """The estimator of ``C_GRID`` that scores best on validation (the first on a tie)."""
    if x_val is None:
        return make(1.0).fit(x_train, y_train)
    models = [make(c).fit(x_train, y_train) for c in C_GRID]
    return max(models, key=lambda model: _score(y_val, model.predict(x_val), regression))


def _features(table: pd.DataFrame, vectoriser: FeatureUnion | None) -> Any:
    """The baselines' inputs: TF-IDF of the text (``vectoriser``), or the numeric features."""
    if vectoriser is not None:
        return vectoriser.transform(table["text"].astype(str))
    return table[feature_columns(table)].to_numpy(dtype=np.float64, na_value=np.nan)


def _estimators(text: bool, regression: bool, seed: int) -> dict[str, Any]:
    """Name → how to fit it: a factory taking C (tuned on validation) or a fixed estimator."""
    linear = partial(_linear if text else _dense_linear, regression, seed=seed)
    if text and regression:
        return {"tfidf_ridge": linear, "mean": DummyRegressor(strategy="mean")}
    if text:
        return {"tfidf_logreg": linear}
    if regression:
        return {
            "ridge": linear,
            "gradient_boosting": HistGradientBoostingRegressor(random_state=seed),
            "mean": DummyRegressor(strategy="mean"),
        }
    return {
        "logistic_regression": linear,
        "gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }


def predict_baselines(
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    test_set: pd.DataFrame,
    *,
    regression: bool,
    seed: int,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Fit every baseline on ``train_set`` and predict ``test_set``.

    Args:
        train_set: The model's converted training split (``text`` or feature columns, and
            ``label``).
        validation_set: The model's validation split: picks the linear models' C.
        test_set: The model's test split.
        regression: Whether ``label`` is a number to predict rather than a class id.
        seed: The task's seed (tree models and subsampling).
        max_rows: Fit on at most this many training rows (sampled with ``seed``).

    Returns:
        One column per baseline, one row per test row in the test split's order: predicted
        class ids (int) or values (float).
    """
    if max_rows and len(train_set) > max_rows:
        log.info("baselines: fitting on %d of %d training rows", max_rows, len(train_set))
        train_set = train_set.sample(n=max_rows, random_state=seed)
    text = "text" in train_set.columns
    vectoriser = _text_features().fit(train_set["text"].astype(str)) if text else None
    x_train, y_train = _features(train_set, vectoriser), train_set["label"].to_numpy()
    x_val = y_val = None
    if validation_set is not None and len(validation_set):
        x_val, y_val = _features(validation_set, vectoriser), validation_set["label"].to_numpy()
    x_test = _features(test_set, vectoriser)
    out = pd.DataFrame(index=range(len(test_set)))
    for name, how in _estimators(text, regression, seed).items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # a baseline that has not fully converged is still a baseline; say nothing
            warnings.simplefilter("ignore", ConvergenceWarning)
            if isinstance(how, BaseEstimator):
                model = clone(how).fit(x_train, y_train)
            else:
                model = _tuned(how, x_train, y_train, x_val, y_val, regression)
        out[name] = model.predict(x_test).astype(np.float64 if regression else np.int64)
        log.info("baselines: %s fitted in %.1fs", name, time.perf_counter() - start)
    return out
