"""The train pipeline."""

from reprotrain.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
