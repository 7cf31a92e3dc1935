"""``python -m reprotrain new-task``: a complete Kedro environment for a user's data file.

Reads a CSV (any of the common separators and encodings) or Parquet file, infers what each
column is (label, text, numbers, dates, categories, id, or ignored), says what it inferred and
why, and writes ``conf/<env>/`` so that
``kedro run --pipelines=train --env=<env>`` trains and packages a model with no edits::

    python -m reprotrain new-task data/01_raw/tickets.csv --label category

When a question has no safe answer (two text-like columns, a label with one value, ...) it
refuses with one short message, exit code 2, and writes nothing.

Only pandas and yaml are imported here (the generated parameters are validated with
``reprotrain.params``, which imports pydantic alone).
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from reprotrain.atomic import writing_dir
from reprotrain.features import (
    NA_STRINGS,
    NON_FEATURES,
    as_missing,
    date_features,
    label_text,
    parse_dates,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED_ENVS = ("base", "local")  # the project's own configuration, and the user's secrets
FORMATS = {".parquet": "parquet", ".pq": "parquet"} | dict.fromkeys(
    (".csv", ".tsv", ".tab", ".txt"), "csv"
)
SEPARATORS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}  # ',' first: it wins a tie
SNIFF_CHARS = 1 << 20  # the start of the file its separator and quoting are read from
# pandas' defaults: what new-task leaves out of the load_args it writes
READ_DEFAULTS = {
    "sep": ",",
    "decimal": ".",
    "thousands": None,
    "quoting": csv.QUOTE_MINIMAL,
    "encoding": "utf-8",
}
# Excel's export on Western Windows; then Latin-1, which decodes any byte
ENCODINGS = ("utf-8", "cp1252", "latin-1")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
_WHOLE = re.compile(r"[+-]?\d+")
# a number with its thousands grouped (1,234,567.5; with a decimal comma 1.234.567,5)
_GROUPED = {
    ".": re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?"),
    ",": re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?"),
}
_PLAIN_NUMBER = {
    ".": re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)"),
    ",": re.compile(r"[+-]?(\d+(,\d*)?|,\d+)"),
}

MAX_CLASSES = 20  # a numeric label with at most this many whole values is a class label
MAX_CATEGORIES = 20  # a string column with at most this many values (and repeats) is categorical
CATEGORY_MAX_UNIQUE_RATIO = 0.5
TEXT_MIN_WORDS = 3.0  # a string column is text-like when its values are long ...
TEXT_MIN_CHARS = 20.0
TEXT_MIN_UNIQUE_RATIO = 0.5  # ... and mostly distinct
FEW_ROWS_PER_CLASS = 10
# Date formats a string column is tried with, in order; the first that reads every value wins
_DAY_FIRST, _MONTH_FIRST = "%d/%m/%Y", "%m/%d/%Y"
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    *(
        f"{day}{time}"
        for day in ("%Y/%m/%d", "%d.%m.%Y", _DAY_FIRST, _MONTH_FIRST)
        for time in ("", " %H:%M", " %H:%M:%S")
    ),
)
DATE_PROBE = 100  # values a format must read before it is tried on the whole column
SEED = 42
TEXT_FIT = "conf/base/parameters_fit.yml"
TABULAR_FIT = "conf/penguins/parameters_fit.yml"  # the MLP defaults
HEADER = "# Written by `reprotrain new-task` {what}: yours to edit.\n"

_ID_NAMES = {"id", "uuid", "guid", "key", "index", "idx", "row", "rowid", "row_id", "row_number"}
_ID_NAME = re.compile(r"(?i:.*[_\-. ](id|uuid|guid|key))$|.*[a-z0-9](Id|ID)$")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "nan", "inf"}


class ScaffoldError(Exception):
    """A question the scaffold cannot answer alone; nothing has been written."""


@dataclass(frozen=True)
class Role:
    """What one column of the file is for, and why."""

    column: str
    role: str  # label | text | numeric | categorical | date | id | ignored
    reason: str
    date_format: str | None = None  # role date: the format every value reads with


@dataclass(frozen=True)
class Plan:
    """Everything inferred from the file: what :func:`render_files` writes and main prints."""

    name: str
    env: str
    raw_file: str
    file_format: str
    rows: int
    label_column: str
    task_type: str
    type_reason: str
    labels: list[str] | None
    labelled_rows: int
    text_column: str | None
    numeric_columns: list[str]
    categories: dict[str, list[str]]
    id_column: str | None
    roles: list[Role]
    missing: dict[str, int]
    missing_features: str
    model_checkpoint: str | None
    max_length: int
    name_reason: str = "given with --name"
    label_is_numeric: bool = False
    notes: list[str] = field(default_factory=list)
    # how to read the CSV beyond pandas' defaults (``sep``, ``decimal``, ``encoding``)
    read_options: dict[str, Any] = field(default_factory=dict)
    # date columns: {column: format} and the features each gives (``features.date_features``)
    date_columns: dict[str, str] = field(default_factory=dict)
    date_parts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``text`` (a transformer reads the text column) or ``tabular`` (an MLP)."""
        return "text" if self.text_column else "tabular"

    @property
    def feature_columns(self) -> list[str]:
        """The tabular feature columns: numeric, date, categorical."""
        return [*self.numeric_columns, *self.date_columns, *self.categories]

    @property
    def categorical_columns(self) -> list[str]:
        """The categorical feature columns, in file order."""
        return list(self.categories)

    def columns_with(self, role: str) -> list[Role]:
        """The columns of one role, in file order."""
        return [r for r in self.roles if r.role == role]


