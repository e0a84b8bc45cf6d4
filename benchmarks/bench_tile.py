"""Benchmark: a whole Sentinel-2 tile. One measured run of ``pimc classify --workers N`` on a
generated stack (default 4096² px), per-window costs, the peak memory of the client and of each
Dask worker, and a projection for a 10980² px × 36-date tile on 1, 2, 8 and 32 workers.

``python -m benchmarks.bench_tile`` (defaults: a 4096² × 12-date synthetic stack, 2 workers).
Small check: ``python -m benchmarks.bench_tile --size 512 --scale-size 256``.

* **Stacks**: synthetic Sentinel-2-like (``pimc sample-data --size S --dates D --seed 3``), made
  once under ``bench_out/tile/`` (a 4096² × 12-date stack: 1.5 GB on disk, generation under
  0.5 GB of memory).
* **Models**: one per dates count, written by ``pimc fit`` on a 256² stack of the same seed
  (same dates), default architecture, shortened training as in :mod:`benchmarks.bench_speedup`
  (speed depends on the architecture, not on how long it trained); cached. ``--model`` gives one
  model for every run instead (e.g. ``builtin:nearest-centroid``, which fits any dates count).
* **Runs**: each a fresh process, ``pimc classify STACK --model M --out DIR --quiet --device cpu
  [--workers N]`` (classes, confidence, uncertainty), timed from start to exit. The command is
  the library's own command line; the process prints one extra line with the run's
  :class:`~pimc_core.maps.run.InferenceResult` stages (seconds in ``read``, ``indices`` (indices
  and gap filling), ``predict``, ``write``, ``finalize``; with Dask the first three are summed over
  the workers) so per-window costs come from the run itself.
* **Memory**: psutil samples the resident set size (RSS) of the command's process tree every
  0.5 s: the client (the command's process, which alone writes the GeoTIFFs) and each Dask worker
  process (``multiprocessing`` spawn children); the peak of each and of their sum.
* **Cost against dates**: two in-process runs of a ``--scale-size``² stack at ``--scale-dates``
  (default 12 and 30) give the worker-seconds per pixel at each; the exponent
  ``p = log(c2 / c1) / log(d2 / d1)`` scales the measured run's per-pixel cost to 36 dates
  (rather than assuming it linear). A third run of the small stack with the same workers gives
  the worker peaks on a raster 64× smaller.
* **Projection** (:func:`project`): worker-seconds of the tile = per-pixel cost at 36 dates ×
  10980² px; on N workers (one core each, this CPU, as fast as in the measured run) the window
  compute takes ``worker_seconds / N``; the client writes the windows as they come back, so a
  run takes the longer of that and the client's writing time, plus the COG finalisation (scaled
  by pixels) and the fixed start (imports, cluster start). One GPU: not measured here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TILE = 10980
TILE_DATES = 36
BLOCK = 256
WORKERS = (1, 2, 8, 32)
SEED = 3
FIT_SIZE = 256
FIT_CONFIG = """data: {pretrain_samples: 4096, per_class: 300}
pretrain: {steps: 30, warmup_steps: 3, checkpoint_every: 0}
finetune: {max_steps: 40, warmup_steps: 4}
forecast: {finetune: {epochs: 2}}
"""
COMPUTE = ("read", "indices", "predict")
# ``pimc classify`` as the console script runs it, plus one line with the run's stage seconds
_CLI = """import json, sys
from pimc_core.maps import run as _run
_summary = _run.InferenceResult.summary
def summary(self):
    facts = {"stages": self.stages, "windows": self.windows, "workers": self.workers, "run_seconds": self.seconds,
             "pixels": self.pixels, "predicted": self.predicted, "device": self.device}
    return _summary(self) + "\\nPIMC_RUN " + json.dumps(facts)
_run.InferenceResult.summary = summary
from pimc_core.cli import main
sys.exit(main(sys.argv[1:]))
"""
MIB = 1024 * 1024


def _pimc(args: list[str]) -> str:
    """Run ``pimc ARGS`` (this checkout) and return its stdout; raises on failure."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-c", "import sys; from pimc_core.cli import main; sys.exit(main(sys.argv[1:]))",
                        *args], env=env, capture_output=True, text=True, cwd=str(REPO))
    if p.returncode != 0:
        raise RuntimeError(f"pimc {args[0]} failed: {(p.stderr or p.stdout).strip()[-600:]}")
    return p.stdout


