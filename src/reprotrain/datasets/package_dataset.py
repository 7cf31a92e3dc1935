"""``ModelPackageDataset``: a self-contained model folder with a SHA-256 manifest, saved atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

from reprotrain.datasets.model_dataset import make_temp_dir, recover_dir, replace_dir

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1


class ManifestError(ValueError):
    """A package's files do not match its manifest: one is missing, changed or unexpected."""


@runtime_checkable
class StagedPackage(Protocol):
    """What ``ModelPackageDataset.save`` accepts: an object that writes and checks a folder."""

    def write(self, folder: Path) -> None:
        """Write every file of the package into the empty folder ``folder``."""

    def verify(self, folder: Path) -> None:
        """Reload the package from ``folder`` and raise if it does not behave as expected."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` (POSIX relative paths), the manifest excepted.

    Raises:
        ManifestError: The folder holds a symbolic link (to a file or a folder, inside or
            outside the package) or something that is neither a file nor a folder. A
            package is plain files: a link could point a reader at any file of the machine.
    """
    files = []
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise ManifestError(
                    f"package {folder}: '{rel}' is a symbolic link (to {os.readlink(path)}); "
                    "a package holds plain files only: rebuild the package or replace the link "
                    "with a copy of the file (with DVC, use cache.type copy or reflink)"
                )
            if name in names:
                if not path.is_file():
                    raise ManifestError(f"package {folder}: '{rel}' is not a regular file")
                if rel != MANIFEST_FILE:
                    files.append(rel)
    return sorted(files)


