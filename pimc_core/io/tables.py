"""Loader for pixel-series tables in the UCR archive layout.

One row per series, no header: the class label first, then the values in date order. Fields
are separated by tabs (``.tsv``), commas (``.csv``) or — for other extensions — whatever the
first data line uses (tab, comma, semicolon or blanks, as in the old UCR ``.txt`` files).
Missing values are empty fields, ``NaN``/``nan``/``NA``/``?``; they come back as NaN (the
series classifier fills them). Infinite values (``inf``, ``-inf``, or numbers beyond float32's
range) are refused, naming the file, line and field: they are not "missing", and silently turning
them into gaps would hide a broken export.

Labels are kept as integers when every label is a whole number, as floats when they are
numeric, and as strings otherwise (e.g. ``wheat``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from pimc_core.errors import InputError
from pimc_core.io.atomic import atomic_path
from pimc_core.io.input_files import check_input_file, local_path

__all__ = ["load_series_table", "write_series_table"]

_MISSING = {"", "nan", "na", "n/a", "?", "null", "none", "-nan"}
_BLANKS = re.compile(r"[ \t]+")


def _delimiter_for(path: Path, first_line: str) -> str | None:
    """Delimiter of a table: by extension, else sniffed from the first data line.

    Returns ``None`` for runs of blanks (split on whitespace).
    """
    ext = path.suffix.lower()
    if ext == ".tsv":
        return "\t"
    if ext == ".csv":
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    if ";" in first_line:
        return ";"
    return None


def _parse_field(field: str) -> float:
    text = field.strip()
    if text.lower() in _MISSING:
        return float("nan")
    return float(text)


def load_series_table(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR-layout series table.

    Args:
        path: A ``.tsv``, ``.csv`` or whitespace/other-delimited text file.

    Returns:
        ``(X, y)``: ``X`` float32 of shape ``(N, T)`` with NaN for missing values, ``y`` of shape
        ``(N,)`` (int64, float64 or str labels).

    Raises:
        InputError: The file is missing or unreadable, empty, has rows of different lengths
            (ragged), a non-numeric or infinite value, a missing label, or rows without values;
            the message names the file and the line.
    """
    p = check_input_file(local_path(path, "series table"), "series table", missing=f"series table not found: {path}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read series table {p}: {exc}") from exc
    lines = text.splitlines()
    data_lines = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not data_lines:
        raise InputError(f"series table {p} is empty (no data rows)")
    delim = _delimiter_for(p, data_lines[0][1])

    labels: list[str] = []
    rows: list[np.ndarray] = []
    width: int | None = None
    first_line_no = 0
    for line_no, line in data_lines:
        line = line.rstrip("\r\n")
        if delim is None:
            parts = _BLANKS.split(line.strip())
        else:
            parts = line.split(delim)
            if delim != "\t":
                parts = [s.strip() for s in parts]
            else:
                # tolerate trailing blanks, not trailing tabs (those are empty = missing fields)
                parts[-1] = parts[-1].rstrip(" ")
        if width is None:
            width, first_line_no = len(parts), line_no
            if width < 2:
                raise InputError(
                    f"{p}, line {line_no}: a row needs a label and at least one value; found {width} field"
                )
        elif len(parts) != width:
            raise InputError(
                f"{p}, line {line_no}: ragged row with {len(parts)} fields, but line {first_line_no} has "
                f"{width} (label + {width - 1} values); pad missing values with NaN or empty fields"
            )
        label = parts[0].strip()
        if label.lower() in _MISSING:
            raise InputError(f"{p}, line {line_no}: missing class label (first field)")
        labels.append(label)
        values = parts[1:]
        try:
            row = np.array(values, dtype=np.float64)
        except ValueError:
            row = np.empty(len(values), dtype=np.float64)
            for j, field in enumerate(values):
                try:
                    row[j] = _parse_field(field)
                except ValueError:
                    raise InputError(
                        f"{p}, line {line_no}, field {j + 2}: non-numeric value {field.strip()[:40]!r}"
                    ) from None
        _check_finite(row, values, p, line_no)
        rows.append(row)

    X = np.vstack(rows).astype(np.float32)
    return X, _parse_labels(labels)


def _check_finite(row: np.ndarray, fields: list[str], path: Path, line_no: int) -> None:
    """Refuse ``±inf`` in a parsed row ``(T,)``, and values that become infinite in float32."""
    with np.errstate(over="ignore"):
        bad = np.flatnonzero(np.isinf(row.astype(np.float32)))
    if bad.size:
        j = int(bad[0])
        why = "infinite value" if np.isinf(row[j]) else "value beyond the float32 range"
        raise InputError(
            f"{path}, line {line_no}, field {j + 2}: {why} {fields[j].strip()[:40]!r} "
            "(a missing value is an empty field or NaN)"
        )


def _parse_labels(labels: list[str]) -> np.ndarray:
    try:
        num = np.array([float(s) for s in labels], dtype=np.float64)
    except ValueError:
        return np.array(labels, dtype=str)
    if np.all(np.isfinite(num)) and np.all(num == np.round(num)):
        return num.astype(np.int64)
    return num


def write_series_table(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray) -> None:
    """Write ``(X, y)`` in UCR layout (tab- or comma-separated by extension; NaN → ``NaN``).

    Args:
        path: Output ``.tsv`` (default) or ``.csv``.
        X: ``(N, T)`` values.
        y: ``(N,)`` labels.
    """
    p = Path(path)
    delim = "," if p.suffix.lower() == ".csv" else "\t"
    X = np.asarray(X, dtype=np.float64)
    with atomic_path(p) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for label, row in zip(np.asarray(y).tolist(), X):
            fh.write(delim.join([str(label)] + ["NaN" if not np.isfinite(v) else repr(float(v)) for v in row]) + "\n")
