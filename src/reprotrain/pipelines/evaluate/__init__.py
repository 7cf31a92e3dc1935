"""The evaluate pipeline."""

from reprotrain.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
