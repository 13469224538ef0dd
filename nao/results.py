"""Reading results files: architectures (in a space's text form) with their measured scores.

Formats, chosen by the file name:

* ``.csv``: a header with a column ``arch`` and one or more numeric metric columns;
* ``.jsonl``: one JSON object per line with the same keys;
* anything else: the reference code's ``arch_pool`` (one arch per line) with a sibling
  ``arch_pool.perf`` (one number per line), read as the metric ``perf``.

Every problem raises :class:`ResultsFileError` with one line ``FILE:LINE: what is wrong``, the line
numbered as in an editor (the CSV header is line 1), so the CLI can print it as is.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nao.errors import ArchError, ResultsFileError
from nao.spaces.base import Arch, SearchSpace

POOL_METRIC = "perf"


@dataclass(frozen=True, eq=False)
class Results:
    """Archs and their scores from one results file (duplicates merged, file order kept)."""

    archs: list[Arch]
    scores: np.ndarray  # (N,) float64
    metric: str
    path: Path
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other columns asked for, (N,) each


@dataclass(frozen=True)
class _Table:
    """The rows of a CSV or JSON Lines file, each with the line it starts on."""

    columns: list[str]
    first_line: int  # the header's line (CSV) or the first row's line (JSON Lines)
    rows: list[tuple[int, dict[str, object]]]


def load_results(path: str | Path, space: SearchSpace, *, metric: str | None = None,
                 extra: Sequence[str] = ()) -> Results:
    """Archs and scores from a ``.csv``, ``.jsonl`` or ``arch_pool`` + ``.perf`` file.

    ``metric`` names the score column; ``None`` picks the only numeric column besides ``arch``.
    An arch listed twice with the same score is kept once (the first); with different scores it is
    an error. Archs that differ but share ``space.canonical`` are all kept: benchmark tables list
    such equivalent cells separately, each with its own measured score. ``extra`` names more
    numeric columns to read (e.g. a metric that is reported but not searched on).
    """
    path = Path(path)
    if _is_table(path):
        table = _read_table(path)
        column = _pick_metric(path, table, metric)
        extra_columns = [_pick_metric(path, table, name) for name in extra]
        entries = [
            (line, _parse_arch(path, line, row.get("arch"), space), _to_score(path, line, column, row))
            for line, row in table.rows
        ]
        extras = {name: np.array([_to_score(path, line, name, row) for line, row in table.rows])
                  for name in extra_columns}
    else:
        if not path.exists():
            raise ResultsFileError(f"{path}: no such file")
        if extra:
            raise ResultsFileError(f"{path}: an arch pool has a single metric; no column {extra[0]!r}")
        column = POOL_METRIC
        entries = _read_pool(path, space, metric)
        extras = {}
    kept = _merge_duplicates(path, entries, column)
    return Results(archs=[entries[i][1] for i in kept],
                   scores=np.array([entries[i][2] for i in kept], dtype=np.float64), metric=column, path=path,
                   extra={name: values[kept] for name, values in extras.items()})


def load_archs(path: str | Path, space: SearchSpace) -> list[Arch]:
    """Archs to score: a results file's ``arch`` column, or a text file with one arch per line.

    Blank lines are skipped; duplicates are kept, so the output has one row per input row.
    """
    path = Path(path)
    if _is_table(path):
        return [_parse_arch(path, line, row.get("arch"), space) for line, row in _read_table(path).rows]
    return [_parse_arch(path, n, text, space) for n, text in enumerate(_read_lines(path), 1) if text.strip()]


def _is_table(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".jsonl")


def _read_text(path: Path) -> str:
    """The whole file (universal newlines, a UTF-8 byte-order mark dropped); empty is an error."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a directory, not a results file") from None
    except UnicodeDecodeError:
        raise ResultsFileError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ResultsFileError(f"{path}: cannot read ({e.strerror})") from None
    if not text.strip():
        raise ResultsFileError(f"{path}: file is empty")
    return text


def _read_lines(path: Path) -> list[str]:
    """The file's lines, without a final empty line after the last newline."""
    lines = _read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _read_table(path: Path) -> _Table:
    text = _read_text(path)
    table = _read_jsonl(path, text) if path.suffix.lower() == ".jsonl" else _read_csv(path, text)
    if not table.rows:
        raise ResultsFileError(f"{path}:{table.first_line}: a header but no data rows")
    if "arch" not in table.columns:
        where = "column" if path.suffix.lower() == ".csv" else "key"
        raise ResultsFileError(
            f"{path}:{table.first_line}: no {where} 'arch' (found: {', '.join(table.columns) or 'none'})"
        )
    return table


def _read_csv(path: Path, text: str) -> _Table:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, dict[str, object]]] = []
    line = 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                if header is None:
                    header, header_line = [f.strip() for f in fields], line
                    _check_header(path, line, header)
                else:
                    if len(fields) != len(header):
                        hint = " (quote arch text that contains commas)" if len(fields) > len(header) else ""
                        raise ResultsFileError(
                            f"{path}:{line}: {len(fields)} fields, the header has {len(header)}{hint}"
                        )
                    rows.append((line, dict(zip(header, fields, strict=True))))
            line = reader.line_num + 1  # a quoted field may span several lines
    except csv.Error as e:
        raise ResultsFileError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    if header is None:
        raise ResultsFileError(f"{path}: no header (expected a line like 'arch,accuracy')")
    return _Table(columns=header, first_line=header_line, rows=rows)


