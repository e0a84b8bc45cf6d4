"""Peers from the published implementations, run from the project's venv.

aeon's MiniRocket and MultiRocket run in a separate virtualenv (``make peers`` builds
``.venv-peers``; see :mod:`benchmarks.aeon_peers` for why it is separate). This module finds
that interpreter, runs the peers on a UCR-layout split in a subprocess, and locates the real UCR
tables that aeon's wheel ships (``aeon/datasets/data``), converting them from aeon's ``.ts``
format to the UCR TSV layout that ``python -m training series`` reads.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peers_python() -> Path | None:
    """The peers venv's interpreter (``$PIMC_PEERS_PYTHON`` or ``.venv-peers/bin/python``), if it exists."""
    p = Path(os.environ.get("PIMC_PEERS_PYTHON", REPO / ".venv-peers" / "bin" / "python"))
    return p if p.exists() else None


def aeon_scores(train: Path, test: Path, seed: int = 0) -> dict | str:
    """``{"minirocket": {...}, "multirocket": {...}}`` (accuracy, macro_f1, seconds) on the
    split, or a string saying why the peers could not run."""
    py = peers_python()
    if py is None:
        return "peers venv missing (make peers)"
    proc = subprocess.run([str(py), str(REPO / "benchmarks" / "aeon_peers.py"), str(train), str(test), "--seed", str(seed)],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        return f"aeon peers failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def aeon_data_dir() -> Path | None:
    """``aeon/datasets/data`` inside the peers venv, if installed."""
    hits = sorted((REPO / ".venv-peers").glob("lib/python*/site-packages/aeon/datasets/data"))
    return hits[0] if hits else None


def ts_to_tsv(src: Path, dst: Path) -> tuple[int, int]:
    """Convert a univariate aeon ``.ts`` file (``@`` header lines, then ``v,v,…:label`` rows;
    ``?`` missing) to a UCR TSV (label, then the values; NaN pads shorter series).

    Returns:
        ``(rows, length)``.
    """
    rows: list[tuple[str, list[float]]] = []
    in_data = False
    for line in src.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if not in_data:
            continue
        *dims, label = line.split(":")
        if len(dims) != 1:
            raise ValueError(f"{src}: a multivariate row ({len(dims)} dimensions); only univariate tables convert")
        rows.append((label, [math.nan if v in ("?", "NaN") else float(v) for v in dims[0].split(",")]))
    length = max(len(v) for _, v in rows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8") as f:
        for label, v in rows:
            v = v + [math.nan] * (length - len(v))
            f.write(label + "\t" + "\t".join("NaN" if math.isnan(x) else repr(x) for x in v) + "\n")
    return len(rows), length
