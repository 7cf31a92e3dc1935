"""Nodes take the task group beside their step's group; step files cannot repeat task keys."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from reprotrain.params import STEP_PARAMS, ParameterError, TransformerModelParams, parse
from tests.conftest import load_params

TASK = {
    "name": "tickets",
    "raw_file": "data/01_raw/tickets.csv",
    "labels": ["billing", "bug", "other"],
    "model_checkpoint": "some/checkpoint",
    "max_length": 48,
    "seed": 7,
}
TASK_KEYS = {"task", "type", "labels", "model_checkpoint", "tokenizer", "max_length", "seed"}


def test_step_models_hold_only_their_own_keys():
    """The task's values live in TaskParams alone (tune's own seed is the sampler's)."""
    for step, model in STEP_PARAMS.items():
        if step not in ("task", "tune"):
            assert not TASK_KEYS & set(model.model_fields), step
    assert "checkpoint" not in TransformerModelParams.model_fields  # task.model_checkpoint


def test_a_step_is_checked_against_the_task_group():
    fit = parse("fit", {"model": {"family": "mlp"}, "loss": "cross_entropy"}, TASK)
    assert fit.loss == "cross_entropy"
    regression = {**TASK, "type": "regression", "labels": None}
    with pytest.raises(ParameterError, match=r"'fit.loss': a regression task trains with loss"):
        parse("fit", {"model": {"family": "mlp"}}, regression)
    with pytest.raises(ParameterError, match=r"'fit.class_weights'.*classification tasks only"):
        parse(
            "fit",
            {"model": {"family": "mlp"}, "loss": "mse", "class_weights": "balanced"},
            regression,
        )
    assert parse(
        "tune", {"space": {"fit.optimizer.lr": {"low": 0.1, "high": 1}}}, regression
    ).metric == ("val/loss")


@pytest.mark.parametrize(
    ("monitor", "task", "message"),
    [
        ("val/f2", "classification", r"monitor'.*should be 'auto', 'val/loss'"),
        ("val/mse", "classification", r"a classification task does not log 'val/mse'"),
        ("val/f1", "regression", r"a regression task does not log 'val/f1'"),
    ],
)
def test_an_early_stopping_metric_the_fit_step_does_not_log_is_refused(monitor, task, message):
    t = TASK if task == "classification" else {**TASK, "type": task, "labels": None}
    raw = {
        "model": {"family": "mlp"},
        "loss": "cross_entropy" if task == "classification" else "mse",
        "trainer": {"early_stopping": {"monitor": monitor}},
    }
    with pytest.raises(ParameterError, match=message):
        parse("fit", raw, t)


def test_paths_follow_the_task_name_unless_the_step_sets_them():
    fit = parse("fit", {"model": {"family": "mlp"}}, TASK)
    assert fit.checkpoint_dir == "data/06_models/tickets/checkpoints"
    assert fit.best_checkpoint == "data/06_models/tickets/best.ckpt"
    assert fit.log_dir == "data/08_reporting/tickets/training_logs"
    moved = parse("fit", {"model": {"family": "mlp"}, "checkpoint_dir": "/scratch/ck"}, TASK)
    assert moved.checkpoint_dir == "/scratch/ck"
    no_copy = parse("fit", {"model": {"family": "mlp"}, "best_checkpoint": None}, TASK)
    assert no_copy.best_checkpoint is None  # set to null: no copy, as before
    assert parse("package", {}, TASK).lineage_files == [
        "data/01_raw/tickets.csv",
        "data/05_model_input/tickets/train.parquet",
        "data/05_model_input/tickets/validation.parquet",
        "data/05_model_input/tickets/test.parquet",
    ]


def test_a_random_transformer_needs_no_checkpoint():
    task = {**TASK, "model_checkpoint": None}
    fit = parse("fit", {"model": {"family": "transformer", "config": {"hidden_size": 8}}}, task)
    assert fit.model.config == {"hidden_size": 8}


@pytest.mark.parametrize(
    ("step", "raw", "key"),
    [
        ("clean", {"label_column": "c", "text_column": "t", "labels": ["a", "b"]}, "clean.labels"),
        ("convert", {"max_length": 16}, "convert.max_length"),
        ("split", {"seed": 1}, "split.seed"),
        ("fit", {"model": {"family": "transformer", "checkpoint": "x"}}, "fit.model.checkpoint"),
        ("fit", {"model": {"family": "mlp"}, "labels": ["a", "b"]}, "fit.labels"),
        ("evaluate", {"seed": 3}, "evaluate.seed"),
        ("tune", {"task": "regression", "space": {}}, "tune.task"),
    ],
)
def test_a_step_file_repeating_a_shared_key_is_an_error(step, raw, key):
    with pytest.raises(
        ParameterError, match=rf"parameters_{step}.yml \(or --params\) sets '{key}'.*globals.yml"
    ):
        parse(step, raw, TASK)


def test_a_pretrained_transformer_without_a_checkpoint_names_the_task_key():
    with pytest.raises(ParameterError, match=r"needs task.model_checkpoint in globals.yml"):
        parse("fit", {"model": {"family": "transformer"}}, {**TASK, "model_checkpoint": None})


def test_a_bad_task_group_names_globals_yml():
    with pytest.raises(ParameterError, match=r"globals.yml:\n  unknown key 'task.lables'"):
        parse("clean", {"label_column": "c", "text_column": "t"}, {**TASK, "lables": ["a"]})
    with pytest.raises(ParameterError, match=r"'labels' repeats a class name"):
        parse("task", {**TASK, "labels": ["a", "a"]})
    with pytest.raises(ParameterError, match=r"globals.yml: the top-level key 'task' is missing"):
        parse("task", None)