def _check_header(path: Path, line: int, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ResultsFileError(f"{path}:{line}: column {name!r} appears twice in the header")
        seen.add(name)


def _read_jsonl(path: Path, text: str) -> _Table:
    columns: dict[str, None] = {}  # ordered set of keys, in order of first appearance
    rows: list[tuple[int, dict[str, object]]] = []
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ResultsFileError(f"{path}:{line}: invalid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(row, dict):
            raise ResultsFileError(f"{path}:{line}: expected a JSON object, got {type(row).__name__}")
        columns.update(dict.fromkeys(row))
        rows.append((line, row))
    return _Table(columns=list(columns), first_line=rows[0][0], rows=rows)


def _pick_metric(path: Path, table: _Table, metric: str | None) -> str:
    """The score column: ``metric`` if given, else the only numeric column besides ``arch``."""
    others = [c for c in table.columns if c != "arch"]
    where = f"{path}:{table.first_line}"
    found = ", ".join(others) or "none"
    if metric is not None:
        if metric not in others:
            raise ResultsFileError(f"{where}: no metric column {metric!r} (available: {found})")
        return metric
    numeric = [c for c in others if any(_looks_numeric(row.get(c)) for _, row in table.rows)]
    if not numeric:
        raise ResultsFileError(f"{where}: no numeric column besides 'arch' (found: {found})")
    if len(numeric) > 1:
        raise ResultsFileError(
            f"{where}: several numeric columns ({', '.join(numeric)}); choose one with --metric"
        )
    return numeric[0]


def _looks_numeric(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str) and value.strip():
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _to_score(path: Path, line: int, column: str, row: dict[str, object]) -> float:
    """The row's value in ``column`` as a finite float."""
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ResultsFileError(f"{path}:{line}: no value for {column!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ResultsFileError(f"{path}:{line}: {column!r} is not a number: {json.dumps(value)}")
    try:
        score = float(value)
    except (ValueError, OverflowError):
        raise ResultsFileError(f"{path}:{line}: {column!r} is not a number: {value!r}") from None
    if not math.isfinite(score):
        raise ResultsFileError(f"{path}:{line}: {column!r} is {value!r}; NaN and infinity are not allowed")
    return score


def _parse_arch(path: Path, line: int, text: object, space: SearchSpace) -> Arch:
    if not isinstance(text, str):
        got = "nothing" if text is None else json.dumps(text)
        raise ResultsFileError(f"{path}:{line}: 'arch' must be a {space.name} arch in text form, got {got}")
    if not text.strip():
        raise ResultsFileError(f"{path}:{line}: empty arch text")
    try:
        return space.parse(text.strip())
    except ArchError as e:
        raise ResultsFileError(f"{path}:{line}: unknown arch text {text.strip()!r} ({e})") from None


def _read_pool(path: Path, space: SearchSpace, metric: str | None) -> list[tuple[int, Arch, float]]:
    """``(line, arch, score)`` from an ``arch_pool`` file and its sibling ``.perf`` file."""
    perf_path = path.with_name(path.name + ".perf")
    if metric not in (None, POOL_METRIC):
        raise ResultsFileError(
            f"{path}: an arch pool with a .perf file has one metric, {POOL_METRIC!r}; got {metric!r}"
        )
    archs = _read_lines(path)
    if not perf_path.exists():
        raise ResultsFileError(
            f"{path}: not a .csv or .jsonl results file, and no {perf_path.name} beside it for an arch pool"
        )
    perfs = _read_lines(perf_path)
    if len(perfs) < len(archs):
        raise ResultsFileError(
            f"{path}:{len(perfs) + 1}: no matching line in {perf_path.name} "
            f"({len(archs)} archs but {len(perfs)} values)"
        )
    if len(perfs) > len(archs):
        raise ResultsFileError(
            f"{perf_path}:{len(archs) + 1}: no matching line in {path.name} "
            f"({len(perfs)} values but {len(archs)} archs)"
        )
    entries = []
    for line, (text, value) in enumerate(zip(archs, perfs, strict=True), 1):
        arch = _parse_arch(path, line, text, space)
        entries.append((line, arch, _to_score(perf_path, line, POOL_METRIC, {POOL_METRIC: value})))
    return entries


def _merge_duplicates(path: Path, entries: Sequence[tuple[int, Arch, float]], metric: str) -> list[int]:
    """Indices of the entries to keep: repeated archs with the same score are dropped, conflicting
    scores are an error naming both lines."""
    first: dict[Arch, tuple[int, float]] = {}
    kept: list[int] = []
    for index, (line, arch, score) in enumerate(entries):
        if arch in first:
            first_line, first_score = first[arch]
            if score != first_score:
                raise ResultsFileError(
                    f"{path}:{line}: same arch as line {first_line} but a different {metric} "
                    f"({score!r} here, {first_score!r} on line {first_line})"
                )
            continue
        first[arch] = (line, score)
        kept.append(index)
    return kept
