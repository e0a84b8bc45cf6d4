"""A stratified random sample of a class map for an accuracy assessment (``pimc sample-design``).

The strata are the map classes (Olofsson et al. 2014, section 4.2). The sample size is given, or
computed from a target standard error of overall accuracy (:func:`pimc_core.maps.accuracy.sample_size`,
their eq. 13). It is allocated to the classes by one of the rules they recommend:

* ``proportional``: ``n_h ∝ N_h`` (largest remainders, so the sizes add up to ``n``);
* ``equal``: ``n / q`` per class;
* ``min:M``: at least ``M`` per class (all pixels of a class smaller than that), the rest
  proportional to the classes' areas.

Within a class, pixels are drawn uniformly without replacement (a seeded numpy generator): the
ranks of the drawn pixels among the class's pixels in raster order, turned into rows and
columns in a second pass over the map, so the map is never held whole in memory. The points are
the pixel centres, written as a GeoPackage with the fields ``stratum`` (the map class) and
``reference`` (empty, to be filled in by the analyst) for ``pimc assess``.

:func:`design_sample` is the whole step, as ``pimc sample-design`` and the Processing algorithm
``pimc:sampledesign`` run it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.maps.class_map import ClassMap

__all__ = ["SampleDesign", "allocate", "design_sample", "draw_sample", "expected_accuracies", "write_sample"]

_MIN = re.compile(r"^min:(\d+)$")


def _largest_remainder(n: int, shares: np.ndarray) -> np.ndarray:
    """(q,) ints adding up to ``n``, proportional to (q,) ``shares``."""
    if n <= 0 or shares.sum() <= 0:
        return np.zeros(len(shares), dtype=np.int64)
    exact = n * shares / shares.sum()
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: n - out.sum()]] += 1
    return out


def allocate(n: int, pixels: np.ndarray, rule: str) -> np.ndarray:
    """Sample sizes per class.

    Args:
        n: total sample size.
        pixels: (q,) mapped pixels ``N_h`` of each class.
        rule: ``proportional``, ``equal`` or ``min:M``.

    Returns:
        (q,) ints ``n_h ≤ N_h`` adding up to ``n``.

    Raises:
        ConfigError: an unknown rule, ``n`` larger than the map's classified pixels, or ``min:M``
            asking for more than ``n`` in all.
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    if n > pixels.sum():
        raise ConfigError(f"--n {n}: the map has only {int(pixels.sum())} classified pixels")
    q = len(pixels)
    floor = np.zeros(q, dtype=np.int64)
    if rule == "proportional":
        shares = pixels.astype(float)
    elif rule == "equal":
        shares = np.ones(q)
    elif (m := _MIN.match(rule)) is not None:
        shares, floor = pixels.astype(float), np.minimum(int(m.group(1)), pixels)
        if floor.sum() > n:
            raise ConfigError(f"--allocation {rule}: {q} classes need {int(floor.sum())} points, more than --n {n}")
    else:
        raise ConfigError(f"--allocation {rule!r}: give proportional, equal or min:M (e.g. min:50)")
    out = np.zeros(q, dtype=np.int64)
    free = np.ones(q, dtype=bool)
    while True:  # classes whose share falls below the minimum or above their pixels are fixed there
        share = _largest_remainder(n - int(out[~free].sum()), np.where(free, shares, 0.0))
        bad = free & ((share < floor) | (share > pixels))
        if not bad.any():
            return np.where(free, share, out)
        out[bad] = np.clip(share[bad], floor[bad], pixels[bad])
        free &= ~bad


