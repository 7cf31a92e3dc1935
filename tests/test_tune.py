"""The hyperparameter search: a tiny real search, its trial table, and applying the winner.

The search runs through a real KedroSession on the tiny BERT; the applied winner is trained
again by the fit pipeline, which must give the trial's weights byte for byte.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from reprotrain.params import ParameterError, check_space, parse
from tests.conftest import kedro_in_process
from tests.test_cli_errors import short_error

TASK = {"name": "t", "raw_file": "t.csv", "labels": ["a", "b"], "model_checkpoint": "m"}
FIT = {"model": {"family": "transformer"}}


def tune_params(space: dict) -> dict:
    return {"trials": 3, "space": space}


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (
            {"fit.optimizer.lr": {"low": 1e-3, "high": 1e-5, "log": True}},
            "low (0.001) must be below high (1e-05)",
        ),
        (
            {"fit.optimizer.lrr": {"low": 1e-5, "high": 1e-3}},
            "unknown key 'fit.optimizer.lrr' (did you mean 'fit.optimizer.lr'?)",
        ),
        ({"fit.optimizer.lr": {"low": -1e-3, "high": 1e-3}}, "greater than 0"),
        ({"fit.optimizer.lr": {"low": 0.0, "high": 1e-3, "log": True}}, "needs low > 0"),
        ({"fit.data.batch_size": {"choices": []}}, "at least 1 item"),
        ({"fit.data.batch_size": {"choices": [16, 0]}}, "reaches 0, which the fit step refuses"),
        ({"fit.seed": {"choices": [1, 2]}}, "cannot be searched"),
        ({"fit.data": {"choices": [1]}}, "is a group"),
        ({"fit.optimizer.lr": {"low": 1e-5, "high": 1e-3, "choices": [1]}}, "both 'choices'"),
    ],
)
def test_a_bad_search_space_is_a_parameter_error(space, expected):
    with pytest.raises(ParameterError) as err:
        check_space(parse("tune", tune_params(space), TASK), FIT, TASK)
    assert expected in " ".join(str(err.value).split())


def test_a_good_space_validates():
    space = {
        "fit.optimizer.lr": {"low": 1e-5, "high": 1e-3, "log": True},
        "fit.data.batch_size": {"choices": [16, 32]},
        "fit.trainer.max_epochs": {"low": 1, "high": 4},
    }
    tune = parse("tune", tune_params(space), TASK)
    check_space(tune, FIT, TASK)
    assert tune.metric == "val/f1" and tune.direction == "maximize"
    assert tune.space["fit.trainer.max_epochs"].integer
    assert not tune.space["fit.optimizer.lr"].integer


def test_a_bad_space_stops_kedro_run_before_any_trial(scratch_project):
    scratch_project.write_params("tune", {"space": {"fit.optimizer.weight_decay": {"low": -0.1}}})
    message = short_error(kedro_in_process(scratch_project.root, "run", "--pipelines=tune"))
    assert "tune.space 'fit.optimizer.weight_decay' reaches -0.1, which the fit step" in message
    assert not scratch_project.path("data/06_models/reviews/tune").exists()


def test_the_search_never_reads_the_test_split():
    from reprotrain.pipelines.tune.pipeline import create_pipeline

    assert "test_set" not in create_pipeline().inputs()


@pytest.mark.slow
def test_a_tiny_search_prunes_records_and_its_winner_rebuilds_byte_identically(
    scratch_project,
):
    from reprotrain.datasets import SafetensorsModelDataset
    from reprotrain.pipelines.tune.search import weights_digest
    from reprotrain.tune_apply import apply

    # The tiny MLP of the penguins env, eight validations per trial; seed 10 samples lr 3e-3,
    # then the absurd 1e-8 (pruned: its macro-F1 stays below the first trial's), then 3e-3.
    scratch_project.write_params(
        "fit", {"trainer": {"max_epochs": 8, "min_steps": 0}}, env="penguins"
    )
    tune = {
        "trials": 3,
        "seed": 10,
        "pruner": {"name": "median", "startup_trials": 1, "warmup_validations": 0},
        "space": {"fit.optimizer.lr": {"choices": [3.0e-3, 1.0e-8]}},
    }
    scratch_project.path("conf/base/parameters_tune.yml").write_text(yaml.safe_dump({"tune": tune}))
    for name in ("clean", "convert", "split", "tune"):
        scratch_project.run(name, env="penguins")

    folder = scratch_project.path("data/08_reporting/penguins/tune")
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["trial"].tolist() == [0, 1, 2]
    assert trials["fit.optimizer.lr"].tolist() == [3e-3, 1e-8, 3e-3]
    assert trials["state"].tolist() == ["complete", "pruned", "complete"]
    assert trials.loc[1, "validations"] < 8  # stopped before its last validation
    assert (trials["duration_s"] > 0).all()
    # the same values give the same weights: the sampler's repeat is a rerun of trial 0
    assert trials.loc[0, "weights_sha256"] == trials.loc[2, "weights_sha256"]
    assert (folder / "history.png").stat().st_size > 0
    assert (folder / "parameters.png").stat().st_size > 0
    best = yaml.safe_load((folder / "best_params.yml").read_text())
    assert best["trial"] == 0 and best["fit"] == {"optimizer": {"lr": 3e-3}}
    assert not scratch_project.path("data/06_models/penguins/tune/trial_0").exists()

    scratch_project.write_params("fit", {"optimizer": {"lr": 1e-2}}, env="penguins")
    target, _ = apply(scratch_project.path("conf"), "penguins")
    assert yaml.safe_load(target.read_text())["fit"]["optimizer"]["lr"] == 3e-3
    scratch_project.run("fit", env="penguins")
    model = SafetensorsModelDataset(
        filepath=str(scratch_project.path("data/06_models/penguins/trained_model"))
    ).load()
    assert weights_digest(model.state_dict) == best["weights_sha256"]
    # the score is the macro-F1 of the checkpoint fit keeps (the best by validation loss)
    history = pd.read_csv(scratch_project.path("data/08_reporting/penguins/training_history.csv"))
    validations = history[history["val/loss"].notna()]
    kept = validations.loc[validations["val/loss"].idxmin()]
    assert kept["val/f1"] == pytest.approx(best["value"], rel=1e-7)
    assert trials.loc[0, "val/f1"] == best["value"]
    assert json.loads(trials.loc[0, "point"]) == {"fit.optimizer.lr": 3e-3}
