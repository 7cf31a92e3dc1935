"""RESULTS.md rows 7–11 from ``predict_results.json`` and ``scale_results.json``.

``benchmarks/run.py`` calls :func:`extra_rows` and :func:`extra_environment`; the figures come
from ``benchmarks/predict.py`` and ``benchmarks/scale.py``, each run on its own (under the
same quiet-machine rules).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> dict[str, Any]:
    path = HERE / name
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(s: dict[str, Any] | None, unit: str = "", digits: int = 2) -> str:
    if not s or s.get("median") is None:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def _verdict(value: float | None, ok: Callable[[float], bool]) -> str:
    if value is None:
        return "n/a"
    return "PASS" if ok(value) else "**MISS**"


def _med(s: dict[str, Any] | None) -> float | None:
    return None if not s else s.get("median")


def predict_rows(p: dict[str, Any]) -> list[str]:
    """Rows 7 (predict vs transformers.pipeline) and 8 (ONNX)."""
    if not p:
        return [
            "| 7 | Predict speed | not measured (`python benchmarks/predict.py`) | – | – | – | n/a |"
        ]
    f, q, n = p["figures"], p["quality"], p["texts"]
    ours = f.get("predict_s_ours")
    rows = [
        f"| 7 | `load_package(pkg).predict`, {n} texts, default batch 32 (s) | {_fmt(ours, ' s')} | "
        f"`pipeline(..., batch_size=64)` {_fmt(f.get('predict_s_hf64'), ' s')} | "
        f"{_fmt(f.get('speed_ours_vs_hf64'), '×')} speed | ≥ 1.5× | "
        f"{_verdict(_med(f.get('speed_ours_vs_hf64')), lambda x: x >= 1.5)} |",
        f"| 7 | `load_package(pkg).predict` (s) | {_fmt(ours, ' s')} | `pipeline(...)` default "
        f"batch 1 {_fmt(f.get('predict_s_hf1'), ' s')} | {_fmt(f.get('speed_ours_vs_hf1'), '×')} "
        "speed | (info) | – |",
        f"| 7 | `kedro run --pipelines=predict`, whole command (s) | "
        f"{_fmt(f.get('process_s_kedro'), ' s')} | batch-64 pipeline, whole process "
        f"{_fmt(f.get('process_s_hf64'), ' s')} | {_fmt(f.get('speed_kedro_vs_hf64_process'), '×')} "
        "speed | (info) | – |",
    ]
    for v, name in (("onnx", "ONNX fp32"), ("int8", "ONNX int8 (dynamic)")):
        if f.get(f"predict_s_{v}") is None:
            continue
        speed = f.get(f"speed_{v}_vs_ours")
        rows.append(
            f'| 8 | {name} `load_package(pkg, backend="onnx").predict` (s) | '
            f"{_fmt(f.get(f'predict_s_{v}'), ' s')} | our fp32 torch predict {_fmt(ours, ' s')} | "
            f"{_fmt(speed, '×')} speed | ≥ 2× | {_verdict(_med(speed), lambda x: x >= 2.0)} |"
        )
        gap = 100 * (q[v]["accuracy"] - q["ours"]["accuracy"])
        rows.append(
            f"| 8 | {name} test accuracy ({100 * q[v]['accuracy']:.2f} %); labels agree "
            f"{100 * q[v]['label_agreement_with_ours']:.2f} %, largest score diff "
            f"{q[v]['max_score_diff_with_ours']:.2g} | {gap:+.2f} points | fp32 torch "
            f"{100 * q['ours']['accuracy']:.2f} % | – | within 0.5 point | "
            f"{_verdict(abs(gap), lambda x: x <= 0.5)} |"
        )
    return rows


def scale_rows(s: dict[str, Any]) -> list[str]:
    """Rows 9 (scaling), 10 (tokenizer threads) and 11 (imports)."""
    rows: list[str] = []
    pending = {
        "text": (
            "9 | Scaling: clean, convert, split at 10k, 100k, 1M text rows",
            "≤ 1.2× linear; ≤ 3 GB",
        ),
        "predict": (
            "9 | Scaling: predict at 10k, 100k, 1M rows (tiny model), 2k, 20k (MiniLM)",
            "memory flat",
        ),
        "tabular": ("9 | Scaling: tabular (penguins) at 1M rows", "≤ 3 GB"),
        "tokenize": ("10 | Convert, tokenizer threads vs `TOKENIZERS_PARALLELISM=false`", "faster"),
        "imports": ("11 | Import footprint of the training path (peak RSS)", "(info)"),
    }
    missing: list[str] = []
    for section, (what, target) in pending.items():
        if section not in s:
            missing.append(
                f"| {what} | not measured in this round (`python benchmarks/scale.py --only "
                f"{section}`) | – | – | {target} | n/a |"
            )
    text = s.get("text", {}).get("figures", {})
    pred = s.get("predict", {}).get("figures", {})
    tiny = pred.get("predict_tiny", {})
    series = {st: {n: v[st] for n, v in text.items()} for st in ("clean", "convert", "split")}
    series["predict (2-layer random BERT)"] = tiny
    for label, fig in series.items():
        if not fig:
            continue
        sizes = sorted(fig, key=int)
        times = ", ".join(f"{int(n) // 1000}k {fig[n]['seconds']:.1f} s" for n in sizes)
        rss = ", ".join(f"{int(n) // 1000}k {fig[n]['peak_rss_mib']:.0f} MiB" for n in sizes)
        g = peak = None
        if {"100000", "1000000"} <= set(fig):
            g = fig["1000000"]["seconds"] / fig["100000"]["seconds"] / 10
            peak = fig["1000000"]["peak_rss_mib"]
        rows.append(
            f"| 9 | Text {label}: wall; peak RSS | {times}; {rss} | linear from 100k | "
            f"{'n/a' if g is None else f'{g:.2f}×'} of linear, 100k→1M | ≤ 1.2× linear; "
            f"≤ 3 GB at 1M | {_verdict(g, lambda x: x <= 1.2)}; "
            f"{_verdict(peak, lambda x: x <= 3072)} |"
        )
    if {"10000", "1000000"} <= set(tiny):
        a, b = tiny["10000"]["peak_rss_mib"], tiny["1000000"]["peak_rss_mib"]
        rows.append(
            f"| 9 | Predict peak RSS, 1M vs 10k rows (streamed in chunks) | {b:.0f} MiB | "
            f"10k rows {a:.0f} MiB | {b / a:.2f}× | flat (≤ 1.2×) | "
            f"{_verdict(b / a, lambda x: x <= 1.2)} |"
        )
    real = pred.get("predict", {})
    if real:
        sizes = sorted(real, key=int)
        cells = ", ".join(
            f"{int(n) // 1000}k {real[n]['seconds']:.1f} s / {real[n]['peak_rss_mib']:.0f} MiB"
            for n in sizes
        )
        lo, hi = real[sizes[0]], real[sizes[-1]]
        rate = (int(sizes[-1]) - int(sizes[0])) / (hi["seconds"] - lo["seconds"])
        flat = hi["peak_rss_mib"] / lo["peak_rss_mib"]
        rows.append(
            f"| 9 | Predict, default MiniLM package (whole command): wall / peak RSS | {cells} | "
            f"{int(sizes[0]) // 1000}k rows | {rate:.0f} rows/s (marginal); peak RSS "
            f"{flat:.2f}×; 1M rows **extrapolated** ≈ {1_000_000 / rate / 60:.0f} min (not run) "
            f"| (info) | – |"
        )
    tab = s.get("tabular", {}).get("figures", {})
    for n, fig in tab.items():
        cells = ", ".join(
            f"{st} {v['seconds']:.1f} s / {v['peak_rss_mib']:.0f} MiB" for st, v in fig.items()
        )
        peak = max(v["peak_rss_mib"] for v in fig.values())
        rows.append(
            f"| 9 | Tabular (penguins) at {int(n) // 1000}k rows: wall / peak RSS | {cells} | – | – "
            f"| ≤ 3 GB | {_verdict(peak, lambda x: x <= 3072)} |"
        )
    tok = s.get("tokenize", {}).get("figures")
    if tok and "speed_node_parallel_vs_node" in tok:
        gain = tok["speed_node_parallel_vs_node"]
        rows.append(
            f"| 10 | Convert node, {tok['texts'] // 1000}k texts, tokenizer threads on (s) | "
            f"{_fmt(tok['seconds_node_parallel'], ' s')} | the node with "
            f"`TOKENIZERS_PARALLELISM=false` {_fmt(tok['seconds_node'], ' s')} | "
            f"{_fmt(gain, '×')} speed | faster (> 1×) | {_verdict(_med(gain), lambda x: x > 1)} |"
        )
    if tok:
        rows += [
            f"| 10 | Convert node, {tok['texts'] // 1000}k texts, `TOKENIZERS_PARALLELISM=false` (s) | "
            f"{_fmt(tok['seconds_node'], ' s')} | batched calls, `TOKENIZERS_PARALLELISM=false` "
            f"{_fmt(tok['seconds_bare_serial'], ' s')} | {_fmt(tok['speed_node_vs_serial'], '×')} "
            f"speed | (info) | – |",
            f"| 10 | Batched calls, `TOKENIZERS_PARALLELISM=true` (s) | "
            f"{_fmt(tok['seconds_bare_parallel'], ' s')} | the same, `false` "
            f"{_fmt(tok['seconds_bare_serial'], ' s')} | "
            f"{_fmt(tok['speed_parallel_vs_serial'], '×')} speed | (info) | – |",
        ]
    imports = s.get("imports", {}).get("figures")
    if imports:
        base = imports["torch+transformers+pandas+pyarrow (hand loop)"]["rss_mib"]["median"]
        for name, v in imports.items():
            extra = ", ".join(v["optional_loaded"]) or "–"
            rows.append(
                f"| 11 | Import {name}: peak RSS; time | {_fmt(v['rss_mib'], ' MiB', 0)}; "
                f"{_fmt(v['seconds'], ' s', 1)} | hand loop's imports {base:.0f} MiB | "
                f"{v['rss_mib']['median'] - base:+.0f} MiB (also loads: {extra}) | (info) | – |"
            )
    return rows + missing


def extra_rows() -> list[str]:
    """Rows 7–11 for RESULTS.md's table."""
    return predict_rows(_load("predict_results.json")) + scale_rows(_load("scale_results.json"))


def extra_environment() -> list[str]:
    """Bullet lines: when, at which commit and load the predict and scale figures were taken."""
    lines = []
    p = _load("predict_results.json")
    if p:
        lines.append(
            f"- Rows 7–8: `python benchmarks/predict.py` ({p['rounds']} rounds, {p['texts']} texts, "
            f"{p['threads']} threads), started {p['started']}, git {p['environment']['git']}, "
            f"load {p['load_start']:.2f}→{p['load_end']:.2f}; ONNX export "
            + ", ".join(f"{k} {v:.0f} s" for k, v in p.get("onnx_export_s", {}).items())
            + ", files "
            + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in p.get("onnx_bytes", {}).items())
        )
    s = _load("scale_results.json")
    for section, r in s.items():
        lines.append(
            f"- Row {'11' if section == 'imports' else '10' if section == 'tokenize' else '9'} "
            f"({section}): `python benchmarks/scale.py --only {section}`, started {r['started']}, "
            f"{r['minutes']:.1f} min, git {r['environment']['git']}, load "
            f"{r['load_at_start']:.2f}→{r['load_at_end']:.2f}"
        )
    return lines
