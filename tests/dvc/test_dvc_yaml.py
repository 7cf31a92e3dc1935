"""dvc.yaml agrees with the pipelines, the catalog and the parameter files (no dvc run).

These keep the stage definitions honest as the project changes: a new parameter key, a new
catalog output or a new pipeline input fails here until dvc.yaml lists it.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

STEPS = ["clean", "convert", "split", "fit", "evaluate", "package"]
GLOBALS_FILE = "conf/base/globals.yml"


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((PROJECT_ROOT / relative).read_text())


GLOBALS = load_yaml(GLOBALS_FILE)
TASK = GLOBALS["task"]
DVC_VARS = {"dvc": load_yaml("params.yaml")["dvc"]}  # dvc.yaml's vars


def resolve(path: str) -> str:
    """dvc.yaml's own ${var} templating, from params.yaml's dvc group."""
    return re.sub(r"\$\{([\w.]+)\}", lambda m: str(lookup(DVC_VARS, m.group(1))), path)


def entries(stage: dict, section: str) -> dict[str, dict]:
    """A stage's deps/outs/metrics/plots as {resolved path: options}."""
    found = {}
    for item in stage.get(section, []):
        if isinstance(item, dict):
            ((path, options),) = item.items()
        else:
            path, options = item, {}
        found[resolve(path)] = options or {}
    return found


def params(stage: dict) -> dict[str, list[str]]:
    """A stage's params as {file: [keys]}."""
    out: dict[str, list[str]] = {}
    for item in stage.get("params", []):
        assert isinstance(item, dict), f"name the params file of {item!r}"
        out.update(item)
    return out


