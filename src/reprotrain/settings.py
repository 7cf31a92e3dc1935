"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from reprotrain.hooks import NameInputsOnErrorHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), NameInputsOnErrorHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