def stack(root: Path, size: int, dates: int) -> Path:
    """The manifest of a ``size``² × ``dates`` synthetic stack under ``root`` (made once)."""
    folder = root / f"stack_{size}_{dates}"
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        if folder.exists():
            shutil.rmtree(folder)
        _pimc(["sample-data", str(folder), "--kind", "synthetic", "--size", str(size), "--dates", str(dates),
               "--seed", str(SEED)])
    return manifest


def fitted(root: Path, dates: int) -> Path:
    """A model for ``dates``-date stacks, fitted by ``pimc fit`` on a 256² stack (cached)."""
    path = root / f"model_{FIT_SIZE}_{dates}.pimc"
    if path.exists():
        return path
    folder = stack(root, FIT_SIZE, dates).parent
    cfg = root / "fit_config.yaml"
    cfg.write_text(FIT_CONFIG)
    _pimc(["fit", str(folder / "manifest.yaml"), "--labels", str(folder / "labels.tif"), "--classes",
           str(folder / "classes.json"), "--out", str(path), "--config", str(cfg), "--quiet"])
    return path


class TreeMemory:
    """Peak RSS of a process and its descendants, sampled every ``interval`` seconds (a thread)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.total_peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _role(self, proc) -> str:
        if proc.pid == self.root.pid:
            return "client"
        cmd = " ".join(proc.cmdline())
        return "worker" if "spawn_main" in cmd else "other"

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                if self.roles.get(proc.pid, "other") == "other":  # a process seen while it starts may
                    self.roles[proc.pid] = self._role(proc)     # not show spawn_main yet: look again
            except psutil.Error:
                continue
            total += rss
            self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
        self.total_peak = max(self.total_peak, total)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def result(self) -> dict[str, Any]:
        """Peaks in MiB: ``client``, ``workers`` (one per worker process), ``tree`` (their sum's peak)."""
        workers = sorted(round(v / MIB, 1) for p, v in self.peaks.items() if self.roles.get(p) == "worker")
        client = next((v for p, v in self.peaks.items() if self.roles.get(p) == "client"), 0)
        return {"client_mib": round(client / MIB, 1), "workers_mib": workers, "tree_mib": round(self.total_peak / MIB, 1),
                "samples": self.samples}


def classify(manifest: Path, model: str, out: Path, workers: int | None) -> dict[str, Any]:
    """One ``pimc classify`` command, timed, its memory sampled; the run's stages and summary."""
    if out.exists():
        shutil.rmtree(out)
    args = ["classify", str(manifest), "--model", model, "--out", str(out), "--quiet", "--device", "cpu"]
    if workers:
        args += ["--workers", str(workers)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    load_before = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CLI, *args], env=env, cwd=str(REPO), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with TreeMemory(proc.pid) as mem:
        stdout, stderr = proc.communicate()
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"pimc classify failed: {(stderr or stdout).strip()[-600:]}")
    lines = stdout.strip().splitlines()
    facts = json.loads(next(ln for ln in lines if ln.startswith("PIMC_RUN "))[len("PIMC_RUN "):])
    summary = next((ln for ln in lines if " pixels/s" in ln), "")
    return {"command": "pimc " + " ".join(args), "seconds": round(secs, 2), "load_before": load_before,
            "load_after": round(os.getloadavg()[0], 2), "memory": mem.result(), "summary": summary, **facts}


def per_pixel(run: dict[str, Any]) -> dict[str, float]:
    """Seconds per pixel of each stage (compute stages: worker-seconds) and ``compute`` (their sum)."""
    px = max(1, int(run["pixels"]))
    out = {k: float(v) / px for k, v in run["stages"].items()}
    out["compute"] = sum(out.get(k, 0.0) for k in COMPUTE)
    return out


def date_exponent(c1: float, c2: float, d1: int, d2: int) -> float:
    """``p`` with ``c2 / c1 = (d2 / d1) ** p`` (cost against dates, from two measured points)."""
    if c1 <= 0 or c2 <= 0 or d1 == d2:
        raise ValueError(f"need two positive costs at two dates counts (got {c1}, {c2} at {d1}, {d2})")
    return math.log(c2 / c1) / math.log(d2 / d1)


