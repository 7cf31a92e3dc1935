"""Shared fixtures: a tiny tokenizer and BERT, small tables, and a scratch copy of the project.

Nothing here downloads anything: the tokenizer is built from a word list and the BERT is
randomly initialised from a small config.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n 2``), one thread per worker: the workers share the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # for the processes the tests start, too
        import torch

        torch.set_num_threads(1)


POSITIVE = ["good", "great", "superb", "moving", "funny", "brilliant", "warm", "lovely"]
NEGATIVE = ["bad", "awful", "dull", "boring", "flat", "tedious", "weak", "clumsy"]
NEUTRAL = ["the", "film", "movie", "plot", "story", "acting", "is", "was", "a", "and", "very"]

TINY_BERT = {
    "model_type": "bert",
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "pad_token_id": 0,
}


def make_reviews(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A raw table shaped like the VADER snippets: ``id, sentiment, text``, learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        words = list(rng.choice(NEUTRAL, size=rng.integers(3, 9)))
        words += list(rng.choice(POSITIVE if positive else NEGATIVE, size=rng.integers(1, 3)))
        rng.shuffle(words)
        score = float(rng.uniform(0.5, 3.5)) * (1 if positive else -1)
        rows.append({"id": i + 1, "sentiment": round(score, 3), "text": " ".join(words)})
    return pd.DataFrame(rows)


def make_penguins(n: int = 150, seed: int = 0) -> pd.DataFrame:
    """A raw table shaped like Palmer penguins, with missing values, three separable species."""
    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])[np.arange(n) % 3]
    centre = {
        "Adelie": (39, 18.5, 190, 3700),
        "Chinstrap": (49, 18.5, 196, 3700),
        "Gentoo": (47, 15, 217, 5100),
    }
    data = np.array([centre[s] for s in species], dtype=float)
    data += rng.normal(0, 1, data.shape) * np.array([1.5, 0.6, 4, 200])
    frame = pd.DataFrame(
        data, columns=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    )
    frame.insert(0, "species", species)
    frame.insert(1, "island", rng.choice(["Biscoe", "Dream", "Torgersen"], n))
    frame["sex"] = rng.choice(["female", "male"], n)
    frame["year"] = 2007 + np.arange(n) % 3
    frame.loc[3, ["bill_length_mm", "body_mass_g"]] = np.nan
    frame.loc[7, "sex"] = np.nan
    return frame


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT fast tokenizer over the test vocabulary, saved as a local folder."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *NEUTRAL]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A randomly initialised tiny BERT (no head) plus its tokenizer: a local 'pretrained' model."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    BertModel(
        BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    ).save_pretrained(folder)
    for f in tiny_tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def deep_update(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base``."""
    out = dict(base)
    for k, v in override.items():
        out[k] = (
            deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


class ScratchProject:
    """A copy of the project's configuration in a temporary folder, run with a real session."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_params(self, step: str, override: dict[str, Any], env: str = "base") -> None:
        """Merge ``override`` into ``conf/<env>/parameters_<step>.yml`` of the copy."""
        path = self.root / "conf" / env / f"parameters_{step}.yml"
        source = path if path.exists() else self.root / "conf" / "base" / f"parameters_{step}.yml"
        current = yaml.safe_load(source.read_text())
        path.write_text(yaml.safe_dump({step: deep_update(current[step], override)}))

    def write_task(self, override: dict[str, Any], env: str = "base") -> None:
        """Merge ``override`` into the ``task`` group of ``conf/<env>/globals.yml`` of the copy."""
        path = self.root / "conf" / env / "globals.yml"
        source = path if path.exists() else self.root / "conf" / "base" / "globals.yml"
        current = yaml.safe_load(source.read_text())
        path.write_text(yaml.safe_dump({"task": {**current["task"], **override}}))

    def write_raw(self, frame: pd.DataFrame, name: str = "movie_reviews.csv") -> Path:
        """Write a raw table under ``data/01_raw``."""
        path = self.root / "data" / "01_raw" / name
        frame.to_csv(path, index=False)
        return path

    def run(self, pipeline: str = "__default__", env: str | None = None, **kwargs: Any) -> dict:
        """Run ``pipeline`` through a real ``KedroSession`` in the copy."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.root)
        with KedroSession.create(project_path=self.root, env=env, **kwargs) as session:
            return session.run(pipeline_names=[pipeline])

    def path(self, relative: str) -> Path:
        """A path inside the copy."""
        return self.root / relative


LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def new_scratch_project(root: Path, checkpoint: Path) -> ScratchProject:
    """The project's conf + pyproject in ``root``, set to tiny settings (see ``scratch_project``)."""
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap_project wants it; the package itself is installed
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    for layer in LAYERS:
        (root / "data" / layer).mkdir(parents=True)
    project = ScratchProject(root)
    project.write_task({"model_checkpoint": str(checkpoint), "max_length": 32})
    project.write_params(
        "fit",
        {
            "optimizer": {"lr": 1e-3},
            "data": {"batch_size": 16, "train_subsample": None},
            "trainer": {
                "accelerator": "cpu",
                "max_epochs": 1,
                "min_steps": 0,
                "enable_progress_bar": False,
            },
        },
    )
    project.write_raw(make_reviews())
    project.write_raw(make_penguins(), "penguins.csv")
    return project


@pytest.fixture
def scratch_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint_dir: Path
) -> ScratchProject:
    """The project's conf + pyproject in ``tmp_path``, set to tiny settings, cwd set to it.

    The default task uses the tiny tokenizer and a tiny random BERT; fit runs one short
    epoch. Tests change further parameters with ``write_params``.
    """
    project = new_scratch_project(tmp_path / "project", tiny_checkpoint_dir)
    monkeypatch.chdir(project.root)
    return project


