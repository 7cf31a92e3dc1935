"""Atomic versions of the kedro-datasets types the catalog writes: temporary file, then rename.

kedro-datasets writes a file in place: a crash, a full disk or a failing serialiser midway
leaves a truncated file where a good one stood. The classes here write to a temporary
sibling (same folder, so the same file system) and ``os.replace`` it over the target only
once the write has finished; on any error the temporary file is removed and the previous
file stays byte-for-byte as it was.

Loading, load and save arguments and everything else are the parent class's. Only local
paths are written atomically; for a remote protocol (``s3://`` ...) the parent's save runs
unchanged, since an object store replaces an object in one request anyway.

Temporary names carry the writing process's id and a random part
(``.<name>.tmp-<pid>-<random>``, see ``temp_sibling``): concurrent runs never share one, and
the next save of the same target removes the leftovers of a process that no longer runs
(``remove_stale_siblings``), e.g. after ``kill -9`` or a full disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset

log = logging.getLogger(__name__)

# Leftovers named without a process id (written by earlier versions) are removed only once
# they are this old: no save takes a day, so their writer has long gone.
LEGACY_STALE_AFTER_S = 24 * 3600


def temp_sibling(target: str | os.PathLike[str], kind: str = "tmp", suffix: str = "") -> Path:
    """A fresh hidden name beside ``target``: ``.<name>.<kind>-<pid>-<random><suffix>``.

    The process id lets a later run tell a crashed writer's leftovers from a live one's;
    the random part keeps two writers in one process apart. ``kind`` is ``tmp`` for a
    file or folder being written, ``old`` for a folder moved aside during a swap; ``suffix``
    keeps a file's extension for writers that read it (matplotlib's format).
    """
    target = Path(target)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.name}.{kind}-{token}{suffix}")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (when unsure: yes, so nothing is removed)."""
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # a process of another user (or a bogus number): leave it alone
    return True


