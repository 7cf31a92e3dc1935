"""The clean pipeline: raw table → cleaned table + removal report."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.clean.nodes import clean_table


def create_pipeline(**kwargs) -> Pipeline:
    """Create the clean pipeline."""
    return Pipeline(
        [
            Node(
                func=clean_table,
                inputs=["raw_table", "params:clean", "params:task"],
                outputs=["clean_table", "clean_report"],
                name="clean_table",
            )
        ]
    )
