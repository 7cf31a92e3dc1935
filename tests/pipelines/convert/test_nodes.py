"""Tests of the convert node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprotrain.pipelines.clean.nodes import clean_table
from reprotrain.pipelines.convert.nodes import convert_table
from tests.conftest import load_params, load_task

PENGUINS_TASK = load_task("penguins")


@pytest.fixture
def text_task(tiny_tokenizer_dir):
    return load_task(model_checkpoint=str(tiny_tokenizer_dir), max_length=6)


TEXT = load_params("convert")


def test_text_becomes_truncated_unpadded_token_ids(tiny_tokenizer_dir, text_task):
    from transformers import AutoTokenizer

    cleaned = pd.DataFrame(
        {
            "id": [1, 2],
            "text": ["good film", "the plot was very dull and boring"],
            "label": ["positive", "negative"],
        }
    )
    out = convert_table(cleaned, {**TEXT, "batch_size": 1}, text_task)
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert out["input_ids"].map(len).tolist() == [4, 6]  # [CLS] good film [SEP]; truncated to 6
    assert list(out["input_ids"][0]) == tok("good film")["input_ids"]
    assert out["input_ids"][1][-1] == tok.sep_token_id
    assert out["label"].tolist() == [1, 0]
    assert out["id"].tolist() == [1, 2]


def test_token_ids_round_trip_through_parquet(tmp_path, text_task, reviews_raw):
    cleaned, _ = clean_table(reviews_raw, load_params("clean"), load_task())
    out = convert_table(cleaned, TEXT, text_task)
    out.to_parquet(tmp_path / "x.parquet")
    back = pd.read_parquet(tmp_path / "x.parquet")
    assert all(
        np.array_equal(a, b) for a, b in zip(out["input_ids"], back["input_ids"], strict=True)
    )
    assert len(out) == len(cleaned)


def test_tabular_one_hot_uses_fixed_categories(penguins_raw):
    params = load_params("convert", env="penguins")
    cleaned, _ = clean_table(penguins_raw, load_params("clean", env="penguins"), PENGUINS_TASK)
    out = convert_table(cleaned.iloc[:5], params, PENGUINS_TASK)  # a slice lacking some categories
    expected = [f"island={c}" for c in params["categories"]["island"]]
    assert set(expected) <= set(out.columns)
    assert out[expected].sum(axis=1).tolist() == [1.0] * 5
    assert out["sex=female"].dtype == np.float32
    missing_sex = cleaned.index[cleaned["sex"].isna()][0]
    row = convert_table(cleaned.loc[[missing_sex]], params, PENGUINS_TASK)
    assert row[["sex=female", "sex=male"]].sum(axis=1).item() == 0.0


def test_unknown_label_is_named(text_task):
    cleaned = pd.DataFrame({"text": ["good"], "label": ["mixed"]})
    with pytest.raises(ValueError, match=r"\['mixed'\] are not in the configured label list"):
        convert_table(cleaned, TEXT, text_task)


def test_missing_feature_column_is_named(penguins_raw):
    params = load_params("convert", env="penguins")
    cleaned, _ = clean_table(penguins_raw, load_params("clean", env="penguins"), PENGUINS_TASK)
    with pytest.raises(ValueError, match="body_mass_g"):
        convert_table(cleaned.drop(columns="body_mass_g"), params, PENGUINS_TASK)


def test_unseen_category_warns_and_encodes_as_zeros(penguins_raw, caplog):
    params = load_params("convert", env="penguins")
    cleaned, _ = clean_table(penguins_raw, load_params("clean", env="penguins"), PENGUINS_TASK)
    cleaned = cleaned.iloc[:4].copy()
    cleaned.loc[cleaned.index[0], "island"] = "Atlantis"
    with caplog.at_level("WARNING", logger="reprotrain.features"):
        out = convert_table(cleaned, params, PENGUINS_TASK)
    assert "column 'island': 1 row(s)" in caplog.text and "['Atlantis']" in caplog.text
    island = [f"island={c}" for c in params["categories"]["island"]]
    assert out[island].sum(axis=1).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_tokenizer_threads_give_the_same_ids_and_end_off(
    monkeypatch, tiny_tokenizer_dir, text_task
):
    """Convert tokenises with the fast tokenizer's threads: ids as one thread gives them."""
    import os

    from transformers import AutoTokenizer

    words = ["good", "film", "the", "plot", "was", "very", "dull", "and", "boring", "great"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(3000)]
    cleaned = pd.DataFrame({"text": texts, "label": "positive"})
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    serial = tok(texts, truncation=True, max_length=6)["input_ids"]
    out = convert_table(cleaned, {**TEXT, "batch_size": 1000}, text_task)
    assert [list(ids) for ids in out["input_ids"]] == serial
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"  # off again before any fork


def test_date_parts_follow_the_numbers_and_precede_the_categories(penguins_raw):
    raw = penguins_raw.assign(seen=[f"2015-03-{1 + i % 28:02d}" for i in range(len(penguins_raw))])
    clean = {**load_params("clean", env="penguins"), "date_columns": {"seen": "%Y-%m-%d"}}
    params = {**load_params("convert", env="penguins"), "date_columns": {"seen": "%Y-%m-%d"}}
    cleaned, _ = clean_table(raw, clean, PENGUINS_TASK)
    out = convert_table(cleaned, params, PENGUINS_TASK)
    features = [c for c in out.columns if c != "label"]
    numeric, categories = params["numeric_columns"], params["categories"]
    dates = ["seen.time", "seen.month", "seen.day_of_week", "seen.day_of_year"]  # no .hour
    one_hot = [f"{c}={v}" for c, values in categories.items() for v in values]
    assert features == [*numeric, *dates, *one_hot]
    assert out["seen.month"].eq(3).all() and out["seen.day_of_year"].iloc[:2].tolist() == [60, 61]

    timed = cleaned.assign(seen=cleaned["seen"] + " 00:00")
    timed.loc[3, "seen"] = "2015-03-04 06:30"  # one time of day: every row gets .hour
    out = convert_table(
        timed, {**params, "date_columns": {"seen": "%Y-%m-%d %H:%M"}}, PENGUINS_TASK
    )
    assert "seen.hour" in out.columns and out["seen.hour"].tolist()[2:4] == [0.0, 6.5]
    with pytest.raises(ValueError, match=r"'seen' has 150 value\(s\).*convert.date_columns"):
        convert_table(cleaned, {**params, "date_columns": {"seen": "%d.%m.%Y"}}, PENGUINS_TASK)
