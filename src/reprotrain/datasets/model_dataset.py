"""``SafetensorsModelDataset``: a model's architecture (JSON) and weights (safetensors)."""

from __future__ import annotations

from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

from reprotrain.artifact import (
    WEIGHTS_FILE,
    ArtifactError,
    ModelArtifact,
    load_artifact,
    save_artifact,
)


class FolderDataset(AbstractDataset[Any, Any]):
    """A dataset stored as a folder: the kedro-datasets constructor and paths, shared by
    ``SafetensorsModelDataset`` and ``ModelPackageDataset``."""

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}
    LOCAL_ONLY = False  # True: a remote protocol (``s3://`` ...) is refused at once

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
            filepath: The folder (a local path; fsspec protocols for reading, unless
                ``LOCAL_ONLY``).
            load_args: Merged over ``DEFAULT_LOAD_ARGS`` (the class docstring says which).
            save_args: Merged over ``DEFAULT_SAVE_ARGS`` (the class docstring says which).
            metadata: Free-form metadata, ignored by Kedro (used by kedro-viz).
        """
        protocol, path = get_protocol_and_path(str(filepath))
        if self.LOCAL_ONLY and protocol != "file":
            raise DatasetError(f"{type(self).__name__} works with local paths only")
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self._load_args = {**deepcopy(self.DEFAULT_LOAD_ARGS), **(load_args or {})}
        self._save_args = {**deepcopy(self.DEFAULT_SAVE_ARGS), **(save_args or {})}
        self.metadata = metadata

    def _path(self, name: str = "") -> str:
        return get_filepath_str(self._filepath / name if name else self._filepath, self._protocol)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, **self._load_args}


class SafetensorsModelDataset(FolderDataset):
    """Save and load a ``ModelArtifact`` as a folder: ``spec.json`` + ``model.safetensors``.

    No pickle is involved in either direction. ``load_args`` go to
    ``safetensors.torch.load_file`` (``device``), ``save_args`` to
    ``safetensors.torch.save_file`` (``metadata``). Fsspec protocols are read, not written.

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

    def load(self) -> ModelArtifact:
        """Read the spec and the weights; errors name the folder and the file at fault."""
        fs = None if self._protocol == "file" else self._fs
        try:
            return load_artifact(self._path(), fs=fs, device=self._load_args.get("device", "cpu"))
        except ArtifactError as err:
            raise DatasetError(str(err)) from err.__cause__

    def save(self, data: ModelArtifact) -> None:
        """Write both files into a temporary folder, then swap it into place."""
        if self._protocol != "file":
            raise DatasetError("SafetensorsModelDataset saves to local paths only")
        save_artifact(data, self._path(), **self._save_args)

    def _exists(self) -> bool:
        return self._fs.exists(self._path(WEIGHTS_FILE))
