"""The evaluate pipeline: test predictions and baselines → metrics, plot data and figures."""

from kedro.pipeline import Node, Pipeline

from reprotrain.pipelines.evaluate.nodes import (
    compute_metrics,
    confusion_plot_data,
    fit_baselines,
    model_comparison,
    plot_confusion_matrix,
    plot_model_comparison,
    plot_training_curves,
    predict_test_set,
    training_curves,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluate pipeline."""
    return Pipeline(
        [
            Node(
                func=predict_test_set,
                inputs=["trained_model", "test_set", "params:evaluate", "params:task"],
                outputs="test_predictions",
                name="predict_test_set",
            ),
            Node(
                func=fit_baselines,
                inputs=[
                    "train_set",
                    "validation_set",
                    "test_set",
                    "params:evaluate",
                    "params:task",
                ],
                outputs="baseline_predictions",
                name="fit_baselines",
            ),
            Node(
                func=compute_metrics,
                inputs=["test_predictions", "params:task", "baseline_predictions"],
                outputs="metrics",
                name="compute_metrics",
            ),
            Node(
                func=model_comparison,
                inputs="metrics",
                outputs="model_comparison",
                name="model_comparison",
            ),
            Node(
                func=plot_model_comparison,
                inputs="model_comparison",
                outputs="model_comparison_plot",
                name="plot_model_comparison",
            ),
            Node(
                func=confusion_plot_data,
                inputs="test_predictions",
                outputs="confusion_matrix",
                name="confusion_plot_data",
            ),
            Node(
                func=training_curves,
                inputs="training_history",
                outputs="training_curves",
                name="training_curves",
            ),
            Node(
                func=plot_confusion_matrix,
                inputs=["test_predictions", "params:task"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
            Node(
                func=plot_training_curves,
                inputs="training_curves",
                outputs="training_curves_plot",
                name="plot_training_curves",
            ),
        ]
    )
