"""Tests of the clean node."""

from __future__ import annotations

import pandas as pd
import pytest

from reprotrain.params import ParameterError
from reprotrain.pipelines.clean.nodes import DataError, clean_table
from tests.conftest import load_params, load_task

REVIEWS = load_params("clean")
PENGUINS = load_params("clean", env="penguins")
TASK = load_task()
PENGUINS_TASK = load_task("penguins")


def test_text_rows_cleaned_and_counted():
    raw = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7],
            "sentiment": [1.5, -2.0, 0.0, None, 2.0, 1.5, -1.0],
            "text": [
                "  a  good\tfilm ",
                "bad",
                "meh",
                "no score",
                "   ",
                "  a  good\tfilm ",
                "dull",
            ],
        }
    )
    before = raw.copy(deep=True)
    cleaned, report = clean_table(raw, REVIEWS, TASK)
    pd.testing.assert_frame_equal(raw, before)  # input never mutated
    assert cleaned["text"].tolist() == ["a good film", "bad", "dull"]
    assert cleaned["label"].tolist() == ["positive", "negative", "negative"]
    assert cleaned["id"].tolist() == [1, 2, 7]
    assert report == {
        "rows_in": 7,
        "rows_out": 3,
        "removed": {
            "missing_label": 1,
            "neutral_score": 1,
            "unknown_label": 0,
            "empty_text": 1,
            "duplicate": 1,
        },
    }


