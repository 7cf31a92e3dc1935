"""The train pipeline: every step, raw data → trained, evaluated and packaged model."""

from kedro.pipeline import Pipeline

from reprotrain.pipelines import clean, convert, evaluate, fit, package, split


def create_pipeline(**kwargs) -> Pipeline:
    """Compose the step pipelines in order."""
    steps = (clean, convert, split, fit, evaluate, package)
    return sum((step.create_pipeline() for step in steps), Pipeline([]))
