"""Training never saves garbage, a resume keeps what it had, two runs of one task never collide.

Real Lightning fits on a tiny MLP (in-process ``fit`` or a real ``KedroSession``); the only
processes started are the ones killed or run concurrently on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from reprotrain.params import ParameterError, parse
from reprotrain.training.lock import TaskLockedError, task_lock
from reprotrain.training.system import TrainingDivergedError
from tests.pipelines.fit.test_nodes import (
    StopAfterFirstEpoch,
    mlp_params,
    run,
    tabular,
    weights,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def val() -> pd.DataFrame:
    return tabular(32, 1)


# -------------------------------------------------------------- 1. nothing diverged is saved
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optimizer": {"lr": float("inf")}}, r"fit.optimizer.lr': Input should be a finite"),
        ({"optimizer": {"lr": float("nan")}}, r"fit.optimizer.lr': Input should be a finite"),
        ({"trainer": {"gradient_clip_val": float("inf")}}, r"gradient_clip_val.*finite"),
        ({"budget": float("inf")}, r"fit.budget': Input should be a finite"),
        ({"trainer": {"max_steps": 0}}, r"max_steps.*untrained model; use -1"),
        ({"trainer": {"val_check_interval": 1.5}}, r"1.5 is neither a fraction of an epoch"),
        ({"trainer": {"val_check_interval": float("inf")}}, r"val_check_interval.*'auto'"),
        ({"trainer": {"val_check_interval": True}}, r"val_check_interval.*'auto'"),
    ],
)
def test_non_finite_and_untrainable_settings_are_rejected(tmp_path, override, message):
    with pytest.raises(ParameterError, match=message):
        parse("fit", mlp_params(tmp_path, **override))


def test_no_step_cap_is_minus_one_or_null(tmp_path):
    assert parse("fit", mlp_params(tmp_path, trainer={"max_steps": None})).trainer.max_steps == -1


def test_a_diverging_run_stops_at_once_and_saves_no_model(tmp_path):
    """A finite but absurd learning rate: the loss turns non-finite; nothing is kept."""
    params = mlp_params(tmp_path, optimizer={"lr": 1e30}, best_checkpoint=str(tmp_path / "b.ckpt"))
    with pytest.raises(TrainingDivergedError) as err:
        run(params, tabular(), val())
    text = str(err.value)
    assert "training loss is nan at optimiser step" in text or "is inf at" in text
    assert "Lower fit.optimizer.lr (it is 1e+30)" in text and "gradient" in text
    assert not (tmp_path / "b.ckpt").exists()


# --------------------------------------------- a bad setting or file deletes/loads nothing
@pytest.fixture
def first_run(tmp_path) -> dict:
    """The parameters of a finished tiny run (stopped after one of two epochs)."""
    params = mlp_params(tmp_path / "r", model={"dropout": 0.2})
    run(params, tabular(), val(), callbacks=[StopAfterFirstEpoch()])
    return params


def ckpt_bytes(params: dict) -> dict[str, bytes]:
    folder = Path(params["checkpoint_dir"])
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.ckpt"))}


class FailsDuringSetup(Callback):
    """Lightning rejecting a setting while it sets up (before training starts)."""

    def on_fit_start(self, trainer, module) -> None:
        raise RuntimeError("rejected during setup")


def test_a_run_that_fails_before_training_keeps_the_previous_checkpoints(first_run):
    before = ckpt_bytes(first_run)
    assert set(before) == {"best.ckpt", "last.ckpt"}
    with pytest.raises(RuntimeError, match="rejected during setup"):
        run(first_run, tabular(), val(), callbacks=[FailsDuringSetup()])
    assert ckpt_bytes(first_run) == before


def test_val_check_interval_beyond_an_epoch_fails_before_anything_is_deleted(first_run):
    before = ckpt_bytes(first_run)
    bad = {**first_run, "trainer": {**first_run["trainer"], "val_check_interval": 1000}}
    with pytest.raises(ParameterError, match=r"val_check_interval is 1000 batches.*only 6"):
        run(bad, tabular(), val())
    assert ckpt_bytes(first_run) == before


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pickle.dumps(Evil()), r"best\.ckpt: the checkpoint is truncated or corrupt"),
        (os.urandom(2048), r"best\.ckpt: the checkpoint is truncated or corrupt"),
        (b"torch", r"best\.ckpt: it is not a Lightning checkpoint"),
    ],
    ids=["booby_trapped_pickle", "random_bytes", "other_pickle"],
)
def test_a_foreign_best_checkpoint_is_named_before_training(first_run, content, message):
    best = Path(first_run["checkpoint_dir"]) / "best.ckpt"
    if content == b"torch":  # a torch file, but not a Lightning checkpoint
        torch.save({"weights": torch.ones(3)}, best)
    else:
        best.write_bytes(content)
    last = (Path(first_run["checkpoint_dir"]) / "last.ckpt").read_bytes()
    with pytest.raises(ValueError, match=r"cannot resume from .*" + message):
        run({**first_run, "resume": True}, tabular(), val())
    assert (Path(first_run["checkpoint_dir"]) / "last.ckpt").read_bytes() == last  # no training
    assert not Path("pwned.txt").exists()


# ------------------------------------------------------------ 2. resume keeps what it had
def test_resuming_a_finished_run_keeps_its_history(tmp_path):
    params = mlp_params(tmp_path, trainer={"log_every_n_steps": 1})
    trained, history = run(params, tabular(), val())
    assert len(history) == 12 + 2 * 2  # a row per step, a validation and an epoch row per epoch
    again, resumed = run({**params, "resume": True}, tabular(), val())
    pd.testing.assert_frame_equal(resumed, history)
    assert torch.equal(weights(again), weights(trained))


CHILD = """
import sys, time
from pathlib import Path
from lightning.pytorch.callbacks import Callback
from tests.pipelines.fit.test_nodes import mlp_params, run, tabular
import json

