"""The train pipeline: every step, raw data → trained (and, later, packaged) model."""

from kedro.pipeline import Pipeline

from reprotrain.pipelines import clean, convert, fit, split


def create_pipeline(**kwargs) -> Pipeline:
    """Compose the step pipelines in order."""
    steps = (clean, convert, split, fit)
    return sum((step.create_pipeline() for step in steps), Pipeline([]))
