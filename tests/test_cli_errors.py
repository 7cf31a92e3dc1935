"""The project's ``kedro run``: an error the user can fix is one short paragraph, not a traceback.

Each case runs the project's ``kedro`` command in a scratch copy of the project: a few as a real
``python -m kedro`` subprocess (the exit status, stderr and Python's own warnings are the point),
the others in-process (``kedro_in_process``: the same click command, without starting Python).
"""

from __future__ import annotations

import pandas as pd
import pytest

from reprotrain.params import ParameterError
from reprotrain.pipelines.convert.nodes import convert_table
from tests.conftest import flat, kedro, kedro_in_process

TRACEBACK = "Traceback (most recent call last)"


def short_error(done) -> str:
    """Assert a failed run ended with a short paragraph and no traceback; return it."""
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert TRACEBACK not in done.stdout + done.stderr
    paragraph = done.stderr[done.stderr.rindex("error: ") :]
    assert len(paragraph.splitlines()) <= 6, paragraph
    return flat(paragraph)


@pytest.mark.slow
def test_misspelt_runtime_keys_are_refused_with_suggestions(scratch_project):
    done = kedro(
        scratch_project.root,
        "run",
        "--pipelines=clean",
        "--params",
        "predict_inptu=new.csv,fitt.optimizer.lr=0.1",
    )
    message = short_error(done)
    assert "'fitt' (did you mean 'fit'?)" in message
    assert "'predict_inptu' (did you mean 'predict_input'?)" in message
    assert not scratch_project.path("data/02_intermediate/reviews").exists()


def test_a_duplicate_yaml_key_names_its_file(scratch_project):
    path = scratch_project.path("conf/local/parameters_split.yml")
    path.write_text("split:\n  train: 0.8\n  train: 0.7\n")
    message = short_error(kedro_in_process(scratch_project.root, "run", "--pipelines=clean"))
    assert "found duplicate key train" in message
    assert "conf/local/parameters_split.yml, line 3" in message


def test_a_negative_seed_is_a_parameter_error(scratch_project):
    scratch_project.write_task({"seed": -3})
    message = short_error(kedro_in_process(scratch_project.root, "run", "--pipelines=clean"))
    assert "'task.seed': Input should be greater than or equal to 0 (got -3)" in message


@pytest.mark.slow
def test_verbose_keeps_the_traceback(scratch_project):
    done = kedro(
        scratch_project.root, "run", "--pipelines=clean", "--verbose", "--params", "fitt.x=1"
    )
    assert done.returncode != 0
    assert "ParameterError" in done.stdout + done.stderr
    assert "unknown key(s) 'fitt'" in flat(done.stdout + done.stderr)


@pytest.mark.slow
def test_the_singular_pipeline_option_runs_without_a_deprecation_warning(scratch_project):
    done = kedro(scratch_project.root, "run", "--pipeline=clean")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deprecated" not in (done.stdout + done.stderr).lower()
    assert scratch_project.path("data/02_intermediate/reviews/clean_table.parquet").exists()


def test_max_length_beyond_the_model_positions_is_refused(tiny_checkpoint_dir):
    """The tiny BERT has 64 positions: 100 would fail as a raw tensor-size error in fit."""
    cleaned = pd.DataFrame(
        {"text": ["a good film", "a dull plot"], "label": ["positive", "negative"]}
    )
    task = {
        "name": "t",
        "raw_file": "t.csv",
        "labels": ["negative", "positive"],
        "model_checkpoint": str(tiny_checkpoint_dir),
        "max_length": 100,
    }
    with pytest.raises(ParameterError, match=r"task.max_length is 100, .* reads at most 64 tokens"):
        convert_table(cleaned, {"batch_size": 8}, task)
    assert len(convert_table(cleaned, {"batch_size": 8}, {**task, "max_length": 64})) == 2


@pytest.mark.slow
def test_a_diverged_training_run_is_one_paragraph(scratch_project):
    """TrainingDivergedError (a FloatingPointError, not a ValueError) is the user's to fix."""
    done = kedro_in_process(
        scratch_project.root,
        "run",
        "--pipelines=train",
        "--env=penguins",
        "--params",
        "fit.optimizer.name=sgd,fit.optimizer.lr=1e12,fit.trainer.min_steps=0",
    )
    message = short_error(done)
    assert "training diverged: the training loss is nan at optimiser step" in message
    assert not scratch_project.path("data/06_models/penguins/trained_model").exists()
