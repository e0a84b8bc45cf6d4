"""Benchmark: ``pimc classify`` of the code at commit 89cc375 against this code, side by side in
one run, on the same stack with the same model file: pixels per second of each, their ratio and
how many pixels of the class maps agree.

``python -m benchmarks.bench_speedup`` (defaults: a 1024² × 30-date synthetic stack, the model
fitted by 89cc375's ``pimc fit`` on a 256² × 30-date stack; the new code as ``pimc classify`` runs by
default and with ``--engine onnx``).
Small check: ``python -m benchmarks.bench_speedup --size 128 --fit-size 64``.

* **Old code**: ``git archive <ref>`` of this repository into a temporary folder, imported
  through ``PYTHONPATH`` by its own ``pimc`` command line (the same interpreter and packages).
* **Stack**: synthetic Sentinel-2-like (``pimc sample-data --size S --dates 30 --seed 3``), made
  once under ``bench_out/speedup/``; the model's stack is made by the old code with the same seed
  (same dates), so an ``observed``-dates model applies to both.
* **Model** (``--model``): a ``.pimc`` file; default: fitted once by the old code's ``pimc fit``
  (default architecture, shortened training as in :mod:`benchmarks.bench_inference`: speed
  depends on the architecture, not on how long it trained), cached.
* **Runs**: each command is a fresh process, ``pimc classify STACK --model M --out DIR --quiet
  --device cpu`` (classes, confidence, uncertainty), timed from start to exit (imports, model
  loading and the COG conversion included: what an analyst waits for); the px/s of the library's
  own summary line (the map run alone) is reported too. With ``--repeats R`` the commands run
  old, new, … R times interleaved and the medians are reported (absolute times on a shared
  machine drift; the ratio of neighbouring runs is what counts).
* **Agreement**: fraction of the pixels either map classifies (class ≠ 0) with the same class,
  and of all pixels of the map.
* **Load**: the 1-minute load average before and after each command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OLD_REF = "89cc375"
FIT_CONFIG = """data: {pretrain_samples: 4096, per_class: 300}
pretrain: {steps: 30, warmup_steps: 3, checkpoint_every: 0}
finetune: {max_steps: 40, warmup_steps: 4}
forecast: {finetune: {epochs: 2}}
"""
_CLI = "import sys; from pimc_core.cli import main; sys.exit(main(sys.argv[1:]))"
_SUMMARY = re.compile(r"(\d+) pixels \((\d+) predicted\) in ([\d.]+) s, (\d+) pixels/s")


def _pimc(tree: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``pimc ARGS`` with the code of ``tree``; (seconds, stdout). Raises on failure."""
    e = dict(os.environ, PYTHONPATH=str(tree), **(env or {}))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _CLI, *args], env=e, capture_output=True, text=True, cwd=str(tree))
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"pimc {' '.join(args[:1])} ({tree}) failed: {(p.stderr or p.stdout).strip()[-600:]}")
    return dt, p.stdout


