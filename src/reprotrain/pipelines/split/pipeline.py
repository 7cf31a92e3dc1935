"""The split pipeline: model inputs → train / validation / test sets."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.split.nodes import split_table


def create_pipeline(**kwargs) -> Pipeline:
    """Create the split pipeline."""
    return Pipeline(
        [
            Node(
                func=split_table,
                inputs=["model_input", "params:split", "params:task"],
                outputs=["train_set", "validation_set", "test_set", "split_report"],
                name="split_table",
            )
        ]
    )
