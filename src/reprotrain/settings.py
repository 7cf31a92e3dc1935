"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

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
