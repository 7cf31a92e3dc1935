"""Parameters outside a Kedro run (tests, benchmarks, notebooks), as the nodes see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprotrain.params import with_task
from reprotrain.settings import CONFIG_LOADER_ARGS


def load_parameters(
    step: str, conf_source: str | Path = "conf", env: str | None = None
) -> dict[str, Any]:
    """The ``step`` group of the project's parameters, its shared keys filled from ``task``.

    Loads the configuration as ``kedro run --env=<env>`` does (same config patterns; ``None``
    or ``"base"``: the default run environment), so the result can be passed to a node or to
    :func:`reprotrain.params.parse` without a ``task``.
    """
    from kedro.config import OmegaConfigLoader

    env = None if env == "base" else env
    loader = OmegaConfigLoader(str(conf_source), env=env, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    return params[step] if step == "task" else with_task(step, params[step], params["task"])