def old_tree(ref: str, dest: Path) -> Path:
    """``git archive ref`` of this repository unpacked into ``dest`` (once)."""
    if (dest / "pimc_core").is_dir():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    arch = subprocess.run(["git", "-C", str(REPO), "archive", ref, "pimc_core"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


def _stack(tree: Path, root: Path, size: int, dates: int) -> Path:
    folder = root / f"stack_{size}_{dates}"
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        if folder.exists():
            shutil.rmtree(folder)
        _pimc(tree, ["sample-data", str(folder), "--size", str(size), "--dates", str(dates), "--seed", "3"])
    return manifest


def _fitted(old: Path, root: Path, fit_size: int, dates: int) -> tuple[Path, float | None]:
    """The model the old code's ``pimc fit`` writes on a ``fit_size``² stack (cached)."""
    path = root / f"model_{OLD_REF}_{fit_size}_{dates}.pimc"
    if path.exists():
        return path, None
    manifest = _stack(old, root / "old_stacks", fit_size, dates)
    cfg = root / "fit_config.yaml"
    cfg.write_text(FIT_CONFIG)
    folder = manifest.parent
    secs, _ = _pimc(old, ["fit", str(manifest), "--labels", str(folder / "labels.tif"), "--classes",
                          str(folder / "classes.json"), "--out", str(path), "--config", str(cfg), "--quiet"])
    return path, secs


def _classes(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _classify(tree: Path, manifest: Path, model: Path, out: Path, engine: str | None, threads: int) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    args = ["classify", str(manifest), "--model", str(model), "--out", str(out), "--quiet", "--device", "cpu"]
    if engine:
        args += ["--engine", engine]
    env = {"OMP_NUM_THREADS": str(threads)} if threads else None
    before = _load()
    secs, stdout = _pimc(tree, args, env)
    m = _SUMMARY.search(stdout)
    return {"seconds": round(secs, 2), "pixels": int(m.group(1)) if m else None,
            "run_px_s": int(m.group(4)) if m else None, "load_before": before, "load_after": _load(),
            "line": stdout.strip().splitlines()[-1] if stdout.strip() else ""}


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])


def run(size: int = 1024, dates: int = 30, fit_size: int = 256, model: str | None = None, repeats: int = 1,
        engines: str = "default,onnx", old_ref: str = OLD_REF, root: str = "bench_out/speedup", threads: int = 0,
        old_code: str | None = None) -> dict:
    """Run the side-by-side benchmark; a JSON-able dict (see the module docstring)."""

    from benchmarks.run_all import machine

    t_start = time.time()
    root_p = (REPO / root).resolve() if not Path(root).is_absolute() else Path(root)
    root_p.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pimc_old_") as tmp:
        old = Path(old_code).resolve() if old_code else old_tree(old_ref, Path(tmp) / "old")
        model_path, fit_s = (Path(model).resolve(), None) if model else _fitted(old, root_p, fit_size, dates)
        manifest = _stack(REPO, root_p, size, dates)
        kinds = [("old", old, None)] + [(f"new-{e}", REPO, None if e == "default" else e)
                                         for e in engines.split(",") if e]
        runs: dict[str, list[dict]] = {k: [] for k, _, _ in kinds}
        for r in range(int(repeats)):
            for kind, tree, engine in kinds:
                runs[kind].append(_classify(tree, manifest, model_path, root_p / "maps" / kind, engine, threads))
        old_cls = _classes(root_p / "maps" / "old" / "classes.tif")
        rows = {}
        for kind, _, _ in kinds:
            cls = _classes(root_p / "maps" / kind / "classes.tif")
            either = (cls > 0) | (old_cls > 0)
            secs = _median([x["seconds"] for x in runs[kind]])
            rows[kind] = {
                "runs": runs[kind], "seconds": secs, "px_s": round(size * size / secs, 1),
                "run_px_s": _median([x["run_px_s"] or 0 for x in runs[kind]]),
                "agree_classified": float((cls[either] == old_cls[either]).mean()) if either.any() else 1.0,
                "agree_all": float((cls == old_cls).mean()),
            }
    base = rows["old"]
    for kind, row in rows.items():
        row["ratio"] = round(row["px_s"] / base["px_s"], 2)
        row["run_ratio"] = round(row["run_px_s"] / base["run_px_s"], 2) if base["run_px_s"] else None
    loads = [x[k] for rs in runs.values() for x in rs for k in ("load_before", "load_after")]
    return {"size": size, "dates": dates, "model": str(model_path), "fit_seconds": fit_s, "old_ref": old_ref,
            "repeats": int(repeats), "rows": rows, "load_min": min(loads), "load_max": max(loads),
            "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": round(time.time() - t_start, 1), "threads": threads}


def markdown(res: dict) -> str:
    """The docs/BENCHMARKS.md section body."""
    lines = [f"Run {res['date']} ({res['seconds']:.0f} s); {res['machine']}.", "",
             f"`pimc classify` of a synthetic {res['size']}×{res['size']} px × {res['dates']}-date stack (classes, "
             f"confidence, uncertainty; `--device cpu`), the code at commit {res['old_ref']} against this code, same "
             f"model file (`{Path(res['model']).name}`, written by {res['old_ref']}'s `pimc fit`), each command a fresh "
             f"process, {res['repeats']} run(s) each, interleaved (medians). Load average (1 min) during the runs: "
             f"{res['load_min']}–{res['load_max']} on {os.cpu_count()} cores.", "",
             "| code | engine | seconds (whole command) | pixels/s | × 89cc375 | map run px/s (summary line) | "
             "classes equal (classified px) | classes equal (all px) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for kind, row in res["rows"].items():
        code, engine = ("89cc375", "—") if kind == "old" else ("this", kind.split("-", 1)[1])
        engine = "default (torch)" if engine == "default" else f"`--engine {engine}`" if code == "this" else engine
        lines.append(f"| {code} | {engine} | {row['seconds']:.1f} | {row['px_s']:,.0f} | **{row['ratio']:.2f}×** | "
                     f"{row['run_px_s']:,.0f} | {100 * row['agree_classified']:.2f} % | {100 * row['agree_all']:.2f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--fit-size", type=int, default=256)
    ap.add_argument("--model", help="a .pimc file (default: fitted by the old code, cached)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--engines", default="default,onnx",
                    help="--engine values of the new code's runs, comma-separated (default: no --engine flag)")
    ap.add_argument("--old-ref", default=OLD_REF)
    ap.add_argument("--root", default="bench_out/speedup")
    ap.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of every command (0: unset)")
    ap.add_argument("--old-code", help="a checkout of the old code to use instead of git archive --old-ref")
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args(argv)
    res = run(a.size, a.dates, a.fit_size, a.model, a.repeats, a.engines, a.old_ref, a.root, a.threads, a.old_code)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    print(markdown(res))


if __name__ == "__main__":
    main()