@contextlib.contextmanager
def network_refused() -> Iterator[list[str]]:
    """Make every socket connection fail while inside; yields the list of attempts."""
    import socket

    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            target = args[1] if len(args) > 1 else args[0] if args else kwargs
            attempts.append(f"{what}{target!r}")
            raise OSError(f"network access is disabled in this test ({what} {target!r})")

        return refused

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse("socket.connect"))
        patch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
        patch.setattr(socket, "create_connection", refuse("socket.create_connection"))
        patch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
        yield attempts


# What the session's good runs predict: 20 reviews, 12 penguins (no species).
REVIEWS_PREDICT = "data/01_raw/reviews_predict_input.csv"
PENGUINS_PREDICT = "data/01_raw/penguins_predict_input.csv"
TINY_PENGUINS = {"trainer": {"max_epochs": 2, "min_steps": 0}}


class TrainedRuns:
    """The ``data/`` of one good tiny ``train`` then ``predict`` run per env, made once.

    ``base`` is the default text task (tiny BERT, one epoch) and predicts
    ``make_reviews(20, seed=9)``; ``penguins`` is the tabular MLP (two epochs) and predicts
    ``make_penguins(12, seed=9)``. Each env is trained on first use, in-process through a real
    ``KedroSession`` with every socket connection refused, and kept for the whole session;
    ``network[env]`` lists the connections the run tried (tests/test_security.py).
    """

    def __init__(self, root: Path, checkpoint: Path) -> None:
        self.root = root
        self.checkpoint = checkpoint
        self.network: dict[str, list[str]] = {}

    def data(self, env: str) -> Path:
        """The folder holding ``data/`` after the good run of ``env`` (made on first use)."""
        cached = self.root / env / "data"
        if not cached.exists():
            project = new_scratch_project(self.root / env / "project", self.checkpoint)
            with contextlib.chdir(project.root), network_refused() as attempts:
                if env == "penguins":
                    project.write_params("fit", TINY_PENGUINS, env="penguins")
                    frame = make_penguins(12, seed=9).drop(columns="species")
                    frame.to_csv(project.path(PENGUINS_PREDICT), index=False)
                else:
                    frame = make_reviews(20, seed=9)[["id", "text"]]
                    frame.to_csv(project.path(REVIEWS_PREDICT), index=False)
                run_env = None if env == "base" else env
                project.run("train", env=run_env)
                project.run("predict", env=run_env)
            self.network[env] = attempts
            shutil.copytree(project.path("data"), cached)
        return cached


@pytest.fixture(scope="session")
def trained_runs(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path
) -> TrainedRuns:
    """The session's good runs, one per env, copied into scratch projects by ``trained``."""
    return TrainedRuns(tmp_path_factory.mktemp("trained_runs"), tiny_checkpoint_dir)


