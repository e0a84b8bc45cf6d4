"""`make bench`: run every benchmark and write docs/BENCHMARKS.md with machine and date.

Each benchmark module exposes ``run(**kw) -> dict`` and ``markdown(result) -> str``.
``--only NAME[,NAME…]`` runs the sections whose module name contains a NAME (the file is then
rewritten with those sections only; with ``--update`` the others are kept). Sections of the
file that no benchmark writes (notes, tables added by hand, the GPU rows) are kept where they
stood (:func:`arrange`), and so is the old text of every section that is rerun, under a title that
says so (:func:`keep_previous`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import subprocess
import time
from pathlib import Path

SECTIONS = [
    ("Recurrence plots: PIMC (torch, numba-fused |x_i - x_j|) vs pyts", "benchmarks.bench_recurrence", {}),
    ("Data path: read → indices → gap filling", "benchmarks.bench_datapath", {}),
    ("Map inference: peak memory 4096² vs 1024², pixels/s per stage", "benchmarks.bench_inference", {}),
    ("pimc classify: the code at 89cc375 vs this code, same model file", "benchmarks.bench_speedup", {}),
    ("A whole Sentinel-2 tile: pimc classify --workers 2, per-window costs, memory, projection", "benchmarks.bench_tile", {}),
    ("Map inference engine (numpy baseline, not PIMC)", "benchmarks.bench_inference",
     {"model": "builtin:nearest-centroid"}),
    ("Held-out fields: pimc fit + pimc classify vs RandomForest", "benchmarks.bench_heldout_map", {}),
    ("What a few labelled fields leave to win: a RandomForest on them vs on many fields", "benchmarks.bench_label_headroom",
     {}),
    ("Spatial cross-validation at fit time", "benchmarks.bench_spatial_cv", {}),
    ("The classifier's forest member: network alone, forest alone, mixes", "benchmarks.bench_forest_member", {}),
    ("Pixel-series table of the held-out benchmark's size: training series vs peers", "benchmarks.bench_series_table", {}),
    ("Real UCR tables (shipped in aeon's wheel): training series vs peers", "benchmarks.bench_ucr_real", {}),
    ("Where to label next: suggested points vs random pixels", "benchmarks.bench_suggest", {}),
]


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                # the same "AMD EPYC" name covers CPU generations with and without AVX-512, and the
                # vectorised kernels (numpy's sort, torch's sqrt) differ several-fold between them
                cpu += ", AVX-512" if " avx512f" in line else ", no AVX-512"
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def _sections(text: str) -> dict[str, str]:
    """'## title' → the section's text (title line included)."""
    out: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip()
        out[title] = "## " + chunk.rstrip()
    return out


def arrange(written: list[tuple[str, str]], old: dict[str, str], listed: set[str]) -> list[str]:
    """The file's sections in order: ``written`` (title, text) in the order of :data:`SECTIONS`,
    and every section of the old file that no benchmark writes (``old`` in file order, titles not
    in ``listed``: notes and tables added by hand, GPU rows) right after the listed section it
    followed there, so a rerun keeps them where they were; those that followed nothing written
    come first (after none) or last (after a section not written this time)."""
    after: dict[str | None, list[str]] = {}
    anchor = None
    for title, text in old.items():
        if title in listed:
            anchor = title
        else:
            after.setdefault(anchor, []).append(text)
    parts = after.pop(None, [])
    for title, text in written:
        parts += [text, *after.pop(title, [])]
    return parts + [text for texts in after.values() for text in texts]


def keep_previous(old: dict[str, str], rerun: set[str], when: str) -> dict[str, str]:
    """``old`` with each section of ``rerun`` also kept, right after itself, as
    ``## <title>: before the run of <when>`` (its text as it was), so that a rerun adds figures and
    never deletes a measurement or the notes written about it."""
    out: dict[str, str] = {}
    for title, text in old.items():
        out[title] = text
        if title in rerun:
            kept = f"{title}: before the run of {when}"
            out[kept] = f"## {kept}" + text[len(f"## {title}"):]
    return out


def _selected(only: str | None, mod_name: str) -> bool:
    """Whether ``--only`` (``None``: everything; else comma-separated parts of module names) picks ``mod_name``."""
    return only is None or any(part and part in mod_name for part in only.split(","))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/BENCHMARKS.md")
    ap.add_argument("--only", help="run only sections whose module name contains this (several: comma-separated)")
    ap.add_argument("--update", action="store_true",
                    help="with --only: replace those sections in the existing file, keep the others")
    a = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    parts = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks.run_all`) on {dt.date.today().isoformat()}, commit {commit or '?'}.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    out = Path(a.out)
    kept = _sections(out.read_text()) if a.update and out.exists() else {}
    if kept:  # the file's header stays true: it says when and from which commit each part was written
        ran = [title for title, mod_name, _ in SECTIONS if _selected(a.only, mod_name)]
        parts = out.read_text().split("\n## ", 1)[0].rstrip().splitlines() + [
            "",
            f"Updated on {dt.date.today().isoformat()}, commit {commit or '?'}, by `python -m benchmarks.run_all --only "
            f"{a.only} --update`: {'; '.join(ran)}.",
            "",
        ]
    written: list[tuple[str, str]] = []
    for title, mod_name, kw in SECTIONS:
        if not _selected(a.only, mod_name):
            if title in kept:
                written.append((title, kept[title]))
            continue
        mod = importlib.import_module(mod_name)
        t0 = time.perf_counter()
        print(f"[bench] {title} …", flush=True)
        res = mod.run(**kw)
        body = mod.markdown(res)
        print(body, flush=True)
        written.append((title, f"## {title}\n\n`python -m {mod_name}` ({time.perf_counter() - t0:.0f} s, "
                               f"{dt.datetime.now():%Y-%m-%d %H:%M})\n\n{body}"))
    # sections no benchmark here writes (notes, the GPU rows of benchmarks.gpu) stay, in their place;
    # a rerun section's old text (its tables and the notes written into it) stays too, right after it
    listed = {title for title, _, _ in SECTIONS}
    old = _sections(out.read_text()) if out.exists() else {}
    old = keep_previous(old, {title for title, text in written if old.get(title) not in (None, text)},
                        f"{dt.datetime.now():%Y-%m-%d %H:%M}")
    for text in arrange(written, old, listed):
        parts += [text, ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    print(f"[bench] wrote {out}")


if __name__ == "__main__":
    main()
