"""The project's ``kedro run``: Kedro's own command, with errors a user can fix told briefly.

Kedro picks up this module's ``cli`` group and lets its commands override the built-in ones
(https://docs.kedro.org/en/stable/extend/common_use_cases/). ``run`` here is Kedro's ``run``
with two changes:

- an error the user can fix (a bad parameter, a missing or malformed file, bad data, a
  tampered package, a full disk) ends the run with one short paragraph on stderr and exit
  code 1, instead of a page of traceback; ``--verbose`` (or ``REPROTRAIN_TRACEBACK=1``) keeps
  the traceback. Anything else (a bug) still raises with its full traceback.
- ``--pipeline=train`` is taken as ``--pipelines=train`` without Kedro's deprecation warning.
"""

from __future__ import annotations

import copy
import errno
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as _kedro_run

# Raised deliberately, with a message meant for the user, wherever they come from.
_USER_ERRORS = (
    "ParameterError",
    "DataError",
    "PackageError",
    "ManifestError",
    "ScaffoldError",
    "TrainingDivergedError",  # reprotrain.training.system: a non-finite loss
    "TaskLockedError",  # reprotrain.training.lock: another fit of the task runs
    "DatasetError",  # Kedro: a dataset failed to load or save, and names its file
    "UnicodeDecodeError",
    "EmptyDataError",  # pandas: an empty file
    "ParserError",  # pandas: a malformed CSV
    "ConstructorError",  # YAML, e.g. a duplicate key
    "DuplicateKeyError",
    "ScannerError",
)
# Also the user's when our own code raised them (a validation with a message), not a library.
# Matched by name above: importing the training modules here would import torch.
_OURS_WHEN_RAISED_HERE = (ValueError, FileNotFoundError)
_FILE_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EISDIR, errno.EEXIST}


def _is_user_error(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it wraps) is one the user can fix from its message."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(cls.__name__ in _USER_ERRORS for cls in type(error).__mro__):
            return True
        if isinstance(error, OSError) and error.errno in _FILE_ERRNOS:
            return True
        if isinstance(error, _OURS_WHEN_RAISED_HERE) and _raised_in_project(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _raised_in_project(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in this package."""
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    return bool(frames) and frames[-1].f_globals.get("__name__", "").startswith("reprotrain")


def _yaml_file_at_fault(conf_source: str | None) -> str | None:
    """The first configuration file that does not parse: YAML's own errors say ``<file>``."""
    import yaml
    from omegaconf._utils import get_yaml_loader

    for path in sorted(Path(conf_source or "conf").rglob("*.yml")):
        try:
            yaml.load(path.read_text("utf-8"), Loader=get_yaml_loader())  # noqa: S506 - safe loader
        except yaml.YAMLError:
            return str(path)
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _paragraph(error: BaseException, conf_source: str | None = None) -> str:
    """``error: <message>`` and a hint for the traceback, the message's lines kept."""
    message = str(error).strip() or type(error).__name__
    if '"<file>"' in message:
        found = _yaml_file_at_fault(conf_source)
        message = message.replace('"<file>"', found or "a file under conf/")
    lines = message.splitlines()
    body = "\n".join(["error: " + lines[0], *("  " + line.strip() for line in lines[1:])])
    return f"{body}\n  (run again with --verbose for the traceback)"


def _short_errors(command: click.Command) -> click.Command:
    """A copy of ``command`` that reports user errors briefly (see the module docstring)."""
    wrapped = copy.copy(command)
    wrapped.params = [
        *command.params,
        click.Option(["--verbose"], is_flag=True, help="Show the full traceback of an error."),
    ]
    callback = command.callback

    def run(*args: Any, verbose: bool = False, **kwargs: Any) -> Any:
        if kwargs.get("pipeline") and not kwargs.get("pipelines"):
            kwargs["pipelines"], kwargs["pipeline"] = [kwargs["pipeline"]], None
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            if verbose or os.environ.get("REPROTRAIN_TRACEBACK") or not _is_user_error(error):
                raise
            click.echo(_paragraph(error, kwargs.get("conf_source")), err=True)
            sys.exit(1)

    run.__doc__ = callback.__doc__
    wrapped.callback = run
    return wrapped


@click.group(name="reprotrain")
def cli() -> None:
    """The reprotrain project's commands."""


cli.add_command(_short_errors(_kedro_run), name="run")
