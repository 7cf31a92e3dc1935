"""Atomic files and folders: write beside the target, then rename into place.

The one home of the project's write safety. A writer puts its new file or folder at a fresh
hidden sibling of the target (same folder, so the same file system) and renames it into place
only once it is complete: a crash, a full disk or a failing serialiser leaves the previous
version byte-for-byte as it was, and the next write removes the dead writer's leftovers.
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
from pathlib import Path

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
        path.unlink(missing_ok=True)


def remove_stale_siblings(target: str | os.PathLike[str]) -> None:
    """Remove the temporary files or folders a crashed writer of ``target`` left beside it."""
    for path in stale_siblings(target, "tmp"):
        log.info("removing %s, left by an interrupted save of %s", path, target)
        remove_path(path)


@contextlib.contextmanager
def writing(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path beside ``target``, renamed onto it when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = temp_sibling(target, suffix=suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            remove_path(tmp)


@contextlib.contextmanager
def writing_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A new empty folder beside ``target``, swapped into place when the block succeeds.

    The folder version of ``writing``; it is removed if the block fails.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(str(target))
    remove_stale_siblings(target)
    tmp = temp_sibling(target)
    tmp.mkdir(0o700)
    try:
        yield tmp
        replace_dir(str(tmp), str(target))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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

    Moved-aside folders left beside an existing ``target`` are removed (the swap had finished).

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
