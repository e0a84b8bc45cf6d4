"""Accuracy assessment of a class map against reference sample points (``pimc assess``).

The points (a stratified random sample of the map, e.g. from ``pimc sample-design``, with the
reference class filled in) are looked up in the map; the map class under each point is its
stratum. :func:`pimc_core.maps.accuracy.stratified_estimate` then gives the error matrix in counts
and in area proportions, overall, user's and producer's accuracies and each class's area with
95 % confidence intervals. Points that cannot enter the estimate are counted and reported, never
dropped silently: without a reference class, outside the map, on a pixel without class (0 or
nodata), or with a reference class the map does not hold. Polygons are refused: the pixels of
one polygon are not independent sample points.

The report is a JSON file (:func:`assessment_report`) and, beside it, a Markdown file with the
same tables, written together and atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.maps.accuracy import Z95, stratified_estimate
from pimc_core.maps.class_map import ClassMap

__all__ = ["assess_map", "assessment_report", "write_report"]

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
               class_table: list[dict] | None = None) -> dict[str, Any]:
    """Assess a class map with reference points: :func:`assessment_report` of the points that count.

    Raises:
        InputError: polygons instead of points, no usable point, or a mapped class with fewer
            than 2 usable points. ConfigError: no field ``class_field``, a value that is not a class.
    """
    from pimc_core.io.vector import read_vector, reproject_points

    path = Path(points_path)
    layer = read_vector(path, field=class_field)
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
    if not use.any():
        raise InputError(f"{path}: no point can be used ({', '.join(f'{k}: {v}' for k, v in left_out.items())})")
    report = assessment_report(cmap, mapped[use], reference[use], class_table)
    report.update(reference=str(path), class_field=class_field, points_read=int(len(xy) + layer.blank),
                  points_used=int(use.sum()), left_out=left_out)
    return report


def _num(v: float | None, digits: int = 6) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def assessment_report(cmap: ClassMap, map_class: np.ndarray, reference: np.ndarray,
                      class_table: list[dict] | None = None) -> dict[str, Any]:
    """The report of the stratified estimator for (n,) map classes and (n,) reference classes of
    sample points, all among ``cmap.classes``: the JSON-ready mapping written by :func:`write_report`."""
    from pimc_core.maps.accuracy import error_matrix

    classes = cmap.classes
    est = stratified_estimate(error_matrix(map_class, reference, classes), cmap.pixels, classes)
    names = {c["id"]: c["name"] for c in class_table or ()}
    ha = None if cmap.pixel_area_m2 is None else cmap.pixel_area_m2 / 1e4
    total_ha = None if ha is None else float(cmap.pixels.sum()) * ha
    rows = []
    for k, c in enumerate(classes.tolist()):
        rows.append({
            "id": c, "name": names.get(c, f"class {c}"),
            "map_pixels": int(cmap.pixels[k]),
            "map_area_ha": None if ha is None else _num(cmap.pixels[k] * ha, 2),
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
    return {
        "estimator": "stratified, map classes as strata (Olofsson et al. 2014, eqs. 1-11); ci95 = 1.96 x SE half-widths",
        "map": str(cmap.path), "pixel_area_m2": _num(cmap.pixel_area_m2, 4),
        "overall_accuracy": _num(est.overall_accuracy),
        "overall_accuracy_ci95": _num(Z95 * est.overall_accuracy_se),
        "classes": rows,
        "error_matrix_counts": est.counts.tolist(),
        "error_matrix_area_proportions": [[_num(v) for v in row] for row in est.proportions],
    }


def _markdown(report: dict[str, Any]) -> str:
    def f(v, digits=3):
        return "–" if v is None else f"{v:,.{digits}f}"

    lines = [f"# Accuracy assessment of {report['map']}", "",
             f"Reference: {report.get('reference', '?')} (field `{report.get('class_field', '?')}`), "
             f"{report.get('points_used', '?')} of {report.get('points_read', '?')} points used.", ""]
    for k, v in (report.get("left_out") or {}).items():
        lines.append(f"- left out, {k.replace('_', ' ')}: {v}")
    lines += ["", f"Estimator: {report['estimator']}.", "",
              f"**Overall accuracy: {f(report['overall_accuracy'])} ± {f(report['overall_accuracy_ci95'])}**", "",
              "| class | mapped area (ha) | estimated area (ha) | ± 95 % | user's acc. | ± 95 % | producer's acc. | ± 95 % | n |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in report["classes"]:
        lines.append(f"| {c['id']} {c['name']} | {f(c['map_area_ha'], 0)} | {f(c['area_ha'], 0)} | "
                     f"{f(c['area_ci95_ha'], 0)} | {f(c['users_accuracy'])} | {f(c['users_accuracy_ci95'])} | "
                     f"{f(c['producers_accuracy'])} | {f(c['producers_accuracy_ci95'])} | {c['n_samples']} |")
    ids = [str(c["id"]) for c in report["classes"]]
    for title, matrix, digits in (("sample counts", report["error_matrix_counts"], None),
                                  ("estimated area proportions", report["error_matrix_area_proportions"], 4)):
        lines += ["", f"Error matrix, {title} (rows: map, columns: reference)", "",
                  "| map \\ reference | " + " | ".join(ids) + " |", "|---|" + "---:|" * len(ids)]
        for i, row in zip(ids, matrix):
            lines.append(f"| {i} | " + " | ".join(str(v) if digits is None else f(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | os.PathLike) -> list[Path]:
    """Write ``out`` (JSON) and the Markdown tables beside it (same name, ``.md``), together and atomically."""
    from pimc_core.io.atomic import Staging

    out = Path(out)
    with Staging(out.parent) as stage:
        stage.path(out.name).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        stage.path(out.with_suffix(".md").name).write_text(_markdown(report), encoding="utf-8")
        return stage.commit()
