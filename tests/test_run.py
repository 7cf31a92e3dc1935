"""End-to-end runs of the project: a real KedroSession and the real ``kedro`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from reprotrain.baselines import predict_baselines

pytestmark = pytest.mark.slow

KEDRO = [sys.executable, "-m", "kedro"]


def kedro(project, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "200"}
    return subprocess.run(
        [*KEDRO, *args], cwd=project.root, env=env, capture_output=True, text=True, timeout=600
    )


def test_data_steps_through_a_session(trained):
    scratch_project = trained()  # the session's good run: train then predict, in a KedroSession
    train = pd.read_parquet(scratch_project.path("data/05_model_input/reviews/train.parquet"))
    test = pd.read_parquet(scratch_project.path("data/05_model_input/reviews/test.parquet"))
    assert len(train) == 192 and len(test) == 24
    assert train["input_ids"].map(len).max() <= 32  # max_length of the scratch project
    assert set(train["label"]) == {0, 1}


def test_tabular_demo_under_its_env(trained):
    scratch_project = trained("penguins")  # the session's good run of the penguins env
    train = pd.read_parquet(scratch_project.path("data/05_model_input/penguins/train.parquet"))
    assert "island=Dream" in train.columns and "input_ids" not in train.columns
    assert not scratch_project.path("data/05_model_input/reviews").exists()


def test_clean_stage_imports_no_torch_or_transformers(scratch_project):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kedro", "run", "--pipelines=clean"],
        cwd=scratch_project.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "reprotrain.pipelines.clean.nodes" in imported  # the measurement sees our code
    assert not imported & {"torch", "transformers", "lightning"}


def test_train_pipeline_from_the_command_line(scratch_project):
    """The whole chain; the model is crippled (a vanishing learning rate) so that the TF-IDF
    baseline, fitted on exactly the model's splits, beats it and the run says so."""
    project = scratch_project
    done = kedro(project, "run", "--pipeline=train", "--params=fit.optimizer.lr=1e-12")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert project.path("data/06_models/reviews/trained_model/model.safetensors").is_file()
    history = pd.read_csv(project.path("data/08_reporting/reviews/training_history.csv"))
    assert "val/acc" in history.columns
    assert "does not beat the tfidf_logreg baseline" in " ".join(
        (done.stdout + done.stderr).split()
    )
    metrics = json.loads(project.path("data/08_reporting/reviews/metrics.json").read_text())
    assert metrics["below_baseline"] is True
    # the baseline's figures come from exactly the model's splits
    split = {
        s: pd.read_parquet(project.path(f"data/05_model_input/reviews/{s}.parquet"))
        for s in ("train", "validation", "test")
    }
    again = predict_baselines(
        split["train"], split["validation"], split["test"], regression=False, seed=42
    )
    accuracy = (again["tfidf_logreg"].to_numpy() == split["test"]["label"].to_numpy()).mean()
    assert metrics["baselines"]["tfidf_logreg"]["accuracy"] == pytest.approx(accuracy)
    assert metrics["n_test"] == len(split["test"])
    card = project.path("data/06_models/reviews/package/README.md").read_text()
    assert "## Against baselines" in card and "| tfidf_logreg |" in card
    assert "scores below the `tfidf_logreg` baseline" in card
    comparison = pd.read_csv(project.path("data/08_reporting/reviews/model_comparison.csv"))
    assert comparison["model"].tolist() == ["trained model", "tfidf_logreg"]


def test_regression_by_configuration_alone(scratch_project):
    """Penguin body mass (grams) from the other measurements: an MSE-trained MLP, packaged."""
    project = scratch_project
    features = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    project.write_task({"name": "mass", "type": "regression", "labels": None}, env="penguins")
    project.write_params(
        "clean", {"label_column": "body_mass_g", "numeric_columns": features}, env="penguins"
    )
    project.write_params("convert", {"numeric_columns": features}, env="penguins")
    project.write_params(
        "fit", {"loss": "mse", "trainer": {"max_epochs": 10, "min_steps": 0}}, env="penguins"
    )
    project.write_params("split", {"stratify": False}, env="penguins")
    project.run("train", env="penguins")
    metrics = json.loads(project.path("data/08_reporting/mass/metrics.json").read_text())
    test = pd.read_csv(project.path("data/07_model_output/mass/test_predictions.csv"))
    assert metrics["mae"] == pytest.approx((test["predicted"] - test["actual"]).abs().mean())
    assert metrics["mae"] < 0.6 * test["actual"].std()  # well beyond predicting the mean
    rows = pd.read_csv(project.path("data/01_raw/penguins.csv")).dropna().head(5)
    rows.drop(columns=["body_mass_g", "species"]).to_csv(
        project.path("data/01_raw/mass_predict_input.csv"), index=False
    )
    project.run("predict", env="penguins")
    predicted = pd.read_csv(project.path("data/07_model_output/mass/predictions.csv"))
    error = (predicted["prediction"] - rows["body_mass_g"].to_numpy()).abs()
    assert error.mean() < 0.6 * test["actual"].std()
