"""Project hooks."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from reprotrain import params

log = logging.getLogger(__name__)


class ValidateParametersHook:
    """Validate every step's parameters once, before any node runs.

    A typo in ``parameters_fit.yml`` stops ``kedro run --pipelines=clean`` too: the
    configuration is one unit, and finding the mistake an hour later helps nobody.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Parse the ``task`` group, then each ``<step>`` group found, filled from it.

        Reads the config loader's parameters (runtime ``--params`` included), not
        ``context.params``: outside ``kedro run`` that property type-checks against every
        registered pipeline, importing them all (torch, lightning: ~7 s) to start a session.
        """
        loaded = context.config_loader["parameters"]
        task = loaded.get("task")
        params.parse("task", task)
        # The catalog's paths come from globals, which `--params` does not reach.
        paths = context.config_loader["globals"].get("task", {})
        for key in ("name", "raw_file"):
            if task.get(key) != paths.get(key):
                raise params.ParameterError(
                    f"task.{key} is {task.get(key)!r} in the parameters but {paths.get(key)!r} "
                    f"in globals.yml: it names the catalog's files, so change it in globals.yml "
                    f"rather than with --params"
                )
        for step in params.STEP_PARAMS:
            if step != "task" and step in loaded:
                params.parse(step, loaded[step], task)


class NameInputsOnErrorHook:
    """When a node fails, log which files its inputs came from.

    A node never sees paths, so its error names a column or a value; this hook adds the file,
    e.g. "clean_table failed on raw_table = data/01_raw/movie_reviews.csv".
    """

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any) -> None:
        """Log the file path of every input dataset of the failing node."""
        described = []
        for name in node.inputs:
            if name.startswith("params:") or name == "parameters":
                continue
            try:
                filepath = catalog.get(name)._describe().get("filepath")
            except Exception:  # noqa: BLE001 - best effort: never mask the real error
                filepath = None
            described.append(f"{name} = {filepath}" if filepath else name)
        # markup off: Kedro's rich handler would read "[...]" in an error message as markup
        log.error(
            "node '%s' failed on %s: %s",
            node.name,
            ", ".join(described),
            error,
            extra={"markup": False},
        )
