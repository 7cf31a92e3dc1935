"""The convert pipeline."""

from reprotrain.pipelines.convert.pipeline import create_pipeline

__all__ = ["create_pipeline"]
