"""Predict: a packaged model's labels and scores for every row of a new table."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd

from reprotrain.features import as_missing
from reprotrain.inference import predict_rows
from reprotrain.packaging import Package, PackageError, PackageInputError, load_package
from reprotrain.params import PredictParams, parse

log = logging.getLogger(__name__)


def predict_table(
    model_package: Package,
    predict_input: pd.DataFrame | Iterable[pd.DataFrame],
    parameters: dict[str, Any],
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Predict every row; return the input columns plus ``predicted_label`` and ``score``.

    Regression packages add ``prediction`` instead. The table is read literally (a text
    "None" is a text); in a tabular package's feature columns ``NA``, ``null``, ... are
    missing values, as in the clean step.

    ``predict_input`` may also be an iterable of chunks (the catalog reads the CSV with
    ``chunksize``): then the first chunk is predicted at once (so a bad table fails here)
    and the rest lazily, chunk by chunk, as the output dataset writes them; memory does not
    grow with the file. A file of one chunk gives exactly the output of the whole table.

    Raises:
        PackageInputError: The table lacks a column the model needs, or already has a column
            named like one that predict adds (both named in the message).
    """
    p = parse("predict", parameters)
    if p.backend == "onnx" and getattr(model_package, "backend", "torch") != "onnx":
        folder = getattr(model_package, "folder", None)
        if folder is None:
            raise PackageError("predict.backend onnx needs a text package loaded from a folder")
        model_package = load_package(folder, verify=False, backend="onnx")  # checked on load
    if isinstance(predict_input, pd.DataFrame):
        out = _predict_chunk(model_package, predict_input, p)
        log.info("predict: %d rows", len(out))
        return out
    chunks = iter(predict_input)
    first = next(chunks, None)
    if first is None:
        raise PackageInputError("the table to predict has no header and no rows")
    return _stream(_predict_chunk(model_package, first, p), model_package, chunks, p)


def _predict_chunk(
    package: Package, rows: pd.DataFrame, p: PredictParams, what: str = "predict"
) -> pd.DataFrame:
    """The predictions of one table (or chunk): its columns plus the added ones."""
    added = ["predicted_label", "score"] if package.labels is not None else ["prediction"]
    taken = [c for c in added if c in rows.columns]  # a former predictions file, say
    if taken:
        raise PackageInputError(
            f"the table to predict already has the column(s) {taken} that predict adds to "
            f"its output; the output would hold two columns of that name. Rename or drop "
            f"them in the input (a former predictions file: keep only the input columns)."
        )
    # date columns need nothing here: the package's parse_dates reads markers as missing
    columns = [*getattr(package, "numeric_columns", []), *getattr(package, "categories", {})]
    present = [c for c in columns if c in rows.columns]
    preds = predict_rows(
        package,
        rows.assign(**{c: as_missing(rows[c]) for c in present}) if present else rows,
        batch_size=p.batch_size,
        text_column=p.text_column,
        every_s=p.log_every_s,
        what=what,
    )
    if "label" in preds.columns:
        preds = preds[["label", "score"]].rename(columns={"label": "predicted_label"})
    return pd.concat([rows.reset_index(drop=True), preds], axis=1)


def _stream(
    first: pd.DataFrame, package: Package, chunks: Iterator[pd.DataFrame], p: PredictParams
) -> Iterator[pd.DataFrame]:
    """``first``, then each further chunk's predictions (progress lines name the rows)."""
    rows = len(first)
    yield first
    for chunk in chunks:
        out = _predict_chunk(package, chunk, p, f"predict, rows {rows + 1}-{rows + len(chunk)}")
        rows += len(out)
        yield out
    log.info("predict: %d rows", rows)
