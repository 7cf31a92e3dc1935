"""Clean: drop the rows that cannot be used, normalise text, and report what was removed."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reprotrain.features import (
    NON_FEATURES,
    as_missing,
    format_dates,
    label_text,
    normalise_text,
    parse_dates,
)
from reprotrain.params import CleanParams, parse

log = logging.getLogger(__name__)

SHOW_VALUES = 5  # unknown label values named in a warning
UNKNOWN_IN_REPORT = 20  # ... and in the clean report


class DataError(ValueError):
    """The input table cannot be used: a column is missing, or no usable row is left."""


def _require_columns(raw: pd.DataFrame, p: CleanParams) -> None:
    features = [*p.numeric_columns, *p.categorical_columns, *p.date_columns]
    reserved = [c for c in features if c in NON_FEATURES]
    if reserved:
        raise DataError(
            f"feature column(s) {reserved} have a name the cleaned table gives its own columns "
            f"({', '.join(NON_FEATURES)}): rename them in the raw file (and in "
            f"parameters_clean.yml and parameters_convert.yml)"
        )
    wanted = [p.label_column, p.text_column, p.id_column, p.group_column, *features]
    missing = [c for c in wanted if c is not None and c not in raw.columns]
    if missing:
        (header,) = raw.columns if len(raw.columns) == 1 else [""]
        sep = next((s for s in (";", "\t", "|") if s in str(header)), None)
        hint = (
            f"the file reads as one column: is it {sep!r}-separated? Give raw_table's load_args "
            f"a sep in the env's catalog.yml (`python -m reprotrain new-task` writes it)"
            if sep
            else "set the column names in parameters_clean.yml"
        )
        raise DataError(
            f"raw table is missing the configured column(s) {missing}; "
            f"it has {list(raw.columns)} ({hint})"
        )


def _numeric(raw: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as float64; a value that is present but not a number is an error, not NaN.

    A missing-value marker such as ``NA`` or ``null`` (:data:`reprotrain.features.NA_STRINGS`) is missing.
    """
    present = as_missing(raw[column])
    values = pd.to_numeric(present, errors="coerce").astype("float64")
    bad = present[values.isna() & present.notna()]
    if len(bad):
        raise DataError(
            f"column '{column}' must be numeric but has {len(bad)} non-numeric value(s), "
            f"e.g. {bad.astype(str).unique()[:3].tolist()}"
        )
    return values


def _dates(raw: pd.DataFrame, column: str, fmt: str) -> pd.Series:
    """``column``'s dates as written (stripped; missing-value markers missing), each checked
    to read with ``fmt``: convert and the package parse them with ``convert.date_columns``."""
    try:
        dates = parse_dates(raw[column], column, fmt)
    except ValueError as err:
        raise DataError(
            f"{err}: fix them, or give the column its format in clean.date_columns "
            f"(parameters_clean.yml)"
        ) from None
    if dates.isna().all():
        raise DataError(f"date column '{column}' has no values: all {len(raw)} are missing")
    if pd.api.types.is_datetime64_any_dtype(raw[column]):  # a Parquet file's own dates
        return format_dates(dates, fmt)
    return raw[column].astype("string").str.strip().where(dates.notna())


def _labels(raw: pd.DataFrame, p: CleanParams, labels: list[str] | None) -> pd.Series:
    """The label of each row as a string (classification: ``labels``) or float (regression:
    ``labels`` is ``None``); NA if none."""
    if labels is None:
        return _numeric(raw, p.label_column)
    if p.label_from_score is not None:
        score = _numeric(raw, p.label_column)
        rule = p.label_from_score
        out = pd.Series(pd.NA, index=raw.index, dtype="object")
        out[score < rule.threshold] = rule.below
        out[score > rule.threshold] = rule.above
        return out
    values = label_text(raw[p.label_column])
    if p.label_case == "insensitive":
        folded = {_fold(label): label for label in labels}
        values = values.map(lambda v: v if v is pd.NA else folded.get(_fold(v), v))
    return values


def _fold(label: str) -> str:
    """``label`` as ``label_case: insensitive`` compares it: case-folded, spaces collapsed."""
    return " ".join(label.split()).casefold()


def _standardise(raw: pd.DataFrame, p: CleanParams, labels: list[str] | None) -> pd.DataFrame:
    """The configured columns under standard names, text whitespace-normalised."""
    if p.id_column and raw[p.id_column].duplicated().any():
        dupes = raw[p.id_column][raw[p.id_column].duplicated()].unique()[:5].tolist()
        raise DataError(f"column '{p.id_column}' must hold unique ids; repeated: {dupes}")
    out = pd.DataFrame(index=raw.index)
    if p.id_column:
        out["id"] = raw[p.id_column]
    if p.group_column:
        out["group"] = raw[p.group_column].astype("string")
    if p.text_column:
        out["text"] = normalise_text(raw[p.text_column].astype("string"))
    for c in p.numeric_columns:
        out[c] = _numeric(raw, c)
        if out[c].isna().all():
            raise DataError(f"numeric column '{c}' has no values: all {len(raw)} are missing")
    for c in p.categorical_columns:  # "NA" here is a missing value, as in a numeric column
        out[c] = as_missing(raw[c].astype("string").str.strip())
    for c, fmt in p.date_columns.items():
        out[c] = _dates(raw, c, fmt)
    out["label"] = _labels(raw, p, labels)
    return out


