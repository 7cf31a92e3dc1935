"""The clean pipeline."""

from reprotrain.pipelines.clean.pipeline import create_pipeline

__all__ = ["create_pipeline"]
