"""Run the "unseen data" checks: ``kedro run --pipelines=train`` per task, one after the other.

Prepare the data and environments first (``python benchmarks/unseen/prepare.py``). For each
task of ``--tasks`` (default: trec spam cars) this runs, in turn and never in parallel::

    kedro run --pipelines=train --env=unseen-<task>

records its wall time and exit code, saves its output to
``data/08_reporting/unseen-<task>/train_run.log``, and reads that run's
``data/08_reporting/unseen-<task>/metrics.json`` (test metrics, with the ``baselines`` block
when the evaluate step writes one) and ``split_report.json``. Then it writes
``benchmarks/unseen/results.json`` (merged with the tasks of earlier runs, so tasks can be run
one at a time) and ``benchmarks/unseen/RESULTS.md``.

Metrics are taken only from a run that succeeded and wrote them after it started: a failed run
is reported as failed, never with the numbers of an older run. ``--no-run`` skips training and
collects what the tasks' last runs left (wall time then "n/a"), e.g. after a manual run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TASKS = ("trec", "spam", "cars", "tweets", "amazon", "diamonds", "chile", "weather")
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def kedro_bin() -> str:
    """The ``kedro`` of this interpreter's environment (the project's venv), else PATH's."""
    here = Path(sys.executable).parent / "kedro"
    if here.exists():
        return str(here)
    venv = ROOT / ".venv" / "bin" / "kedro"
    if venv.exists():
        return str(venv)
    found = shutil.which("kedro")
    if found is None:
        raise SystemExit("kedro not found: run with the project's .venv/bin/python")
    return found


def git_describe() -> str:
    """The commit, with ``+dirty`` when tracked files have changes; "unknown" outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


# ------------------------------------------------------------------------------------ running
def run_task(task: str, timeout_s: float | None, seed: int | None = None) -> dict[str, Any]:
    """Train one task in a subprocess; return exit code, wall time and the log's path.

    ``seed``: run with ``--params=task.seed=<seed>`` (another split and initialisation).
    """
    env_dir = ROOT / "conf" / f"unseen-{task}"
    if not (env_dir / "globals.yml").exists():
        raise SystemExit(f"{env_dir} is missing: run python benchmarks/unseen/prepare.py first")
    report_dir = ROOT / "data" / "08_reporting" / f"unseen-{task}"
    report_dir.mkdir(parents=True, exist_ok=True)
    log_path = report_dir / ("train_run.log" if seed is None else f"train_run_seed{seed}.log")
    cmd = [kedro_bin(), "run", "--pipelines=train", f"--env=unseen-{task}"]
    if seed is not None:
        cmd.append(f"--params=task.seed={seed}")
    print(f"[{task}] {' '.join(cmd[1:])}  (log: {log_path.relative_to(ROOT)})", flush=True)
    started = time.time()
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        # A watchdog, not a check between lines, so that a run that hangs silently is killed
        # too; it kills the whole process group (kedro and anything it started).
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, kill) if timeout_s else None
        if watchdog is not None:
            watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                sys.stdout.write(f"  [{task}] {line}")
        except BaseException:  # Ctrl-C: the run is in its own session, so stop it here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            returncode = proc.wait()
            if watchdog is not None:
                watchdog.cancel()
    timed_out = fired.is_set()
    wall = time.perf_counter() - t0
    if timed_out:
        print(f"[{task}] killed after {wall:.0f} s (--timeout-s {timeout_s:g})", flush=True)
    print(f"[{task}] exit code {returncode} after {wall:.1f} s", flush=True)
    return {
        "exit_code": returncode,
        "timed_out": timed_out,
        "wall_s": round(wall, 1),
        "started": started,
        "log": str(log_path.relative_to(ROOT)),
    }


# ----------------------------------------------------------------------------------- results
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def collect(task: str, run: dict[str, Any] | None, seed: int | None = None) -> dict[str, Any]:
    """One task's row: classes, split sizes, model metrics and baselines (None when absent)."""
    conf = yaml.safe_load((ROOT / "conf" / f"unseen-{task}" / "globals.yml").read_text())["task"]
    labels = [str(label) for label in conf.get("labels") or []]
    reports = ROOT / "data" / "08_reporting" / conf["name"]
    metrics_path = reports / "metrics.json"
    fresh = metrics_path.exists() and (
        run is None or (run["exit_code"] == 0 and metrics_path.stat().st_mtime >= run["started"])
    )
    metrics = _read_json(metrics_path) if fresh else None
    split = _read_json(reports / "split_report.json") or {}
    row: dict[str, Any] = {
        "task": task,
        "seed": seed,
        "env": f"unseen-{task}",
        "raw_file": conf.get("raw_file"),
        "model": conf.get("model_checkpoint") or "mlp (conf/penguins/parameters_fit.yml)",
        "classes": len(labels),
        "labels": labels,
        "rows": {s: (split.get(s) or {}).get("rows") for s in ("train", "validation", "test")},
        "train_label_counts": {
            (labels[int(k)] if k.isdigit() and int(k) < len(labels) else k): v
            for k, v in ((split.get("train") or {}).get("labels") or {}).items()
        },
        "exit_code": None if run is None else run["exit_code"],
        "timed_out": None if run is None else run["timed_out"],
        "wall_s": None if run is None else run["wall_s"],
        "log": None if run is None else run["log"],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_describe(),
        "metrics_found": metrics is not None,
        "n_test": None,
        "accuracy": None,
        "f1_macro": None,
        "worst_class": None,
        "baselines": None,
        "best_baseline": None,
        "margin_f1_macro": None,
        "type": conf.get("type") or "classification",
        "mse": None,
        "r2": None,
        "mse_ratio": None,
    }
    if metrics is None:
        return row
    row["n_test"] = metrics.get("n_test")
    if row["type"] == "regression":
        return _regression(row, metrics)
    row["accuracy"] = _num(metrics.get("accuracy"))
    row["f1_macro"] = _num(metrics.get("f1_macro"))
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        scored = {
            k: _num(v.get("f1"))
            for k, v in per_class.items()
            if isinstance(v, dict) and v.get("support") and _num(v.get("f1")) is not None
        }
        if scored:
            worst = min(scored, key=lambda k: scored[k])
            row["worst_class"] = {"label": worst, "f1": scored[worst]}
    baselines = metrics.get("baselines")
    if isinstance(baselines, dict) and baselines:
        row["baselines"] = {
            str(name): {k: v for k, v in b.items() if _num(v) is not None}
            for name, b in baselines.items()
            if isinstance(b, dict)
        }
        ranked = [
            (f1, name)
            for name, b in row["baselines"].items()
            if (f1 := _num(b.get("f1_macro"))) is not None
        ]
        if ranked:
            best_f1, best = max(ranked)
            row["best_baseline"] = {"name": best, "f1_macro": best_f1}
            if row["f1_macro"] is not None:
                row["margin_f1_macro"] = row["f1_macro"] - best_f1
    return row


