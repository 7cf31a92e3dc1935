"""``SafetensorsModelDataset``: a model's architecture (JSON) and weights (safetensors)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

from reprotrain.datasets.atomic import (
    remove_path,
    remove_stale_siblings,
    stale_siblings,
    temp_sibling,
)

log = logging.getLogger(__name__)
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelArtifact:
    """What is saved of a model: a JSON-able architecture spec and a tensor state dict."""

    spec: dict[str, Any]
    state_dict: dict[str, Any] = field(repr=False)
    source: str | None = field(default=None, compare=False)
    """The folder it was loaded from (``None`` for a model still in memory), for messages."""


class SafetensorsModelDataset(AbstractDataset[ModelArtifact, ModelArtifact]):
    """Save and load a ``ModelArtifact`` as a folder: ``spec.json`` + ``model.safetensors``.

    No pickle is involved in either direction. Saving writes into a temporary folder next to
    the target and renames it into place, so a failed save leaves the previous model intact.

    Example catalog entry (YAML API):

    .. code-block:: yaml

        trained_model:
          type: reprotrain.datasets.SafetensorsModelDataset
          filepath: data/06_models/reviews/trained_model

    Example (Python API):

    .. code-block:: pycon

        >>> import torch
        >>> from reprotrain.datasets import ModelArtifact, SafetensorsModelDataset
        >>> ds = SafetensorsModelDataset(filepath=tmp_path / "model")
        >>> ds.save(ModelArtifact({"family": "mlp"}, {"w": torch.zeros(2)}))
        >>> ds.load().spec
        {'family': 'mlp'}
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"device": "cpu"}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: The model folder (local path; fsspec protocols for reading).
            load_args: Passed to ``safetensors.torch.load_file`` (e.g. ``device``).
            save_args: Passed to ``safetensors.torch.save_file`` (e.g. ``metadata``).
            metadata: Free-form metadata, ignored by Kedro (used by kedro-viz).
        """
        protocol, path = get_protocol_and_path(str(filepath))
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self._load_args = {**deepcopy(self.DEFAULT_LOAD_ARGS), **(load_args or {})}
        self._save_args = {**deepcopy(self.DEFAULT_SAVE_ARGS), **(save_args or {})}
        self.metadata = metadata

    def _path(self, name: str = "") -> str:
        return get_filepath_str(self._filepath / name if name else self._filepath, self._protocol)

    def load(self) -> ModelArtifact:
        """Read the spec and the weights; errors name the folder and the file at fault."""
        from safetensors.torch import load

        folder = self._path()
        if self._protocol == "file":
            recover_dir(folder)
        for name in (SPEC_FILE, WEIGHTS_FILE):
            if not self._fs.exists(self._path(name)):
                raise DatasetError(f"model folder {folder} has no {name}")
        name = SPEC_FILE
        try:
            with self._fs.open(self._path(SPEC_FILE), "r") as f:
                spec = json.load(f)
            name = WEIGHTS_FILE
            with self._fs.open(self._path(WEIGHTS_FILE), "rb") as f:
                state = load(f.read())
        except Exception as err:  # corrupt JSON or safetensors header
            raise DatasetError(f"model folder {folder} is corrupt: {name}: {err}") from err
        device = self._load_args.get("device", "cpu")
        return ModelArtifact(spec, {k: v.to(device) for k, v in state.items()}, source=folder)

    def save(self, data: ModelArtifact) -> None:
        """Write both files into a temporary folder, then swap it into place."""
        from safetensors.torch import save_file

        if self._protocol != "file":
            raise DatasetError("SafetensorsModelDataset saves to local paths only")
        target = self._path()
        tmp = make_temp_dir(target)
        try:
            state = {k: v.detach().cpu().contiguous() for k, v in data.state_dict.items()}
            save_file(state, os.path.join(tmp, WEIGHTS_FILE), **self._save_args)
            with open(os.path.join(tmp, SPEC_FILE), "w", encoding="utf-8") as f:
                json.dump(data.spec, f, indent=2, sort_keys=True, default=str)
            replace_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _exists(self) -> bool:
        return self._fs.exists(self._path(WEIGHTS_FILE))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}


def make_temp_dir(target: str) -> str:
    """A new empty folder beside ``target`` to write its next version into.

    First the save recovers ``target`` if a crash left it swapped aside (``recover_dir``) and
    removes folders that crashed saves of it left behind (their process is gone).
    """
    parent = os.path.dirname(target) or "."
    os.makedirs(parent, exist_ok=True)
    recover_dir(target)
    remove_stale_siblings(target)
    tmp = str(temp_sibling(target))
    os.mkdir(tmp, 0o700)
    return tmp


def replace_dir(new: str, target: str) -> None:
    """Move folder ``new`` to ``target``, replacing any folder there.

    Two renames: the current folder is moved aside to ``.<name>.old-<pid>-<random>``, then
    ``new`` is moved into place, then the old one is removed. A crash between the two renames
    leaves no folder at ``target`` but the previous one beside it, complete: the next load or
    save of ``target`` puts it back (``recover_dir``). At no moment is a half-written folder
    at ``target``.
    """
    old = None
    if os.path.exists(target):
        old = str(temp_sibling(target, "old"))
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old:
            os.rename(old, target)  # put the previous folder back before reporting
        raise
    if old:  # renamed to a temporary name first: a half-deleted folder is never restored
        doomed = str(temp_sibling(target))
        os.rename(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def recover_dir(target: str) -> bool:
    """Undo a swap that a crash interrupted: put the previous folder back at ``target``.

    When ``target`` is missing and a crashed ``replace_dir`` left the previous folder aside
    (``.<name>.old-<pid>-<random>``, its process gone), that folder is renamed back. Moved-aside
    folders left beside an existing ``target`` are removed (the swap had finished).

    Returns:
        Whether a folder was put back.
    """
    aside = stale_siblings(target, "old")
    restored = False
    if aside and not os.path.lexists(target):
        newest = aside.pop()
        os.rename(newest, target)
        log.warning(
            "%s was missing after an interrupted save; restored the previous version from %s",
            target,
            newest.name,
        )
        restored = True
    for path in aside:
        remove_path(path)
    return restored
