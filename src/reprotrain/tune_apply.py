"""``python -m reprotrain tune-apply [--env E]``: make the best trial the env's fit parameters.

Other keys of ``conf/<E>/parameters_fit.yml`` are kept. Then ``kedro run --pipelines=train
--env=E`` or ``dvc repro`` trains exactly the trial's model, and only then scores it on the test
split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from reprotrain.params import ParameterError, parse


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def apply(conf: Path, env: str) -> tuple[Path, dict[str, Any]]:
    """Write the best trial's values into ``conf/<env>/parameters_fit.yml``.

    Returns:
        The file written and the best-parameters record.

    Raises:
        ParameterError: no search result for the env's task, or the merged group is invalid.
    """
    from reprotrain.settings import load_parameters

    task = load_parameters("task", conf, env)
    best_file = Path("data/08_reporting") / task["name"] / "tune" / "best_params.yml"
    if not best_file.is_file():
        raise ParameterError(
            f"no search result for task '{task['name']}': {best_file} does not exist. Run "
            f"`kedro run --pipelines=tune --env={env}` first"
        )
    best = yaml.safe_load(best_file.read_text("utf-8"))
    target = conf / env / "parameters_fit.yml"
    current = yaml.safe_load(target.read_text("utf-8")) if target.is_file() else None
    group = _merge((current or {}).get("fit") or {}, best["fit"])
    merged = _merge(load_parameters("fit", conf, env), best["fit"])
    parse("fit", merged, task)  # the env's fit group with the trial's values must be valid
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# fit values of tune trial {best['trial']} ({best['objective']} {best['value']:.4f}), "
        f"written by `python -m reprotrain tune-apply --env={env}` over the keys below\n"
    )
    target.write_text(header + yaml.safe_dump({"fit": group}, sort_keys=False), "utf-8")
    return target, best


def main(argv: list[str]) -> int:
    """The ``tune-apply`` command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m reprotrain tune-apply",
        description="Write the best tune trial's fit values into conf/<env>/parameters_fit.yml.",
    )
    parser.add_argument("--env", "-e", default="local", help="the Kedro env (default: local)")
    parser.add_argument("--conf", default="conf", help="the conf folder (default: conf)")
    args = parser.parse_args(argv)
    try:
        target, best = apply(Path(args.conf), args.env)
    except ParameterError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    sys.stdout.write(
        f"wrote trial {best['trial']}'s values ({best['objective']} {best['value']:.4f}) to "
        f"{target}; now `kedro run --pipelines=train --env={args.env}` (or `dvc repro`) "
        f"trains that model\n"
    )
    return 0