@pytest.fixture
def trained(scratch_project: ScratchProject, trained_runs: TrainedRuns) -> Callable[..., Any]:
    """``trained(env="base")``: ``scratch_project`` with ``data/`` of the session's good run.

    Trained, evaluated, packaged and predicted (see ``TrainedRuns``); the conf is the scratch
    project's own, so a test may change parameters before or after.
    """

    def fill(env: str = "base") -> ScratchProject:
        shutil.rmtree(scratch_project.path("data"))
        shutil.copytree(trained_runs.data(env), scratch_project.path("data"))
        if env == "penguins":
            scratch_project.write_params("fit", TINY_PENGUINS, env="penguins")
        return scratch_project

    return fill


@pytest.fixture(scope="session")
def mlp_package_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MLP package of ``penguin_features(30)`` saved once (one ONNX export per session).

    Tests take a copy (``mlp_package``); only a test about saving saves another.
    """
    from reprotrain.datasets import ModelPackageDataset
    from tests.factories import draft_for, penguin_features, tiny_mlp

    table = penguin_features(30)
    folder = tmp_path_factory.mktemp("mlp_package") / "package"
    ModelPackageDataset(filepath=str(folder)).save(draft_for(tiny_mlp(table), table))
    return folder


@pytest.fixture
def mlp_package(tmp_path: Path, mlp_package_template: Path) -> Path:
    """A fresh copy of ``mlp_package_template`` in ``tmp_path/models/package``."""
    folder = tmp_path / "models" / "package"
    shutil.copytree(mlp_package_template, folder)
    return folder


@dataclass
class Done:
    """What an in-process ``kedro`` command did: like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


def reopen_library_log_streams() -> None:
    """Point Lightning's and torchmetrics' own log handlers at the current stderr if theirs closed.

    Both libraries give their logger a ``StreamHandler`` on the stream of the moment when first
    imported. Imported inside a test (``capsys``, or click's ``CliRunner`` in
    :func:`kedro_in_process`), that stream is closed when the test or the run ends, and a later
    log line of theirs prints a "Logging error" traceback into another run's output.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        for handler in logging.getLogger(name).handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # not setStream: it flushes the closed one


@pytest.fixture(autouse=True)
def _library_log_streams_stay_open() -> Iterator[None]:
    """After each test: see :func:`reopen_library_log_streams`."""
    yield
    reopen_library_log_streams()


def kedro_in_process(root: Path, *args: str) -> Done:
    """``kedro <args>`` (the project's own commands) in ``root``, in this process.

    The same click command as ``python -m kedro``, without starting Python and importing torch
    again. ``stderr`` holds every log record (the real command prints them there too), then the
    command's stderr, then the traceback of an exception the command let through.
    """
    from click.testing import CliRunner
    from kedro.framework.startup import bootstrap_project

    from reprotrain.cli import cli

    bootstrap_project(root)
    reopen_library_log_streams()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.chdir(root):
            result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    finally:
        logging.getLogger().removeHandler(handler)
    stderr = log.getvalue() + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Done(result.exit_code, result.stdout, stderr)


@pytest.fixture
def reviews_raw() -> pd.DataFrame:
    """A small raw table of the default task."""
    return make_reviews()


@pytest.fixture
def penguins_raw() -> pd.DataFrame:
    """A small raw table of the tabular demo."""
    return make_penguins()


def load_params(step: str, env: str = "base") -> dict:
    """The parameter group of ``step`` (``task``: the task group) from the real conf."""
    from reprotrain.settings import load_parameters

    return load_parameters(step, PROJECT_ROOT / "conf", env)


def make_task(labels: list[str] | None = None, **override: Any) -> dict:
    """A task group with these ``labels`` (``type="regression"``: none) for node calls."""
    return {"name": "t", "raw_file": "data/01_raw/t.csv", "labels": labels, **override}


def load_task(env: str = "base", **override: Any) -> dict:
    """The task group of the real conf, with ``override``'s keys replaced."""
    return {**load_params("task", env), **override}


Factory = Callable[..., Any]


def kedro(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m kedro <args>`` in ``root``, offline, with a wide log (fewer line breaks)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def flat(text: str) -> str:
    """The log with rich's line wrapping and padding undone."""
    return " ".join(text.split())


def hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``data/``, by path relative to ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "data").rglob("*"))
        if p.is_file()
    }
