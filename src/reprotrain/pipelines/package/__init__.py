"""The package pipeline."""

from reprotrain.pipelines.package.pipeline import create_pipeline

__all__ = ["create_pipeline"]
