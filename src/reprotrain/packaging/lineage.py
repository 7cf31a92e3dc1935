"""Where a model came from: git commit and configuration changes, data hashes, libraries."""

from __future__ import annotations

import logging
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from reprotrain.packaging.manifest import file_entry

log = logging.getLogger(__name__)

LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "lightning",
    "torchmetrics",
    "kedro",
    "kedro-datasets",
    "pandas",
    "numpy",
    "onnx",
    "onnxscript",
    "onnxruntime",
)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def git_commit() -> dict[str, Any] | None:
    """The git commit, and what differs from it: tracked changes, and configuration files
    that are modified, untracked (a new env) or git-ignored (``conf/local``), if in git.

    ``conf_changes`` lists those configuration files as ``git status`` does (`` M``, ``??``,
    ``!!``): the model was shaped by them, and the commit alone cannot rebuild it.
    """
    try:
        commit = _git("rev-parse", "HEAD").strip()
        tracked = _git("status", "--porcelain", "--untracked-files=no")
        conf = _git("status", "--porcelain", "--untracked-files=all", "--", "conf")
        local = _git("status", "--porcelain", "--ignored=matching", "--", "conf/local")
    except (OSError, subprocess.SubprocessError):
        return None
    changes = sorted(
        {
            line.strip()
            for line in (conf + local).splitlines()
            if line.strip() and not line.rstrip("/").endswith(".gitkeep")
        }
    )
    return {"commit": commit, "dirty": bool(tracked.strip() or changes), "conf_changes": changes}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shaped the model, plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_lineage(data_files: list[str], seed: int) -> dict[str, Any]:
    """Where the model came from: git commit, SHA-256 of the data files, libraries, seed."""
    data: dict[str, Any] = {}
    for name in data_files:
        if Path(name).is_file():
            data[name] = file_entry(Path(name))
        else:
            log.warning("lineage: data file %s not found; recorded as missing", name)
            data[name] = None
    return {"git": git_commit(), "data": data, "libraries": library_versions(), "seed": seed}
