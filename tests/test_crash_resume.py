"""A training process killed with SIGKILL midway resumes from its last checkpoint and finishes."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from tests.conftest import load_params

pytestmark = pytest.mark.slow

EPOCHS = 60


def kedro_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kedro", "run", "--env=penguins", *args]


def test_sigkill_then_resume_finishes(trained):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    scratch_project = trained("penguins")  # the session's good run: its split data is used
    shutil.rmtree(scratch_project.path("data/06_models/penguins"))  # no model, no checkpoint
    root = scratch_project.root
    last = scratch_project.path("data/06_models/penguins/checkpoints/last.ckpt")
    # exactly EPOCHS epochs: no step floor to raise the cap, no early stop before it
    params = (
        f"fit.trainer.max_epochs={EPOCHS},fit.trainer.min_steps=0,"
        "fit.trainer.early_stopping.patience=1000,fit.trainer.enable_progress_bar=false"
    )
    proc = subprocess.Popen(
        kedro_cmd("--pipelines=fit", "--params", params),
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let it get past the first checkpoint, into later epochs
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    killed_at = torch.load(last, weights_only=True)["epoch"]
    assert killed_at < EPOCHS - 1
    assert not scratch_project.path("data/06_models/penguins/trained_model").exists()

    done = subprocess.run(
        kedro_cmd("--pipelines=fit", "--params", f"{params},fit.resume=true"),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = torch.load(last, weights_only=True)
    assert final["epoch"] == EPOCHS - 1
    rows = len(pd.read_parquet(scratch_project.path("data/05_model_input/penguins/train.parquet")))
    batch = load_params("fit", env="penguins")["data"]["batch_size"]
    assert final["global_step"] == EPOCHS * math.ceil(rows / batch)  # no step lost or repeated
    assert "Restoring states from the checkpoint" in done.stdout + done.stderr
    assert scratch_project.path("data/06_models/penguins/trained_model/model.safetensors").is_file()