# ----------------------------------------------------------------------------------- reading
def sanitise_name(text: str) -> str:
    """``text`` as a task name: ``^[A-Za-z0-9][A-Za-z0-9_.-]*$`` (``task`` if nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name).rstrip("_.-")
    return name or "task"


def check_name(name: str, what: str) -> str:
    """``name`` if it is a valid task/env name, else a refusal naming a valid one."""
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"{what} {name!r} is not a valid name (letters, digits, '_', '.', '-'; starting "
            f"with a letter or digit): use e.g. {sanitise_name(name)!r}"
        )
    return name


def project_relative(path: str, root: Path) -> str:
    """``path`` relative to the project root (POSIX), or absolute if it lies outside it."""
    absolute, base = Path(os.path.abspath(root / path)), Path(os.path.abspath(root))
    return (absolute.relative_to(base) if absolute.is_relative_to(base) else absolute).as_posix()


def _encoding(path: Path) -> str:
    """The first of :data:`ENCODINGS` that decodes the whole file (a UTF-8 BOM is UTF-8)."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise AssertionError("latin-1 decodes any byte")


def _records(sample: str, sep: str, quoting: int) -> list[list[str]]:
    """The sample's records; the last is left out when the sample may end inside it."""
    lines = sample.splitlines(keepends=True)
    if len(sample) >= SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=sep, quoting=quoting)
    return [r for r in reader if r]


def _layout(sample: str) -> tuple[str, int]:
    """The separator and quoting that split the sample into records of one width (> 1).

    The widest wins, a comma on a tie. Quoted fields (``"a, b"``) are read as such, unless
    reading quotes as text (``csv.QUOTE_NONE``) gives more records, each line one record of
    the same width: then quotes joined lines, as a stray ``"`` in a tab-separated export
    does. With no consistent candidate: a comma, and pandas says why.
    """

    def width(records: list[list[str]]) -> int:
        sizes = {len(r) for r in records}
        return sizes.pop() if len(sizes) == 1 else 0

    widths = {}
    for sep in SEPARATORS:
        quoted, literal = (_records(sample, sep, q) for q in (csv.QUOTE_MINIMAL, csv.QUOTE_NONE))
        if width(literal) > 1 and len(literal) > len(quoted):
            widths[sep, csv.QUOTE_NONE] = width(literal)
        elif width(quoted) > 1:
            widths[sep, csv.QUOTE_MINIMAL] = width(quoted)
    return max(widths, key=lambda k: widths[k], default=(",", csv.QUOTE_MINIMAL))


def _decimal(records: list[list[str]], sep: str) -> str:
    """``,`` when a column holds numbers written with a decimal comma only, else ``.``."""
    if sep == ",":
        return "."
    grouped = _GROUPED[","]  # 1.234,5
    for column in zip(*records[1:], strict=False):
        cells = [c.strip() for c in column if c.strip()]
        if any(
            _DECIMAL_COMMA.fullmatch(c) or grouped.fullmatch(c) and "," in c for c in cells
        ) and all(
            _DECIMAL_COMMA.fullmatch(c) or _WHOLE.fullmatch(c) or grouped.fullmatch(c)
            for c in cells
        ):
            return ","
    return "."


def _thousands(records: list[list[str]], decimal: str) -> str | None:
    """The thousands separator of a column whose cells are all numbers, some of them grouped
    (``1,234``; ``1.234`` with a decimal comma); ``None`` when no column is so."""
    grouped, plain = _GROUPED[decimal], _PLAIN_NUMBER[decimal]
    for column in zip(*records[1:], strict=False):
        cells = [c.strip() for c in column if c.strip() and c.strip() not in NA_STRINGS]
        if any(grouped.fullmatch(c) for c in cells) and all(
            grouped.fullmatch(c) or plain.fullmatch(c) for c in cells
        ):
            return "," if decimal == "." else "."
    return None


def read_options(path: Path) -> dict[str, Any]:
    """The ``load_args`` beyond pandas' defaults that read the CSV ``path``.

    ``encoding``: UTF-8 when the whole file decodes as such, else Windows-1252, else Latin-1.
    ``sep`` and ``quoting``: see :func:`_layout`, over the start of the file. ``decimal``:
    ``,`` when ``sep`` is not a comma and a column's cells are all numbers, some written with
    a decimal comma (``12,8``). ``thousands``: see :func:`_thousands`.
    """
    encoding = _encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        sample = f.read(SNIFF_CHARS)
    sep, quoting = _layout(sample)
    records = _records(sample, sep, quoting)
    decimal = _decimal(records, sep)
    options = {
        "sep": sep,
        "decimal": decimal,
        "thousands": _thousands(records, decimal),
        "quoting": quoting,
        "encoding": encoding,
    }
    return {k: v for k, v in options.items() if v != READ_DEFAULTS[k]}


def describe_options(options: dict[str, Any]) -> str:
    """``';'-separated, decimal comma, cp1252``: how a CSV is read, for people."""
    parts = [f"{SEPARATORS[options['sep']]}-separated"] if "sep" in options else []
    parts += ["decimal comma"] if options.get("decimal") == "," else []
    parts += [f"thousands grouped with {options['thousands']!r}"] if "thousands" in options else []
    parts += ['quotes are text (a stray " would join lines)'] if "quoting" in options else []
    parts += [options["encoding"]] if "encoding" in options else []
    return ", ".join(parts)


