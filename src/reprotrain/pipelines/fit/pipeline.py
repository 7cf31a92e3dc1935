"""The fit pipeline: build the model, then train it."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.fit.nodes import build_model, train_model


def create_pipeline(**kwargs) -> Pipeline:
    """Create the fit pipeline."""
    return Pipeline(
        [
            Node(
                func=build_model,
                inputs=["train_set", "params:fit", "params:task"],
                outputs="initial_model",
                name="build_model",
            ),
            Node(
                func=train_model,
                inputs=[
                    "initial_model",
                    "train_set",
                    "validation_set",
                    "params:fit",
                    "params:task",
                ],
                outputs=["trained_model", "training_history"],
                name="train_model",
            ),
        ]
    )
