"""One training run per task at a time: a lock file in the task's checkpoint folder.

Two ``fit`` runs of one task share the checkpoints, the CSV log and the outputs; run at once,
they corrupt each other's history and checkpoints. The kernel releases an ``fcntl.flock`` when
its process dies (even by SIGKILL), so a lock left behind by a killed run is taken over, with a
warning naming that run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK = "fit.lock"


class TaskLockedError(RuntimeError):
    """Another training run of the same task holds the task's lock."""


def _holder(fd: int) -> dict:
    """What the lock file open as ``fd`` says of its holder (``{}``: nothing readable)."""
    try:
        found = json.loads(os.pread(fd, 4096, 0).decode(errors="replace"))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


@contextmanager
def task_lock(checkpoint_dir: str | Path) -> Iterator[Path]:
    """Hold the training lock of the task whose checkpoints are in ``checkpoint_dir``.

    Raises:
        TaskLockedError: At once, when another run holds it: naming that run and how to clear
            a lock that outlived it.
    """
    path = Path(checkpoint_dir) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TaskLockedError(
                f"another training run of this task is in progress ({_describe(_holder(fd))}): it "
                f"holds {path}. Wait for it to finish, or stop it. If no such run exists (a "
                "lock on a shared file system can outlive its process on another host), "
                f"delete {path} and run again."
            ) from None
        previous = _holder(fd)
        if previous:
            log.warning(
                "taking over the training lock %s of a run that ended without releasing it "
                "(%s): it was killed or crashed; fit.resume: true continues from its last "
                "checkpoint",
                path,
                _describe(previous),
            )
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released cleanly: an empty file (never deleted: see flock)
    finally:
        os.close(fd)  # closing releases the flock