def _check_entry_name(manifest: Path, name: Any) -> None:
    """Refuse a manifest entry that could name a file outside the package folder."""
    bad = None
    if not isinstance(name, str) or not name:
        bad = "is not a file name"
    elif name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        bad = "is an absolute path"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        bad = "is not a plain relative path inside the package (it holds '..', '.' or '//')"
    if bad:
        raise ManifestError(
            f"{manifest}: entry {name!r} {bad}; a manifest lists only files inside the "
            "package folder. The package may have been tampered with: rebuild it with "
            "`kedro run --pipelines=package` or get it again from its source"
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    """``manifest.json``, checked for shape: ``{"files": {name: {sha256, bytes}}, ...}``."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path} is not valid JSON ({err}); rebuild the package") from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise ManifestError(
            f"{path} is not a package manifest: expected an object with a 'files' object "
            f"({{name: {{sha256, bytes}}}}), got {type(manifest).__name__}"
            + (f" with keys {sorted(manifest)}" if isinstance(manifest, dict) else "")
        )
    for name, entry in listed.items():
        _check_entry_name(path, name)
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            raise ManifestError(
                f"{path}: the entry of '{name}' must be an object with 'sha256' (text) and "
                f"'bytes' (integer), got {entry!r}"
            )
    return manifest


def write_manifest(folder: str | Path) -> dict[str, Any]:
    """Write ``manifest.json``: the SHA-256 and size of every other file in ``folder``."""
    folder = Path(folder)
    files = {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        for name in _package_files(folder)
    }
    manifest = {"format": MANIFEST_FORMAT, "algorithm": "sha256", "files": files}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify_manifest(folder: str | Path) -> dict[str, Any]:
    """Check every file of ``folder`` against its ``manifest.json``.

    Returns:
        The manifest.

    Raises:
        ManifestError: The manifest is missing, unreadable or malformed, or lists a path
            that is absolute or leads outside the folder; the folder holds a symbolic link;
            or a file is missing, changed (size or SHA-256 differ) or not listed. The
            message names the file.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if path.is_symlink() or not path.is_file():
        raise ManifestError(f"package {folder} has no {MANIFEST_FILE} (as a regular file)")
    present = set(_package_files(folder))  # refuses symbolic links before any is followed
    manifest = _read_manifest(path)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for name, entry in sorted(listed.items()):
        file = folder / name
        if name not in present:
            raise ManifestError(
                f"package {folder}: file '{name}' listed in the manifest is missing"
            )
        if file.stat().st_size != entry["bytes"] or sha256_file(file) != entry["sha256"]:
            raise ManifestError(
                f"package {folder}: file '{name}' was changed (its SHA-256 does not match "
                f"{MANIFEST_FILE})"
            )
    extra = sorted(present - set(listed))
    if extra:
        raise ManifestError(f"package {folder}: file(s) {extra} are not in {MANIFEST_FILE}")
    return manifest


def _make_readable(folder: Path) -> None:
    """Folders 0755 and files 0644 (``mkdtemp`` and some writers create owner-only modes)."""
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


class ModelPackageDataset(AbstractDataset[StagedPackage, Any]):
    """Save a model package folder atomically and verified; load it back after a manifest check.

    Saving takes a ``StagedPackage`` (see ``reprotrain.packaging.PackageDraft``): an object
    that knows how to ``write`` its files and how to ``verify`` a written copy against the
    model still in memory. The dataset

    1. creates a temporary folder beside the target (same file system, so the final rename
       is atomic),
    2. lets the package ``write`` itself there and adds ``manifest.json`` (SHA-256 of every
       file),
    3. re-checks the manifest and calls ``verify`` on the temporary folder, which reloads the
       package from disk and compares its predictions with the in-memory model,
    4. only then swaps the folder into place (``replace_dir``).

    A failure at any step removes the temporary folder and re-raises: the previous package,
    if any, stays untouched, and no half-written package is ever visible at ``filepath``.
    Verification runs before the swap because the package must never be published unverified.
    A crash (``kill -9``) leaves the temporary folder, named with the process id, which the
    next save removes; a crash between the swap's two renames leaves no folder at
    ``filepath`` but the previous one beside it, which the next load or save restores.

    Loading verifies ``manifest.json`` first (a missing, changed or extra file raises an error
    naming it), then returns ``reprotrain.packaging.load_package(folder)``: an object whose
    ``predict(rows)`` gives labels and scores.

    Example catalog entry (YAML API):

    .. code-block:: yaml

        model_package:
          type: reprotrain.datasets.ModelPackageDataset
          filepath: data/06_models/reviews/package

    Example (Python API):

    .. code-block:: pycon

        >>> from reprotrain.datasets import ModelPackageDataset
        >>> from reprotrain.packaging import PackageDraft
        >>> ds = ModelPackageDataset(filepath=tmp_path / "package")
        >>> ds.save(draft)  # a PackageDraft built by the package pipeline
        >>> ds.load().predict(["a lovely, moving film"])
           label     score
        0  positive  0.97
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"verify": True}
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
            filepath: The package folder (a local path).
            load_args: ``verify`` (default True): check the manifest when loading.
            save_args: Unused; accepted for symmetry with kedro-datasets.
            metadata: Free-form metadata, ignored by Kedro (used by kedro-viz).
        """
        protocol, path = get_protocol_and_path(str(filepath))
        if protocol != "file":
            raise DatasetError("ModelPackageDataset works with local paths only")
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._load_args = {**deepcopy(self.DEFAULT_LOAD_ARGS), **(load_args or {})}
        self._save_args = {**deepcopy(self.DEFAULT_SAVE_ARGS), **(save_args or {})}
        self.metadata = metadata

    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def load(self) -> Any:
        """Verify the manifest, then load the package for prediction."""
        from reprotrain.packaging import load_package

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
        target = self._path()
        tmp = make_temp_dir(target)
        try:
            data.write(Path(tmp))
            write_manifest(tmp)
            data.verify(Path(tmp))  # reloads like a user: the manifest is checked there
            _make_readable(Path(tmp))
            replace_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _exists(self) -> bool:
        return os.path.isfile(os.path.join(self._path(), MANIFEST_FILE))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, **self._load_args}
