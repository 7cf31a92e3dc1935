"""The package pipeline: trained model → one self-contained, verified folder."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.package.nodes import build_package


def create_pipeline(**kwargs) -> Pipeline:
    """Create the package pipeline."""
    return Pipeline(
        [
            Node(
                func=build_package,
                inputs=[
                    "trained_model",
                    "test_set",
                    "metrics",
                    "split_report",
                    "params:package",
                    "params:fit",
                    "params:convert",
                    "params:task",
                    "params:clean",
                ],
                outputs="model_package",
                name="build_package",
            ),
        ]
    )
