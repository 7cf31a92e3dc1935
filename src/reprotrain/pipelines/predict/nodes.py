"""Predict: a packaged model's labels and scores for every row of a new table."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reprotrain.packaging import Package
from reprotrain.params import parse

log = logging.getLogger(__name__)


def predict_table(
    model_package: Package, predict_input: pd.DataFrame, parameters: dict[str, Any]
) -> pd.DataFrame:
    """Predict every row; return the input columns plus ``predicted_label`` and ``score``.

    Regression packages add ``prediction`` instead. The package was loaded (and its
    manifest checked) by the catalog.

    Raises:
        PackageInputError: The table lacks a column the model needs (named in the message).
    """
    p = parse("predict", parameters)
    preds = model_package.predict(predict_input, batch_size=p.batch_size, text_column=p.text_column)
    if "label" in preds.columns:
        preds = preds[["label", "score"]].rename(columns={"label": "predicted_label"})
    out = pd.concat([predict_input.reset_index(drop=True), preds], axis=1)
    log.info("predict: %d rows", len(out))
    return out