def stale_siblings(target: str | os.PathLike[str], kind: str = "tmp") -> list[Path]:
    """Leftovers of ``kind`` beside ``target`` whose writer no longer runs, oldest first.

    A name with a process id (``temp_sibling``) is stale when that process is gone; a name
    from an earlier version of this code (``.<name>.tmp``, ``.<name>.<random>`` folders,
    ``.<stem>.tmp-<random><suffix>`` files) when it is older than ``LEGACY_STALE_AFTER_S``.
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    name = re.escape(target.name)
    stem, suffix = re.escape(target.stem), re.escape(target.suffix)
    current = re.compile(rf"\.{name}\.{kind}-(\d+)-[0-9a-f]+({suffix})?")
    legacy = []
    if kind == "tmp":  # trainer checkpoints, atomic files, tempfile.mkdtemp(prefix=".<name>.")
        legacy = [
            re.compile(rf"\.{name}\.tmp"),
            re.compile(rf"\.{stem}\.tmp-[0-9a-f]+{suffix}"),
            re.compile(rf"\.{name}\.[a-z0-9_]{{8}}"),
        ]
    now = time.time()
    found: list[tuple[float, Path]] = []
    for entry in parent.iterdir():
        try:
            mtime = entry.lstat().st_mtime
        except FileNotFoundError:  # removed meanwhile (another run cleaning up)
            continue
        match = current.fullmatch(entry.name)
        if match:
            if not _pid_alive(int(match.group(1))):
                found.append((mtime, entry))
        elif any(p.fullmatch(entry.name) for p in legacy) and now - mtime > LEGACY_STALE_AFTER_S:
            found.append((mtime, entry))
    return [path for _, path in sorted(found)]


def remove_path(path: str | os.PathLike[str]) -> None:
    """Remove a file, a link or a folder tree (a link is removed, never followed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def remove_stale_siblings(target: str | os.PathLike[str]) -> None:
    """Remove the temporary files or folders a crashed writer of ``target`` left beside it."""
    for path in stale_siblings(target, "tmp"):
        log.info("removing %s, left by an interrupted save of %s", path, target)
        remove_path(path)


@contextlib.contextmanager
def writing(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh temporary path beside ``target``, renamed onto it when the block succeeds.

    For writers that are not Kedro datasets (checkpoints, history files): a crash or a full
    disk leaves ``target`` as it was and the temporary file is removed (or, after a kill,
    cleaned up by the next write of ``target``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = temp_sibling(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            remove_path(tmp)


class AtomicSaveMixin:
    """Make a file dataset's ``save`` atomic: write to a temporary sibling, then rename.

    Mix it in before a kedro-datasets class whose ``save`` writes one file at
    ``self._get_save_path()`` (``CSVDataset``, ``ParquetDataset``, ``JSONDataset``,
    ``MatplotlibDataset`` with a single figure): while the parent saves, ``_get_save_path``
    returns the temporary path ``.<name>.tmp-<pid>-<random>`` beside the target (see
    ``temp_sibling``); leftovers of a crashed earlier save are removed first.

    Example:

    .. code-block:: python

        class AtomicCSVDataset(AtomicSaveMixin, CSVDataset):
            '''``pandas.CSVDataset``, saved atomically.'''
    """

    _protocol: str
    _atomic_tmp: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._atomic_tmp is not None:
            return self._atomic_tmp
        return super()._get_save_path()  # type: ignore[misc]

    def save(self, data: Any) -> None:
        """Save through the parent class into a temporary file, then rename it into place.

        Raises:
            DatasetError: The target is a folder, or the parent's save failed (the
                temporary file is removed, the previous file is left unchanged).
        """
        if self._protocol != "file":
            super().save(data)  # type: ignore[misc]
            return
        target = self._get_save_path()
        target_str = get_filepath_str(target, self._protocol)
        if os.path.isdir(target_str):
            raise DatasetError(f"cannot save {type(self).__name__}: {target_str} is a folder")
        remove_stale_siblings(target_str)
        self._atomic_tmp = target.with_name(temp_sibling(target_str, suffix=target.suffix).name)
        tmp_str = get_filepath_str(self._atomic_tmp, self._protocol)
        try:
            super().save(data)  # type: ignore[misc]
            os.replace(tmp_str, target_str)
        except BaseException:
            if os.path.lexists(tmp_str):
                os.remove(tmp_str)
            raise
        finally:
            self._atomic_tmp = None
            self._invalidate_cache()  # type: ignore[attr-defined]


class AtomicCSVDataset(AtomicSaveMixin, CSVDataset):
    """``pandas.CSVDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        test_predictions:
          type: reprotrain.datasets.AtomicCSVDataset
          filepath: data/07_model_output/reviews/test_predictions.csv

    Example (Python API):

    .. code-block:: pycon

        >>> import pandas as pd
        >>> from reprotrain.datasets import AtomicCSVDataset
        >>> ds = AtomicCSVDataset(filepath=tmp_path / "table.csv")
        >>> ds.save(pd.DataFrame({"a": [1, 2]}))
        >>> ds.load()["a"].tolist()
        [1, 2]
    """


class AtomicParquetDataset(AtomicSaveMixin, ParquetDataset):
    """``pandas.ParquetDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        clean_table:
          type: reprotrain.datasets.AtomicParquetDataset
          filepath: data/02_intermediate/reviews/clean_table.parquet

    Example (Python API):

    .. code-block:: pycon

        >>> import pandas as pd
        >>> from reprotrain.datasets import AtomicParquetDataset
        >>> ds = AtomicParquetDataset(filepath=tmp_path / "table.parquet")
        >>> ds.save(pd.DataFrame({"a": [1, 2]}))
        >>> ds.load()["a"].tolist()
        [1, 2]
    """


class AtomicJSONDataset(AtomicSaveMixin, JSONDataset):
    """``json.JSONDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        metrics:
          type: reprotrain.datasets.AtomicJSONDataset
          filepath: data/08_reporting/reviews/metrics.json
          save_args:
            indent: 2

    Example (Python API):

    .. code-block:: pycon

        >>> from reprotrain.datasets import AtomicJSONDataset
        >>> ds = AtomicJSONDataset(filepath=tmp_path / "report.json")
        >>> ds.save({"rows": 3})
        >>> ds.load()
        {'rows': 3}
    """
