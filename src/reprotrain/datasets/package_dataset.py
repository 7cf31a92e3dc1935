"""``ModelPackageDataset``: a self-contained model folder with a SHA-256 manifest, saved atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kedro.io.core import DatasetError

from reprotrain.atomic import recover_dir, writing_dir
from reprotrain.datasets.model_dataset import FolderDataset
from reprotrain.packaging.format import MANIFEST_FILE
from reprotrain.packaging.manifest import write_manifest


@runtime_checkable
class StagedPackage(Protocol):
    """What ``ModelPackageDataset.save`` accepts: an object that writes and checks a folder."""

    def write(self, folder: Path) -> None:
        """Write every file of the package into the empty folder ``folder``."""

    def verify(self, folder: Path) -> None:
        """Reload the package from ``folder`` and raise if it does not behave as expected."""


def _make_readable(folder: Path) -> None:
    """Folders 0755 and files 0644 (``mkdtemp`` and some writers create owner-only modes)."""
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


class ModelPackageDataset(FolderDataset):
    """Save a model package folder atomically and verified; load it back after a manifest check.

    Saving takes a ``StagedPackage`` (``reprotrain.packaging.PackageDraft``). The dataset

    1. creates a temporary folder beside the target,
    2. lets the package ``write`` itself there and adds ``manifest.json`` (SHA-256 of every
       file),
    3. re-checks the manifest and calls ``verify`` on the temporary folder, which reloads the
       package from disk and compares its predictions with the in-memory model,
    4. only then swaps the folder into place (``replace_dir``).

    A failure at any step removes the temporary folder and re-raises: the previous package,
    if any, stays untouched. Verification runs before the swap because the package must never
    be published unverified.

    Loading verifies ``manifest.json`` first (a missing, changed or extra file raises an error
    naming it; ``load_args: {verify: false}`` skips it), then returns
    ``reprotrain.packaging.load_package(folder)``: an object whose ``predict(rows)`` gives
    labels and scores. Local paths only; ``save_args`` are unused.

    Example catalog entry (YAML API):

    .. code-block:: yaml

        model_package:
          type: reprotrain.datasets.ModelPackageDataset
          filepath: data/06_models/reviews/package
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"verify": True}
    LOCAL_ONLY = True

    def load(self) -> Any:
        """Verify the manifest, then load the package for prediction."""
        from reprotrain.packaging.runtime import load_package  # torch: only when loading

        folder = self._path()
        recover_dir(folder)
        if not os.path.isdir(folder):
            raise DatasetError(f"no model package at {folder}; run `kedro run --pipelines=package`")
        return load_package(folder, verify=self._load_args.get("verify", True))

    def save(self, data: StagedPackage) -> None:
        """Write into a temporary folder, add the manifest, verify, then swap into place."""
        if not isinstance(data, StagedPackage):
            raise DatasetError(
                f"ModelPackageDataset saves objects with write() and verify(), got {type(data)}"
            )
        with writing_dir(self._path()) as tmp:
            data.write(tmp)
            write_manifest(tmp)
            data.verify(tmp)  # reloads like a user: the manifest is checked there
            _make_readable(tmp)

    def _exists(self) -> bool:
        return os.path.isfile(os.path.join(self._path(), MANIFEST_FILE))
