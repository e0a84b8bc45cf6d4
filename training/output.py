"""What the training commands write: progress lines on stderr, result files written whole.

Every file goes through :func:`pimc_core.io.atomic.atomic_path` (a temporary name beside the
target, renamed when complete), so an interrupted command leaves the previous file or none.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pimc_core.io.atomic import atomic_path

__all__ = ["keep_marked_sections", "log", "replace_section", "save_figure", "write_json", "write_section", "write_text"]


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


#: A section another command writes into a report: ``<!-- name: command -->`` … ``<!-- /name -->``.
_SECTION = re.compile(r"<!-- ([a-z0-9_-]+): [^\n]*? -->.*?<!-- /\1 -->", re.S)


def keep_marked_sections(old: Path, new_text: str) -> str:
    """``new_text`` keeping every marked section of the file ``old`` (the sections other commands
    wrote, e.g. ``python -m training.eurosat_compare`` or a benchmark's ``--results``): a section
    ``new_text`` also has is replaced in place by the old one, the others are appended in their
    old order."""
    text = old.read_text(encoding="utf-8") if old.is_file() else ""
    out = new_text
    for m in _SECTION.finditer(text):
        name, block = m.group(1), m.group(0)
        here = re.search(rf"<!-- {re.escape(name)}: [^\n]*? -->.*?<!-- /{re.escape(name)} -->", out, re.S)
        if here:
            out = out[:here.start()] + block + out[here.end():]
        else:
            out = out.rstrip("\n") + "\n\n" + block + "\n"
    return out


def replace_section(text: str, section: str, begin: str, end: str) -> str:
    """``text`` with its ``begin`` … ``end`` block replaced by ``section`` (appended when absent)."""
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end) + len(end)
        return text[:a] + section.rstrip("\n") + text[b:]
    return text.rstrip("\n") + "\n\n" + section


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the ``begin`` … ``end`` section of the report ``path`` by ``section`` (appended when
    absent; a new report when the file does not exist), written whole."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# PIMC — evaluation results\n"
    write_text(path, replace_section(old, section, begin, end))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (non-JSON values as strings)."""
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure as PNG (110 dpi, tight bounding box)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
