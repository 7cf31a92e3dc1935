"""Entry point so that the project runs as ``reprotrain`` and ``python -m reprotrain``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

COMMANDS = {"new-task": "reprotrain.scaffold", "tune-apply": "reprotrain.tune_apply"}


def main(*args: Any, **kwargs: Any) -> Any:
    """Run the project's ``kedro run`` command, or ``new-task`` / ``tune-apply``."""
    if not args and not kwargs and sys.argv[1:2] and sys.argv[1] in COMMANDS:
        sys.exit(importlib.import_module(COMMANDS[sys.argv[1]]).main(sys.argv[2:]))
    # Imported here: importing kedro.framework.project configures (and announces) logging,
    # which new-task does not want.
    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    package_name = Path(__file__).parent.name
    configure_project(package_name)
    kwargs["standalone_mode"] = not hasattr(sys, "ps1")
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
