"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprotrain.hooks import (
    NameInputsOnErrorHook,
    PredictionsPathHook,
    RawFileHook,
    ValidateParametersHook,
)

HOOKS = (ValidateParametersHook(), RawFileHook(), PredictionsPathHook(), NameInputsOnErrorHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # globals.yml is read twice: as globals (the catalog's ${globals:task.name} paths) and as
    # parameters, so that its group `task` reaches the nodes as params:task. Step files then
    # need no ${globals:...}, which DVC cannot resolve when `dvc exp run -S` edits them.
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*", "globals.yml"],
    },
    # An env file holds only the keys it changes, and `--params=fit.trainer.max_epochs=8`
    # works under any env: groups are deep-merged over conf/base, not replaced.
    "merge_strategy": {"parameters": "soft"},
}


def load_parameters(
    step: str, conf_source: str | Path = "conf", env: str | None = None
) -> dict[str, Any]:
    """The ``step`` group of the project's parameters, as a node receives it (``params:<step>``).

    Loads the configuration as ``kedro run --env=<env>`` does (same config patterns; ``None``
    or ``"base"``: the default run environment). Nodes take it beside the ``task`` group:
    ``parse(step, load_parameters(step), load_parameters("task"))``.
    """
    from kedro.config import OmegaConfigLoader

    env = None if env == "base" else env
    loader = OmegaConfigLoader(str(conf_source), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"][step]
