"""The tune pipeline: search on train + validation, then the table's best values and plots."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.tune.nodes import (
    best_parameters,
    plot_parameters,
    plot_search_history,
    search,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the tune pipeline (never reads the test split)."""
    tune = ["params:tune", "params:task"]
    return Pipeline(
        [
            Node(
                func=search,
                inputs=["train_set", "validation_set", "params:tune", "params:fit", "params:task"],
                outputs="tune_trials",
                name="search",
            ),
            Node(
                func=best_parameters,
                inputs=["tune_trials", *tune],
                outputs="tune_best_params",
                name="best_parameters",
            ),
            Node(
                func=plot_search_history,
                inputs=["tune_trials", *tune],
                outputs="tune_history_plot",
                name="plot_search_history",
            ),
            Node(
                func=plot_parameters,
                inputs=["tune_trials", *tune],
                outputs="tune_parameters_plot",
                name="plot_parameters",
            ),
        ]
    )
