"""Project hooks."""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path, PurePath
from typing import Any

from kedro.framework.hooks import hook_impl

from reprotrain import params

log = logging.getLogger(__name__)


class ValidateParametersHook:
    """Validate every step's parameters once, before any node runs.

    A typo in ``parameters_fit.yml`` stops ``kedro run --pipelines=clean`` too: the
    configuration is one unit, and finding the mistake an hour later helps nobody.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Parse the ``task`` group, then each ``<step>`` group found, checked against it.

        Reads the config loader's parameters (runtime ``--params`` included), not
        ``context.params``: outside ``kedro run`` that property type-checks against every
        registered pipeline, importing them all (torch, lightning: ~7 s) to start a session.
        """
        _check_runtime_keys(context.config_loader)
        loaded = context.config_loader["parameters"]
        task = loaded.get("task")
        params.parse("task", task)
        # The catalog's paths come from globals, which `--params` does not reach.
        paths = context.config_loader["globals"].get("task", {})
        for key in ("name", "raw_file"):
            if task.get(key) != paths.get(key):
                raise params.ParameterError(
                    f"task.{key} is {task.get(key)!r} in the parameters but {paths.get(key)!r} "
                    f"in globals.yml of env '{context.env or 'local'}': it names the catalog's "
                    f"files, so change it in globals.yml rather than with --params (under "
                    f"`dvc repro`: make params.yaml's dvc.task and dvc.raw_file match it)"
                )
        parsed = {s: params.parse(s, loaded[s], task) for s in params.STEP_PARAMS if s in loaded}
        if "tune" in parsed and "fit" in loaded:  # each range's ends through the fit step
            params.check_space(parsed["tune"], loaded["fit"], task)


def _check_runtime_keys(loader: Any) -> None:
    """Refuse a ``--params`` key that no step reads: a typo would otherwise be ignored.

    Allowed: the step groups (their sub-keys are checked by the step models) and the names
    the configuration reads with ``${runtime_params:<name>}`` (e.g. ``predict_input``).
    """
    runtime = getattr(loader, "runtime_params", None) or {}
    if not runtime:
        return
    conf = Path(str(loader.conf_source))
    used = {
        m.group(1)
        for f in conf.rglob("*.yml")
        for m in re.finditer(r"\$\{runtime_params:\s*([A-Za-z0-9_]+)", f.read_text("utf-8"))
    }
    allowed = sorted(set(params.STEP_PARAMS) | used)
    unknown = sorted({str(key).split(".")[0] for key in runtime} - set(allowed))
    if unknown:
        close = {k: difflib.get_close_matches(k, allowed, n=1) for k in unknown}
        hints = "; ".join(
            f"'{k}' (did you mean '{c[0]}'?)" if c else f"'{k}'" for k, c in close.items()
        )
        raise params.ParameterError(
            f"--params sets unknown key(s) {hints}: no step reads them. Allowed top-level "
            f"keys: {', '.join(allowed)}"
        )


class RawFileHook:
    """Before a run that reads the raw table, check that the file is there.

    A missing raw file is the first thing a new user meets (``kedro run`` before
    ``make data``, or a typo in ``task.raw_file``): it gets one short paragraph and exit
    code 1, not Kedro's page of traceback from deep inside the CSV dataset.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Stop with a short message when the pipeline needs ``raw_table`` and it is missing."""
        if "raw_table" not in pipeline.inputs():
            return
        filepath = _described(catalog, "raw_table").get("filepath")  # custom: reports itself
        if filepath is None or Path(str(filepath)).exists():
            return
        env = run_params.get("env") or "base"
        shown = os.path.relpath(str(filepath))
        raise SystemExit(
            f"error: the raw data file {shown} does not exist (task.raw_file in "
            f"conf/{env}/globals.yml or conf/base/globals.yml).\n"
            f"  For the demo tasks, run `make data` (or `python -m reprotrain.demo_data --out "
            f"data/01_raw`). For your own data, put the file there or point task.raw_file at "
            f"it; `python -m reprotrain new-task <file> --label <column>` writes an env for it."
        )