def test_tabular_keeps_missing_features_when_configured(penguins_raw):
    cleaned, report = clean_table(penguins_raw, PENGUINS, PENGUINS_TASK)
    assert len(cleaned) == len(penguins_raw)
    assert cleaned["bill_length_mm"].isna().sum() == 1
    assert set(cleaned["label"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert "missing_feature" not in report["removed"]  # kept: imputed later from train means
    assert report["missing_kept"] == {"bill_length_mm": 1, "body_mass_g": 1, "sex": 1}


def test_dropping_many_rows_warns_with_the_reasons(penguins_raw, caplog):
    raw = penguins_raw.copy()
    raw.loc[raw.index[:60], "flipper_length_mm"] = None  # 40% of the rows miss a number
    with caplog.at_level("WARNING", logger="reprotrain"):
        cleaned, report = clean_table(raw, {**PENGUINS, "missing_features": "drop"}, PENGUINS_TASK)
    assert report["removed"]["missing_feature"] == 60
    assert "clean dropped 60 of 150 rows (40%" in caplog.text
    assert "missing_features: keep imputes" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="reprotrain"):
        clean_table(penguins_raw, {**PENGUINS, "missing_features": "drop"}, PENGUINS_TASK)
    assert "clean dropped" not in caplog.text  # 2 of 150: below the share


def test_tabular_drops_missing_and_unknown_labels(penguins_raw):
    raw = penguins_raw.copy()
    raw.loc[0, "species"] = "Emperor"
    raw.loc[1, "species"] = None
    raw.loc[2, "flipper_length_mm"] = float("inf")
    cleaned, report = clean_table(raw, {**PENGUINS, "missing_features": "drop"}, PENGUINS_TASK)
    removed = report["removed"]
    assert removed["unknown_label"] == 1
    assert removed["missing_label"] == 1
    assert removed["missing_feature"] == 2  # row 3 (bill, mass) and row 7 (sex)
    assert removed["infinite_feature"] == 1
    assert len(cleaned) == len(raw) - 5


def test_missing_column_names_the_column(reviews_raw):
    with pytest.raises(DataError, match=r"missing the configured column\(s\) \['text'\]"):
        clean_table(reviews_raw.rename(columns={"text": "review"}), REVIEWS, TASK)


@pytest.mark.parametrize("reserved", ["group", "label", "id"])
def test_a_feature_named_like_a_column_of_the_cleaned_table_is_refused(penguins_raw, reserved):
    """The cleaned table names its own columns label, id, group, text: a feature cannot."""
    raw = penguins_raw.rename(columns={"island": reserved})
    params = {**PENGUINS, "categorical_columns": [reserved, "sex"]}
    with pytest.raises(DataError, match=rf"feature column\(s\) \['{reserved}'\] have a name"):
        clean_table(raw, params, PENGUINS_TASK)


def test_header_only_table_fails(reviews_raw):
    with pytest.raises(DataError, match="no rows"):
        clean_table(reviews_raw.iloc[:0], REVIEWS, TASK)


def test_all_labels_missing_fails(reviews_raw):
    raw = reviews_raw.assign(sentiment=None)
    with pytest.raises(DataError, match=r"no usable rows left.*'missing_label': 240"):
        clean_table(raw, REVIEWS, TASK)


def test_parameter_typo_names_key_and_allowed_keys(reviews_raw):
    with pytest.raises(ParameterError, match=r"unknown key 'clean.text_colum'.*text_column"):
        clean_table(reviews_raw, {**REVIEWS, "text_colum": "text"}, TASK)


def test_bad_value_names_allowed_values(reviews_raw):
    with pytest.raises(ParameterError, match=r"'clean.missing_features'.*'drop' or 'keep'"):
        clean_table(reviews_raw, {**REVIEWS, "missing_features": "impute"}, TASK)


def test_duplicated_ids_are_an_error(reviews_raw):
    raw = reviews_raw.copy()
    raw.loc[5, "id"] = raw.loc[4, "id"]
    with pytest.raises(DataError, match=r"column 'id' must hold unique ids; repeated: \[5\]"):
        clean_table(raw, REVIEWS, TASK)


def test_non_numeric_values_in_a_numeric_column_are_named(penguins_raw):
    raw = penguins_raw.astype({"body_mass_g": "object"})
    raw.loc[2, "body_mass_g"] = "heavy"
    with pytest.raises(DataError, match=r"column 'body_mass_g' must be numeric.*\['heavy'\]"):
        clean_table(raw, PENGUINS, PENGUINS_TASK)


def test_non_numeric_score_is_named(reviews_raw):
    raw = reviews_raw.astype({"sentiment": "object"})
    raw.loc[0, "sentiment"] = "great!"
    with pytest.raises(DataError, match=r"column 'sentiment' must be numeric"):
        clean_table(raw, REVIEWS, TASK)


def test_single_class_is_an_error(reviews_raw):
    raw = reviews_raw.assign(sentiment=reviews_raw["sentiment"].abs())
    with pytest.raises(DataError, match=r"only one class \['positive'\]"):
        clean_table(raw, REVIEWS, TASK)


def test_very_long_text_is_kept_whole_for_the_tokenizer(reviews_raw):
    raw = reviews_raw.copy()
    raw.loc[0, "text"] = "good " * 20_000
    cleaned, _ = clean_table(raw, REVIEWS, TASK)
    assert len(cleaned.loc[cleaned["id"] == 1, "text"].item()) == len("good " * 20_000) - 1


def test_a_wholly_empty_numeric_column_is_named(penguins_raw):
    with pytest.raises(DataError, match="numeric column 'body_mass_g' has no values: all 150"):
        clean_table(penguins_raw.assign(body_mass_g=None), PENGUINS, PENGUINS_TASK)


def _with_dates(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` with a ``seen`` column of day.month.year dates, one missing (row 4)."""
    days = pd.date_range("2015-01-30", periods=len(raw), freq="D").strftime("%d.%m.%Y")
    return raw.assign(seen=days.where(raw.index != 4, "NA"))


def test_a_date_column_is_a_feature_kept_as_written_and_its_missing_values_follow_the_policy(
    penguins_raw,
):
    raw = _with_dates(penguins_raw)
    params = {**PENGUINS, "date_columns": {"seen": "%d.%m.%Y"}}
    cleaned, report = clean_table(raw, params, PENGUINS_TASK)
    assert cleaned["seen"].iloc[:3].tolist() == ["30.01.2015", "31.01.2015", "01.02.2015"]
    assert cleaned["seen"].isna().sum() == 1 and report["missing_kept"]["seen"] == 1
    cleaned, report = clean_table(raw, {**params, "missing_features": "drop"}, PENGUINS_TASK)
    assert cleaned["seen"].notna().all()
    assert report["removed"]["missing_feature"] == 3  # row 4 beside the two penguins rows


def test_a_date_that_does_not_read_with_its_format_is_named(penguins_raw):
    raw = _with_dates(penguins_raw)
    raw.loc[7, "seen"] = "2015-02-06"
    params = {**PENGUINS, "date_columns": {"seen": "%d.%m.%Y"}}
    with pytest.raises(DataError, match=r"date column 'seen' has 1 value.*'%d.%m.%Y'.*2015-02-06"):
        clean_table(raw, params, PENGUINS_TASK)
    with pytest.raises(DataError, match=r"missing the configured column\(s\) \['seen'\]"):
        clean_table(penguins_raw, params, PENGUINS_TASK)


def test_dates_a_parquet_file_holds_as_dates_are_written_in_the_configured_format(penguins_raw):
    raw = penguins_raw.assign(seen=pd.Timestamp("2015-03-04 13:45"))
    raw.loc[2, "seen"] = pd.NaT
    params = {**PENGUINS, "date_columns": {"seen": "%d.%m.%Y %H:%M"}}
    cleaned, _ = clean_table(raw, params, PENGUINS_TASK)
    assert cleaned["seen"].iloc[:3].tolist() == ["04.03.2015 13:45", "04.03.2015 13:45", pd.NA]
