"""The converted table's schema, one-hot encoding over a fixed category list, text normalisation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# Columns of a converted table that are not model features: the target, row identity, and
# the text (kept beside its token ids for the text baseline and for reading predictions).
NON_FEATURES = ("label", "id", "group", "input_ids", "text")

# Cells that mean "missing" in a numeric or categorical feature: pandas' default NA strings,
# and "?" (the UCI repository's marker).
# Labels and texts are read literally (a class named "NA" is data): see the catalog's
# load_args of raw_table and predict_input.
NA_STRINGS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"]
    + ["<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "?"]
)


def as_missing(values: pd.Series) -> pd.Series:
    """``values`` with the strings in :data:`NA_STRINGS` (after stripping) as missing."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    return values.mask(values.astype("string").str.strip().isin(NA_STRINGS))


def label_text(values: pd.Series) -> pd.Series:
    """Labels read literally (``str(value).strip()``: "NA" is a class); a blank cell is NA."""
    text = values.astype("object").where(values.notna(), pd.NA)
    return text.map(lambda v: v if v is pd.NA else (str(v).strip() or pd.NA))


def normalise_text(values: pd.Series) -> pd.Series:
    """Text with each run of whitespace as one space and no space at either end.

    The clean step's text and the package's input text: one rule, so that a served text
    reaches the tokenizer exactly as a training text did.
    """
    return values.str.replace(r"\s+", " ", regex=True).str.strip()


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The numeric feature columns of a converted table, in order."""
    return [c for c in table.columns if c not in NON_FEATURES]


def one_hot(values: pd.Series, column: str, categories: list[str]) -> dict[str, np.ndarray]:
    """``{"<column>=<category>": float32 indicator}`` for each configured category.

    A missing value encodes as all zeros. So does a value outside ``categories``, with a
    warning that names the column and the unseen values: the model never saw them, so its
    prediction for those rows rests on the other features alone.
    """
    text = values.astype("string").str.strip()
    unseen = text.notna() & ~text.isin(categories)
    if unseen.any():
        found = sorted(text[unseen].unique().tolist())
        log.warning(
            "column '%s': %d row(s) hold value(s) outside its categories %s: %s; they encode "
            "as all zeros",
            column,
            int(unseen.sum()),
            categories,
            found[:10],
        )
    return {
        f"{column}={cat}": (text == cat).fillna(False).to_numpy(dtype=np.float32)
        for cat in categories
    }


# The features a date column gives, in order (``date_parts``); ``.hour`` only where some row
# has a time of day (``date_features``).
DATE_PARTS = ("time", "month", "day_of_week", "day_of_year", "hour")
SHOW_BAD_DATES = 5


def parse_dates(values: pd.Series, column: str, fmt: str) -> pd.Series:
    """``values`` as datetimes read with ``fmt`` (a strptime format, or ``ISO8601``).

    Missing-value markers (:func:`as_missing`) become ``NaT``.

    Raises:
        ValueError: A present value does not parse with ``fmt``; the message names the
            column, the format and up to five such values.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    present = as_missing(values.astype("object")).astype("string").str.strip()
    present = present.mask(present == "")
    try:
        dates = pd.to_datetime(present, format=fmt, errors="coerce")
    except (ValueError, TypeError) as err:  # e.g. ISO8601 values with mixed time zones
        raise ValueError(
            f"date column '{column}' does not read with format {fmt!r}: {err}"
        ) from None
    bad = present[dates.isna() & present.notna()]
    if len(bad):
        shown = bad.unique()[:SHOW_BAD_DATES].tolist()
        raise ValueError(
            f"date column '{column}' has {len(bad)} value(s) that do not read with format "
            f"{fmt!r}, e.g. {shown}"
        )
    return dates


def format_dates(dates: pd.Series, fmt: str) -> pd.Series:
    """``dates`` written with ``fmt`` (``ISO8601``: ``isoformat``), so that
    :func:`parse_dates` reads them back; NaT stays missing."""
    write = (lambda d: d.isoformat()) if fmt == "ISO8601" else (lambda d: d.strftime(fmt))
    return dates.map(write, na_action="ignore").astype("string")


def date_parts(dates: pd.Series, column: str) -> dict[str, np.ndarray]:
    """The float32 features of ``dates``: ``<column>.time``, ``.month``, ``.day_of_week``,
    ``.day_of_year`` and ``.hour``, in that order; NaT gives NaN in each.

    ``.time`` is the date as years (year + elapsed share of the year, time of day included):
    a trend. ``.month`` 1-12, ``.day_of_week`` 0 (Monday) - 6, ``.day_of_year`` 1-366,
    ``.hour`` hours since midnight (minutes as a fraction).
    """
    d = dates.dt
    day = d.hour * 3600 + d.minute * 60 + d.second  # seconds since midnight
    days_in_year = d.is_leap_year.astype("float64") + 365.0
    year = d.year + (d.day_of_year - 1 + day / 86400) / days_in_year
    parts = {
        "time": year,
        "month": d.month,
        "day_of_week": d.day_of_week,
        "day_of_year": d.day_of_year,
        "hour": d.hour + d.minute / 60,
    }
    return {
        f"{column}.{name}": values.astype("float64").where(dates.notna()).to_numpy(np.float32)
        for name, values in parts.items()
    }


def date_features(dates: pd.Series, column: str) -> dict[str, np.ndarray]:
    """``date_parts`` without ``.hour`` when no date has a time of day (all at midnight)."""
    parts = date_parts(dates, column)
    if not (dates.dropna() != dates.dropna().dt.normalize()).any():
        del parts[f"{column}.hour"]
    return parts