@pytest.mark.parametrize(
    ("step", "raw", "message"),
    [
        (  # pydantic puts the union member's tag (mlp) in the location: not a key in the file
            "fit",
            {"model": {"family": "mlp", "hiden_sizes": [8]}},
            "unknown key 'fit.model.hiden_sizes' (allowed keys: activation, bins, dropout, "
            "family, hidden_sizes, init)",
        ),
        ("fit", {"model": {"family": "mlp", "dropout": 2}}, "'fit.model.dropout': Input should"),
        (
            "tune",
            {"space": {"fit.optimizer.lr": {"low": 1e-5, "hihg": 1e-3}}},
            "unknown key 'tune.space.fit.optimizer.lr.hihg' (allowed keys: high, log, low, step)",
        ),
        # a union of plain types: pydantic reports each member (…low.int, …low.float)
        (
            "tune",
            {"space": {"fit.optimizer.lr": {"low": "x", "high": 1e-3}}},
            "'tune.space.fit.optimizer.lr.low': Input should be a valid integer or a valid "
            "number (got 'x')\n",
        ),
        (
            "fit",
            {"trainer": {"val_check_interval": "often"}},
            "'fit.trainer.val_check_interval': Input should be 'auto', a valid integer or a "
            "valid number (got 'often')",
        ),
    ],
)
def test_an_error_inside_a_union_is_one_line_naming_the_key_as_written(step, raw, message):
    with pytest.raises(ParameterError) as err:
        parse(step, {**load_params(step, "base"), **raw}, TASK)
    assert message in str(err.value) + "\n"
    assert not re.search(r"\.(int|float|literal\[.*\]|mlp|range)'", str(err.value))  # members


@pytest.mark.parametrize("env", ["base", "penguins"])
def test_every_step_of_the_real_configuration_parses(env):
    task = load_params("task", env)
    for step in ("clean", "convert", "split", "fit", "evaluate", "package", "predict", "tune"):
        parse(step, load_params(step, env), task)


@pytest.mark.slow
def test_runtime_params_may_change_shared_values_but_not_the_task_paths(scratch_project):
    scratch_project.run("clean")
    flipped = {"task": {"labels": ["positive", "negative"]}}  # kedro run --params=task.labels=...
    scratch_project.run("convert", runtime_params=flipped)
    cleaned = pd.read_parquet(
        scratch_project.path("data/02_intermediate/reviews/clean_table.parquet")
    )
    ids = pd.read_parquet(scratch_project.path("data/04_feature/reviews/model_input.parquet"))
    assert (ids["label"] == (cleaned["label"] == "negative").astype(int)).all()
    with pytest.raises(
        ParameterError, match=r"task.name is 'other' in the parameters but 'reviews'"
    ):
        scratch_project.run("clean", runtime_params={"task": {"name": "other"}})


def test_nested_runtime_params_deep_merge_under_an_env_without_that_group(tmp_path):
    """`kedro run --env=mine --params=fit.trainer.max_epochs=8`: only that key changes."""
    import shutil

    from kedro.config import OmegaConfigLoader

    from reprotrain.settings import CONFIG_LOADER_ARGS
    from tests.conftest import PROJECT_ROOT

    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", conf / "base")
    (conf / "mine").mkdir()
    (conf / "mine" / "parameters_split.yml").write_text("split:\n  train: 0.7\n  validation: 0.2\n")
    runtime = {"fit": {"trainer": {"max_epochs": 8}}}
    loader = OmegaConfigLoader(str(conf), env="mine", runtime_params=runtime, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    fit = parse("fit", params["fit"], params["task"])
    assert fit.trainer.max_epochs == 8
    assert fit.model.family == "transformer" and fit.trainer.min_steps == 300  # from base
    split = parse("split", params["split"], params["task"])
    assert (split.train, split.validation, split.test) == (0.7, 0.2, 0.1)  # test from base


def test_predict_batch_default_is_the_packages_own():
    from reprotrain.packaging.runtime import TEXT_BATCH
    from reprotrain.params import PredictParams

    assert PredictParams().batch_size == TEXT_BATCH


@pytest.mark.parametrize(
    ("step", "raw", "message"),
    [
        (
            "clean",
            {"label_column": "y", "numeric_columns": ["day"], "date_columns": {"day": "%Y"}},
            "column 'day' is in both 'date_columns' and 'numeric_columns'",
        ),
        (
            "clean",
            {"label_column": "day", "date_columns": {"day": "%Y-%m-%d"}},
            "column 'day' is in both 'date_columns' and 'label_column'",
        ),
        (
            "convert",
            {"categories": {"day": ["a"]}, "date_columns": {"day": "%Y-%m-%d"}},
            "column 'day' is in both 'date_columns' and 'categories'",
        ),
        (
            "convert",
            {"date_columns": {"day": "YYYY-MM-DD"}},
            "'convert.date_columns': Value error, column 'day': format 'YYYY-MM-DD' is neither",
        ),
    ],
)
def test_a_date_column_with_a_second_role_or_no_format_is_refused(step, raw, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        parse(step, raw)
    assert parse("clean", {"label_column": "y", "date_columns": {"day": "ISO8601"}}).date_columns
