"""``manifest.json``: the SHA-256 and size of every file of a package, written and checked."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from reprotrain.packaging.format import MANIFEST_FILE, MANIFEST_FORMAT


class ManifestError(ValueError):
    """A package's files do not match its manifest: one is missing, changed or unexpected."""


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """A file's manifest (and lineage) entry: ``{"sha256": ..., "bytes": ...}``."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


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
    files = {name: file_entry(folder / name) for name in _package_files(folder)}
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
