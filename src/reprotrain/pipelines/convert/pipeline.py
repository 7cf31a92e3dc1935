"""The convert pipeline: cleaned table → model inputs (token ids or numeric features)."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.convert.nodes import convert_table


def create_pipeline(**kwargs) -> Pipeline:
    """Create the convert pipeline."""
    return Pipeline(
        [
            Node(
                func=convert_table,
                inputs=["clean_table", "params:convert", "params:task"],
                outputs="model_input",
                name="convert_table",
            )
        ]
    )