def project(compute_px: float, write_px: float, finalize_px: float, start_s: float, exponent: float,
            dates: int, *, size: int = TILE, to_dates: int = TILE_DATES, block: int = BLOCK,
            workers: tuple[int, ...] = WORKERS) -> dict[str, Any]:
    """Time of a ``size``² × ``to_dates`` map from per-pixel costs measured at ``dates`` dates.

    ``compute_px``: worker-seconds per pixel (read + indices + predict), scaled by
    ``(to_dates / dates) ** exponent``; ``write_px``, ``finalize_px``: client seconds per pixel
    (not scaled: the outputs do not grow with dates); ``start_s``: fixed seconds per command.
    Returns windows, the worker-seconds, and per N workers the seconds and whether the client's
    writing bounds it.
    """
    pixels = size * size
    scale = (to_dates / dates) ** exponent
    worker_s = compute_px * scale * pixels
    write_s = write_px * pixels
    fin_s = finalize_px * pixels
    rows = []
    for n in workers:
        body = max(worker_s / n, write_s)
        rows.append({"workers": n, "seconds": start_s + body + fin_s, "client_bound": write_s >= worker_s / n})
    side = math.ceil(size / block)
    return {"size": size, "dates": to_dates, "pixels": pixels, "windows": side * side, "block": block,
            "date_scale": scale, "worker_seconds": worker_s, "window_seconds": compute_px * scale * block * block,
            "write_seconds": write_s, "finalize_seconds": fin_s, "start_seconds": start_s, "rows": rows}


def run(size: int = 4096, dates: int = 12, workers: int = 2, scale_size: int = 512,
        scale_dates: tuple[int, int] = (12, 30), model: str | None = None, root: str = "bench_out/tile") -> dict:
    """Generate/reuse the stacks, run the commands, project the tile; a JSON-able dict."""
    from benchmarks.run_all import machine

    t_start = time.time()
    root_p = Path(root) if Path(root).is_absolute() else REPO / root
    root_p.mkdir(parents=True, exist_ok=True)

    def model_for(d: int) -> str:
        return model or str(fitted(root_p, d))

    scale = {}  # the small runs first: a few minutes, whatever the measured size
    for d in scale_dates:
        scale[d] = classify(stack(root_p, scale_size, d), model_for(d), root_p / "maps" / f"{scale_size}_{d}", None)
    small_w = classify(stack(root_p, scale_size, dates), model_for(dates),
                       root_p / "maps" / f"{scale_size}_{dates}_w{workers}", workers)
    t0 = time.perf_counter()
    manifest = stack(root_p, size, dates)
    gen_s = time.perf_counter() - t0  # 0 when the stack was cached
    disk = sum(f.stat().st_size for f in manifest.parent.iterdir() if f.is_file())
    big = classify(manifest, model_for(dates), root_p / "maps" / f"{size}_{dates}_w{workers}", workers)
    d1, d2 = scale_dates
    c1, c2 = per_pixel(scale[d1]), per_pixel(scale[d2])
    exps = {k: round(date_exponent(c1[k], c2[k], d1, d2), 3) for k in (*COMPUTE, "compute") if c1[k] > 0 and c2[k] > 0}
    pp = per_pixel(big)
    start_s = max(0.0, big["seconds"] - big["run_seconds"])  # imports, cluster start, model checks
    proj = project(pp["compute"], pp.get("write", 0.0), pp.get("finalize", 0.0), start_s, exps["compute"], dates)
    win_px = BLOCK * BLOCK
    per_window = {k: round(pp[k] * win_px, 3) for k in (*COMPUTE, "write", "finalize", "compute") if k in pp}
    return {"size": size, "dates": dates, "workers": workers, "generate_seconds": round(gen_s, 1),
            "stack_bytes": disk, "big": big, "small_workers": small_w, "scale": {str(k): v for k, v in scale.items()},
            "scale_size": scale_size, "exponents": exps, "per_window_s": per_window, "projection": proj,
            "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": round(time.time() - t_start, 1)}


def _mib(xs: list[float]) -> str:
    return ", ".join(f"{x:,.0f}" for x in xs) or "—"


