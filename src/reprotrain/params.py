"""Typed parameters of every step, validated before any node runs.

Each ``conf/<env>/parameters_<step>.yml`` holds one top-level key named after its step, and
``conf/<env>/globals.yml`` holds the group ``task``: the values several steps share and the
task's data paths (how it reaches the nodes: ``settings.py``). Nodes take the task group and
their step's group side by side: a step file that repeats a task key is refused.

The models here give a typo or a bad value a message that names the key and the allowed values,
instead of a ``KeyError`` deep inside a node. This module imports only pydantic, so that cheap
steps stay cheap.
"""

from __future__ import annotations

import math
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)


class ParameterError(ValueError):
    """A parameter is missing, misspelt or out of range."""


class _Params(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in any number (a learning rate, say) is rejected
    # here, instead of training a model to all-NaN weights
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------------------------------- task
class TaskParams(_Params):
    """The task: its name and raw file (paths) and the values several steps share."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    raw_file: str = Field(min_length=1)
    # what a model predicts: one of ``labels`` per row, or one number per row
    type: Literal["classification", "regression"] = "classification"
    labels: list[str] | None = None
    model_checkpoint: str | None = None
    max_length: int = Field(128, gt=1, le=8192)
    seed: int = Field(42, ge=0, le=2**32 - 1)  # numpy's seeds are 32-bit unsigned

    @model_validator(mode="after")
    def _labels_for_classification(self) -> TaskParams:
        if self.type == "classification" and not self.labels:
            raise ValueError("'labels' must list the class names for a classification task")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError(f"'labels' repeats a class name: {self.labels}")
        return self


# --------------------------------------------------------------------------------------- clean
class ScoreToLabel(_Params):
    """Turn a numeric score column into two label names (e.g. sentiment > 0 is positive)."""

    threshold: float = 0.0
    below: str
    above: str


def _check_date_formats(date_columns: dict[str, str]) -> dict[str, str]:
    """Refuse a date format that is neither ``ISO8601`` nor a strptime format."""
    for column, fmt in date_columns.items():
        if fmt != "ISO8601" and "%" not in fmt:
            raise ValueError(
                f"column '{column}': format {fmt!r} is neither a strptime format (such as "
                f"'%Y-%m-%d' or '%d.%m.%Y %H:%M') nor 'ISO8601'"
            )
    return date_columns


def _overlap(roles: dict[str, list[str]]) -> str | None:
    """A message naming a column listed under two of ``roles`` (key: list of columns), or None."""
    seen: dict[str, str] = {}
    for role, columns in roles.items():
        for c in columns:
            if c in seen and seen[c] != role:
                return f"column '{c}' is in both '{seen[c]}' and '{role}': give it one role"
            seen[c] = role
    return None


class CleanParams(_Params):
    """Which raw columns hold the text, the features and the label, and what to drop."""

    label_column: str
    label_from_score: ScoreToLabel | None = None
    text_column: str | None = None
    numeric_columns: list[str] = []
    categorical_columns: list[str] = []
    # column -> strptime format ("%Y/%m/%d", "%d.%m.%Y %H:%M") or "ISO8601": features
    # <column>.time, .month, .day_of_week, .day_of_year (and .hour) (features.date_parts)
    date_columns: dict[str, str] = {}
    id_column: str | None = None
    group_column: str | None = None
    missing_features: Literal["drop", "keep"] = "drop"
    drop_duplicates: bool = True
    # warn when cleaning drops more than this share of the raw rows
    warn_drop_share: float = Field(0.2, ge=0, le=1)
    # "insensitive": a raw label that matches a configured one but for case and spacing
    # ("adelie", "ADELIE ") counts as that label; "exact": it is dropped as unknown_label.
    label_case: Literal["exact", "insensitive"] = "exact"

    _formats = field_validator("date_columns")(_check_date_formats)

    @model_validator(mode="after")
    def _check(self) -> CleanParams:
        features = self.numeric_columns or self.categorical_columns or self.date_columns
        if self.text_column is None and not features:
            raise ValueError(
                "set either 'text_column' or at least one of 'numeric_columns'/"
                "'categorical_columns'/'date_columns'"
            )
        if self.date_columns:
            clash = _overlap(
                {
                    "date_columns": list(self.date_columns),
                    "numeric_columns": self.numeric_columns,
                    "categorical_columns": self.categorical_columns,
                    "label_column": [self.label_column],
                    "text_column": [self.text_column] if self.text_column else [],
                    "id_column": [self.id_column] if self.id_column else [],
                }
            )
            if clash:
                raise ValueError(clash)
        return self


# ------------------------------------------------------------------------------------- convert
class ConvertParams(_Params):
    """How cleaned rows become model inputs: token ids, or numeric feature columns.

    Text tasks tokenize with ``task.model_checkpoint``'s tokenizer, truncating to
    ``task.max_length`` tokens.
    """

    batch_size: int = Field(1000, gt=0)
    numeric_columns: list[str] = []
    categories: dict[str, list[str]] = {}
    # column -> format, as in clean: what the package parses raw dates with
    date_columns: dict[str, str] = {}

    _formats = field_validator("date_columns")(_check_date_formats)

    @model_validator(mode="after")
    def _check(self) -> ConvertParams:
        if self.date_columns:
            clash = _overlap(
                {
                    "date_columns": list(self.date_columns),
                    "numeric_columns": self.numeric_columns,
                    "categories": list(self.categories),
                }
            )
            if clash:
                raise ValueError(clash)
        return self


# --------------------------------------------------------------------------------------- split
class SplitParams(_Params):
    """Train / validation / test fractions, stratification and optional grouping (seed: task)."""

    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)
    stratify: bool = True
    group_column: str | None = None

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitParams:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1.0, got {total:g}")
        return self


# ----------------------------------------------------------------------------------------- fit
class TransformerModelParams(_Params):
    """A Hugging Face sequence classifier: pretrained (``task.model_checkpoint``), or randomly
    initialised from ``config``."""

    family: Literal["transformer"]
    config: dict[str, Any] | None = None


class MLPModelParams(_Params):
    """A multi-layer perceptron for tabular features."""

    family: Literal["mlp"]
    hidden_sizes: list[Annotated[int, Field(gt=0)]] = [64, 64]
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    init: Literal["xavier", "kaiming", "normal"] = "kaiming"
    # > 0: each feature also enters as a piecewise-linear encoding over this many quantile
    # bins of the training split (Gorishniy et al. 2022), which lets an MLP cut a feature at
    # thresholds as trees do; 0: standardised features only.
    bins: int = Field(0, ge=0, le=64)


class OptimizerParams(_Params):
    """Optimiser, learning rate and regularisation (L2 as decoupled weight decay, plus L1)."""

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(5e-5, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    l1: float = Field(0.0, ge=0)


class ScheduleParams(_Params):
    """Linear warmup, then decay to zero (or constant) over the run."""

    warmup_steps: int = Field(0, ge=0)
    decay: Literal["linear", "cosine", "constant"] = "linear"


class DataLoaderParams(_Params):
    """Batching: global batch size, length grouping, workers, optional training subsample."""

    batch_size: int = Field(32, gt=0)
    eval_batch_size: int = Field(128, gt=0)
    group_by_length: bool = True
    num_workers: int = Field(0, ge=0)
    train_subsample: int | None = Field(None, gt=0)


class EarlyStoppingParams(_Params):
    """Stop when the validation metric has not improved for ``patience`` validations.

    ``monitor: auto``: see ``reprotrain.training.budget.monitor_of``; or name a metric the fit
    step logs. The best checkpoint follows the same metric. Early stopping never acts before
    ``trainer.min_steps`` optimiser steps.
    """

    monitor: Literal[
        "auto", "val/loss", "val/f1", "val/acc", "val/mse", "val/mae", "train/loss"
    ] = "auto"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)


class TrainerParams(_Params):
    """The Lightning Trainer's settings."""

    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int = Field(1, ge=1)
    num_nodes: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp", "fsdp", "deepspeed"] = "auto"
    precision: Literal["auto", "32-true", "16-mixed", "bf16-mixed", "bf16-true"] = "auto"
    # The training budget: see reprotrain.training.budget.
    max_epochs: int = Field(10, ge=1)
    min_steps: int = Field(300, ge=0)
    # -1 (or null): no step cap; 0 would save an untrained model and is rejected
    max_steps: int | None = Field(-1, ge=-1)
    # "auto", a fraction of an epoch (0 < x <= 1), or a whole number of batches (> 1)
    val_check_interval: Literal["auto"] | int | float = Field("auto")
    accumulate_grad_batches: int = Field(1, ge=1)
    gradient_clip_val: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingParams | None = EarlyStoppingParams()
    deterministic: bool = True
    log_every_n_steps: int = Field(10, ge=1)
    # Lightning loggers besides the CSV log the training history is read from (offline:
    # under log_dir): tensorboard (needs tensorboard or tensorboardX), mlflow (needs mlflow;
    # a local file store, log_dir/mlruns)
    loggers: tuple[Literal["tensorboard", "mlflow"], ...] = ()
    enable_progress_bar: bool = True
    num_threads: int | None = Field(None, ge=1)
    # Multi-device runs (devices * num_nodes > 1) go through reprotrain.training.launcher.
    launcher: Literal["torchrun", "srun"] = "torchrun"
    rdzv_endpoint: str | None = None
    # Resume state (checkpoint_dir/last.ckpt) is also saved every this many minutes of
    # training, not only at validations, so that a crash mid-epoch loses at most that much.
    # null: only at validations. Saving consumes no randomness: the weights do not change.
    checkpoint_every_minutes: float | None = Field(5.0, gt=0)
    # ... or every this many optimiser steps instead (exclusive with the above).
    checkpoint_every_n_steps: int | None = Field(None, ge=1)

    @field_validator("max_steps", mode="after")
    @classmethod
    def _no_zero_steps(cls, value: int | None) -> int:
        if value == 0:
            raise ValueError("0 steps would save an untrained model; use -1 (or null) for no cap")
        return -1 if value is None else value

    @field_validator("val_check_interval", mode="before")
    @classmethod
    def _interval_kind(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError("must be 'auto', a fraction of an epoch or a number of batches")
        if isinstance(value, float) and value > 1:
            if not value.is_integer():
                raise ValueError(
                    f"{value:g} is neither a fraction of an epoch (0 < x <= 1) nor a whole "
                    "number of batches"
                )
            return int(value)
        return value

    @model_validator(mode="after")
    def _check_strategy(self) -> TrainerParams:
        if self.strategy == "deepspeed":
            raise ValueError("strategy 'deepspeed' is not supported; use 'ddp' or 'fsdp'")
        if self.strategy == "fsdp" and self.accelerator in ("cpu", "mps"):
            raise ValueError(
                "strategy 'fsdp' needs CUDA GPUs (accelerator 'gpu', 'cuda' or 'auto')"
            )
        if isinstance(self.val_check_interval, (int, float)) and self.val_check_interval <= 0:
            raise ValueError("'val_check_interval' must be 'auto' or a positive number")
        if self.checkpoint_every_minutes is not None and self.checkpoint_every_n_steps is not None:
            raise ValueError(
                "set one of 'checkpoint_every_minutes' and 'checkpoint_every_n_steps' "
                "(the other null)"
            )
        return self


class FitParams(_Params):
    """Everything the build-model and train nodes need besides the task (type, labels, seed).

    The three paths default to folders named after ``task.name`` (see :func:`parse`); the
    defaults here serve a ``FitParams`` made without a task.
    """

    model: Annotated[TransformerModelParams | MLPModelParams, Field(discriminator="family")]
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    optimizer: OptimizerParams = OptimizerParams()
    schedule: ScheduleParams = ScheduleParams()
    data: DataLoaderParams = DataLoaderParams()
    trainer: TrainerParams = TrainerParams()
    # Minutes of wall-clock training (Lightning's max_time): the best model found within them.
    # It stops at a time, not a step, so a rerun may stop elsewhere: see the README.
    budget: float | None = Field(None, gt=0)
    # "balanced": cross-entropy weighted by n / (classes * count) of each training class.
    class_weights: Literal["balanced"] | None = None
    # An exponential moving average of the weights (decay per optimiser step, e.g. 0.99) is
    # what is validated, checkpointed and kept; null: the weights themselves.
    ema: float | None = Field(None, gt=0, lt=1)
    checkpoint_dir: str = "data/06_models/checkpoints"
    # A copy of best.ckpt outside checkpoint_dir (a cached DVC output); checkpoint_dir holds
    # Lightning's resume state, which must survive DVC removing a stage's outputs.
    best_checkpoint: str | None = None
    log_dir: str = "data/08_reporting/training_logs"
    resume: bool = False


# ------------------------------------------------------------------------------------ evaluate
class EvaluateParams(_Params):
    """The inference batch size and the baselines.

    ``baselines``: also fit cheap classical models on the same training split and score them
    on the same test split (``reprotrain.baselines``), beside the trained model.
    """

    batch_size: int = Field(128, gt=0)
    baselines: bool = True
    baseline_max_rows: int | None = Field(50_000, gt=0)


# ------------------------------------------------------------------------------------- package
class PackageParams(_Params):
    """What the package's card says, which data files its lineage hashes, how it self-checks.

    The categories come from ``convert``; task, labels, tokenizer, truncation length and seed
    from the task group: one source of truth each.
    """

    name: str | None = Field(None, min_length=1)
    # The task.name these texts were written for: a card never describes another task with
    # them (an env that inherits base's texts gets generated ones). null: any task.
    describes: str | None = None
    intended_use: str | None = None
    limitations: str | None = None
    lineage_files: list[str] = []
    verify_rows: int = Field(32, gt=0)
    tolerance: float = Field(1e-5, gt=0)
    # text packages: also an ONNX model for onnxruntime (load_package(..., backend="onnx")),
    # fp32 or int8 (dynamic quantisation of the weights); null: none
    onnx: Literal["fp32", "int8"] | None = None


# ------------------------------------------------------------------------------------- predict
class PredictParams(_Params):
    """Which column of the new table holds the text (text tasks), and the batch size.

    ``text_column: null`` takes the package's: the name the training table gave the text
    (``clean.text_column``), or ``text`` where the table has no such column.

    The package itself is the catalog entry ``model_package``; tabular packages name the
    columns they need in their ``package.json``.
    """

    text_column: str | None = None
    # texts per forward pass: packaging.runtime.TEXT_BATCH, the fastest on a CPU; a GPU takes more
    batch_size: int = Field(32, gt=0)
    # seconds between two progress lines ("1200 of 100000 rows, 71 rows/s, about 0:22:10
    # left"); a table predicted within this time logs none
    log_every_s: float = Field(30.0, ge=0)
    # torch, or onnx: the package's ONNX model in onnxruntime (built with package.onnx)
    backend: Literal["torch", "onnx"] = "torch"


# ---------------------------------------------------------------------------------------- tune
class SpaceRange(_Params):
    """A numeric range: integers when ``low`` and ``high`` are both whole numbers in the YAML."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SpaceRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("give 'step' or 'log: true', not both")
        return self

    @property
    def integer(self) -> bool:
        """Both bounds are whole numbers (``16``, not ``16.0``): sample integers."""
        return all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))


class SpaceChoice(_Params):
    """A categorical choice among listed values (numbers, strings, lists such as MLP sizes)."""

    choices: list[Any] = Field(min_length=1)


def _entry_kind(value: Any) -> str:
    choice = isinstance(value, SpaceChoice) or (isinstance(value, dict) and "choices" in value)
    return "choice" if choice else "range"


# {choices: [...]} or {low: ..., high: ...}: one message for the kind the entry is
SpaceEntry = Annotated[
    Annotated[SpaceRange, Tag("range")] | Annotated[SpaceChoice, Tag("choice")],
    Discriminator(_entry_kind),
]


class PrunerParams(_Params):
    """Optuna's median pruner: stop a trial whose validation curve is below the median."""

    name: Literal["median", "none"] = "median"
    # trials that always run to the end before any is pruned
    startup_trials: int = Field(2, ge=0)
    # validations of each trial before it may be pruned
    warmup_validations: int = Field(1, ge=0)


class TuneParams(_Params):
    """The hyperparameter search (``kedro run --pipelines=tune``): its space and budget.

    ``space`` maps dotted keys of the fit step (``fit.optimizer.lr``) to a range or a list
    of choices; every other key keeps the env's fit value. An env's space is merged key by key
    over conf/base's: ``null`` drops a key from the search.
    """

    trials: int | None = Field(20, gt=0)
    # minutes of search (Optuna's timeout): no trial starts after it; null: no time limit
    budget: float | None = Field(None, gt=0)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    # auto: val/f1 (macro-F1, higher is better) for classification, val/loss for regression
    objective: Literal["auto", "val/f1", "val/acc", "val/loss"] = "auto"
    pruner: PrunerParams = PrunerParams()
    # trials at once, each in its own process with cpu_cores / jobs torch threads
    jobs: int = Field(1, ge=1)
    space: dict[str, SpaceEntry] = Field(min_length=1)

    @field_validator("space", mode="before")
    @classmethod
    def _drop_nulls(cls, space: Any) -> Any:
        if not isinstance(space, dict):
            return space
        for key, entry in space.items():
            if isinstance(entry, dict) and "choices" in entry and {"low", "high"} & set(entry):
                raise ValueError(
                    f"'{key}' has both 'choices' and 'low'/'high'; an env's entry is merged "
                    f"over conf/base's, so set one kind per key (null in an env drops a key)"
                )
        return {k: v for k, v in space.items() if v is not None}

    @field_validator("space", mode="after")
    @classmethod
    def _known_keys(cls, space: dict[str, Any]) -> dict[str, Any]:
        for key in space:
            problem = _unknown_fit_key(key)
            if problem:
                raise ValueError(problem)
        return space

    @property
    def metric(self) -> str:
        """The validation metric the search optimises (:func:`parse` resolves ``auto``)."""
        return self.objective

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        """``minimize`` for a loss, ``maximize`` otherwise."""
        return "minimize" if self.metric.endswith("loss") else "maximize"


# Keys a search may not vary: they are paths, the task's shared values, or not about training.
_UNTUNABLE = {"task", "labels", "seed", "checkpoint_dir", "best_checkpoint", "log_dir", "resume"}


def _unknown_fit_key(key: str) -> str | None:
    """Why ``key`` names no parameter of the fit step (with a suggestion), or ``None``."""
    import difflib

    parts = key.split(".")
    if parts[0] != "fit" or len(parts) < 2:
        return f"'{key}': a search key starts with 'fit.' (e.g. fit.optimizer.lr)"
    if parts[1] in _UNTUNABLE or parts[1:] in (["model", "family"], ["model", "checkpoint"]):
        return f"'{key}' cannot be searched (a path, a shared task value or the model family)"
    models: list[type[BaseModel]] = [FitParams]
    for i, part in enumerate(parts[1:], start=1):
        fields = {name: f for m in models for name, f in m.model_fields.items()}
        if part not in fields:
            close = difflib.get_close_matches(part, sorted(fields), n=1)
            hint = f" (did you mean '{'.'.join(parts[:i] + close)}'?)" if close else ""
            return (
                f"unknown key '{key}'{hint}; keys under '{'.'.join(parts[:i])}': "
                f"{', '.join(sorted(fields))}"
            )
        models = _models_in(fields[part].annotation)
        if not models and i < len(parts) - 1:
            return f"unknown key '{key}': '{'.'.join(parts[: i + 1])}' has no sub-keys"
    if models and parts[-1] != "config":
        return f"'{key}' is a group; name one of its keys (e.g. '{key}.{next(iter(models[0].model_fields))}')"
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model in an annotation such as ``A | B | None`` or ``Annotated[A | B]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def set_dotted(group: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``group`` with the dotted ``key`` (below the group, e.g. ``optimizer.lr``) set."""
    head, _, rest = key.partition(".")
    if not rest:
        return {**group, head: value}
    inner = group.get(head)
    return {**group, head: set_dotted(inner if isinstance(inner, dict) else {}, rest, value)}


def with_point(fit: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The raw fit group with a sampled point (``{"fit.optimizer.lr": 3e-4, ...}``) applied."""
    for key, value in point.items():
        fit = set_dotted(fit, key.removeprefix("fit."), value)
    return fit


def check_space(tune: TuneParams, fit: Any, task: Any) -> None:
    """Validate the ends of every range (and every choice) through the fit step's model.

    Each value is tried in the fit group with the other keys as the env sets them, so a
    range that reaches a value the fit step refuses (a negative learning rate, a dropout of 1)
    is found before any trial runs.

    Raises:
        ParameterError: naming the search key, the value and what the fit step says.
    """
    for key, entry in tune.space.items():
        # every choice, or the two ends of a range
        ends = entry.choices if isinstance(entry, SpaceChoice) else [entry.low, entry.high]
        for value in ends:
            raw = with_point(fit if isinstance(fit, dict) else {}, {key: value})
            try:
                parse("fit", raw, task)
            except ParameterError as err:
                reason = str(err).split("\n", 1)[-1].strip()
                raise ParameterError(
                    f"parameters_tune.yml: tune.space '{key}' reaches {value!r}, which the fit "
                    f"step refuses: {reason}. Narrow the range (or the choices) to values "
                    f"fit accepts"
                ) from None


STEP_PARAMS: dict[str, type[_Params]] = {
    "task": TaskParams,
    "clean": CleanParams,
    "convert": ConvertParams,
    "split": SplitParams,
    "fit": FitParams,
    "evaluate": EvaluateParams,
    "package": PackageParams,
    "predict": PredictParams,
    "tune": TuneParams,
}
SPLITS = ("train", "validation", "test")
# The test metrics shown side by side for the model and each baseline (evaluate's
# model_comparison and the model card), those of the task's type present.
HEADLINE_METRICS = ("accuracy", "f1_macro", "mse", "mae", "r2")

# The task group's keys (and the step keys they once filled) that a step file must not set:
# one source of truth, so that a changed label list or seed reaches every step.
_TASK_KEYS = ("task", "type", "labels", "model_checkpoint", "tokenizer", "max_length", "seed")


def _task_paths(step: str, t: TaskParams) -> dict[str, Any]:
    """Paths under the task's folders: defaults a step may override (``fit.checkpoint_dir``)."""
    if step == "fit":
        return {
            "checkpoint_dir": f"data/06_models/{t.name}/checkpoints",
            "best_checkpoint": f"data/06_models/{t.name}/best.ckpt",
            "log_dir": f"data/08_reporting/{t.name}/training_logs",
        }
    if step == "package":
        files = [t.raw_file, *(f"data/05_model_input/{t.name}/{s}.parquet" for s in SPLITS)]
        return {"lineage_files": files}
    return {}


def _task_problem(step: str, p: Any, t: TaskParams) -> tuple[str, str] | None:
    """``(key, why)`` where the step's values cannot serve the task, or ``None``."""
    if step == "fit":
        loss = "cross_entropy" if t.type == "classification" else "mse"
        if p.loss != loss:
            return "loss", f"a {t.type} task trains with loss '{loss}' (task.type is {t.type!r})"
        if t.type == "regression" and p.class_weights is not None:
            return "class_weights", "'class_weights' is for classification tasks only"
        es = p.trainer.early_stopping
        other = ("mse", "mae") if t.type == "classification" else ("f1", "acc")
        if es is not None and es.monitor.removeprefix("val/") in other:
            return "trainer.early_stopping.monitor", (
                f"a {t.type} task does not log {es.monitor!r}: use auto, val/loss or "
                + ("val/f1, val/acc" if t.type == "classification" else "val/mse, val/mae")
            )
        if p.model.family == "transformer" and p.model.config is None and not t.model_checkpoint:
            return "model", (
                "a pretrained transformer needs task.model_checkpoint in globals.yml (it is "
                "null); or give fit.model.config for a randomly initialised one"
            )
    if step == "clean" and p.label_case == "insensitive" and t.labels:
        folded = [" ".join(label.split()).casefold() for label in t.labels]
        clashes = [x for x, f in zip(t.labels, folded, strict=True) if folded.count(f) > 1]
        if clashes:
            return "label_case", (
                f"label_case 'insensitive' cannot tell the labels {clashes} apart; "
                f"use label_case 'exact'"
            )
    return None


def _complete(step: str, p: Any, t: TaskParams) -> Any:
    """The step model ``p`` checked against the task, the paths it does not set taken from it.

    Raises:
        ParameterError: if a value of the step does not fit the task (e.g. loss 'mse' for a
            classification task).
    """
    problem = _task_problem(step, p, t)
    if problem:
        key, why = problem
        raise ParameterError(f"invalid parameters in {_file(step)}:\n  '{step}.{key}': {why}")
    defaults = {k: v for k, v in _task_paths(step, t).items() if k not in p.model_fields_set}
    if step == "tune" and p.objective == "auto":  # the task type's metric
        defaults["objective"] = "val/f1" if t.type == "classification" else "val/loss"
    return p.model_copy(update=defaults) if defaults else p


def _file(step: str) -> str:
    return "globals.yml" if step == "task" else f"parameters_{step}.yml"


def _refuse_task_keys(step: str, raw: dict[str, Any]) -> None:
    """Refuse a step group that sets a key of the task group, naming where it belongs."""
    own = STEP_PARAMS[step].model_fields  # tune's own seed
    clash = sorted(k for k in _TASK_KEYS if k in raw and k not in own)
    model = raw.get("model")
    if step == "fit" and isinstance(model, dict) and "checkpoint" in model:
        clash.append("model.checkpoint")
    if clash:
        keys = ", ".join(f"'{step}.{k}'" for k in clash)
        raise ParameterError(
            f"{_file(step)} (or --params) sets {keys}: shared by several steps, it is set once "
            f"in globals.yml under 'task' (type, labels, model_checkpoint, max_length, seed)"
        )


def _tagged(annotation: Any, tag: str | None = None) -> dict[str, type[BaseModel]]:
    """The models of a tagged union by the tag pydantic puts in an error's location: a
    ``Tag`` or the value of the ``Literal`` field that discriminates them (``family``)."""
    if get_origin(annotation) is Annotated:
        tags = [m.tag for m in annotation.__metadata__ if isinstance(m, Tag)]
        return _tagged(get_args(annotation)[0], tags[0] if tags else tag)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        literals = [
            get_args(f.annotation)[0]
            for f in annotation.model_fields.values()
            if get_origin(f.annotation) is Literal and len(get_args(f.annotation)) == 1
        ]
        tag = tag or next(iter(literals), None)
        return {tag: annotation} if tag else {}
    return {k: v for arg in get_args(annotation) for k, v in _tagged(arg, tag).items()}


def _locate(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any]:
    """The key of an error's location as the file spells it, and the model holding its last part.

    pydantic adds the union member it tried to the location: a tag (``model.mlp.dropout`` for
    ``model.dropout``) or, in a union of plain types, the type (``val_check_interval.int``).
    """
    parts, parent, tags, plain_union = [], model, {}, False
    for part in loc:
        field = getattr(parent, "model_fields", {}).get(part)
        if field is not None:
            members = _models_in(field.annotation)
            parent, tags = (members[0] if len(members) == 1 else None), _tagged(field.annotation)
            plain_union = not members and get_origin(field.annotation) in (Union, UnionType)
            parts.append(str(part))
        elif part in tags:
            parent, tags = tags[part], {}
        elif plain_union:
            plain_union = False
        else:  # a dict key (a tune.space entry) or a list index
            parts.append(str(part))
    return ".".join(parts), parent


def _describe_error(step: str, model: type[BaseModel], err: ValidationError) -> str:
    """One line per bad key; a union's several "Input should be ..." become one."""
    lines: dict[str, str] = {}
    wanted: dict[str, list[str]] = {}
    for e in err.errors():
        key, parent = _locate(model, e["loc"])
        key = ".".join((step, key)) if key else step
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(getattr(parent, "model_fields", {})))
            lines[f"extra {key}"] = f"unknown key '{key}' (allowed keys: {allowed})"
            continue
        msg = e["msg"]
        wanted.setdefault(key, []).append(msg)
        if len(wanted[key]) > 1:  # each member's message, without its reason
            wants = [m.removeprefix("Input should be ").split(", unable")[0] for m in wanted[key]]
            msg = f"Input should be {', '.join(wants[:-1])} or {wants[-1]}"
        lines[key] = f"'{key}': {msg} (got {e.get('input')!r})"
    return f"invalid parameters in {_file(step)}:\n  " + "\n  ".join(lines.values())


def parse(step: str, raw: Any, task: Any = None) -> Any:
    """Validate the raw parameter dict of ``step`` and return its typed model.

    Args:
        step: a key of :data:`STEP_PARAMS`.
        raw: the step's group (``params:<step>``), or its typed model.
        task: the task group (``params:task``, raw or typed): the step's values are checked
            against it and the paths the step does not set follow ``task.name``. ``None``:
            the step's values alone.

    Raises:
        ParameterError: naming every bad key and, for typos, the allowed keys.
    """
    task = None if task is None or step == "task" else parse("task", task)
    model = STEP_PARAMS[step]
    if isinstance(raw, model):
        p = raw
    elif raw is None:
        raise ParameterError(f"{_file(step)}: the top-level key '{step}' is missing")
    elif not isinstance(raw, dict):
        raise ParameterError(f"{_file(step)}: '{step}' must be a mapping, got {raw!r}")
    else:
        if step != "task":
            _refuse_task_keys(step, raw)
        try:
            p = model.model_validate(raw)
        except ValidationError as err:
            raise ParameterError(_describe_error(step, model, err)) from None
    return p if task is None else _complete(step, p, task)
