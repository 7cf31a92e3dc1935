"""The fit pipeline."""

from reprotrain.pipelines.fit.pipeline import create_pipeline

__all__ = ["create_pipeline"]