def _regression(row: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """A regression task's row: test MSE and R², the baseline with the lowest MSE."""
    row["mse"], row["r2"] = _num(metrics.get("mse")), _num(metrics.get("r2"))
    baselines = metrics.get("baselines")
    if isinstance(baselines, dict) and baselines:
        row["baselines"] = {
            str(name): {k: v for k, v in b.items() if _num(v) is not None}
            for name, b in baselines.items()
            if isinstance(b, dict) and _num(b.get("mse")) is not None
        }
        if row["baselines"]:
            name, best = min(row["baselines"].items(), key=lambda kv: kv[1]["mse"])
            row["best_baseline"] = {"name": name, "mse": best["mse"], "r2": best.get("r2")}
            if row["mse"] is not None and best["mse"] > 0:
                row["mse_ratio"] = row["mse"] / best["mse"]
    return row


def _f(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _status(row: dict[str, Any]) -> str:
    if row.get("exit_code") is None:
        return "collected"
    if row.get("timed_out"):
        return "timed out"
    return "ok" if row["exit_code"] == 0 else f"failed ({row['exit_code']})"


def _across_seeds(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Per task, the mean over every seed measured: model, best baseline, margin, wins."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        if r.get("margin_f1_macro") is not None:
            by_task.setdefault(r["task"], []).append(r)
    many = {t: rs for t, rs in by_task.items() if len(rs) > 1}
    if not many:
        return []
    lines = [
        "",
        "## Across seeds",
        "",
        "Each seed is another split and initialisation (`--params=task.seed=<seed>`); the test "
        "splits are small, so one seed's margin is noisy.",
        "",
        "| task | runs | mean macro-F1 | mean best-baseline macro-F1 | mean margin | "
        "min margin | runs at or above the baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, rs in sorted(many.items()):
        n = len(rs)
        margins = [r["margin_f1_macro"] for r in rs]
        lines.append(
            f"| {t} | {n} | {_f(sum(r['f1_macro'] for r in rs) / n)} | "
            f"{_f(sum(r['best_baseline']['f1_macro'] for r in rs) / n)} | "
            f"{_f(sum(margins) / n, signed=True)} | {_f(min(margins), signed=True)} | "
            f"{sum(m >= 0 for m in margins)} of {n} |"
        )
    return lines


def _regression_table(rows: dict[str, dict[str, Any]], tasks: list[str]) -> list[str]:
    if not tasks:
        return []
    lines = [
        "",
        "## Regression",
        "",
        "Test MSE and R² (the share of the test targets' variance explained); the ratio is the "
        "model's MSE over the best baseline's (below 1: the model is better).",
        "",
        "| task | train rows | test rows | status | wall time | MSE | R² | best baseline "
        "| baseline MSE | baseline R² | MSE ratio |",
        "|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for t in tasks:
        r = rows[t]
        best = r.get("best_baseline") or {}
        wall = r.get("wall_s")
        cells = [
            t,
            str((r.get("rows") or {}).get("train") or "n/a"),
            str(r.get("n_test") or (r.get("rows") or {}).get("test") or "n/a"),
            _status(r),
            "n/a" if wall is None else f"{wall:.0f} s",
            _g(r.get("mse")),
            _f(r.get("r2")),
            f"`{best['name']}`" if best else "n/a",
            _g(best.get("mse")),
            _f(best.get("r2")),
            "n/a" if r.get("mse_ratio") is None else f"{r['mse_ratio']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _regression_baselines(task: str, row: dict[str, Any]) -> list[str]:
    baselines = row.get("baselines")
    if not baselines:
        return [f"- {task}: n/a (no `baselines` in metrics.json)", ""]
    lines = [
        f"**{task}** (model: MSE {_g(row.get('mse'))}, R² {_f(row.get('r2'))})",
        "",
        "| baseline | MSE | R² | model MSE / baseline MSE |",
        "|---|---:|---:|---:|",
    ]
    for name, b in sorted(baselines.items()):
        ratio = None if row.get("mse") is None or not b["mse"] else row["mse"] / b["mse"]
        lines.append(
            f"| `{name}` | {_g(b['mse'])} | {_f(_num(b.get('r2')))} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'} |"
        )
    return [*lines, ""]


def _g(value: float | None) -> str:
    """A value of any scale (an MSE in the target's units squared), 4 significant digits."""
    return "n/a" if value is None else f"{value:.4g}"


def render(rows: dict[str, dict[str, Any]], command: str) -> str:
    """RESULTS.md: the summary table, every baseline, train class counts, how it was run."""
    order = [t for t in TASKS if t in rows] + sorted(set(rows) - set(TASKS))
    lines = [
        "# Unseen-data checks: results",
        "",
        "Written by `benchmarks/unseen/run.py`; see `benchmarks/unseen/README.md` for the data "
        "sets. Each task is one `kedro run --pipelines=train --env=unseen-<task>` with the "
        "project's defaults (text: conf/base's transformer settings; tabular: "
        "conf/penguins' MLP settings). Metrics are on the task's held-out test split; the "
        "margin is the model's macro-F1 minus the best baseline's (classification). \"n/a\": not measured "
        "(failed run, or no `baselines` block in metrics.json).",
        "",
        "| task | classes | train rows | test rows | status | wall time | accuracy | macro-F1 "
        "| worst class F1 | best baseline | baseline macro-F1 | margin |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|",
    ]
    regression = [t for t in order if rows[t].get("type") == "regression"]
    for t in [t for t in order if t not in regression]:
        r = rows[t]
        best = r.get("best_baseline") or {}
        worst = r.get("worst_class")
        wall = r.get("wall_s")
        lines.append(
            "| "
            + " | ".join(
                [
                    t,
                    str(r.get("classes", "n/a")),
                    str((r.get("rows") or {}).get("train") or "n/a"),
                    str(r.get("n_test") or (r.get("rows") or {}).get("test") or "n/a"),
                    _status(r),
                    "n/a" if wall is None else f"{wall:.0f} s",
                    _f(r.get("accuracy")),
                    _f(r.get("f1_macro")),
                    "n/a" if not worst else f"{_f(worst['f1'])} (`{worst['label']}`)",
                    f"`{best['name']}`" if best else "n/a",
                    _f(best.get("f1_macro")),
                    _f(r.get("margin_f1_macro"), signed=True),
                ]
            )
            + " |"
        )
    lines += _regression_table(rows, regression)
    lines += _across_seeds(rows)
    lines += ["", "## Every baseline", ""]
    for t in order:
        if t in regression:
            lines += _regression_baselines(t, rows[t])
            continue
        baselines = rows[t].get("baselines")
        if not baselines:
            lines += [f"- {t}: n/a (no `baselines` in metrics.json)", ""]
            continue
        lines += [
            f"**{t}** (model: accuracy {_f(rows[t].get('accuracy'))}, "
            f"macro-F1 {_f(rows[t].get('f1_macro'))})",
            "",
            "| baseline | accuracy | macro-F1 | model − baseline (macro-F1) |",
            "|---|---:|---:|---:|",
        ]
        for name, b in sorted(baselines.items()):
            f1 = _num(b.get("f1_macro"))
            model = rows[t].get("f1_macro")
            margin = None if f1 is None or model is None else model - f1
            lines.append(
                f"| `{name}` | {_f(_num(b.get('accuracy')))} | {_f(f1)} | "
                f"{_f(margin, signed=True)} |"
            )
        lines.append("")
    lines += ["## Training split, rows per class", ""]
    for t in [t for t in order if t not in regression]:
        counts = rows[t].get("train_label_counts") or {}
        shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "n/a"
        lines.append(f"- {t}: {shown}")
    lines += [
        "",
        "## How these were measured",
        "",
        f"- Command: `{command}`",
        f"- Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
    ]
    for t in order:
        r = rows[t]
        lines.append(
            f"- {t}: measured {r.get('measured_at', 'n/a')} at commit {r.get('commit', 'n/a')}"
            + (f"; log `{r['log']}`" if r.get("log") else "")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument(
        "--no-run", action="store_true", help="do not train: collect the tasks' last outputs"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=None, help="kill a task's run after this many seconds"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder of RESULTS.md/results.json")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="also run each task with these task.seed values (another split and initialisation)",
    )
    args = parser.parse_args(argv)
    command = "python benchmarks/unseen/run.py " + " ".join(
        (argv if argv is not None else sys.argv[1:]) or []
    )
    results_path = args.out / "results.json"
    previous = _read_json(results_path) or {}
    rows: dict[str, dict[str, Any]] = dict(previous.get("tasks") or {})
    failed = []
    runs = [(task, seed) for task in args.tasks for seed in (args.seeds or [None])]
    for task, seed in runs:  # one at a time: the default machine has two cores
        run = None if args.no_run else run_task(task, args.timeout_s, seed)
        key = task if seed is None else f"{task} (seed {seed})"
        rows[key] = collect(task, run, seed)
        if run is not None and run["exit_code"] != 0:
            failed.append(key)
        args.out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(
            json.dumps({"command": command.strip(), "tasks": rows}, indent=2, sort_keys=True)
            + "\n",
            encoding="utf-8",
        )
        (args.out / "RESULTS.md").write_text(render(rows, command.strip()), encoding="utf-8")
    for key in (t if s is None else f"{t} (seed {s})" for t, s in runs):
        r = rows[key]
        if r.get("type") == "regression":
            print(
                f"{key}: {_status(r)}, train rows {r['rows']['train']}, MSE {_g(r['mse'])}, "
                f"R² {_f(r['r2'])}, best baseline {_g((r['best_baseline'] or {}).get('mse'))}"
            )
            continue
        print(
            f"{key}: {_status(r)}, classes {r['classes']}, train rows {r['rows']['train']}, "
            f"accuracy {_f(r['accuracy'])}, macro-F1 {_f(r['f1_macro'])}, best baseline "
            f"{_f((r['best_baseline'] or {}).get('f1_macro'))}, margin "
            f"{_f(r['margin_f1_macro'], signed=True)}"
        )
    print(f"wrote {args.out / 'RESULTS.md'} and {results_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
