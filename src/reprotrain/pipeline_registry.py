"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: one per step folder, plus ``train`` as the default.

    ``train`` composes the step pipelines in its own folder (not here), so that
    ``kedro run --pipelines=train`` works with Kedro's per-folder pipeline loading.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "train" in pipelines:
        pipelines["__default__"] = pipelines["train"]
    return pipelines
