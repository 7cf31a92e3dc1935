"""A throwaway git + DVC copy of the project on tiny settings, reproduced once per session.

The copy holds what the stages need (dvc.yaml, conf/, src/, pyproject.toml, .dvc/config,
.dvcignore, .gitignore). ``kedro run`` inside it puts the copy's ``src/`` first on
``sys.path``, so the code that runs is the code whose hashes DVC records. The raw stage
copies a small generated table instead of the demo data; the model is the tiny random BERT.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, deep_update, make_penguins, make_reviews

BIN = Path(sys.executable).parent  # .venv/bin: dvc, kedro and python of this environment
STAGES = ["raw", "clean", "convert", "split", "fit", "evaluate", "package"]
TINY_FIT = {
    "optimizer": {"lr": 1e-3},
    "data": {"batch_size": 16, "train_subsample": None},
    "trainer": {
        "accelerator": "cpu",
        "max_epochs": 1,
        "min_steps": 0,
        "enable_progress_bar": False,
    },
}


@dataclass
class Result:
    """One command's output and how long it took."""

    output: str
    seconds: float

    @property
    def ran(self) -> list[str]:
        """The stages DVC executed (not skipped, not restored from the run-cache)."""
        return re.findall(r"Running stage '([^']+)'", self.output)


def environment() -> dict[str, str]:
    """This venv first on PATH (stage commands call `kedro`/`python`), offline, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(HF_HUB_OFFLINE="1", KEDRO_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONPATH", None)
    return env


def sh(cwd: Path, *args: str | Path) -> Result:
    """Run a command in ``cwd``; fail the test with its output when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
    )
    result = Result(proc.stdout + proc.stderr, time.perf_counter() - start)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(map(str, args))}` failed in {cwd}:\n{result.output[-6000:]}")
    return result


def dvc(cwd: Path, *args: str | Path) -> Result:
    """Run this environment's ``dvc``."""
    return sh(cwd, BIN / "dvc", *args)


def git(cwd: Path, *args: str | Path) -> Result:
    """Run ``git`` with a fixed identity."""
    return sh(cwd, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args)


def sha256(path: Path) -> str:
    """The SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_params(root: Path, step: str, override: dict) -> None:
    """Merge ``override`` into ``conf/base/parameters_<step>.yml`` of a copy."""
    path = root / "conf" / "base" / f"parameters_{step}.yml"
    current = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({step: deep_update(current[step], override)}, sort_keys=False))


def copy_project(target: Path, tiny_checkpoint_dir: Path, remote: Path) -> Path:
    """A new git repository holding the project's DVC-relevant files on tiny settings."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "local")
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, target / name)
    shutil.copytree(PROJECT_ROOT / "conf", target / "conf", ignore=ignore)
    shutil.copytree(PROJECT_ROOT / "src", target / "src", ignore=ignore)
    (target / "conf" / "local").mkdir()
    (target / "conf" / "local" / ".gitkeep").touch()
    for keep in PROJECT_ROOT.glob("data/*/.gitkeep"):
        (target / keep.relative_to(PROJECT_ROOT)).parent.mkdir(parents=True, exist_ok=True)
        (target / keep.relative_to(PROJECT_ROOT)).touch()

    git(target, "init", "--quiet", "--initial-branch=main")
    dvc(target, "init", "--quiet")
    shutil.copy(PROJECT_ROOT / ".dvc" / "config", target / ".dvc" / "config")
    # Never the user's default remote: the session's own folder, in the untracked config.local.
    dvc(target, "remote", "modify", "--local", "local", "url", remote)

    # Tiny settings: the raw stage copies a small table, the model is the tiny random BERT.
    source = target / "raw_source"
    source.mkdir()
    make_reviews(240).to_csv(source / "movie_reviews.csv", index=False)
    make_penguins().to_csv(source / "penguins.csv", index=False)
    make_reviews(6, seed=3)[["id", "text"]].to_csv(
        source / "reviews_predict_input.csv", index=False
    )
    make_penguins(9, seed=3).drop(columns="species").to_csv(
        source / "penguins_predict_input.csv", index=False
    )
    stages = yaml.safe_load((target / "dvc.yaml").read_text())
    stages["stages"]["raw"].update(
        cmd="cp raw_source/*.csv data/01_raw/",
        deps=["raw_source"],
    )
    (target / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    globals_path = target / "conf" / "base" / "globals.yml"
    g = yaml.safe_load(globals_path.read_text())
    g["task"].update(model_checkpoint=str(tiny_checkpoint_dir), max_length=32)
    globals_path.write_text(yaml.safe_dump(g, sort_keys=False))
    set_params(target, "fit", TINY_FIT)

    git(target, "add", "-A")
    git(target, "commit", "--quiet", "-m", "project on tiny settings")
    return target


@dataclass
class Reproduced:
    """The session's reproduced project and what its first ``dvc repro`` printed."""

    root: Path
    remote: Path
    first: Result

    def copy(self, target: Path) -> Path:
        """An independent copy (workspace, git history, DVC cache) to change freely."""
        shutil.copytree(self.root, target, symlinks=True)
        return target


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Reproduced:
    """The tiny project after one full ``dvc repro``, its outputs committed (lock, metrics)."""
    base = tmp_path_factory.mktemp("dvc")
    (base / "project").mkdir()
    root = copy_project(base / "project", tiny_checkpoint_dir, base / "remote")
    first = dvc(root, "repro")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "dvc repro")
    return Reproduced(root, base / "remote", first)


@pytest.fixture(scope="session")
def pushed(reproduced: Reproduced) -> Reproduced:
    """The reproduced project with its outputs and run-cache pushed to the local remote."""
    dvc(reproduced.root, "push", "--run-cache")
    return reproduced


def fresh_clone(source: Path, target: Path, remote: Path) -> Path:
    """``git clone`` of ``source`` (no data), its DVC remote set to ``remote``."""
    git(target.parent, "clone", "--quiet", source, target.name)
    dvc(target, "remote", "modify", "--local", "local", "url", remote)
    return target
