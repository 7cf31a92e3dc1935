"""``ModelArtifact``: what is saved of a model (architecture spec and weights), and its folder.

Below ``reprotrain.models`` (and free of torch at import): the Kedro datasets use it without
importing the model code. Nothing is pickled in either direction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprotrain.atomic import recover_dir, writing_dir

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"


class ArtifactError(ValueError):
    """A model folder lacks a file or holds a corrupt one."""


@dataclass
class ModelArtifact:
    """What is saved of a model: a JSON-able architecture spec and a tensor state dict."""

    spec: dict[str, Any]
    state_dict: dict[str, Any] = field(repr=False)
    source: str | None = field(default=None, compare=False)
    """The folder it was loaded from (``None`` for a model still in memory), for messages."""


def save_weights(state_dict: dict[str, Any], path: str | Path, **save_args: Any) -> None:
    """Write a state dict to a safetensors file (tensors detached, on the CPU, contiguous)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    save_file(state, path, **save_args)


def save_artifact(artifact: ModelArtifact, target: str, **save_args: Any) -> None:
    """Write ``spec.json`` and ``model.safetensors`` into a temporary folder, then swap it in.

    Args:
        artifact: The model to save.
        target: The model folder (a local path); a folder already there is replaced.
        save_args: Passed to ``safetensors.torch.save_file`` (e.g. ``metadata``).
    """
    with writing_dir(target) as tmp:
        save_weights(artifact.state_dict, tmp / WEIGHTS_FILE, **save_args)
        with open(tmp / SPEC_FILE, "w", encoding="utf-8") as f:
            json.dump(artifact.spec, f, indent=2, sort_keys=True, default=str)


def load_artifact(folder: str, *, fs: Any = None, device: str = "cpu") -> ModelArtifact:
    """Read the spec and the weights of a model folder.

    Args:
        folder: The model folder.
        fs: An fsspec file system to read it from (default: the local one; a local folder
            that a crash left swapped aside is restored first, ``recover_dir``).
        device: Where the tensors go.

    Raises:
        ArtifactError: A file is missing or corrupt; the message names the folder and file.
    """
    from safetensors.torch import load

    if fs is None:
        import fsspec

        fs = fsspec.filesystem("file")
        recover_dir(folder)
    for name in (SPEC_FILE, WEIGHTS_FILE):
        if not fs.exists(f"{folder}/{name}"):
            raise ArtifactError(f"model folder {folder} has no {name}")
    name = SPEC_FILE
    try:
        with fs.open(f"{folder}/{SPEC_FILE}", "r") as f:
            spec = json.load(f)
        name = WEIGHTS_FILE
        with fs.open(f"{folder}/{WEIGHTS_FILE}", "rb") as f:
            state = load(f.read())
    except Exception as err:  # corrupt JSON or safetensors header
        raise ArtifactError(f"model folder {folder} is corrupt: {name}: {err}") from err
    return ModelArtifact(spec, {k: v.to(device) for k, v in state.items()}, source=folder)