params = json.loads(sys.argv[1])
marker = Path(sys.argv[2])

class HangAt(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == 10:  # mid-epoch 2 (6 batches an epoch), after step 8's save
            marker.write_text("at step 10")
            time.sleep(600)

run(params, tabular(), tabular(32, 1), callbacks=[HangAt()])
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_continues_from_the_saved_step(tmp_path):
    """Killed at step 10 of 18 (mid-epoch); resumed from step 8's state; as if never killed."""
    over = {
        "model": {"dropout": 0.3},  # randomness: a resume that redraws it would show
        "trainer": {
            "max_epochs": 3,
            "log_every_n_steps": 1,
            "checkpoint_every_n_steps": 4,
            "checkpoint_every_minutes": None,
        },
    }
    params = mlp_params(tmp_path / "killed", **over)
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(params), str(marker)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), *sys.path])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), child.communicate()[1][-3000:]
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    last = Path(params["checkpoint_dir"]) / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 8 and saved["global_step"] % 6  # mid-epoch

    resumed, history = run({**params, "resume": True}, tabular(), val())
    whole, whole_history = run(mlp_params(tmp_path / "whole", **over), tabular(), val())
    assert torch.equal(weights(resumed), weights(whole))  # same batches, same dropout
    train_steps = history.dropna(subset=["train/loss"])["step"].tolist()
    assert train_steps == list(range(18))  # one row per logged step: no gap, no duplicate
    assert history["val/loss"].notna().sum() == 3
    pd.testing.assert_frame_equal(history, whole_history)


# --------------------------------------------------------- 3. one run per task at a time
def test_the_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with task_lock(tmp_path / "ckpt") as path:
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(TaskLockedError, match=rf"pid {os.getpid()} on host .*started"):
            with task_lock(tmp_path / "ckpt"):
                pass
        with task_lock(tmp_path / "other-task"):  # another task: no interference
            pass
    with task_lock(tmp_path / "ckpt"):  # released
        pass


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    (tmp_path / "fit.lock").write_text(json.dumps({"pid": pid, "host": "h", "started": 0}))
    with task_lock(tmp_path):
        pass
    assert f"pid {pid} on host h" in caplog.text and "taking over" in caplog.text


PENGUINS_FIT = {
    "trainer": {"max_epochs": 12, "min_steps": 0, "enable_progress_bar": False},
}
OUTPUTS = (
    "data/06_models/penguins/trained_model",
    "data/08_reporting/penguins/training_history.csv",
    "data/06_models/penguins/best.ckpt",
)


def output_hashes(root: Path) -> dict[str, str]:
    found = {}
    for rel in OUTPUTS:
        path = root / rel
        for f in sorted([path] if path.is_file() else path.rglob("*")):
            if f.is_file():
                found[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return found


@pytest.mark.slow
def test_two_fit_runs_of_one_task_one_runs_the_other_is_refused(trained):
    project = trained("penguins")  # the session's good run: its split data is used
    project.write_params("fit", PENGUINS_FIT, env="penguins")
    lock = project.path("data/06_models/penguins/checkpoints/fit.lock")
    first = subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--env=penguins", "--pipelines=fit"],
        cwd=project.root,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if lock.is_file() and lock.read_text():
            break
        time.sleep(0.05)
    assert json.loads(lock.read_text())["pid"] == first.pid, first.communicate()[1][-3000:]

    with pytest.raises(TaskLockedError, match=rf"in progress \(pid {first.pid} on host"):
        project.run("fit", env="penguins")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert lock.read_text() == ""  # released
    survivor = output_hashes(project.root)
    assert len(survivor) > 3

    project.run("fit", env="penguins")  # the same task, alone
    assert output_hashes(project.root) == survivor
