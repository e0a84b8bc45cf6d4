"""Section 2 of the report: ``python -m training forecast`` as it is, with its pretraining and from
scratch (``pretrain.steps=0``) per seed; its ``forecast.json`` gives the RMSE / MAE of PIMC and
of the baselines on the same held-out targets (:func:`training.forecast.run_forecast`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from training.output import log
from training.report.config import ReportConfig

__all__ = ["forecast_table", "run_forecast_bench"]

_REPO = Path(__file__).resolve().parents[2]


def run_forecast_bench(cfg: ReportConfig, work: Path) -> dict[str, Any]:
    """``run_forecast`` with its pretraining and from scratch, per seed; reads ``forecast.json``."""
    from training.config import load_config
    from training.forecast import run_forecast

    fb = cfg.forecast
    path = Path(fb.config)
    if not path.is_absolute() and not path.exists():
        path = _REPO / fb.config
    runs = []
    for seed in fb.seeds:
        for variant, extra in (("pretrained", []), ("scratch", ["pretrain.steps=0"])):
            out_dir = work / "forecast" / f"{variant}_seed{seed}"
            if out_dir.exists():
                shutil.rmtree(out_dir)  # run_forecast caches pretrained encoders there
            fcfg = load_config(path, [*fb.overrides, *extra, f"seed={seed}", f"out_dir={out_dir}", "name=report_forecast",
                                      f"threads={cfg.threads}", f"device={cfg.device}"])
            log(f"[forecast] {variant}, seed {seed}: python -m training forecast --config {fb.config} "
                 + " ".join([*fb.overrides, *extra, f"seed={seed}"]))
            t0 = time.perf_counter()
            run_forecast(fcfg)
            js = json.loads((out_dir / "forecast.json").read_text(encoding="utf-8"))
            runs.append({"variant": variant, "seed": seed, "seconds": round(time.perf_counter() - t0, 1), "json": js})
    return {"config": fb.config, "overrides": list(fb.overrides), "runs": runs}


def forecast_table(fc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{method, rmse: [...], mae: [...]}``: PIMC pretrained, PIMC scratch, then the baselines."""
    rows: dict[str, dict[str, list[float]]] = {}
    order: list[str] = []

    def add(name: str, sc: Mapping[str, Any]) -> None:
        if name not in rows:
            rows[name] = {"rmse": [], "mae": []}
            order.append(name)
        for k in ("rmse", "mae"):
            v = sc.get(k)
            rows[name][k].append(float(v) if v is not None else float("nan"))

    for r in fc["runs"]:
        scores = r["json"].get("scores") or {}
        if "pimc" in scores:
            add(f"PIMC forecaster ({'pretrained' if r['variant'] == 'pretrained' else 'from scratch'})", scores["pimc"])
    for r in fc["runs"]:
        if r["variant"] != "pretrained":
            continue  # the baselines do not depend on the network: one copy per seed
        for name, sc in (r["json"].get("scores") or {}).items():
            if name != "pimc" and isinstance(sc, Mapping):
                add(name, sc)
    return [{"method": n, **rows[n]} for n in order]