def read_table(
    path: Path, options: dict[str, Any] | None = None, literal: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The file as the catalog's ``raw_table`` reads it, numbers parsed as the clean step does.

    A CSV is read with ``options`` (:func:`read_options` of the file when not given). Other
    cells are read literally: a class named ``NA`` is a class. The ``literal`` columns (the
    label) are left exactly as read, as clean reads a class label.
    """
    if not path.is_file():
        raise ScaffoldError(f"no file {path}: which file did you mean?")
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ScaffoldError(
            f"cannot tell the format of {path.name}: is it CSV or Parquet? (name it .csv, .tsv "
            f"or .parquet)"
        )
    try:
        if file_format == "csv":
            options = read_options(path) if options is None else options
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], **options)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise ScaffoldError(
            f"{path.name} is empty (no header, no rows): is it the right file?"
        ) from None
    except Exception as err:  # noqa: BLE001 - pandas/pyarrow raise many types for a bad file
        raise ScaffoldError(f"cannot read {path.name} as {file_format}: {err}") from None
    if frame.empty:
        raise ScaffoldError(
            f"{path.name} has no rows ({len(frame.columns)} columns): is it the right file?"
        )
    if not all(isinstance(c, str) for c in frame.columns):
        raise ScaffoldError(
            f"{path.name} has column names that are not text: {list(frame.columns)}"
        )
    for c in frame.columns:
        if c not in literal:
            frame[c] = as_number(frame[c])
    return frame


def as_number(s: pd.Series) -> pd.Series:
    """``s`` as numbers when its values are all numbers or missing-value markers (as clean
    reads a numeric column), else ``s`` unchanged."""
    if pd.api.types.is_numeric_dtype(s):  # booleans count as numeric
        return s
    marked = as_missing(s)
    numbers = pd.to_numeric(marked, errors="coerce")
    if marked.notna().any() and numbers.notna().sum() == marked.notna().sum():
        return numbers
    return s


def task_group(path: Path) -> dict[str, Any]:
    """The ``task`` group of a ``globals.yml``; a ``ScaffoldError`` if it cannot be read."""
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("task") or {}
    except (OSError, yaml.YAMLError) as err:
        raise ScaffoldError(f"cannot read {path}: {err}") from None


# ---------------------------------------------------------------------------------- inference
def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _is_bool(s: pd.Series) -> bool:  # s holds a value (column_role checks)
    return pd.api.types.is_bool_dtype(s) or s.dropna().map(lambda v: isinstance(v, bool)).all()


def as_clean_strings(s: pd.Series) -> pd.Series:
    """The non-missing values as the clean step reads a categorical column."""
    return s.dropna().astype("string").str.strip()


def label_strings(s: pd.Series) -> pd.Series:
    """The non-missing labels as the clean step reads them (``str(value).strip()``)."""
    return label_text(s).dropna()


def sorted_labels(s: pd.Series) -> list[str]:
    """The distinct labels as strings: sorted as text, or by value for a column of numbers
    (missing-value markers such as ``NA`` after them)."""
    strings = label_strings(s)
    number = as_number(s)
    if _is_number(number):  # 2 before 10
        values = number[strings.index].astype("float64")
        by_value = dict(zip(strings, values.fillna(np.inf), strict=True))
        return sorted(by_value, key=lambda k: (by_value[k], k))
    return sorted(set(strings))


def _short(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _quoted(columns: list[str], limit: int = 8) -> str:
    return _short([f"'{c}'" for c in columns], limit)


def _id_like_name(name: str) -> bool:
    return name.strip().lower() in _ID_NAMES or bool(_ID_NAME.fullmatch(name.strip()))


def _integer_sequence(s: pd.Series) -> bool:  # s: two or more values, none missing
    if not _is_number(s):
        return False
    values = np.sort(s.to_numpy(dtype="float64"))
    return bool((values == values.round()).all() and (np.diff(values) == 1).all())


def _distinct(s: pd.Series) -> pd.Series:
    """The distinct present values of ``s`` as stripped strings (markers such as NA left out)."""
    return pd.Series(as_missing(s).dropna().unique(), dtype="string").str.strip()


def _reads_as(strings: pd.Series, fmt: str) -> bool:
    """Whether every value of ``strings`` (distinct, none missing) reads with ``fmt``."""
    for values in (strings[:DATE_PROBE], strings):
        if pd.to_datetime(values, format=fmt, errors="coerce").isna().any():
            return False
    return True


def date_format(strings: pd.Series) -> str | None:
    """The first of :data:`DATE_FORMATS` that reads every one of ``strings``, or ``None``.

    Day first wins where month first reads every value too (:func:`infer_plan` notes it).
    """
    distinct = _distinct(strings)
    if distinct.empty or not distinct.str.contains(r"\d", regex=True).all():
        return None
    return next((fmt for fmt in DATE_FORMATS if _reads_as(distinct, fmt)), None)


def _month_first_note(column: str, fmt: str, s: pd.Series) -> str | None:
    """A note when day-first ``fmt`` was chosen but month first reads every value too."""
    if not fmt.startswith(_DAY_FIRST):
        return None
    other = fmt.replace(_DAY_FIRST, _MONTH_FIRST)
    if not _reads_as(_distinct(s), other):
        return None
    return (
        f"'{column}' reads as day/month/year ({fmt}) and as month/day/year ({other}); "
        f"day first was chosen: if its dates are month first, set both date_columns entries "
        f"(parameters_clean.yml, parameters_convert.yml) to {other!r}"
    )


def column_role(s: pd.Series) -> Role:  # noqa: C901 - see the docstring
    """The role of a non-label column, from its values alone (id, text, numeric, ...).

    Complexity above 10 on purpose: one ordered list of rules, the first that matches wins;
    split into functions, the order that decides a column's role would be hard to read.
    """
    name = str(s.name)
    values = s.dropna()
    n = len(values)
    if n == 0:
        return Role(name, "ignored", "every value is missing")
    unique = values.nunique()
    if n == len(s) and unique == n and n > 1:
        if _id_like_name(name):
            return Role(name, "id", f"all {n:,} values unique, and an id-like name")
        if _integer_sequence(s):
            return Role(name, "id", f"all {n:,} values unique, a sequence of whole numbers")
    if _id_like_name(name):
        return Role(
            name,
            "ignored",
            "an id-like name, but values repeat or are missing: an identifier, not a feature",
        )
    if unique == 1:
        return Role(name, "ignored", f"one value only ({str(values.iloc[0])!r})")
    if _is_bool(s):
        return Role(name, "categorical", "true/false values")
    if _is_number(s):
        return Role(name, "numeric", f"numbers, {unique:,} distinct")
    strings = as_clean_strings(s)
    fmt = date_format(strings)
    if fmt:
        return Role(name, "date", f"dates, format {fmt}", fmt)
    ratio = strings.nunique() / len(strings)
    words = strings.str.split().str.len().mean()
    chars = strings.str.len().mean()
    if (words >= TEXT_MIN_WORDS or chars >= TEXT_MIN_CHARS) and ratio >= TEXT_MIN_UNIQUE_RATIO:
        return Role(
            name,
            "text",
            f"long, mostly distinct strings (mean {words:.1f} words, {chars:.0f} characters; "
            f"{ratio:.0%} distinct)",
        )
    if strings.nunique() <= MAX_CATEGORIES and ratio <= CATEGORY_MAX_UNIQUE_RATIO:
        return Role(name, "categorical", f"{strings.nunique()} distinct short values")
    numbers = pd.to_numeric(strings, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        bad = strings[numbers.isna()].unique().tolist()
        return Role(
            name,
            "ignored",
            f"mostly numbers, but {len(bad)} value(s) are not (e.g. {bad[0]!r}): fix them to use it",
        )
    return Role(
        name,
        "ignored",
        f"{strings.nunique():,} distinct short values ({ratio:.0%} distinct): names or codes?",
    )


def infer_label(  # noqa: C901 - see the docstring
    s: pd.Series, forced: str | None
) -> tuple[str, str, list[str] | None, int, list[str]]:
    """Task type, why, the sorted class names (``None`` for regression), labelled rows, notes.

    Complexity above 10 on purpose: the refusals and the type decision are one ordered list
    of rules, each with its own message; read top to bottom, they say how a label is judged.
    """
    name = str(s.name)
    number = as_number(s)  # as clean reads a regression target: "NA" is missing there
    numeric = _is_number(number)
    strings = label_strings(number if numeric else s)
    if strings.empty:
        raise ScaffoldError(f"label column '{name}' has no values: is it the right column?")
    values = number.dropna()
    distinct = strings.nunique()
    if distinct < 2:
        raise ScaffoldError(
            f"label column '{name}' has one value only ({strings.iloc[0]!r}): a model needs two "
            f"or more; is it the right column?"
        )
    whole = numeric and bool((values == values.round()).all())
    not_numbers = strings[pd.to_numeric(strings, errors="coerce").isna()]
    if forced == "regression" and len(not_numbers):
        raise ScaffoldError(
            f"label column '{name}' is not numeric (e.g. {not_numbers.iloc[0]!r}): predict it "
            f"as a class (drop --type regression)?"
        )
    if forced:
        task_type, why = forced, "set with --type"
    elif not numeric:
        task_type, why = "classification", "its values are not numbers"
    elif whole and distinct <= MAX_CLASSES:
        task_type = "classification"
        why = f"numbers, but only {distinct} distinct whole values (--type regression to predict a number)"
    else:
        task_type = "regression"
        why = f"numbers with {distinct:,} distinct values (--type classification for classes)"
    notes: list[str] = []
    if task_type == "regression":
        return task_type, why, None, len(strings), notes
    if not forced and distinct > MAX_CLASSES and distinct > len(strings) / 2:
        raise ScaffoldError(
            f"label column '{name}' has {distinct:,} distinct values in {len(strings):,} rows: is "
            f"it the label? (for a numeric target, pass --type regression)"
        )
    labels = sorted_labels(s)  # as written: clean reads a class label literally
    if numeric and pd.api.types.is_float_dtype(s) and whole:
        notes.append(
            f"'{name}' is read as decimals (missing values, or a '.0' in the file), so the "
            f"classes are named {_short(labels, 3)} as the clean step reads them"
        )
    strings = label_strings(s)
    counts = strings.value_counts()
    marks = counts[[v for v in counts.index if v in NA_STRINGS]]
    if len(marks):
        notes.append(
            "label value(s) "
            + _short([f"{k!r} ({v:,} row{'s' * (v != 1)})" for k, v in marks.items()], 5)
            + " read as class(es), as written; if they mark a missing label (R writes NA so), "
            "delete them from task.labels in globals.yml: clean then drops those rows as "
            "unknown labels"
        )
    rare = counts[counts < FEW_ROWS_PER_CLASS]
    if len(rare):
        notes.append(
            "few rows for class(es) "
            + _short([f"{k!r} ({v})" for k, v in rare.items()], 5)
            + ": the test split may hold one or none of them"
        )
    return task_type, why, labels, len(strings), notes


def _pick_id(roles: dict[str, Role], frame: pd.DataFrame, forced: str | None) -> str | None:
    if forced is not None:
        s = frame[forced]
        if s.isna().any() or not s.is_unique:
            repeated = s[s.duplicated()].dropna().unique().tolist()[:3]
            raise ScaffoldError(
                f"'{forced}' cannot be the id: its values must be unique and present "
                f"({int(s.isna().sum())} missing, repeated: {repeated}); which column is?"
            )
        roles[forced] = Role(forced, "id", "chosen with --id")
    candidates = [c for c, r in roles.items() if r.role == "id" and c != forced]
    chosen = forced
    if chosen is None and candidates:
        named = [c for c in candidates if _id_like_name(c)]
        chosen = (named or candidates)[0]
    for c in candidates:
        if c != chosen:
            roles[c] = Role(c, "ignored", f"unique values like an id, but '{chosen}' is the id")
    return chosen


def _pick_text(roles: dict[str, Role], frame: pd.DataFrame, forced: str | None) -> str | None:
    text_like = [c for c, r in roles.items() if r.role == "text" and c != forced]
    if forced is not None:
        if _is_number(frame[forced]):
            raise ScaffoldError(f"--text '{forced}' holds numbers, not text: which column is text?")
        if roles[forced].role != "text":
            roles[forced] = Role(forced, "text", "chosen with --text")
        for c in text_like:
            roles[c] = Role(c, "ignored", f"text-like too, but --text chose '{forced}'")
        return forced
    if len(text_like) >= 2:
        listed = ", ".join(f"'{c}'" for c in text_like[:-1]) + f" and '{text_like[-1]}'"
        count = "two" if len(text_like) == 2 else str(len(text_like))
        raise ScaffoldError(
            f"{count} text-like columns, {listed}: pass --text with the one the model reads"
        )
    return text_like[0] if text_like else None


def _check_named_columns(
    frame: pd.DataFrame, raw_file: str, label: str, text: str | None, id_column: str | None
) -> None:
    """Refuse a named column the table lacks, or one column named for two roles."""
    columns = list(frame.columns)
    for flag, column in (("--label", label), ("--text", text), ("--id", id_column)):
        if column is not None and column not in columns:
            raise ScaffoldError(
                f"no column '{column}' ({flag}) in {raw_file}; its columns are: "
                f"{', '.join(columns)}. Which one did you mean?"
            )
    if label in (text, id_column):
        raise ScaffoldError(f"'{label}' cannot be both the label and the text or id column")
    if text is not None and text == id_column:
        raise ScaffoldError(f"'{text}' cannot be both the text and the id column")


def _feature_role(s: pd.Series) -> Role:
    """:func:`column_role`, but a feature named as a column of the cleaned table is ignored."""
    role = column_role(s)
    if s.name in NON_FEATURES and role.role in ("numeric", "categorical", "date"):
        return Role(
            role.column,
            "ignored",
            f"{role.reason}, but its name is one the pipeline reserves: rename the column to "
            f"use it as a feature",
        )
    return role


def infer_plan(
    frame: pd.DataFrame,
    *,
    label: str,
    raw_file: str,
    name: str | None = None,
    env: str | None = None,
    text: str | None = None,
    id_column: str | None = None,
    task_type: str | None = None,
    base_task: dict[str, Any] | None = None,
    read_options: dict[str, Any] | None = None,
) -> Plan:
    """Infer the task from the table: pure, writes nothing (main checks ``name`` and ``env``).

    Raises:
        ScaffoldError: when a question has no safe answer (see the module docstring).
    """
    _check_named_columns(frame, raw_file, label, text, id_column)
    name_reason = "given with --name"
    if name is None:
        name, name_reason = sanitise_name(Path(raw_file).stem), "from the file name"
    env = env or name
    base_task = base_task or {}

    kind, why, labels, labelled, notes = infer_label(frame[label], task_type)
    roles = {c: _feature_role(frame[c]) for c in frame.columns if c != label}
    chosen_id = _pick_id(roles, frame, id_column)
    chosen_text = _pick_text(roles, frame, text)
    if chosen_text:
        for c, r in roles.items():
            if r.role in ("numeric", "categorical", "date"):
                roles[c] = Role(c, "ignored", f"{r.reason}; a text task reads its text column only")
    numeric = [c for c, r in roles.items() if r.role == "numeric"]
    categorical = [c for c, r in roles.items() if r.role == "categorical"]
    dates = {c: r.date_format for c, r in roles.items() if r.role == "date" and r.date_format}
    notes += [n for c, fmt in dates.items() if (n := _month_first_note(c, fmt, frame[c]))]
    if not (chosen_text or numeric or categorical or dates):
        others = "; ".join(f"'{c}': {r.reason}" for c, r in roles.items()) or "none"
        raise ScaffoldError(
            f"no usable feature column besides the label ({others}): which column should the "
            f"model read? (--text for a text column)"
        )
    features = [chosen_text] if chosen_text else [*numeric, *dates, *categorical]
    absent = {c: int(as_missing(frame[c]).isna().sum()) for c in features}
    missing = {c: n for c, n in absent.items() if n}
    # a text task's only feature is the text: clean drops a row without one
    policy = "keep" if missing and not chosen_text else "drop"
    checkpoint = base_task.get("model_checkpoint") if chosen_text else None
    if chosen_text and not checkpoint:
        raise ScaffoldError(
            "conf/base/globals.yml names no task.model_checkpoint: which pretrained model "
            f"should read the text column '{chosen_text}'?"
        )
    if Path(raw_file).is_absolute():
        notes.append(
            f"{raw_file} lies outside the project: DVC and the lineage see it by that path"
        )
    return Plan(
        name=name,
        env=env,
        raw_file=raw_file,
        file_format=FORMATS.get(Path(raw_file).suffix.lower(), "csv"),
        rows=len(frame),
        label_column=label,
        task_type=kind,
        type_reason=why,
        labels=labels,
        labelled_rows=labelled,
        text_column=chosen_text,
        numeric_columns=numeric,
        categories={c: sorted(set(as_clean_strings(as_missing(frame[c])))) for c in categorical},
        id_column=chosen_id,
        roles=[Role(label, "label", why), *roles.values()],
        missing=missing,
        missing_features=policy,
        model_checkpoint=checkpoint,
        max_length=int(base_task.get("max_length") or 128),
        name_reason=name_reason,
        label_is_numeric=_is_number(as_number(frame[label])),
        notes=notes,
        read_options=read_options or {},
        date_columns=dates,
        date_parts={
            c: list(date_features(parse_dates(frame[c], c, fmt), c)) for c, fmt in dates.items()
        },
    )


# ------------------------------------------------------------------------------------- files
def _scalar(value: Any) -> str:
    """One YAML scalar that every YAML reader (PyYAML, OmegaConf) reads back as ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:  # 1e-05 is a string to YAML 1.1: write 1.0e-5
            mantissa, exponent = text.split("e")
            mantissa += "" if "." in mantissa else ".0"
            text = f"{mantissa}e{int(exponent):+d}"
        return text
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # JSON strings are YAML double-quoted strings


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def to_yaml(data: dict[str, Any], comments: dict[str, str] | None = None, indent: int = 0) -> str:
    """Block YAML for nested dicts (lists in flow style), with ``# comments`` by dotted key."""
    comments = comments or {}
    lines = []
    for key, value in data.items():
        note = comments.get(str(key))
        tail = f"  # {note}" if note else ""
        pad = " " * indent
        nested = {k[len(str(key)) + 1 :]: v for k, v in comments.items() if k.startswith(f"{key}.")}
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{_scalar(key)}:{tail}")
            lines.append(to_yaml(value, nested, indent + 2).rstrip("\n"))
        else:
            lines.append(f"{pad}{_scalar(key)}: {_flow(value)}{tail}")
    return "\n".join(lines) + "\n"


def _card_texts(plan: Plan) -> tuple[str, str]:
    if plan.kind == "text":
        source = f"the text column '{plan.text_column}'"
    else:
        source = "the columns " + _quoted(plan.feature_columns)
    if plan.task_type == "regression":
        use = f"Predicts '{plan.label_column}' (a number) from {source}."
    elif plan.kind == "text":
        use = f"Classifies {source} into {_short(plan.labels or [])}."
    else:
        use = f"Classifies a row into {_short(plan.labels or [])} from {source}."
    limits = (
        f"Trained on {plan.labelled_rows:,} rows of {plan.raw_file}; check metrics.json and the "
        f"baselines before using it on other data."
    )
    return use, limits


def _with_mse(text: str, source: str) -> str:
    """A fit file's text with ``loss: mse`` (regression), its comments kept."""
    new, count = re.subn(r"(?m)^(\s+loss:\s*)cross_entropy\b", r"\1mse", text)
    if count != 1 or (yaml.safe_load(new) or {}).get("fit", {}).get("loss") != "mse":
        raise ScaffoldError(f"cannot set fit.loss to mse in a copy of {source}: is it a fit file?")
    return new


def fit_file(plan: Plan, root: Path) -> tuple[str, str] | None:
    """``(source, text)`` of the env's ``parameters_fit.yml``, or ``None`` to use conf/base's.

    Tabular: conf/penguins' MLP defaults; regression: the loss set to ``mse``.
    """
    if plan.kind == "text" and plan.task_type == "classification":
        return None
    source = TEXT_FIT if plan.kind == "text" else TABULAR_FIT
    path = root / source
    if not path.is_file():
        raise ScaffoldError(
            f"no {source}: where should the {plan.kind} model's fit settings come from?"
        )
    text = path.read_text(encoding="utf-8")
    return source, (_with_mse(text, source) if plan.task_type == "regression" else text)


def parameter_groups(plan: Plan) -> dict[str, dict[str, Any]]:
    """The parameter groups of the env, by file name (without the fit file)."""
    text = plan.kind == "text"
    use, limits = _card_texts(plan)
    convert: dict[str, Any] = {"batch_size": 1000}
    if not text:
        convert.update(numeric_columns=plan.numeric_columns, categories=plan.categories)
        if plan.date_columns:
            convert["date_columns"] = plan.date_columns
    return {
        "globals.yml": {
            "task": {
                "name": plan.name,
                "raw_file": plan.raw_file,
                "type": plan.task_type,
                "labels": plan.labels,
                "model_checkpoint": plan.model_checkpoint,
                "max_length": plan.max_length,
                "seed": SEED,
            }
        },
        "parameters_clean.yml": {
            "clean": {
                "label_column": plan.label_column,
                "label_from_score": None,
                "text_column": plan.text_column,
                "numeric_columns": [] if text else plan.numeric_columns,
                "categorical_columns": [] if text else plan.categorical_columns,
                **({"date_columns": plan.date_columns} if plan.date_columns and not text else {}),
                "id_column": plan.id_column,
                "group_column": None,
                "missing_features": plan.missing_features,
                "drop_duplicates": text,
            }
        },
        "parameters_convert.yml": {"convert": convert},
        "parameters_package.yml": {
            "package": {
                "name": plan.name,
                "describes": plan.name,
                "intended_use": use,
                "limitations": limits,
                "verify_rows": 32,
                "tolerance": 1.0e-5,
            }
        },
        "parameters_predict.yml": {
            "predict": {"text_column": plan.text_column, "batch_size": 32 if text else 256}
        },
    }


def _comments(plan: Plan) -> dict[str, dict[str, str]]:
    labels_note = (
        f"the distinct values of '{plan.label_column}', sorted"
        if plan.labels
        else "a regression task has no classes"
    )
    missing = ", ".join(f"{c} {n}" for c, n in plan.missing.items())
    return {
        "globals.yml": {
            "task.name": "names the data/<layer>/<name>/ folders of this task",
            "task.labels": labels_note,
            "task.model_checkpoint": "from conf/base/globals.yml"
            if plan.kind == "text"
            else "an MLP: no pretrained model",
            "task.max_length": "tokens per text" if plan.kind == "text" else "unused by an MLP",
        },
        "parameters_clean.yml": {
            "clean.missing_features": f"missing values: {missing}"
            if plan.missing_features == "keep"
            else "no feature has missing values"
            if plan.kind == "tabular"
            else "a row without text is dropped",
            "clean.date_columns": "the format every value reads with (strptime, or ISO8601)",
            "clean.drop_duplicates": "a repeated text would land in train and test alike"
            if plan.kind == "text"
            else "identical rows are separate observations in a table",
        },
        "parameters_convert.yml": {
            "convert.categories": "each column's values, sorted",
            "convert.date_columns": "as in clean: the package reads new dates with it",
        },
        "parameters_package.yml": {
            "package.intended_use": "generated: say what the model is for",
            "package.limitations": "generated: say where it must not be used",
        },
    }


def render_files(
    plan: Plan, fit: tuple[str, str] | None = None, root: Path = Path()
) -> dict[str, str]:
    """The text of every file of ``conf/<env>/``, by file name."""
    header = HEADER.format(what=f"for {plan.raw_file}")
    comments = _comments(plan)
    files = {}
    for file_name, data in parameter_groups(plan).items():
        text = to_yaml(data, comments.get(file_name))
        if yaml.safe_load(text) != data:  # the emitter's own check: what is read is what we mean
            raise AssertionError(f"{file_name} does not read back as written:\n{text}")
        files[file_name] = header + text
    if fit is not None:
        source, text = fit
        what = f"as a copy of {source}" + (
            ", loss set to mse for regression" if plan.task_type == "regression" else ""
        )
        files["parameters_fit.yml"] = HEADER.format(what=what) + text
    if plan.file_format == "parquet":
        files["catalog.yml"] = header + (
            "raw_table:  # the raw file is Parquet\n"
            "  type: pandas.ParquetDataset\n"
            "  filepath: ${globals:task.raw_file}\n"
        )
    elif plan.read_options:
        files["catalog.yml"] = header + catalog_reading(plan.read_options, root)
    return files


def catalog_reading(options: dict[str, Any], root: Path) -> str:
    """conf/base's ``raw_table`` and ``predict_input``, reading CSVs with ``options``.

    New rows to predict are taken to come from the same export as the raw file.
    """
    base = yaml.safe_load((root / "conf/base/catalog.yml").read_text(encoding="utf-8"))
    how = describe_options(options)
    text = ""
    for name, what in (("raw_table", "the raw file"), ("predict_input", "new rows")):
        entry = {k: v for k, v in base[name].items() if k != "metadata"}
        entry["load_args"] = {**entry.get("load_args", {}), **options}
        note = {"load_args.quoting": "csv.QUOTE_NONE: a quote is text"}
        text += f"{name}:  # {what}: {how}\n" + to_yaml(entry, note, indent=2)
    return text


def validate(files: dict[str, str], root: Path) -> None:
    """Parse the env's groups with ``reprotrain.params``, as ``kedro run`` will.

    Raises:
        reprotrain.params.ParameterError: a generated value does not validate (a bug here).
    """
    from reprotrain import params

    groups: dict[str, Any] = {}
    for text in files.values():
        groups.update(yaml.safe_load(text) or {})
    if "fit" not in groups:
        base = yaml.safe_load((root / TEXT_FIT).read_text(encoding="utf-8")) or {}
        groups["fit"] = base.get("fit")
    task = groups.pop("task")
    for step, group in groups.items():
        if step in params.STEP_PARAMS:  # the task is parsed first, with each step
            params.parse(step, group, task)


def write_env(conf: Path, env: str, files: dict[str, str]) -> Path:
    """Write ``conf/<env>/`` beside its target, then rename it into place.

    An existing folder (``--force``) is replaced as a whole: no stale file of an earlier
    scaffold survives.
    """
    target = conf / env
    with writing_dir(target) as tmp:
        tmp.chmod(0o755)  # a configuration folder, readable as any other
        for file_name, text in files.items():
            (tmp / file_name).write_text(text, encoding="utf-8")
    return target


def envs_naming(conf: Path, name: str, besides: str) -> list[str]:
    """The other envs whose ``globals.yml`` names task ``name`` (they share its data folders)."""
    found = []
    for path in sorted(conf.glob("*/globals.yml")):
        if path.parent.name in (besides, "local") or path.parent.name.startswith("."):
            continue
        try:
            if task_group(path).get("name") == name:
                found.append(path.parent.name)
        except ScaffoldError:
            continue
    return found


# -------------------------------------------------------------------------------------- report
def _column_lines(plan: Plan) -> list[str]:
    """The text, id, feature and ignored columns, one line each (numbers on one line)."""
    lines = [f"  {r.role:<12} '{r.column}': {r.reason}" for r in plan.columns_with("text")]
    lines += [f"  {r.role:<12} '{r.column}': {r.reason}" for r in plan.columns_with("id")]
    if plan.numeric_columns:
        lines.append(f"  numeric      {_quoted(plan.numeric_columns, 20)} (numbers)")
    for c, values in plan.categories.items():
        reason = next(r.reason for r in plan.roles if r.column == c)
        lines.append(f"  categorical  '{c}': {_short(values)} ({reason}; sorted)")
    for c, fmt in plan.date_columns.items():
        parts = ", ".join(p.removeprefix(c) for p in plan.date_parts.get(c, []))
        lines.append(f"  date         '{c}': dates, format {fmt} -> {parts}")
    return lines + [
        f"  ignored      '{r.column}': {r.reason}" for r in plan.columns_with("ignored")
    ]


def _model_lines(plan: Plan) -> list[str]:
    """What the model reads, and (tables) the missing-value policy."""
    if plan.kind == "text":
        blank = sum(plan.missing.values())
        gaps = f"; {blank:,} row(s) without text are dropped" if blank else ""
        return [
            f"  model        a transformer ({plan.model_checkpoint}, conf/base's fit) reads "
            f"'{plan.text_column}' only{gaps}"
        ]
    counts = ", ".join(f"'{c}' {n:,}" for c, n in plan.missing.items())
    missing = (
        f"  missing      {counts} -> missing_features: keep (numbers imputed with training "
        f"means, a missing category encodes as all zeros)"
        if plan.missing_features == "keep"
        else "  missing      none in the features -> missing_features: drop"
    )
    return [missing, f"  model        an MLP ({TABULAR_FIT}, copied)"]


def describe(plan: Plan, files: list[str]) -> str:
    """What was inferred and why, in a few plain lines."""
    lines = [
        f"new-task: {plan.raw_file}: {plan.rows:,} rows, {len(plan.roles)} columns",
        f"  task         {plan.name} ({plan.name_reason}); env conf/{plan.env}/",
    ]
    if plan.read_options:
        lines.append(
            f"  file         {describe_options(plan.read_options)}: conf/{plan.env}/catalog.yml "
            f"reads it (and new rows to predict) so"
        )
    lines.append(f"  label        '{plan.label_column}' -> {plan.task_type}: {plan.type_reason}")
    unlabelled = plan.rows - plan.labelled_rows
    dropped = f"; {unlabelled:,} rows without a label are dropped" if unlabelled else ""
    if plan.labels:
        lines.append(
            f"  labels       {_short(plan.labels, 20)} ({len(plan.labels)} distinct values, "
            f"sorted{' by value' if plan.label_is_numeric else ''}{dropped})"
        )
    elif dropped:
        lines.append(f"  labels       none (regression){dropped}")
    lines += _column_lines(plan) + _model_lines(plan)
    lines += [f"  note         {n}" for n in plan.notes]
    lines += [
        f"wrote conf/{plan.env}/: {', '.join(files)}",
        f"next: edit package.intended_use and limitations in conf/{plan.env}/"
        f"parameters_package.yml (generated), then",
        f"  kedro run --pipelines=train --env={plan.env}",
        f"or with DVC: dvc add {plan.raw_file}, set params.yaml's dvc group to env: "
        f"{plan.env}, task: {plan.name}, raw_file: {plan.raw_file}, then dvc repro",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reprotrain new-task",
        description="Inspect a CSV or Parquet file and write conf/<env>/ for it, so that "
        "`kedro run --pipelines=train --env=<env>` trains and packages a model.",
    )
    parser.add_argument("file", help="the data file, e.g. data/01_raw/tickets.csv")
    parser.add_argument("--label", required=True, help="the column to predict")
    parser.add_argument("--text", help="the text column (when several look like text)")
    parser.add_argument("--id", dest="id_column", help="the column of unique row ids")
    parser.add_argument("--name", help="the task name (default: the file name)")
    parser.add_argument("--env", help="the conf/<env>/ folder to write (default: the task name)")
    parser.add_argument("--type", dest="task_type", choices=["classification", "regression"])
    parser.add_argument("--force", action="store_true", help="replace an existing conf/<env>/")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``new-task``; return the exit code (0, or 2 when it refuses)."""
    args = _parser().parse_args(argv)
    root = Path.cwd()
    conf = root / "conf"
    try:
        if not (conf / "base").is_dir():
            raise ScaffoldError(
                f"no conf/base in {root}: run new-task from the project's root folder (where "
                f"`kedro run` works)"
            )
        raw_file = project_relative(args.file, root)
        name = check_name(args.name, "task name") if args.name else None
        env = check_name(args.env or name or sanitise_name(Path(raw_file).stem), "env")
        if env in RESERVED_ENVS:
            raise ScaffoldError(f"conf/{env}/ belongs to the project: which other --env?")
        if (conf / env).exists() and not args.force:
            raise ScaffoldError(
                f"conf/{env}/ exists already: replace it (--force) or choose another --env?"
            )
        path = root / raw_file
        is_csv = path.is_file() and FORMATS.get(path.suffix.lower()) == "csv"
        options = read_options(path) if is_csv else None
        plan = infer_plan(
            read_table(path, options, literal=(args.label,)),
            label=args.label,
            raw_file=raw_file,
            name=name,
            env=env,
            text=args.text,
            id_column=args.id_column,
            task_type=args.task_type,
            base_task=task_group(conf / "base" / "globals.yml"),
            read_options=options,
        )
        files = render_files(plan, fit_file(plan, root), root)
        plan.notes.extend(
            f"conf/{other}/ names task '{plan.name}' too: both write data/*/{plan.name}/ "
            f"(--name to tell them apart)"
            for other in envs_naming(conf, plan.name, plan.env)
        )
        try:
            validate(files, root)
        except ValueError as err:
            sys.stderr.write(
                f"new-task: the generated configuration does not validate (a bug):\n{err}\n"
            )
            return 1
        write_env(conf, plan.env, files)
    except ScaffoldError as err:
        sys.stderr.write(f"new-task: {err}\n")
        return 2
    sys.stdout.write(describe(plan, list(files)))
    return 0
