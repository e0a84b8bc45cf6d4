"""The land-cover classes of the synthetic sample: their NDVI phenology, colours, endmember
spectra and SCL codes, and the band names of the synthetic files.

The nominal NDVI curve of a class is a base value plus a sum of logistic steps
(:func:`class_ndvi`); the scene jitters it per field (:mod:`pimc_core.datasets.synthetic_scene`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pimc_core.errors import ConfigError

__all__ = [
    "BAND_NAMES", "CLASSES", "ENDMEMBERS", "SCL_BARE", "SCL_CIRRUS", "SCL_CLOUD_HIGH", "SCL_CLOUD_MEDIUM",
    "SCL_NODATA", "SCL_SHADOW", "SCL_VALID", "SCL_VEGETATION", "SCL_WATER", "ClassSpec", "class_ndvi", "logistic",
]

#: Reflectance bands of the synthetic files, in file order (band 6 is the SCL band).
BAND_NAMES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1")

# Sentinel-2 scene classification (SCL) codes used in band 6.
SCL_NODATA = 0
SCL_SHADOW = 3
SCL_VEGETATION = 4
SCL_BARE = 5
SCL_WATER = 6
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
#: SCL codes that mark a usable (clear) observation.
SCL_VALID: tuple[int, ...] = (SCL_VEGETATION, SCL_BARE, SCL_WATER)


#: Endmember reflectances (blue, green, red, nir, swir1) of the backgrounds and canopies.
ENDMEMBERS: dict[str, tuple[float, ...]] = {
    # backgrounds
    "soil": (0.080, 0.110, 0.150, 0.200, 0.300),  # NDVI 0.14
    "forest_floor": (0.040, 0.060, 0.080, 0.140, 0.200),  # NDVI 0.27
    "urban": (0.120, 0.130, 0.140, 0.170, 0.210),  # NDVI 0.10
    "water": (0.080, 0.085, 0.060, 0.030, 0.010),  # turbid water, NDVI -0.33
    # vegetation
    "crop": (0.030, 0.080, 0.025, 0.550, 0.200),  # NDVI 0.91
    "broadleaf": (0.025, 0.060, 0.022, 0.450, 0.190),  # NDVI 0.91
    "needleleaf": (0.015, 0.040, 0.015, 0.280, 0.110),  # NDVI 0.90
}


@dataclass(frozen=True)
class ClassSpec:
    """One land-cover class of the synthetic scene.

    The nominal NDVI curve is ``base + sum(delta * sigmoid((doy - step_doy) / rate))`` over
    ``steps`` = ((step_doy, rate_days, delta), ...). Per field the whole curve is shifted by
    N(0, ``timing_sd``) days (each step by a further N(0, 3 d) when ``timing_sd`` > 0), the
    deltas are scaled by N(1, ``amp_sd``) and the base offset by N(0, ``base_sd``).
    """

    id: int
    name: str
    color: str
    base: float
    steps: tuple[tuple[float, float, float], ...]
    timing_sd: float
    amp_sd: float
    base_sd: float
    background: str
    vegetation: str
    weight: float  # relative frequency of fields of this class
    scl: int  # SCL code of clear pixels (vegetation/bare is decided by NDVI unless water)




def _crop(cid: int, name: str, color: str, base: float, steps: tuple[tuple[float, float, float], ...],
          timing_sd: float, amp_sd: float, base_sd: float, weight: float) -> ClassSpec:
    """A crop or grassland class: bare soil under a crop canopy, vegetation in the SCL band."""
    return ClassSpec(cid, name, color, base, steps, timing_sd=timing_sd, amp_sd=amp_sd, base_sd=base_sd,
                     background="soil", vegetation="crop", weight=weight, scl=SCL_VEGETATION)


#: The classes, in id order (``n_classes=k`` keeps the first k).
CLASSES: tuple[ClassSpec, ...] = (
    #     id, name, colour, base NDVI, steps (day, rate, delta), timing_sd, amp_sd, base_sd, weight
    _crop(1, "winter_wheat", "#e3b505", 0.30, ((80, 8, 0.52), (180, 6, -0.64), (300, 10, 0.12)), 8, 0.07, 0.03, 3.0),
    _crop(2, "maize", "#f58231", 0.18, ((165, 7, 0.66), (255, 8, -0.64)), 8, 0.07, 0.02, 3.0),
    _crop(3, "soybean", "#bcbd22", 0.18, ((157, 7, 0.60), (242, 7, -0.58)), 8, 0.07, 0.02, 2.0),
    _crop(4, "sunflower", "#911eb4", 0.18, ((135, 8, 0.52), (215, 6, -0.52)), 8, 0.08, 0.02, 2.0),
    _crop(5, "grassland", "#98df8a", 0.42, ((95, 15, 0.30), (168, 2, -0.22), (185, 6, 0.18), (290, 18, -0.26)),
          10, 0.10, 0.04, 3.0),
    ClassSpec(6, "deciduous_forest", "#228b22", 0.38,
              ((115, 6, 0.50), (295, 9, -0.50)),
              timing_sd=5, amp_sd=0.05, base_sd=0.03, background="forest_floor",
              vegetation="broadleaf", weight=2.0, scl=SCL_VEGETATION),
    ClassSpec(7, "coniferous_forest", "#1b4d3e", 0.72,
              ((110, 20, 0.08), (290, 20, -0.08)),
              timing_sd=5, amp_sd=0.10, base_sd=0.03, background="forest_floor",
              vegetation="needleleaf", weight=1.5, scl=SCL_VEGETATION),
    ClassSpec(8, "bare_urban", "#a0522d", 0.13, (),
              timing_sd=0, amp_sd=0.0, base_sd=0.02, background="urban", vegetation="crop",
              weight=1.0, scl=SCL_BARE),
    ClassSpec(9, "water", "#4363d8", -0.25, (),
              timing_sd=0, amp_sd=0.0, base_sd=0.03, background="water", vegetation="crop",
              weight=0.7, scl=SCL_WATER),
)


def logistic(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), elementwise (as 0.5 (1 + tanh(x / 2)))."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def class_ndvi(cls: int | str, doy: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Nominal (un-jittered) NDVI of a class at day(s) of year ``doy``; ``cls`` is id or name."""
    spec = _class_spec(cls)
    t = np.asarray(doy, dtype=np.float64)
    v = np.full(t.shape, spec.base, dtype=np.float64)
    for d0, rate, delta in spec.steps:
        v = v + delta * logistic((t - d0) / rate)
    return v


def _class_spec(cls: int | str) -> ClassSpec:
    for c in CLASSES:
        if cls == c.id or cls == c.name:
            return c
    raise ConfigError(f"unknown synthetic class {cls!r} (known: {', '.join(c.name for c in CLASSES)})")