def lookup(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.fixture(scope="module")
def dvc_yaml() -> dict:
    return load_yaml("dvc.yaml")


@pytest.fixture(scope="module")
def catalog() -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local")
    return loader["catalog"]


def test_one_stage_per_step_pipeline(dvc_yaml):
    stages = dvc_yaml["stages"]
    assert list(stages) == ["raw", *STEPS]
    for step in STEPS:
        # an explicit env (never the untracked conf/local), which is a dependency; the task's
        # name and raw file passed on, so Kedro refuses a params.yaml that disagrees with it
        assert stages[step]["cmd"] == (
            f"kedro run --pipelines={step} --env=${{dvc.env}} "
            "--params=task.name=${dvc.task},task.raw_file=${dvc.raw_file}"
        )
        assert "conf/${dvc.env}" in [d for d in stages[step]["deps"] if isinstance(d, str)]
        assert (PROJECT_ROOT / "src/reprotrain/pipelines" / step / "pipeline.py").is_file()
        assert f"src/reprotrain/pipelines/{step}" in entries(stages[step], "deps")
        assert "src/reprotrain/params.py" in entries(stages[step], "deps")


@pytest.mark.parametrize("step", STEPS)
def test_params_list_every_key_the_step_file_sets(dvc_yaml, step):
    listed = params(dvc_yaml["stages"][step])
    own = f"conf/base/parameters_{step}.yml"
    group = load_yaml(own)[step]
    assert sorted(listed[own]) == sorted(f"{step}.{key}" for key in group)


def test_the_default_dvc_task_is_the_demo_under_an_env_that_adds_nothing():
    from reprotrain.settings import load_parameters

    dvc = DVC_VARS["dvc"]
    env = PROJECT_ROOT / "conf" / dvc["env"]
    assert env.is_dir() and not list(env.glob("*.yml"))  # conf/base alone
    task = load_parameters("task", PROJECT_ROOT / "conf", dvc["env"])
    assert (
        (dvc["task"], dvc["raw_file"])
        == (task["name"], task["raw_file"])
        == (
            TASK["name"],
            TASK["raw_file"],
        )
    )


def test_parameter_files_hold_no_interpolation():
    """`dvc exp run -S` resolves a whole file with OmegaConf, which knows no ${globals:...}."""
    files = sorted((PROJECT_ROOT / "conf").glob("*/parameters*.yml"))
    assert files
    for path in files:
        assert "${" not in path.read_text(), path


# Another value for each key of the task group, to find which keys a step takes.
OTHER_TASK_VALUES = {
    "name": "other",
    "raw_file": "data/01_raw/other.csv",
    "type": "regression",
    "labels": ["a", "b", "c"],
    "model_checkpoint": "other/checkpoint",
    "max_length": 7,
    "seed": 7,
}


# Where each step reads the task group: its nodes, and the library code they pass it to.
TASK_READERS = {
    "clean": ["pipelines/clean/nodes.py"],
    "convert": ["pipelines/convert/nodes.py"],
    "split": ["pipelines/split/nodes.py"],
    "fit": [
        "pipelines/fit/nodes.py",
        "models/__init__.py",
        "models/mlp.py",
        "models/transformer.py",
        "training/trainer.py",
    ],
    "evaluate": ["pipelines/evaluate/nodes.py"],
    "package": ["pipelines/package/nodes.py"],
}


def parsed(step: str, task: dict) -> Any:
    """What ``parse`` makes of the step's groups (package: plus fit and convert) with ``task``."""
    from reprotrain.params import ParameterError, parse

    groups = ["package", "fit", "convert"] if step == "package" else [step]
    try:
        return [parse(g, load_yaml(f"conf/base/parameters_{g}.yml")[g], task) for g in groups]
    except ParameterError as err:  # the step refuses the other value: it takes the key
        return str(err)


def taken_keys(step: str) -> set[str]:
    """The task keys a step takes: those its code reads from the task (``t.<key>`` or
    ``task.<key>``), and those that change what ``parse`` makes of its groups (paths)."""
    source = PROJECT_ROOT / "src" / "reprotrain"
    text = "\n".join((source / f).read_text() for f in TASK_READERS[step])
    read = set(re.findall(r"\b(?:t|task)\.(\w+)", text)) & set(TASK)
    return read | {
        key
        for key, other in OTHER_TASK_VALUES.items()
        if parsed(step, {**TASK, key: other}) != parsed(step, TASK)
    }


@pytest.mark.parametrize("step", STEPS)
def test_params_list_every_task_key_the_step_takes(dvc_yaml, step):
    assert set(OTHER_TASK_VALUES) == set(TASK)
    listed = params(dvc_yaml["stages"][step]).get(GLOBALS_FILE, [])
    covered = {key for key in TASK if "task" in listed or f"task.{key}" in listed}
    taken = taken_keys(step)
    assert taken, step
    assert taken <= covered, f"{step} takes task.{sorted(taken - covered)} but dvc.yaml omits it"
    for key in listed:
        lookup(GLOBALS, key)  # every listed key exists


@pytest.mark.parametrize("step", STEPS)
def test_catalog_files_are_the_stage_outputs_and_inputs(dvc_yaml, catalog, step):
    stage = dvc_yaml["stages"][step]
    pipeline = importlib.import_module(f"reprotrain.pipelines.{step}.pipeline").create_pipeline()
    made = set().union(*(node.outputs for node in pipeline.nodes))
    used = set().union(*(node.inputs for node in pipeline.nodes)) - made

    def files(names: set[str]) -> set[str]:
        return {catalog[n]["filepath"] for n in names if "filepath" in catalog.get(n, {})}

    outs = {**entries(stage, "outs"), **entries(stage, "metrics"), **entries(stage, "plots")}
    # fit also writes fit.best_checkpoint, a path from its parameters rather than the catalog
    extra = {"data/06_models/reviews/best.ckpt"} if step == "fit" else set()
    assert files(made) == set(outs) - extra
    assert files(used) <= set(entries(stage, "deps"))


def test_reports_are_cached_metrics_and_plots(dvc_yaml):
    """Metrics and plots are DVC outputs like any other: cached, and never git files."""
    evaluate = dvc_yaml["stages"]["evaluate"]
    reports = {
        path
        for section in ("outs", "metrics")
        for path in entries(evaluate, section)
        if path.startswith("data/08_reporting/")
    }
    assert set(entries(evaluate, "metrics")) == {"data/08_reporting/reviews/metrics.json"}
    for section in ("outs", "metrics"):
        assert all(o.get("cache", True) for o in entries(evaluate, section).values())
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *sorted(reports)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(ignored) == sorted(reports)  # .gitignore keeps every report out of git
    plotted = set()
    for definition in dvc_yaml["plots"]:
        if isinstance(definition, str):
            plotted.add(resolve(definition))
        else:
            (options,) = definition.values()
            plotted |= {resolve(path) for path in options["y"]}
    assert plotted == reports - {"data/08_reporting/reviews/metrics.json"}
    assert len(plotted) == 6  # confusion matrix, curves, model vs baselines: data and figure


def test_training_checkpoints_keep_the_run_cache(dvc_yaml):
    """best.ckpt is a cached output; resume state is no output, and nothing is `persist`."""
    fit = parsed("fit", TASK)[0].model_dump()
    stages = dvc_yaml["stages"]
    outs = entries(stages["fit"], "outs")
    assert fit["best_checkpoint"] in outs
    every_out = {
        p for s in stages.values() for sec in ("outs", "metrics", "plots") for p in entries(s, sec)
    }
    for key in ("checkpoint_dir", "log_dir"):
        scratch = fit[key]
        assert not any(
            Path(scratch).is_relative_to(p) or Path(p).is_relative_to(scratch) for p in every_out
        ), scratch
    for stage in stages.values():
        for section in ("outs", "metrics", "plots"):
            assert not any(o.get("persist") for o in entries(stage, section).values())


def test_package_depends_on_its_lineage_files(dvc_yaml):
    lineage = parsed("package", TASK)[0].lineage_files
    assert lineage
    deps = entries(dvc_yaml["stages"]["package"], "deps")
    for name in lineage:
        assert name in deps, name


def test_catalog_never_versions_a_dvc_output():
    assert "versioned" not in (PROJECT_ROOT / "conf/base/catalog.yml").read_text().replace(
        "`versioned: true`", ""
    )


def test_default_remote_lives_outside_the_repository():
    import configparser

    config = configparser.ConfigParser()
    config.read(PROJECT_ROOT / ".dvc" / "config")
    name = config["core"]["remote"]
    url = config[f"'remote \"{name}\"'"]["url"]
    assert not Path(url).expanduser().resolve().is_relative_to(PROJECT_ROOT)


def reprotrain_imports(path: Path, in_functions: bool) -> set[str]:
    """The reprotrain modules a source file imports (with ``in_functions``: lazy ones too)."""
    import ast

    found = set()
    todo: list[ast.AST] = [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("reprotrain")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reprotrain"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # submodules by name
        if in_functions or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            todo.extend(ast.iter_child_nodes(node))
    return found


def module_file(name: str) -> Path | None:
    base = PROJECT_ROOT / "src" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.parametrize("step", STEPS)
def test_deps_cover_every_module_the_step_imports(dvc_yaml, step):
    """Editing a module the step's code imports (its own lazy imports included) reruns it.

    Lazy imports inside other modules' functions are not followed: e.g. the model-package
    dataset imports ``packaging`` only to load a package, which fit never does.
    """
    deps = [PROJECT_ROOT / d for d in entries(dvc_yaml["stages"][step], "deps")]
    own = PROJECT_ROOT / "src/reprotrain/pipelines" / step
    todo = list(own.glob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in reprotrain_imports(path, in_functions=path.is_relative_to(own)):
            found = module_file(name)
            if found is not None:
                todo.append(found)
    package_init = PROJECT_ROOT / "src/reprotrain/__init__.py"
    missing = sorted(
        str(p.relative_to(PROJECT_ROOT))
        for p in seen - {package_init}
        if not any(p == d or p.is_relative_to(d) for d in deps)
    )
    assert not missing, f"{step} imports {missing} but dvc.yaml does not list them as deps"
