"""Accuracy assessment of a class map against reference sample points (``pimc assess``).

The points (a stratified random sample of the map, e.g. from ``pimc sample-design``, with the
reference class filled in) are looked up in the map; the map class under each point is its
stratum (:func:`pimc_core.maps.accuracy.stratified_estimate`), or, when the sample was drawn
from other strata, a strata raster on the map's grid gives each point's stratum
(:func:`pimc_core.maps.stehman.stehman_estimate`). The estimator gives the error matrix in counts
and in area proportions, overall, user's and producer's accuracies and each class's area with
95 % confidence intervals. Points that cannot enter the estimate are counted and reported, never
dropped silently: without a reference class, outside the map, on a pixel without class (0 or
nodata), or with a reference class the map does not hold. Polygons are refused: the pixels of
one polygon are not independent sample points.

The report is a JSON file (:func:`assessment_report`) and, beside it, the same tables as Markdown
and as a self-contained HTML page (:mod:`pimc_core.maps.report_pages`) and the error matrix as a
figure (:func:`pimc_core.viz.confusion.confusion_figure`), all four written together and atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.maps.accuracy import Z95, StratifiedEstimate, stratified_estimate
from pimc_core.maps.class_map import ClassMap, StrataCounts

__all__ = ["assess", "assess_map", "assessment_report", "report_summary", "write_report"]

_POINTS = ("Point", "MultiPoint")


def _points(geometries: Sequence[dict], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """((m, 2) coordinates, (m,) index of the feature each came from) of point features."""
    shapes = sorted({g.get("type", "?") for g in geometries} - set(_POINTS))
    if shapes:
        raise InputError(f"{path}: has {', '.join(shapes)} features; pimc assess takes sample points (the pixels "
                         "of one polygon are not independent samples) - draw them with pimc sample-design")
    xy, owner = [], []
    for k, g in enumerate(geometries):
        coords = [g["coordinates"]] if g["type"] == "Point" else g["coordinates"]
        for c in coords:
            xy.append(c[:2])
            owner.append(k)
    return np.asarray(xy, dtype=float).reshape(-1, 2), np.asarray(owner, dtype=np.int64)


def _class_ids(values: Sequence[Any], table: list[dict] | None, path: Path, field: str) -> np.ndarray:
    """Reference values (ids, or names of ``table``) as class ids."""
    names = {c["name"].strip().lower(): c["id"] for c in table or ()}
    out = []
    for v in values:
        if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer()):
            out.append(int(v))
            continue
        text = str(v).strip()
        if text.lstrip("-").isdigit():
            out.append(int(text))
        elif text.lower() in names:
            out.append(names[text.lower()])
        else:
            hint = "" if table else " (give --classes classes.json to use class names)"
            raise ConfigError(f"{path}: field '{field}' holds {v!r}, neither a class id nor a class name{hint}")
    return np.asarray(out, dtype=np.int64)


def assess_map(cmap: ClassMap, points_path: str | os.PathLike, class_field: str,
               class_table: list[dict] | None = None, strata: str | os.PathLike | None = None,
               points_layer: str | None = None) -> dict[str, Any]:
    """Assess a class map with reference points: :func:`assessment_report` of the points that count.

    Args:
        strata: a raster of the strata the sample was drawn from, when they are not the map
            classes (on the map's grid; Stehman 2014's estimator is used then).
        points_layer: the layer of ``points_path`` (default: its first).

    Raises:
        InputError: polygons instead of points, no usable point, a mapped class (or stratum) with
            fewer than 2 usable points, a strata raster on another grid.
            ConfigError: no field ``class_field``, a value that is not a class.
    """
    from pimc_core.io.vector import read_vector, reproject_points
    from pimc_core.maps.class_map import open_strata, strata_counts

    path = Path(points_path)
    strata_map = None if strata is None else open_strata(strata, cmap)
    layer = read_vector(path, layer=points_layer or None, field=class_field)
    xy, owner = _points(layer.geometries, path)
    reference = _class_ids(layer.values or [], class_table, path, class_field)[owner]
    if layer.crs is not None and cmap.crs is not None and layer.crs != cmap.crs:
        xy = reproject_points(xy, layer.crs, cmap.crs, str(path))
    mapped, inside = cmap.values_at(xy)
    on_class = inside & cmap.is_class(mapped)
    known = np.isin(reference, cmap.classes)
    use = on_class & known
    left_out = {"no_reference_class": int(layer.blank), "outside_map": int((~inside).sum()),
                "on_pixel_without_class": int((inside & ~on_class).sum()),
                "reference_class_not_in_map": int((on_class & ~known).sum())}
    stratum = None
    if strata_map is not None:
        stratum = strata_map.values_at(xy)[0]
        no_stratum = use & ~strata_map.is_class(stratum)
        left_out["on_pixel_without_stratum"] = int(no_stratum.sum())
        use &= ~no_stratum
    if not use.any():
        raise InputError(f"{path}: no point can be used ({', '.join(f'{k}: {v}' for k, v in left_out.items())})")
    report = assessment_report(cmap, mapped[use], reference[use], class_table,
                               stratum=None if stratum is None else stratum[use],
                               strata=None if strata_map is None else strata_counts(cmap, strata_map))
    if strata_map is not None:
        report["strata"]["raster"] = str(strata_map.path)
    report.update(reference=str(path), class_field=class_field, points_read=int(len(xy) + layer.blank),
                  points_used=int(use.sum()), left_out=left_out)
    return report


def _num(v: float | None, digits: int = 6) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _estimate(cmap: ClassMap, map_class: np.ndarray, reference: np.ndarray, stratum: np.ndarray | None,
              strata: StrataCounts | None) -> tuple[StratifiedEstimate, np.ndarray, str]:
    """(the estimate, (q,) mapped pixels of the population, the estimator's description)."""
    from pimc_core.maps.accuracy import error_matrix
    from pimc_core.maps.stehman import stehman_estimate

    if strata is None:
        return (stratified_estimate(error_matrix(map_class, reference, cmap.classes), cmap.pixels, cmap.classes),
                cmap.pixels, "stratified, map classes as strata (Olofsson et al. 2014, eqs. 1-11)")
    est = stehman_estimate(stratum, map_class, reference, strata.strata, strata.pixels, cmap.classes)
    return (est, strata.map_pixels, "stratified, strata other than the map classes (Stehman 2014, eqs. 2, 25, 27, "
            "28, with the finite population correction)")


def assessment_report(cmap: ClassMap, map_class: np.ndarray, reference: np.ndarray,
                      class_table: list[dict] | None = None, *, stratum: np.ndarray | None = None,
                      strata: StrataCounts | None = None) -> dict[str, Any]:
    """The report of the stratified estimator for (n,) map classes and (n,) reference classes of
    sample points, all among ``cmap.classes``: the JSON-ready mapping written by :func:`write_report`.

    With ``strata`` (the counts of a strata raster) and the (n,) ``stratum`` of each point, the
    estimator is Stehman's (2014) and the population is the map's classified pixels in a stratum;
    otherwise the strata are the map classes (Olofsson et al. 2014)."""
    classes = cmap.classes
    est, pixels, estimator = _estimate(cmap, map_class, reference, stratum, strata)
    names = {c["id"]: c["name"] for c in class_table or ()}
    ha = None if cmap.pixel_area_m2 is None else cmap.pixel_area_m2 / 1e4
    total_ha = None if ha is None else float(pixels.sum()) * ha
    rows = []
    for k, c in enumerate(classes.tolist()):
        rows.append({
            "id": c, "name": names.get(c, f"class {c}"),
            "map_pixels": int(pixels[k]),
            "map_area_ha": None if ha is None else _num(pixels[k] * ha, 2),
            "area_ha": None if total_ha is None else _num(est.area_proportion[k] * total_ha, 2),
            "area_ci95_ha": None if total_ha is None else _num(Z95 * est.area_proportion_se[k] * total_ha, 2),
            "area_proportion": _num(est.area_proportion[k]),
            "area_proportion_ci95": _num(Z95 * est.area_proportion_se[k]),
            "users_accuracy": _num(est.users_accuracy[k]),
            "users_accuracy_ci95": _num(Z95 * est.users_accuracy_se[k]),
            "producers_accuracy": _num(est.producers_accuracy[k]),
            "producers_accuracy_ci95": _num(Z95 * est.producers_accuracy_se[k]),
            "n_samples": int(est.counts[k].sum()),
        })
    report = {
        "estimator": f"{estimator}; ci95 = 1.96 x SE half-widths",
        "map": str(cmap.path), "pixel_area_m2": _num(cmap.pixel_area_m2, 4),
        "overall_accuracy": _num(est.overall_accuracy),
        "overall_accuracy_ci95": _num(Z95 * est.overall_accuracy_se),
        "classes": rows,
        "error_matrix_counts": est.counts.tolist(),
        "error_matrix_area_proportions": [[_num(v) for v in row] for row in est.proportions],
    }
    if strata is not None:
        n_h = np.bincount(np.searchsorted(strata.strata, stratum), minlength=len(strata.strata))
        report["strata"] = {"ids": strata.strata.tolist(), "pixels": strata.pixels.tolist(), "n_samples": n_h.tolist(),
                            "map_pixels_without_stratum": strata.without_stratum}
    return report


def write_report(report: dict[str, Any], out: str | os.PathLike) -> list[Path]:
    """Write ``out`` (JSON) and beside it, with the same name, the tables as Markdown (``.md``) and
    HTML (``.html``, the figure embedded) and the error-matrix figure (``.png``), together and atomically.

    Returns:
        the four paths: JSON, Markdown, HTML, PNG.
    """
    from pimc_core.io.atomic import Staging
    from pimc_core.maps.report_pages import html_page, markdown_page
    from pimc_core.viz.confusion import confusion_figure

    out = Path(out)
    png = out.with_suffix(".png")
    labels = [f"{c['id']} {c['name']}" if c["name"] != f"class {c['id']}" else str(c["id"]) for c in report["classes"]]
    proportions = np.array([[np.nan if v is None else v for v in row] for row in report["error_matrix_area_proportions"]])
    fig = confusion_figure(np.array(report["error_matrix_counts"]), proportions, labels,
                           f"Error matrix of {Path(report['map']).name} (rows: map, columns: reference)")
    with Staging(out.parent) as stage:
        stage.path(out.name).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        png_tmp = stage.path(png.name)
        fig.savefig(png_tmp, format="png")
        stage.path(out.with_suffix(".md").name).write_text(markdown_page(report, png.name), encoding="utf-8")
        stage.path(out.with_suffix(".html").name).write_text(html_page(report, png_tmp.read_bytes()), encoding="utf-8")
        json_path, png_path, md_path, html_path = stage.commit()
    return [json_path, md_path, html_path, png_path]


def report_summary(report: dict[str, Any]) -> list[str]:
    """The report in a few lines: overall accuracy, what was left out, each class's area and accuracies."""
    left = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report["left_out"].items() if v)
    lines = [f"overall accuracy {report['overall_accuracy']:.3f} ± {report['overall_accuracy_ci95']:.3f} (95 %) from "
             f"{report['points_used']} of {report['points_read']} points" + (f"; left out: {left}" if left else "")]
    for c in report["classes"]:
        area = "" if c["area_ha"] is None else f"area {c['area_ha']:,.0f} ± {c['area_ci95_ha']:,.0f} ha (mapped {c['map_area_ha']:,.0f}); "
        ua = "–" if c["users_accuracy"] is None else f"{c['users_accuracy']:.3f} ± {c['users_accuracy_ci95']:.3f}"
        pa = "–" if c["producers_accuracy"] is None else f"{c['producers_accuracy']:.3f} ± {c['producers_accuracy_ci95']:.3f}"
        lines.append(f"  {c['id']} {c['name']}: {area}user's {ua}; producer's {pa}; n {c['n_samples']}")
    return lines


def assess(map_path: str | os.PathLike, reference: str | os.PathLike, class_field: str, out: str | os.PathLike, *,
           classes: str | os.PathLike | None = None, strata: str | os.PathLike | None = None,
           points_layer: str | None = None) -> tuple[dict[str, Any], list[Path]]:
    """The whole assessment, as ``pimc assess`` and ``pimc:assess`` run it: open the class map (and
    the class table ``classes``), :func:`assess_map`, :func:`write_report` to ``out`` (a .json).

    Returns:
        (the report, [JSON, Markdown, HTML, PNG] paths).
    """
    from pimc_core.io.classes import load_class_table
    from pimc_core.maps.class_map import open_class_map

    table = load_class_table(classes) if classes else None
    report = assess_map(open_class_map(map_path), reference, class_field, table, strata=strata, points_layer=points_layer)
    return report, write_report(report, out)