def _usable(
    out: pd.DataFrame, raw: pd.DataFrame, p: CleanParams, labels: list[str] | None
) -> tuple[pd.Series, dict, dict[str, int]]:
    """Which rows to keep, how many were dropped for each reason (first reason wins), and
    the label values outside ``labels`` with their counts, most frequent first."""
    removed: dict[str, int] = {}
    keep = pd.Series(True, index=out.index)
    unknown: dict[str, int] = {}

    def drop(reason: str, mask: pd.Series) -> pd.Series:
        mask = mask.fillna(False).astype(bool) & keep
        removed[reason] = int(mask.sum())
        keep[mask] = False
        return mask

    if p.label_from_score is not None:
        score = pd.to_numeric(raw[p.label_column], errors="coerce")
        drop("missing_label", score.isna())
        drop("neutral_score", score == p.label_from_score.threshold)
    else:
        drop("missing_label", out["label"].isna())
    if labels is not None:
        dropped = drop("unknown_label", ~out["label"].isin(labels))
        counts = out["label"][dropped].astype(str).value_counts()
        unknown = {str(v): int(n) for v, n in counts.items()}
    if p.text_column:
        drop("empty_text", out["text"].isna() | (out["text"] == ""))
    features = [*p.numeric_columns, *p.categorical_columns, *p.date_columns]
    if features and p.missing_features == "drop":
        drop("missing_feature", out[features].isna().any(axis=1))
    if p.numeric_columns:
        values = out[p.numeric_columns].to_numpy(dtype="float64", na_value=float("nan"))
        drop("infinite_feature", pd.Series((abs(values) == float("inf")).any(axis=1), out.index))
    if p.drop_duplicates:
        content = [c for c in out.columns if c not in ("id", "group")]
        drop("duplicate", out[content].duplicated(keep="first"))
    return keep, removed, unknown


def clean_table(
    raw: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> tuple[pd.DataFrame, dict]:
    """Drop unusable rows and return the cleaned table with a report of removals by reason.

    The cleaned table has standard column names: ``text`` and/or the feature columns,
    ``label``, and ``id`` / ``group`` when configured. The input frame is never modified.

    Args:
        raw: The raw table, as read by the catalog.
        parameters: The ``clean`` parameter group.
        task: The ``task`` parameter group (type and labels).

    Returns:
        The cleaned table, and ``{"rows_in", "rows_out", "removed": {reason: count}}``.

    Raises:
        DataError: When a configured column is missing, non-numeric where numbers are
            expected or wholly empty, ids repeat, or no usable row (or only one class) is
            left.
    """
    t = parse("task", task)
    p = parse("clean", parameters, t)
    labels = t.labels if t.type == "classification" else None
    _require_columns(raw, p)
    if raw.empty:
        raise DataError("raw table has no rows")
    out = _standardise(raw, p, labels)
    keep, removed, unknown = _usable(out, raw, p, labels)
    cleaned = out[keep].reset_index(drop=True)
    if cleaned.empty:
        raise DataError(f"no usable rows left after cleaning (removed: {removed})")
    if labels is not None:
        cleaned["label"] = cleaned["label"].astype("string")
        classes = sorted(cleaned["label"].unique())
        if len(classes) < 2:
            raise DataError(
                f"only one class {classes} is left after cleaning; a classifier needs at least "
                f"two of {labels}"
            )
    features = cleaned[[*p.numeric_columns, *p.categorical_columns, *p.date_columns]]
    missing = {c: int(n) for c, n in features.isna().sum().items() if n}  # missing_features: keep
    report = {"rows_in": len(raw), "rows_out": len(cleaned), "removed": removed}
    if unknown:
        report["unknown_labels"] = dict(list(unknown.items())[:UNKNOWN_IN_REPORT])
    if missing:
        report["missing_kept"] = missing
    log.info("clean: kept %d of %d rows; removed %s", len(cleaned), len(raw), removed)
    _warn_about_unknown_labels(unknown, labels or [])
    _warn_about_losses(report, p)
    return cleaned, report


def _warn_about_unknown_labels(unknown: dict[str, int], labels: list[str]) -> None:
    """Name the label values that were dropped as unknown, and say how to keep them."""
    if not unknown:
        return
    shown = ", ".join(f"{v!r} ({n})" for v, n in list(unknown.items())[:SHOW_VALUES])
    more = f" and {len(unknown) - SHOW_VALUES} other value(s)" if len(unknown) > SHOW_VALUES else ""
    folded = {_fold(label) for label in labels}
    near = [v for v in unknown if _fold(v) in folded]
    hint = (
        f"; {near[:SHOW_VALUES]} differ from a configured label only in case or spacing: "
        f"set clean.label_case: insensitive to keep them"
        if near
        else "; add them to task.labels in globals.yml if they are classes"
    )
    log.warning(
        "clean dropped %d row(s) whose label is not one of task.labels %s: %s%s%s",
        sum(unknown.values()),
        labels,
        shown,
        more,
        hint,
        extra={"markup": False},
    )


def _warn_about_losses(report: dict, p: CleanParams) -> None:
    """Say what was dropped and what will be imputed, loudly when it is a lot."""
    dropped = report["rows_in"] - report["rows_out"]
    if dropped > p.warn_drop_share * report["rows_in"]:
        reasons = ", ".join(f"{n} {why}" for why, n in report["removed"].items() if n)
        hint = (
            " (missing_features: keep imputes missing numbers with training means instead)"
            if report["removed"].get("missing_feature") and p.missing_features == "drop"
            else ""
        )
        log.warning(
            "clean dropped %d of %d rows (%.0f%%, more than clean.warn_drop_share %.0f%%): %s%s",
            dropped,
            report["rows_in"],
            100 * dropped / report["rows_in"],
            100 * p.warn_drop_share,
            reasons,
            hint,
        )
    if report.get("missing_kept"):
        log.info(
            "clean: missing feature cells kept, per column (numbers are imputed with "
            "training-split means, categories encode as all zeros): %s",
            report["missing_kept"],
        )
