"""The predict pipeline."""

from reprotrain.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