def draw_sample(cmap: ClassMap, sizes: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``sizes[h]`` pixels of each class ``cmap.classes[h]`` uniformly without replacement.

    Returns:
        ((n, 2) pixel-centre coordinates in the map's CRS, (n,) map class of each point), in
        raster order.
    """
    rng = np.random.default_rng(seed)
    ranks = {int(c): np.sort(rng.choice(int(N), size=int(k), replace=False))
             for c, N, k in zip(cmap.classes, cmap.pixels, sizes)}
    seen = dict.fromkeys(ranks, 0)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    strata: list[np.ndarray] = []
    for r0, strip in cmap.strips():
        flat = strip.ravel()
        for c, want in ranks.items():
            where = np.flatnonzero(flat == c)
            lo, hi = np.searchsorted(want, [seen[c], seen[c] + len(where)])
            pick = where[want[lo:hi] - seen[c]]
            seen[c] += len(where)
            rows.append(r0 + pick // cmap.width)
            cols.append(pick % cmap.width)
            strata.append(np.full(len(pick), c, dtype=np.int64))
    row, col, stratum = (np.concatenate(a) if a else np.empty(0, np.int64) for a in (rows, cols, strata))
    order = np.lexsort((col, row))
    xs, ys = cmap.transform @ (col[order] + 0.5, row[order] + 0.5)
    return np.column_stack([xs, ys]).astype(float), stratum[order]


def write_sample(path: str | os.PathLike, cmap: ClassMap, xy: np.ndarray, stratum: np.ndarray) -> Path:
    """Write the sample points as a GeoPackage (atomically): fields ``stratum`` and an empty ``reference``."""
    from pimc_core.io.vector import write_points

    return write_points(path, xy, cmap.crs, [("stratum", "int", stratum.tolist()),
                                             ("reference", "int", [None] * len(stratum))], layer="sample")


def expected_accuracies(text: str, q: int) -> list[float]:
    """(q,) expected user's accuracies from "0.8" (every class) or "0.7,0.6,…" (one per class, ascending ids).

    Raises:
        ConfigError: not numbers in [0, 1], or neither 1 nor ``q`` of them.
    """
    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, q) or not all(0 <= v <= 1 for v in values):
        raise ConfigError(f"expected user's accuracy {text!r}: give one accuracy in [0, 1] or {q} (one per map class, "
                          "ascending ids), comma-separated")
    return values * q if len(values) == 1 else values


@dataclass(frozen=True)
class SampleDesign:
    """A drawn sample: the GeoPackage ``path``, the map's (q,) ``classes`` and their (q,) sample ``sizes``."""

    path: Path
    allocation: str
    classes: np.ndarray
    sizes: np.ndarray

    def summary(self) -> str:
        per_class = ", ".join(f"{c}: {k}" for c, k in zip(self.classes.tolist(), self.sizes.tolist()))
        return f"{self.path}: {int(self.sizes.sum())} points ({self.allocation}; per class {per_class})"


def design_sample(cmap: ClassMap, out: str | os.PathLike, *, n: int | None = None, target_se: float | None = None,
                  expected_ua: str = "0.8", allocation: str = "proportional", seed: int = 0) -> SampleDesign:
    """Size (``n``, or from ``target_se`` and the expected user's accuracies, eq. 13), allocate, draw and
    write a stratified random sample of ``cmap`` to the GeoPackage ``out`` (its folder must exist).

    Raises:
        ConfigError: neither or both of ``n`` and ``target_se``, a target outside (0, 1), a bad
            allocation or expected accuracy, more points than classified pixels.
    """
    from pimc_core.maps.accuracy import sample_size

    if (n is None) == (target_se is None):
        raise ConfigError("give the sample size n, or a target standard error of overall accuracy to compute it")
    if target_se is not None and not 0 < target_se < 1:
        raise ConfigError(f"target standard error {target_se}: a standard error of overall accuracy in (0, 1)")
    if n is None:
        n = sample_size(cmap.pixels / cmap.pixels.sum(), expected_accuracies(expected_ua, len(cmap.classes)), target_se)
    sizes = allocate(n, cmap.pixels, allocation)
    xy, stratum = draw_sample(cmap, sizes, seed=seed)
    return SampleDesign(write_sample(out, cmap, xy, stratum), allocation, cmap.classes, sizes)
