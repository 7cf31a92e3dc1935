"""The split pipeline."""

from reprotrain.pipelines.split.pipeline import create_pipeline

__all__ = ["create_pipeline"]
