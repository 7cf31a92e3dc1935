"""Clean and predict never lose or invent data (issue #17, part "data").

- The raw table and the table to predict are read literally: a class named ``NA`` and the
  texts ``None``, ``NA``, ``null`` are data; only an empty cell is missing. In numeric and
  categorical feature columns ``NA`` still means missing.
- Labels outside ``task.labels`` are named (values and counts) in the clean report and a
  warning; ``clean.label_case: insensitive`` keeps ``adelie`` / ``ADELIE`` as ``Adelie``.
- ``predictions`` may not point at data the project reads or writes (the raw table, the
  table being predicted, a catalog output, the package, ``data/01_raw``): the run stops before
  anything is written. An input column named like an output column is refused.
- A long prediction logs progress lines (rows done, rows/s, time left).

The predict cases share one tiny trained project per module (the ``good_runs`` pattern of
``tests/test_bad_inputs.py``) and run through a real ``KedroSession``; one case runs the
``kedro`` command for its exit status.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kedro_datasets.pandas import CSVDataset

from reprotrain.packaging import PackageInputError, in_memory_package, load_package
from reprotrain.params import ParameterError
from reprotrain.pipelines.clean.nodes import clean_table
from reprotrain.pipelines.predict.nodes import predict_table
from tests.conftest import (
    PROJECT_ROOT,
    hashes,
    kedro_in_process,
    load_params,
    load_task,
    make_penguins,
    make_reviews,
)
from tests.factories import (
    PENGUIN_LABELS,
    REVIEW_LABELS,
    tiny_bert,
)
from tests.pipelines.predict.test_predict import _penguin_package

PENGUINS = load_params("clean", "penguins")
PENGUINS_TASK = load_task("penguins")
REVIEWS_PREDICT = "data/01_raw/reviews_predict_input.csv"
PACKAGE = "data/06_models/reviews/package"
LITERAL_TEXTS = ["None", "NA", "null"]


def catalog_entry(name: str) -> dict:
    """The entry ``name`` of the real ``conf/base/catalog.yml``."""
    return yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())[name]


def read_as_catalog(name: str, path: Path) -> pd.DataFrame:
    """``path`` read with the load arguments of catalog entry ``name`` (chunks joined)."""
    data = CSVDataset(filepath=str(path), load_args=catalog_entry(name).get("load_args")).load()
    return data if isinstance(data, pd.DataFrame) else pd.concat(list(data), ignore_index=True)


# ----------------------------------------------------------------------------- clean: reading
def test_a_class_named_NA_and_NA_features_through_the_catalog(scratch_project):
    """A third of the penguins are of class ``NA``; R-style ``NA`` marks missing features."""
    raw = make_penguins().astype({"species": object, "body_mass_g": object, "sex": object})
    raw.loc[raw["species"] == "Adelie", "species"] = "NA"
    raw.loc[5, "body_mass_g"] = "NA"  # numeric feature: missing
    raw.loc[9, "sex"] = "NA"  # categorical feature: missing (decided: as pandas reads it)
    scratch_project.write_raw(raw, "penguins.csv")
    scratch_project.write_task({"labels": ["NA", "Chinstrap", "Gentoo"]}, env="penguins")

    scratch_project.run("clean", env="penguins")

    cleaned = pd.read_parquet(
        scratch_project.path("data/02_intermediate/penguins/clean_table.parquet")
    )
    report = yaml.safe_load(
        scratch_project.path("data/08_reporting/penguins/clean_report.json").read_text()
    )
    assert report["removed"]["missing_label"] == 0  # was 50: the class read as missing
    assert report["rows_out"] == 150
    assert (cleaned["label"] == "NA").sum() == 50
    assert pd.isna(cleaned.loc[5, "body_mass_g"])
    assert pd.isna(cleaned.loc[9, "sex"])
    assert report["missing_kept"] == {"bill_length_mm": 1, "body_mass_g": 2, "sex": 2}


def test_texts_None_NA_null_are_kept_by_clean(scratch_project):
    raw = make_reviews()
    raw.loc[[0, 1, 2], "text"] = LITERAL_TEXTS
    raw.loc[3, "text"] = None  # a truly empty cell: still dropped
    scratch_project.write_raw(raw)

    scratch_project.run("clean")

    cleaned = pd.read_parquet(
        scratch_project.path("data/02_intermediate/reviews/clean_table.parquet")
    )
    assert set(LITERAL_TEXTS) <= set(cleaned["text"])
    report = yaml.safe_load(
        scratch_project.path("data/08_reporting/reviews/clean_report.json").read_text()
    )
    assert report["removed"]["empty_text"] == 1


# --------------------------------------------------------------------- clean: unknown labels
def mixed_case_penguins() -> pd.DataFrame:
    raw = make_penguins().astype({"species": object})
    adelie = raw.index[raw["species"] == "Adelie"]
    raw.loc[adelie[:30], "species"] = "adelie"
    raw.loc[adelie[30:40], "species"] = " ADELIE "
    raw.loc[adelie[40:], "species"] = "Emperor"
    return raw


def test_unknown_labels_are_named_with_counts(caplog):
    with caplog.at_level("WARNING", logger="reprotrain"):
        cleaned, report = clean_table(mixed_case_penguins(), PENGUINS, PENGUINS_TASK)
    assert report["removed"]["unknown_label"] == 50
    assert report["unknown_labels"] == {"adelie": 30, "ADELIE": 10, "Emperor": 10}
    assert "'adelie' (30), 'ADELIE' (10), 'Emperor' (10)" in caplog.text
    assert "clean.label_case: insensitive" in caplog.text


def test_label_case_insensitive_maps_onto_the_configured_labels(caplog):
    with caplog.at_level("WARNING", logger="reprotrain"):
        cleaned, report = clean_table(
            mixed_case_penguins(), {**PENGUINS, "label_case": "insensitive"}, PENGUINS_TASK
        )
    assert report["removed"]["unknown_label"] == 10
    assert report["unknown_labels"] == {"Emperor": 10}
    assert (cleaned["label"] == "Adelie").sum() == 40
    assert set(cleaned["label"]) == set(PENGUIN_LABELS)
    assert "'Emperor' (10)" in caplog.text and "label_case" not in caplog.text


def test_label_case_insensitive_refuses_labels_it_cannot_tell_apart():
    with pytest.raises(ParameterError, match=r"cannot tell the labels \['yes', 'YES'\] apart"):
        clean_table(
            mixed_case_penguins(),
            {**PENGUINS, "label_case": "insensitive"},
            {**PENGUINS_TASK, "labels": ["yes", "YES"]},
        )


# --------------------------------------------------------------------- predict: node level
@pytest.mark.parametrize("column", ["score", "predicted_label"])
def test_an_input_column_named_like_an_output_is_refused(column):
    rows = make_penguins(6).drop(columns="species").assign(**{column: 1})
    with pytest.raises(PackageInputError, match=rf"already has the column\(s\) \['{column}'\]"):
        predict_table(_penguin_package(), rows, {})


def test_tabular_predict_reads_NA_features_as_missing(tmp_path):
    """R-style ``NA`` in numeric and categorical columns predicts as an empty cell does."""
    rows = make_penguins(12).drop(columns="species")
    rows.to_csv(tmp_path / "empty.csv", index=False)
    rows.to_csv(tmp_path / "na.csv", index=False, na_rep="NA")
    with_empty = predict_table(
        _penguin_package(), read_as_catalog("predict_input", tmp_path / "empty.csv"), {}
    )
    with_na = predict_table(
        _penguin_package(), read_as_catalog("predict_input", tmp_path / "na.csv"), {}
    )
    pd.testing.assert_frame_equal(
        with_na[["predicted_label", "score"]], with_empty[["predicted_label", "score"]]
    )
    assert with_na.loc[7, "sex"] == "NA"  # the output shows the input as it was written


def test_long_predictions_log_progress_and_predict_the_same(tiny_tokenizer_dir, caplog):
    package = in_memory_package(
        tiny_bert(REVIEW_LABELS),
        task="classification",
        labels=REVIEW_LABELS,
        tokenizer=str(tiny_tokenizer_dir),
        max_length=32,
    )
    rows = make_reviews(100, seed=3)[["id", "text"]]
    with caplog.at_level("INFO", logger="reprotrain"):
        out = predict_table(package, rows, {"batch_size": 4, "log_every_s": 0})
    lines = [r.getMessage() for r in caplog.records if " rows/s, about " in r.getMessage()]
    assert [line.split(" rows (")[0] for line in lines] == [
        "predict: 32 of 100",
        "predict: 64 of 100",
        "predict: 96 of 100",
    ]
    expected = package.predict(rows, batch_size=4)  # one call: the same batches, bit for bit
    assert out["predicted_label"].tolist() == expected["label"].tolist()
    assert out["score"].tolist() == expected["score"].tolist()
    caplog.clear()
    with caplog.at_level("INFO", logger="reprotrain"):
        predict_table(package, rows, {"batch_size": 4})  # default: every 30 s, so none here
    assert " rows/s, about " not in caplog.text


# ------------------------------------------------------------------ predict: a trained project
@pytest.fixture
def reviews(trained):
    """A scratch project holding the session's good run of the default task (20 rows to predict)."""
    return trained()


