"""Shared fixtures: a tiny tokenizer and BERT, small tables, and a scratch copy of the project.

Nothing here downloads anything: the tokenizer is built from a word list and the BERT is
randomly initialised from a small config.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
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


@pytest.fixture
def scratch_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint_dir: Path
) -> ScratchProject:
    """The project's conf + pyproject in ``tmp_path``, set to tiny settings, cwd set to it.

    The default task uses the tiny tokenizer and a tiny random BERT; fit runs one short
    epoch. Tests change further parameters with ``write_params``.
    """
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap_project wants it; the package itself is installed
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    for layer in (
        "01_raw",
        "02_intermediate",
        "03_primary",
        "04_feature",
        "05_model_input",
        "06_models",
        "07_model_output",
        "08_reporting",
    ):
        (root / "data" / layer).mkdir(parents=True)
    project = ScratchProject(root)
    project.write_task({"model_checkpoint": str(tiny_checkpoint_dir), "max_length": 32})
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
    monkeypatch.chdir(root)
    return project


@pytest.fixture
def reviews_raw() -> pd.DataFrame:
    """A small raw table of the default task."""
    return make_reviews()


@pytest.fixture
def penguins_raw() -> pd.DataFrame:
    """A small raw table of the tabular demo."""
    return make_penguins()


def load_params(step: str, env: str = "base") -> dict:
    """The parameter group of ``step`` from the real conf, its shared keys filled from ``task``.

    Nodes called with it need no ``task`` argument.
    """
    from reprotrain.settings import load_parameters

    return load_parameters(step, PROJECT_ROOT / "conf", env)


Factory = Callable[..., Any]
