"""Predict: the node, and train → package → predict end to end on tiny settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reprotrain.packaging import PackageInputError, in_memory_package, load_package
from reprotrain.pipelines.predict.nodes import predict_table
from tests.conftest import make_penguins, make_reviews
from tests.factories import (
    CATEGORIES,
    NUMERIC,
    PENGUIN_LABELS,
    onnx_standalone,
    penguin_features,
    run_isolated,
    tiny_mlp,
)


def _penguin_package():
    return in_memory_package(
        tiny_mlp(penguin_features()),
        task="classification",
        labels=PENGUIN_LABELS,
        numeric_columns=NUMERIC,
        categories=CATEGORIES,
    )


def test_predict_table_adds_label_and_score_and_keeps_input():
    rows = make_penguins(12).drop(columns="species")
    out = predict_table(_penguin_package(), rows, {"batch_size": 5})
    assert list(out.columns) == [*rows.columns, "predicted_label", "score"]
    assert len(out) == 12
    assert set(out["predicted_label"]) <= set(PENGUIN_LABELS)
    assert out["score"].between(1 / 3, 1).all()
    pd.testing.assert_frame_equal(out[rows.columns], rows)  # missing values stay as they were


def test_predict_table_names_the_missing_column():
    rows = make_penguins(5).drop(columns=["species", "body_mass_g"])
    with pytest.raises(PackageInputError, match=r"\['body_mass_g'\]"):
        predict_table(_penguin_package(), rows, {})


def test_predict_table_rejects_non_numeric_values():
    rows = make_penguins(5).drop(columns="species").astype({"bill_depth_mm": object})
    rows.loc[0, "bill_depth_mm"] = "deep"
    with pytest.raises(PackageInputError, match="'bill_depth_mm' must be numeric"):
        predict_table(_penguin_package(), rows, {})


@pytest.mark.slow
def test_train_then_predict_end_to_end(trained):
    scratch_project = trained()  # the session's good train run (tests/conftest.py)
    metrics = json.loads(scratch_project.path("data/08_reporting/reviews/metrics.json").read_text())
    assert {"accuracy", "f1_macro", "per_class"} <= set(metrics)
    for rel in (
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "training_curves.csv",
        "training_curves.png",
    ):
        assert scratch_project.path(f"data/08_reporting/reviews/{rel}").stat().st_size > 0
    assert scratch_project.path("data/07_model_output/reviews/test_predictions.csv").is_file()
    package_dir = scratch_project.path("data/06_models/reviews/package")
    assert (package_dir / "manifest.json").is_file()

    new = make_reviews(30, seed=5)[["id", "text"]]
    new.to_csv(scratch_project.path("data/01_raw/reviews_predict_input.csv"), index=False)
    scratch_project.run("predict")
    out_path = scratch_project.path("data/07_model_output/reviews/predictions.csv")
    predictions = pd.read_csv(out_path)
    assert list(predictions.columns) == ["id", "text", "predicted_label", "score"]
    assert predictions["id"].tolist() == new["id"].tolist()
    expected = load_package(package_dir).predict(new["text"].tolist())
    assert predictions["predicted_label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(predictions["score"], expected["score"], atol=1e-5)
    written = out_path.read_bytes()

    # any file in, any file out, from the command line: --params=predict_input=...,predictions=...
    elsewhere = scratch_project.root / "incoming"
    elsewhere.mkdir()
    new.head(4).to_csv(elsewhere / "batch.csv", index=False)
    scratch_project.run(
        "predict",
        runtime_params={
            "predict_input": str(elsewhere / "batch.csv"),
            "predictions": str(elsewhere / "batch_predictions.csv"),
        },
    )
    batch = pd.read_csv(elsewhere / "batch_predictions.csv")
    assert batch["predicted_label"].tolist() == expected["label"].tolist()[:4]
    assert out_path.read_bytes() == written  # the default output was left alone
    # A table without the text column and a tampered package: tests/test_bad_inputs.py
    # (predict/missing_column, predict/tampered_package_file: no file under data/ changes).


@pytest.mark.slow
def test_penguins_package_onnx_matches_project_predictions(trained, tmp_path):
    scratch_project = trained("penguins")
    package_dir = scratch_project.path("data/06_models/penguins/package")
    assert (package_dir / "model.onnx").is_file()
    csv = scratch_project.path("data/01_raw/penguins_predict_input.csv")
    make_penguins(40, seed=3).drop(columns="species").to_csv(csv, index=False)
    scratch_project.run("predict", env="penguins")
    ours = pd.read_csv(scratch_project.path("data/07_model_output/penguins/predictions.csv"))
    theirs = json.loads(run_isolated(onnx_standalone(package_dir, csv), tmp_path).splitlines()[-1])
    assert theirs["label"] == ours["predicted_label"].tolist()
    np.testing.assert_allclose(theirs["score"], ours["score"], atol=1e-5)