@pytest.mark.slow
def test_predict_keeps_texts_None_NA_null(reviews):
    new = make_reviews(6, seed=4)[["id", "text"]]
    new.loc[[1, 2, 3], "text"] = LITERAL_TEXTS
    new.to_csv(reviews.path(REVIEWS_PREDICT), index=False)
    reviews.run("predict")
    out = pd.read_csv(
        reviews.path("data/07_model_output/reviews/predictions.csv"), keep_default_na=False
    )
    assert out["text"].tolist()[1:4] == LITERAL_TEXTS
    expected = load_package(reviews.path(PACKAGE)).predict(new["text"].tolist())
    assert out["predicted_label"].tolist() == expected["label"].tolist()


# What the project reads or writes, and where predictions may go.
REFUSED = [
    "data/01_raw/movie_reviews.csv",  # raw_table
    REVIEWS_PREDICT,  # predict_input
    "data/01_raw/new_predictions.csv",  # the raw layer
    f"{PACKAGE}/config.json",
    f"{PACKAGE}/predictions.csv",  # a new file inside the package
    "data/06_models/reviews",  # a folder holding the package
    "data/05_model_input/reviews/train.parquet",
    "data/02_intermediate/reviews/clean_table.parquet",
    "data/08_reporting/reviews/metrics.json",
    "data/07_model_output/reviews/test_predictions.csv",
    "data/06_models/reviews/checkpoints/last.ckpt",  # fit.checkpoint_dir
]
ACCEPTED = [
    "data/07_model_output/reviews/predictions.csv",  # the default
    "data/07_model_output/reviews/fresh.csv",
    "data/07_model_output/new/deeper/predictions.csv",
]


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(REFUSED + ACCEPTED),
    spelling=st.sampled_from(["relative", "absolute", "dotted"]),
)
def test_whatever_the_predictions_path_no_other_data_changes(reviews, target, spelling):
    root = reviews.root
    given_path = {
        "relative": target,
        "absolute": str(root / target),
        "dotted": f"./data/07_model_output/../../{target}",
    }[spelling]
    before = hashes(root)
    try:
        reviews.run("predict", runtime_params={"predictions": given_path})
        accepted = True
    except SystemExit as err:
        accepted = False
        assert f"error: refusing to write predictions to {target}" in str(err)
        assert "Nothing was written. Give a new file" in str(err)
    after = hashes(root)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= ({target} if accepted else set()), changed
    assert accepted == (target in ACCEPTED)
    if accepted:
        assert len(pd.read_csv(root / target)) == 20
    load_package(root / PACKAGE, verify=True)  # the package still verifies


@pytest.mark.slow
def test_kedro_predict_onto_the_raw_table_exits_non_zero(reviews):
    before = hashes(reviews.root)
    done = kedro_in_process(
        reviews.root,
        "run",
        "--pipelines=predict",
        "--params=predictions=data/01_raw/movie_reviews.csv",
    )
    assert done.returncode != 0
    output = " ".join((done.stdout + done.stderr).split())
    assert (
        "error: refusing to write predictions to data/01_raw/movie_reviews.csv: that file is "
        "catalog dataset 'raw_table', which predict would overwrite. Nothing was written." in output
    )
    assert "Traceback" not in output  # one paragraph, not a page
    assert hashes(reviews.root) == before
    assert os.path.getsize(reviews.path("data/01_raw/movie_reviews.csv")) > 0