class PredictionsPathHook:
    """Before a run that writes ``predictions``, refuse a path that would destroy data.

    ``--params predictions=<path>`` takes any path, and the atomic save replaces whatever is
    there: the raw training table, the table being predicted, a file inside the model package.
    Exit code 1, as ``RawFileHook``: a wrong path, not a program error. Refused: the file of
    any other catalog dataset (``predict_input`` included), anything inside a catalog
    dataset's folder (the package, the trained model) or a folder holding one, the training
    run's checkpoint and log folders, and anything under ``data/01_raw`` (raw inputs, which no
    step writes).
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Stop with a short message (exit code 1) when ``predictions`` would overwrite data."""
        if "predictions" not in pipeline.all_outputs():
            return
        target = _location(catalog, "predictions")
        if target is None:
            return
        project = Path(run_params.get("project_path") or Path.cwd())
        for what, other in _protected(catalog, project):
            why = _overlap(target, other, what)
            if why:
                raise SystemExit(
                    f"error: refusing to write predictions to {_shown(target)}: {why}. "
                    f"Nothing was written. Give a new file, e.g. --params predictions="
                    f"data/07_model_output/<name>.csv, or change the catalog's 'predictions'."
                )


def _described(catalog: Any, name: str) -> dict[str, Any]:
    """A catalog dataset's ``_describe()``; empty for one without (memory, params, custom)."""
    try:
        described = catalog.get(name)._describe()
    except Exception:  # noqa: BLE001 - best effort: never mask the real error
        return {}
    return described if isinstance(described, dict) else {}


def _location(catalog: Any, name: str) -> str | None:
    """The absolute local path (or ``protocol://path``) a catalog dataset reads or writes."""
    described = _described(catalog, name)
    filepath = described.get("filepath")
    if filepath is None:
        return None
    protocol = described.get("protocol") or "file"
    if protocol not in ("file", "local"):
        return f"{protocol}://{filepath}"
    return os.path.realpath(str(filepath))


def _protected(catalog: Any, project: Path) -> list[tuple[str, str]]:
    """``(description, path)`` of every file and folder that predictions must not touch."""
    found = []
    for name in catalog.keys():  # parameters have no file: _location gives None
        path = None if name == "predictions" else _location(catalog, name)
        if path is not None:
            what = f"catalog dataset '{name}'"
            if name == "predict_input":
                what = "the table being predicted (predict_input)"
            found.append((what, path))
    try:
        groups = [catalog.get(f"params:{g}").load() for g in ("fit", "task")]  # no log lines
        fit = params.parse("fit", *groups).model_dump()
    except Exception:  # noqa: BLE001 - no fit group (an env without training): nothing to add
        fit = {}
    for key in ("checkpoint_dir", "best_checkpoint", "log_dir"):
        if fit.get(key):
            found.append((f"the training run's fit.{key}", fit[key]))
    found.append(("the raw inputs, which no step writes", str(project / "data" / "01_raw")))
    return [(what, path if "://" in path else os.path.realpath(path)) for what, path in found]


def _overlap(target: str, other: str, what: str) -> str | None:
    """Why writing ``target`` would destroy ``other`` (``what``): it is ``other``, lies
    inside it, or holds it; ``None`` when it would not."""
    try:
        same = target == other or os.path.samefile(target, other)  # hard link, case-blind disk
    except OSError:
        same = False
    if same:
        return f"that file is {what}, which predict would overwrite"
    if PurePath(target).is_relative_to(other):
        return f"it lies inside {_shown(other)} ({what})"
    if PurePath(other).is_relative_to(target):
        return f"it is a folder holding {_shown(other)} ({what})"
    return None


def _shown(path: str) -> str:
    """``path`` as a message names it: relative to the working folder where it is local."""
    return path if "://" in path else os.path.relpath(path)


class NameInputsOnErrorHook:
    """When a node fails, log which files its inputs came from.

    A node never sees paths, so its error names a column or a value; this hook adds the file,
    e.g. "clean_table failed on raw_table = data/01_raw/movie_reviews.csv".
    """

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any) -> None:
        """Log the file path of every input dataset of the failing node."""
        described = []
        for name in node.inputs:
            if name.startswith("params:") or name == "parameters":
                continue
            filepath = _described(catalog, name).get("filepath")
            described.append(f"{name} = {filepath}" if filepath else name)
        # markup off: Kedro's rich handler would read "[...]" in an error message as markup
        log.error(
            "node '%s' failed on %s: %s",
            node.name,
            ", ".join(described),
            error,
            extra={"markup": False},
        )
