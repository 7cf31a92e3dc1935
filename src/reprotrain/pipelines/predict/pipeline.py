"""The predict pipeline: a packaged model on a new table (batch inference)."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.predict.nodes import predict_table


def create_pipeline(**kwargs) -> Pipeline:
    """Create the predict pipeline."""
    return Pipeline(
        [
            Node(
                func=predict_table,
                inputs=["model_package", "predict_input", "params:predict"],
                outputs="predictions",
                name="predict_table",
            ),
        ]
    )
