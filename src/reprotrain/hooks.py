"""Project hooks."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from reprotrain import params


class ValidateParametersHook:
    """Validate every step's parameters once, before any node runs.

    A typo in ``parameters_fit.yml`` stops ``kedro run --pipelines=clean`` too: the
    configuration is one unit, and finding the mistake an hour later helps nobody.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Parse each ``<step>`` group found in the loaded parameters."""
        loaded = context.params
        for step in params.STEP_PARAMS:
            if step in loaded:
                params.parse(step, loaded[step])
