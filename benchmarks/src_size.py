"""Size of src/ since a base commit, split into commits that add behaviour and the rest.

Issue #15 asks for "src/ smaller than today for the same behaviour". Other issues added
behaviour since then, so the whole tree cannot be compared with the base. This script counts,
for every non-merge commit since ``--base`` that touches src/, the change in code lines (no
blank lines, comments or docstrings) and in all lines, against its first parent, and adds them
up in two groups: the commits listed in ``BEHAVIOUR`` (features and fixes, each named by its
issue) and all others (refactors and shrink passes, whose behaviour is unchanged: tests
unchanged, ``dvc.lock`` outputs identical). Merge commits change nothing of their own unless a
conflict was resolved; their total is reported as the remainder.

    python benchmarks/src_size.py --base d6cdfd9
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import tokenize

# Commits since d6cdfd9 that add or change behaviour (features, fixes, speed-ups).
BEHAVIOUR = {
    "cb09d08": "#18 ONNX text model in the package",
    "c967a4c": "#18 streamed predict",
    "1dcd4f5": "#18 tokenizer threads in convert",
    "85e2e39": "#18 tokenizer threads left out",
    "2120d96": "#18 tokenizer threads in convert, measured",
    "1ba6865": "#18 predict benchmark options, int8 export",
    "f1d3a60": "#18 ONNX text export fused",
    "23ba6f2": "#18 MLP ONNX bytes independent of the clone",
    "d876da4": "#18 gradients freed, best reload skipped, train metrics per epoch",
    "0b10f90": "#18 no NaN fill in deterministic training",
    "a212d4d": "#18 predict batch 32",
    "d207b0c": "#18 train/loss logged only where read, train metrics per epoch",
    "a874a31": "tune pipeline",
    "019d3d4": "tune: bad search space fails before any trial",
    "a068bdc": "tune history plot",
    "b778381": "tune trial durations to the millisecond",
    "66fa094": "streamed predict logs every chunk",
    "1326862": "diverged-run message without a torch warning",
    "980c806": "fit.trainer.loggers: TensorBoard and MLflow",
    "7847b1b": "early stopping on macro-F1, fit.ema",
    "a58f3b0": "early-stopping monitor checked",
    "81b9def": "parameter errors inside a tagged union",
    "398867b": "parameter errors in a union of plain types",
}


def code_lines(text: str) -> int:
    """Lines holding code: not blank, not only a comment, not in a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant
            ):
                if isinstance(first.value.value, str):
                    docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip and tok.type != tokenize.ENDMARKER:
            lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docstrings)
    return len(lines)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def source(rev: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "show", f"{rev}:{path}"], check=False, capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def size(rev: str, paths: list[str]) -> tuple[int, int]:
    """(code lines, all lines) of ``paths`` at ``rev`` (a path absent there counts 0)."""
    texts = [t for t in (source(rev, p) for p in paths) if t is not None]
    return sum(code_lines(t) for t in texts), sum(len(t.splitlines()) for t in texts)


def python_files(*diff_args: str) -> list[str]:
    return [f for f in git(*diff_args, "--", "src").split() if f.endswith(".py")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="d6cdfd9", help="the commit to measure from")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per commit")
    args = ap.parse_args()
    totals = {"behaviour": [0, 0], "same behaviour": [0, 0]}
    revs = git("log", "--reverse", "--no-merges", "--format=%h", f"{args.base}..HEAD", "--", "src")
    for rev in revs.split():
        files = python_files("diff", "--name-only", f"{rev}^", rev)
        before, after = size(f"{rev}^", files), size(rev, files)
        delta = [after[0] - before[0], after[1] - before[1]]
        group = "behaviour" if rev in BEHAVIOUR else "same behaviour"
        totals[group] = [a + b for a, b in zip(totals[group], delta, strict=True)]
        if args.verbose:
            subject = git("log", "-1", "--format=%s", rev).strip()[:90]
            print(f"{rev} {delta[0]:+5d} {delta[1]:+5d}  {group:<14} {subject}")
    base = size(args.base, python_files("ls-tree", "-r", "--name-only", args.base))
    head = size("HEAD", python_files("ls-tree", "-r", "--name-only", "HEAD"))
    rest = [h - b - t - s for h, b, t, s in zip(head, base, *totals.values(), strict=True)]
    print(f"{'':<38}{'code lines':>12}{'all lines':>12}")
    print(f"{'src/ at ' + args.base:<38}{base[0]:>12,}{base[1]:>12,}")
    for group, (code, total) in totals.items():
        print(
            f"{'commits that ' + ('add' if group == 'behaviour' else 'keep') + ' behaviour':<38}"
            f"{code:>+12,}{total:>+12,}"
        )
    print(f"{'merge commits (conflicts resolved)':<38}{rest[0]:>+12,}{rest[1]:>+12,}")
    print(f"{'src/ at HEAD':<38}{head[0]:>12,}{head[1]:>12,}")


if __name__ == "__main__":
    main()
