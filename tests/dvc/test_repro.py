"""`dvc repro` on the real dvc.yaml, in a throwaway git repository on tiny settings.

Each test works on its own copy of the session's reproduced project (see conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from tests.dvc.conftest import (
    BIN,
    STAGES,
    Reproduced,
    dvc,
    environment,
    fresh_clone,
    git,
    set_params,
    sh,
    sha256,
)

pytestmark = pytest.mark.slow

MODEL = "data/06_models/reviews/trained_model/model.safetensors"
PACKAGE = "data/06_models/reviews/package"
METRICS = "data/08_reporting/reviews/metrics.json"
PREDICTIONS = "data/07_model_output/reviews/test_predictions.csv"
UP_TO_DATE = "Data and pipelines are up to date."


def test_first_repro_runs_every_stage_in_order(reproduced: Reproduced):
    assert reproduced.first.ran == STAGES
    lock = yaml.safe_load((reproduced.root / "dvc.lock").read_text())
    assert list(lock["stages"]) == STAGES
    raw = {o["path"]: o["md5"] for o in lock["stages"]["raw"]["outs"]}
    assert raw["data/01_raw/movie_reviews.csv"]  # the raw bytes' hash is in the lock
    assert (reproduced.root / "data/06_models/reviews/best.ckpt").is_file()
    assert (reproduced.root / "data/06_models/reviews/checkpoints/last.ckpt").is_file()


def test_second_repro_runs_nothing_and_is_quick(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    second = dvc(root, "repro")
    assert second.ran == []
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in second.output
    assert second.seconds < 20, f"a no-op `dvc repro` took {second.seconds:.1f}s"
    assert UP_TO_DATE in dvc(root, "status").output
    git(root, "diff", "--exit-code")  # nothing rewritten: dvc.lock


def test_split_parameter_reruns_split_and_downstream_only(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    set_params(root, "split", {"train": 0.7, "validation": 0.2})
    status = dvc(root, "status").output
    assert "split:" in status and "clean:" not in status and "convert:" not in status
    rerun = dvc(root, "repro")
    assert rerun.ran == ["split", "fit", "evaluate", "package"]
    assert UP_TO_DATE in dvc(root, "status").output
    # metrics are not git files: the committed version comes from the DVC cache
    text = dvc(root, "metrics", "diff", "HEAD", "--all", "--json").output
    accuracy = json.loads(text[text.index("{") :])[METRICS]["accuracy"]
    committed = json.loads((reproduced.root / METRICS).read_text())["accuracy"]
    now = json.loads((root / METRICS).read_text())["accuracy"]
    assert (accuracy["old"], accuracy["new"]) == (committed, now)


def test_conf_local_cannot_change_what_dvc_builds(reproduced: Reproduced, tmp_path):
    """Stages run with --env=base: an untracked conf/local override never reaches them."""
    root = reproduced.copy(tmp_path / "p")
    split = root / "data/05_model_input/reviews/train.parquet"
    before = sha256(split)
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "conf" / "local" / "parameters_split.yml").write_text(
        "split:\n  train: 0.5\n  validation: 0.25\n  test: 0.25\n"
    )
    assert UP_TO_DATE in dvc(root, "status").output
    assert dvc(root, "repro", "--force", "--single-item", "split").ran == ["split"]
    assert sha256(split) == before
    assert UP_TO_DATE in dvc(root, "status").output


def test_repro_builds_a_named_env_from_its_own_data_and_conf(reproduced: Reproduced, tmp_path):
    """params.yaml's dvc group picks the env; its folder is a dependency of every stage."""
    root = reproduced.copy(tmp_path / "p")
    shutil.copytree(root / "conf" / "penguins", root / "conf" / "birds")
    (root / "conf" / "birds" / "globals.yml").write_text(
        yaml.safe_dump(
            {
                "task": {
                    "name": "birds",
                    "raw_file": "data/01_raw/penguins.csv",
                    "labels": ["Adelie", "Chinstrap", "Gentoo"],
                    "model_checkpoint": None,
                }
            }
        )
    )
    # soft merge: the env file holds only what it changes
    (root / "conf" / "birds" / "parameters_fit.yml").write_text(
        "fit:\n  trainer:\n    max_epochs: 3\n    min_steps: 0\n"
        "  model:\n    family: mlp\n    hidden_sizes: [8]\n"
    )
    (root / "conf" / "birds" / "parameters_package.yml").write_text("package:\n  name: birds\n")
    chosen = {"dvc": {"env": "birds", "task": "birds", "raw_file": "data/01_raw/penguins.csv"}}
    (root / "params.yaml").write_text(yaml.safe_dump(chosen))
    assert dvc(root, "repro").ran == STAGES[1:]  # raw is the same demo data
    info = json.loads((root / "data/06_models/birds/package/package.json").read_text())
    assert (info["name"], info["family"]) == ("birds", "mlp")
    assert info["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert UP_TO_DATE in dvc(root, "status").output
    # an edit to the env's conf is seen by DVC
    (root / "conf" / "birds" / "parameters_split.yml").write_text("split:\n  train: 0.7\n")
    assert "split:" in dvc(root, "status").output
    # a params.yaml whose task disagrees with the env's globals.yml is refused, naming both
    chosen["dvc"]["task"] = "penguins"
    (root / "params.yaml").write_text(yaml.safe_dump(chosen))
    done = subprocess.run(
        [BIN / "dvc", "repro", "clean"], cwd=root, capture_output=True, text=True, env=environment()
    )
    assert done.returncode != 0
    assert "task.name is 'penguins' in the parameters but 'birds'" in " ".join(
        (done.stdout + done.stderr).split()
    )


def test_unrelated_keys_rerun_nothing_else(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    # predict is no DVC stage ...
    set_params(root, "predict", {"batch_size": 7})
    assert dvc(root, "repro").ran == []
    # ... and a card text is read by package alone.
    set_params(root, "package", {"intended_use": "Tests only."})
    assert dvc(root, "repro").ran == ["package"]
    card = (root / PACKAGE / "README.md").read_text()
    assert "Tests only." in card


def test_forced_full_reproductions_are_byte_identical(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    before = {name: sha256(root / name) for name in (MODEL, METRICS, PREDICTIONS)}
    forced = dvc(root, "repro", "--force")
    assert forced.ran == STAGES
    after = {name: sha256(root / name) for name in (MODEL, METRICS, PREDICTIONS)}
    assert after == before
    lock_before = yaml.safe_load(git(root, "show", "HEAD:dvc.lock").output)
    lock_after = yaml.safe_load((root / "dvc.lock").read_text())
    for stage in ("raw", "clean", "convert", "split", "evaluate"):
        assert lock_after["stages"][stage] == lock_before["stages"][stage], stage
    outs = {o["path"]: o for o in lock_after["stages"]["fit"]["outs"]}
    outs_before = {o["path"]: o for o in lock_before["stages"]["fit"]["outs"]}
    for path in (
        "data/06_models/reviews/trained_model",
        "data/08_reporting/reviews/training_history.csv",
    ):
        assert outs[path]["md5"] == outs_before[path]["md5"], path


def show_experiments(root) -> dict[str, dict]:
    """``dvc exp show --json`` as {experiment name: its params and metrics}."""
    text = dvc(root, "exp", "show", "--json").output
    shown = json.loads(text[text.index("[") :])
    runs = [e for rev in shown for e in (rev.get("experiments") or [])]
    return {e["name"]: e["revs"][0]["data"] for e in runs if e.get("name")}


def test_experiment_sets_a_task_value_with_set_param(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    run = dvc(
        root,
        "exp",
        "run",
        "--name",
        "fewer-tokens",
        "-S",
        "conf/base/globals.yml:task.max_length=8",
    )
    assert run.ran == ["convert", "split", "fit", "evaluate", "package"]
    params = show_experiments(root)["fewer-tokens"]["params"]["conf/base/globals.yml"]["data"]
    assert params["task"]["max_length"] == 8


def test_experiment_sets_a_step_parameter_with_set_param(reproduced: Reproduced, tmp_path):
    root = reproduced.copy(tmp_path / "p")
    path = root / "conf/base/parameters_evaluate.yml"
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    run = dvc(
        root,
        "exp",
        "run",
        "--name",
        "eval-batch-8",
        "-S",
        "conf/base/parameters_evaluate.yml:evaluate.batch_size=8",
    )
    assert run.ran == ["evaluate"]
    data = show_experiments(root)["eval-batch-8"]
    assert (
        data["params"]["conf/base/parameters_evaluate.yml"]["data"]["evaluate"]["batch_size"] == 8
    )
    assert "accuracy" in data["metrics"][METRICS]["data"]
    header = dvc(root, "exp", "show", "--csv").output.splitlines()[0]
    assert "accuracy" in header and "evaluate.batch_size" in header and "split.train" in header
    text = path.read_text()  # the workspace keeps the edit, with the file's comments
    assert "batch_size: 8" in text
    assert all(line in text for line in comments)


def test_push_clone_pull_is_clean_and_the_package_predicts(pushed: Reproduced, tmp_path):
    clone = fresh_clone(pushed.root, tmp_path / "clone", pushed.remote)
    dvc(clone, "pull")
    assert UP_TO_DATE in dvc(clone, "status").output
    assert not (clone / "data/06_models/reviews/checkpoints").exists()  # nothing trained here
    sh(clone, BIN / "kedro", "run", "--pipelines=predict")  # on the pulled example rows
    predictions = pd.read_csv(clone / "data/07_model_output/reviews/predictions.csv")
    assert len(predictions) == 6 and predictions["predicted_label"].notna().all()
    assert not (clone / "data/06_models/reviews/checkpoints").exists()
    assert sha256(clone / MODEL) == sha256(pushed.root / MODEL)
    assert UP_TO_DATE in dvc(clone, "status").output


def test_repro_pull_allow_missing_checks_the_lock_without_running(pushed: Reproduced, tmp_path):
    clone = fresh_clone(pushed.root, tmp_path / "clone", pushed.remote)
    check = dvc(clone, "repro", "--pull", "--allow-missing")
    assert check.ran == []
    assert "Restored stage" not in check.output
    # A change is caught by the same check, which pulls just what the stale stage needs.
    set_params(clone, "package", {"intended_use": "Tests only."})
    assert dvc(clone, "repro", "--pull", "--allow-missing").ran == ["package"]
