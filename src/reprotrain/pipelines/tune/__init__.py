"""The tune pipeline: a hyperparameter search over the fit step's parameters."""

from reprotrain.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