def markdown(res: dict) -> str:
    """The docs section body: the measured runs, per-window costs, the projection."""
    big, sw, proj = res["big"], res["small_workers"], res["projection"]
    s, d, n = res["size"], res["dates"], res["workers"]
    lines = [
        f"Run {res['date']} ({res['seconds']:.0f} s); {res['machine']}.", "",
        f"**Measured point**: `{big['command']}` on a synthetic {s}² px × {d}-date stack "
        f"({res['stack_bytes'] / 1e9:.2f} GB on disk): **{big['seconds']:.0f} s** for the whole command, "
        f"{big['pixels'] / big['seconds']:,.0f} px/s ({big['pixels']:,} px, {big['windows']} windows of {BLOCK}²; "
        f"map run {big['run_seconds']:.0f} s, {big['pixels'] / big['run_seconds']:,.0f} px/s on {big['device']}). "
        f"Load average (1 min) {big['load_before']} before, {big['load_after']} after, on {os.cpu_count()} cores.", "",
        "Peak memory (RSS, sampled every 0.5 s over the command's process tree):", "",
        "| run | client MiB | each worker MiB | whole tree MiB |", "|---|---:|---:|---:|",
        f"| {s}² × {d} dates, `--workers {n}` | {big['memory']['client_mib']:,.0f} | {_mib(big['memory']['workers_mib'])} | "
        f"{big['memory']['tree_mib']:,.0f} |",
        f"| {res['scale_size']}² × {d} dates, `--workers {n}` | {sw['memory']['client_mib']:,.0f} | "
        f"{_mib(sw['memory']['workers_mib'])} | {sw['memory']['tree_mib']:,.0f} |", "",
        f"Per {BLOCK}² window of the measured run (seconds; `read`, `indices` (indices and gap filling) and "
        f"`predict` are worker-seconds, `write` and `finalize` (COG layout, renames) the client's):", "",
        "| read | indices | predict | compute (sum) | write | finalize |", "|---:|---:|---:|---:|---:|---:|",
        "| " + " | ".join(f"{res['per_window_s'].get(k, 0.0):.3f}" for k in
                         ("read", "indices", "predict", "compute", "write", "finalize")) + " |", "",
        f"Cost against dates ({res['scale_size']}² stack, in one process, worker-seconds per {BLOCK}² window):", "",
        "| dates | read | indices | predict | compute |", "|---:|---:|---:|---:|---:|",
    ]
    for dd, r in res["scale"].items():
        pp = per_pixel(r)
        lines.append(f"| {dd} | " + " | ".join(f"{pp.get(k, 0.0) * BLOCK * BLOCK:.3f}" for k in (*COMPUTE, "compute")) + " |")
    ex = res["exponents"]
    lines += [
        "| exponent p (cost ∝ dates^p) | " + " | ".join(f"{ex.get(k, float('nan')):.2f}" for k in (*COMPUTE, "compute"))
        + " |", "",
        f"**Projection for a Sentinel-2 tile**, {proj['size']}² px × {proj['dates']} dates: {proj['windows']:,} windows "
        f"of {proj['block']}²; per-pixel compute of the measured run × ({proj['dates']}/{d})^{ex['compute']:.2f} = "
        f"×{proj['date_scale']:.2f}: {proj['window_seconds']:.2f} worker-seconds per full window, "
        f"{proj['worker_seconds'] / 3600:,.1f} worker-hours in all; the client writes for {proj['write_seconds'] / 60:,.1f} min "
        f"and finalises for {proj['finalize_seconds'] / 60:,.1f} min; {proj['start_seconds']:.0f} s to start.", "",
        "| Dask workers (1 core each, this CPU) | projected time | bound by |", "|---:|---:|---|",
    ]
    for row in proj["rows"]:
        t = row["seconds"]
        lines.append(f"| {row['workers']} | {t / 3600:.1f} h ({t / 60:,.0f} min) | "
                     f"{'the client writing' if row['client_bound'] else 'worker compute'} |")
    lines.append("| one GPU (`--device cuda`, `--batch 65536 --block 1024`) | not measured | — |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=4096, help="side of the measured stack in px (default 4096)")
    ap.add_argument("--dates", type=int, default=12, help="dates of the measured stack (default 12)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale-size", type=int, default=512, help="side of the stacks of the cost-against-dates runs")
    ap.add_argument("--scale-dates", default="12,30", help="two dates counts for the cost-against-dates runs")
    ap.add_argument("--model", help="one model for every run (default: fitted per dates count, cached)")
    ap.add_argument("--root", default="bench_out/tile")
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args(argv)
    d1, d2 = (int(x) for x in a.scale_dates.split(","))
    res = run(a.size, a.dates, a.workers, a.scale_size, (d1, d2), a.model, a.root)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    print(markdown(res))


if __name__ == "__main__":
    main()
