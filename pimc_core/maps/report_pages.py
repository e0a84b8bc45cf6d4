"""The pages of an accuracy assessment report: its tables as Markdown and as one self-contained
HTML file (the error-matrix figure embedded), both made from the report mapping of
:func:`pimc_core.maps.assessment.assessment_report`.

The content is laid out once (:func:`_blocks`: a title, lines of text, tables, the figure) and
rendered twice, so the two pages always say the same thing. The HTML needs no file beside it
and no network: QGIS's Processing results viewer or any browser opens it.
"""

from __future__ import annotations

import base64
import html
from typing import Any

__all__ = ["html_page", "markdown_page"]

_ACC = ("user's acc.", "± 95 %", "producer's acc.", "± 95 %")


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _blocks(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The page as ("title" | "text" | "strong" | "figure" | "table", content) blocks; a table is
    (caption, header, rows) with the first column left-aligned and the others numbers."""
    out: list[tuple[str, Any]] = [("title", f"Accuracy assessment of {report['map']}")]
    out.append(("text", f"Reference: {report.get('reference', '?')} (field '{report.get('class_field', '?')}'), "
                        f"{report.get('points_used', '?')} of {report.get('points_read', '?')} points used."))
    for k, v in (report.get("left_out") or {}).items():
        out.append(("item", f"left out, {k.replace('_', ' ')}: {v}"))
    strata = report.get("strata")
    if strata:
        out.append(("text", f"Strata: {strata.get('raster', '?')}; {len(strata['ids'])} strata, "
                            f"{strata['map_pixels_without_stratum']} classified map pixels outside every stratum."))
    out.append(("text", f"Estimator: {report['estimator']}."))
    out.append(("strong", f"Overall accuracy: {_f(report['overall_accuracy'])} ± {_f(report['overall_accuracy_ci95'])}"))
    rows = [[f"{c['id']} {c['name']}", _f(c["map_area_ha"], 0), _f(c["area_ha"], 0), _f(c["area_ci95_ha"], 0),
             _f(c["users_accuracy"]), _f(c["users_accuracy_ci95"]), _f(c["producers_accuracy"]),
             _f(c["producers_accuracy_ci95"]), str(c["n_samples"])] for c in report["classes"]]
    out.append(("table", ("Areas and accuracies (± 95 % confidence half-widths)",
                          ["class", "mapped area (ha)", "estimated area (ha)", "± 95 %", *_ACC, "n"], rows)))
    if strata:
        out.append(("table", ("Strata", ["stratum", "pixels", "sample points"],
                              [[str(i), f"{p:,}", str(n)] for i, p, n in
                               zip(strata["ids"], strata["pixels"], strata["n_samples"])])))
    ids = [str(c["id"]) for c in report["classes"]]
    for title, matrix, digits in (("sample counts", report["error_matrix_counts"], None),
                                  ("estimated area proportions", report["error_matrix_area_proportions"], 4)):
        out.append(("table", (f"Error matrix, {title} (rows: map, columns: reference)", ["map \\ reference", *ids],
                              [[i, *(str(v) if digits is None else _f(v, digits) for v in row)]
                               for i, row in zip(ids, matrix)])))
    out.append(("figure", "error matrix: sample counts and estimated area proportions"))
    return out


def markdown_page(report: dict[str, Any], figure_name: str | None = None) -> str:
    """The report as Markdown; ``figure_name``: the PNG beside it, linked as an image."""
    lines: list[str] = []
    for kind, content in _blocks(report):
        if kind == "title":
            lines += [f"# {content}", ""]
        elif kind == "item":
            lines.append(f"- {content}")
        elif kind in ("text", "strong"):
            lines += ["", f"**{content}**" if kind == "strong" else content, ""]
        elif kind == "table":
            caption, header, rows = content
            lines += ["", caption, "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
        elif figure_name:
            lines += ["", f"![{content}]({figure_name})"]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


_STYLE = ("body{font-family:sans-serif;margin:1em 2em;color:#222}table{border-collapse:collapse;margin:.4em 0 1.2em}"
          "th,td{border:1px solid #bbb;padding:3px 8px}td{text-align:right}td:first-child{text-align:left}"
          "th{background:#eee}caption{text-align:left;font-weight:bold;padding:4px 0}img{max-width:100%}")


def html_page(report: dict[str, Any], figure_png: bytes | None = None) -> str:
    """The report as one HTML page; ``figure_png``: the error-matrix figure, embedded (base64)."""
    e = html.escape
    body: list[str] = []
    items: list[str] = []
    for kind, content in _blocks(report):
        if kind != "item" and items:
            body.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if kind == "title":
            body.append(f"<h1>{e(content)}</h1>")
        elif kind == "item":
            items.append(f"<li>{e(content)}</li>")
        elif kind in ("text", "strong"):
            body.append(f"<p><b>{e(content)}</b></p>" if kind == "strong" else f"<p>{e(content)}</p>")
        elif kind == "table":
            caption, header, rows = content
            body.append(f"<table><caption>{e(caption)}</caption><tr>" + "".join(f"<th>{e(h)}</th>" for h in header)
                        + "</tr>" + "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in r) + "</tr>" for r in rows)
                        + "</table>")
        elif figure_png:
            data = base64.b64encode(figure_png).decode("ascii")
            body.append(f'<p><img alt="{e(content)}" src="data:image/png;base64,{data}"></p>')
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(_blocks(report)[0][1])}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
