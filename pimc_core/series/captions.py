"""Captions of pixels: short English sentences PIMC writes from a pixel's own phenology metrics
(:mod:`pimc_core.series.phenology`) and, for labelled pixels, its class name and description,
and the inverse, the threshold rules a sentence of that kind states.

The captions are the training text of the text queries (:mod:`pimc_core.learn.text_align`):
many paraphrases of a few facts, chosen at random per pixel and epoch, e.g.

* ``green-up in late April, peak NDVI 0.8 in early July, bare after mid August``
* ``greens up in April and harvested in mid July``
* ``winter wheat`` / ``a field of winter wheat: green-up in March``
* ``no growing season, NDVI stays near 0.1 all year`` (no season: bare soil, water, evergreen)

Days are days of year of the stack's first year (1 = 1 January), as the metrics count them; a
day is said as a third of a month (``early`` 1-10, ``mid`` 11-20, ``late`` 21-end) or as the
month alone. Numbers are said with one decimal (``0.8``), so they are words of the vocabulary.

:func:`sentence_rules` reads a sentence of this kind back into thresholds on the metrics (a
clause such as ``green-up in April`` → start of season between day 91 and day 120), and
:func:`rule_score` ranks pixels by them: the threshold-rule baseline of the text queries.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["MONTHS", "Rule", "class_captions", "day_phrase", "pixel_caption", "rule_score", "sentence_rules"]

MONTHS: tuple[str, ...] = ("january", "february", "march", "april", "may", "june", "july", "august",
                           "september", "october", "november", "december")
_PARTS = ("early", "mid", "late")

#: clause templates per metric; ``{d}`` is a day phrase, ``{v}`` a value, ``{i}`` the index name
_START = ("green-up in {d}", "greens up in {d}", "growth starts in {d}", "start of season in {d}",
          "sown and emerging in {d}", "season starts in {d}")
_PEAK = ("peak {i} {v} in {d}", "peaks in {d}", "greenest in {d}", "maximum {i} {v} in {d}",
         "peak of season in {d}", "peak {i} {v}")
_END = ("harvested in {d}", "bare after {d}", "senescence in {d}", "end of season in {d}",
        "browns down in {d}", "harvest in {d}")
_LENGTH = ("a season of {v} days", "growing for {v} days", "{v} days of growth")
_FLAT = ("no growing season, {i} stays near {v} all year", "no season, {i} about {v} all year",
         "flat {i} near {v}", "no green-up")
_FLAT_KIND = {"water": ("open water", "water, {i} below zero all year"),
              "bare": ("bare all year", "no vegetation all year", "bare soil or built-up"),
              "evergreen": ("evergreen, green all year", "green all year round", "evergreen canopy")}
_CLASS = ("{n}", "a field of {n}", "{n} pixels", "this is {n}", "{n} field", "land cover {n}")
_JOIN = (", ", " and ", ", then ", "; ")


def day_phrase(day: float, year: int, part: bool = True) -> str:
    """``"late April"`` (``part``) or ``"april"`` for day of year ``day`` of ``year`` (1 = 1 January)."""
    d = dt.date(int(year), 1, 1) + dt.timedelta(days=int(round(float(day))) - 1)
    month = MONTHS[d.month - 1]
    if not part:
        return month
    return f"{_PARTS[min(2, (d.day - 1) // 10)]} {month}"


def _value(v: float) -> str:
    return f"{float(v):.1f}".replace("-0.0", "0.0")


def _flat_kind(level: float) -> str:
    return "water" if level < 0.0 else ("bare" if level < 0.3 else ("evergreen" if level > 0.55 else ""))


def pixel_caption(metrics: Mapping[str, float], level: float, year: int, rng: np.random.Generator,
                  index: str = "ndvi", class_name: str | None = None, description: str | None = None) -> str:
    """One caption of one pixel, chosen at random among the paraphrases of its facts.

    Args:
        metrics: the pixel's ``sos``, ``pos``, ``eos`` (days of year of ``year``), ``peak``,
            ``length`` (scalars; NaN: no season).
        level: the pixel's mean index value over the stack (said when it has no season).
        year: the year the days count from.
        rng: where the choice comes from.
        index: the index the metrics are of (said in capitals' place as a lower-case word).
        class_name: the pixel's class (labelled pixels), or None.
        description: the class's description (``description`` of classes.json), or None.

    Returns:
        The caption, lower case, e.g. ``"green-up in late april, harvested in mid july"``.
    """
    i = str(index).lower()
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    clauses: list[str] = []
    if np.isfinite(float(metrics.get("sos", np.nan))):
        facts = [("sos", _START), ("pos", _PEAK), ("eos", _END)]
        if rng.random() < 0.2:
            facts.append(("length", _LENGTH))
        keep = [f for f in facts if rng.random() < 0.6] or [facts[int(rng.integers(3))]]
        for metric, templates in keep:
            t = pick(templates)
            d = day_phrase(metrics[metric], year, part=rng.random() < 0.5) if metric != "length" else ""
            v = _value(metrics["peak"]) if metric == "pos" else f"{10 * round(float(metrics['length']) / 10):.0f}"
            clauses.append(t.format(d=d, v=v, i=i))
    else:
        kind = _flat_kind(level)
        options = _FLAT + (_FLAT_KIND[kind] if kind else ())
        clauses.append(pick(options).format(i=i, v=_value(level)))
    text = pick(_JOIN).join(clauses)
    if class_name:  # a labelled pixel: its class, its class with its season, or its season alone
        name = class_name.replace("_", " ").strip().lower()
        r = rng.random()
        if description and r < 0.15:
            text = description.strip().lower()
        elif r < 0.4:
            text = pick(_CLASS).format(n=name)
        elif r < 0.65:
            text = f"{pick(_CLASS).format(n=name)}: {text}"
    return text


def class_captions(name: str, description: str | None = None) -> list[str]:
    """The class-name captions of a class (and its description), lower case: what a query for
    the class says."""
    n = name.replace("_", " ").strip().lower()
    out = [t.format(n=n) for t in _CLASS]
    return out + ([description.strip().lower()] if description else [])


# ------------------------------------------------------------------------------ sentence → rules
@dataclass(frozen=True)
class Rule:
    """A threshold on one metric: ``low <= metric <= high`` (days of year, or index values)."""

    metric: str
    low: float
    high: float


_METRIC_WORDS = (
    ("sos", r"green-?\s?up|greens? up|growth starts|start of (?:the )?season|sown|emerg\w*|season starts|greening"),
    ("pos", r"peaks?|greenest|maximum|peak of (?:the )?season"),
    ("eos", r"harvest(?:ed)?|bare after|senescence|end of (?:the )?season|browns? down|cut|mown"),
)
_DAY = r"(?P<rel>in|after|before|by|until|from)?\s*(?P<part>early|mid|late)?[\s-]*(?P<month>" + "|".join(MONTHS) + r")"


def _month_span(year: int, month: int, part: str | None) -> tuple[float, float]:
    first = dt.date(year, month, 1)
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
    d0, d1 = first.timetuple().tm_yday, last.timetuple().tm_yday
    if part == "early":
        return d0, d0 + 9
    if part == "mid":
        return d0 + 10, d0 + 19
    if part == "late":
        return d0 + 20, d1
    return d0, d1


def sentence_rules(text: str, year: int) -> list[Rule]:
    """The thresholds a sentence states on the metrics (the rule baseline of the text queries).

    A clause names a metric (``green-up`` / ``harvested`` / ``peak`` and their paraphrases in
    :func:`pixel_caption`) and a day (``in [early|mid|late] <month>``: that span; ``after``: from
    its end; ``before`` / ``by``: up to its start); ``peak <index> 0.8`` bounds the peak value
    within ± 0.05. Unrecognised parts of the sentence state nothing.

    Returns:
        The rules, in the order of the sentence (empty when it states none).
    """
    s = str(text).lower()
    rules: list[Rule] = []
    for metric, words in _METRIC_WORDS:
        for m in re.finditer(rf"(?:{words})[\w\s.-]{{0,14}}?\b{_DAY}", s):
            lo, hi = _month_span(year, MONTHS.index(m.group("month")) + 1, m.group("part"))
            rel = m.group("rel")
            if rel in ("after", "from"):
                lo, hi = hi, 400.0
            elif rel in ("before", "by", "until"):
                lo, hi = -40.0, lo
            rules.append(Rule(metric, float(lo), float(hi)))
    for m in re.finditer(r"(?:peak|maximum)[a-z\s]*?(-?\d+(?:\.\d+)?)", s):
        v = float(m.group(1))
        if abs(v) <= 1.0:
            rules.append(Rule("peak", v - 0.05, v + 0.05))
    return rules


def rule_score(rules: Sequence[Rule], metrics: Mapping[str, np.ndarray]) -> np.ndarray:
    """How well pixels meet the rules: 0 where every rule holds, minus the distance outside the
    thresholds elsewhere (days; index values × 100), -inf without a season.

    Args:
        rules: from :func:`sentence_rules`.
        metrics: ``{metric: (N,) array}`` of :func:`pimc_core.series.phenology.phenology_metrics`.

    Returns:
        (N,) float64 scores (higher: more of the sentence holds).
    """
    n = len(next(iter(metrics.values())))
    score = np.zeros(n, np.float64)
    for r in rules:
        v = np.asarray(metrics[r.metric], np.float64)
        scale = 100.0 if r.metric == "peak" else 1.0
        miss = np.maximum(r.low - v, 0.0) + np.maximum(v - r.high, 0.0)
        score -= np.where(np.isfinite(v), miss * scale, np.inf)
    return score
