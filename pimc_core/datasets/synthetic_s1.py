"""The synthetic scene seen by a Sentinel-1-like radar: VV and VH backscatter of the same field
mosaic, on the same grid, with its own acquisitions every 6–12 days whatever the clouds.

Each field's backscatter follows a water-cloud model (Attema & Ulaby 1978) driven by its
biomass through the season, for which the field's own noise-free NDVI curve
(:meth:`~pimc_core.datasets.synthetic_scene.SyntheticScene.field_ndvi`) is the proxy::

    σ⁰_p = W_p + A_p · B · (1 − τ²_p) + τ²_p · σ⁰_soil,p,    τ²_p = exp(−2 · b_p · B),   p ∈ {VV, VH}

with B the biomass proxy (NDVI rescaled to 0–1), ``A`` the canopy's volume scattering, ``b`` its
attenuation (vertical stems attenuate VV more than VH), ``W`` a constant woody (trunk and
branch) term, and the soil term rising with the scene's soil moisture, which jumps after each
rain event and dries out over a few days. Each class has its own structure terms
(:data:`RADAR_RESPONSES`): crops differ by canopy structure as well as timing, forests keep a
high cross-polarised return all year, built-up areas a bright double bounce, water a dark,
wind-roughened surface. Every pixel then gets a small static texture and multiplicative speckle,
gamma-distributed with ``looks`` looks (mean 1), independently per date and polarisation.

Everything draws from its own random stream (seeded from the scene's seed), so writing the radar
stack leaves the optical files as they are. Nothing here writes files
(:mod:`pimc_core.datasets.synthetic` does).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from pimc_core.datasets.synthetic_classes import CLASSES
from pimc_core.datasets.synthetic_scene import SyntheticScene, smooth_noise

__all__ = ["RADAR_RESPONSES", "RadarResponse", "SyntheticRadar", "simulate_radar"]


@dataclass(frozen=True)
class RadarResponse:
    """Backscatter structure terms of one class (linear σ⁰ unless said otherwise).

    Attributes:
        a_vv, a_vh: canopy volume scattering at full biomass.
        b_vv, b_vh: canopy attenuation per unit biomass (two-way loss ``exp(-2 b B)``).
        w_vv, w_vh: constant woody / double-bounce term.
        soil_db: dry-soil VV σ⁰ in dB (VH is 9 dB lower).
        moisture_db: rise of the soil σ⁰ in dB from dry to saturated soil.
        wind_db: standard deviation in dB of a date's surface roughness (water: wind).
    """

    a_vv: float
    a_vh: float
    b_vv: float
    b_vh: float
    w_vv: float = 0.0
    w_vh: float = 0.0
    soil_db: float = -15.0
    moisture_db: float = 6.0
    wind_db: float = 0.0


#: Structure terms by class name (the classes of :data:`~pimc_core.datasets.synthetic_classes.CLASSES`).
RADAR_RESPONSES: dict[str, RadarResponse] = {
    "winter_wheat": RadarResponse(0.10, 0.040, 1.4, 0.45),  # vertical stems: VV attenuated
    "maize": RadarResponse(0.20, 0.080, 0.9, 0.30),  # tall, large biomass
    "soybean": RadarResponse(0.14, 0.060, 0.4, 0.25),  # broad leaves, little attenuation
    "sunflower": RadarResponse(0.22, 0.065, 0.6, 0.30),
    "grassland": RadarResponse(0.06, 0.020, 0.3, 0.20, soil_db=-13.0, moisture_db=4.0),
    "deciduous_forest": RadarResponse(0.06, 0.020, 0.6, 0.4, w_vv=0.09, w_vh=0.028, moisture_db=2.0),
    "coniferous_forest": RadarResponse(0.03, 0.010, 0.8, 0.5, w_vv=0.11, w_vh=0.035, moisture_db=1.5),
    "bare_urban": RadarResponse(0.0, 0.0, 0.0, 0.0, w_vv=0.35, w_vh=0.045, soil_db=-10.0, moisture_db=1.0),
    "water": RadarResponse(0.0, 0.0, 0.0, 0.0, soil_db=-17.0, moisture_db=0.0, wind_db=3.0),
}

_VH_SOIL_DB = -9.0  # VH soil σ⁰ relative to VV
_NDVI_BARE, _NDVI_FULL = 0.15, 0.85  # NDVI of no and of full biomass (B = 0, 1)
_LOOKS = 4.4  # equivalent number of looks of Sentinel-1 IW GRD high resolution


def _acquisition_days(rng: np.random.Generator, year: int) -> list[dt.date]:
    """Dates of the year every 6–12 days (uniform integer steps) from a start in the first week."""
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    day = start + dt.timedelta(days=int(rng.integers(0, 6)))
    out = []
    while day <= end:
        out.append(day)
        day += dt.timedelta(days=int(rng.integers(6, 13)))
    return out


def _soil_moisture(rng: np.random.Generator, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(daily relative soil moisture 0–1 of the scene, shape (n_days,); rain days, 0-based).

    A seasonal base (wetter in winter) plus a bump after each rain event (about one every 8 days,
    amounts exponential) drying out with a 3-day e-folding time.
    """
    days = np.arange(n_days, dtype=np.float64)
    base = 0.30 + 0.15 * np.cos(2 * math.pi * (days - 15) / 365.0)
    rain_days = np.flatnonzero(rng.random(n_days) < 1 / 8)
    bump = np.zeros(n_days)
    for d, amount in zip(rain_days, rng.exponential(0.35, rain_days.size)):
        bump[d:] += amount * np.exp(-(days[d:] - d) / 3.0)
    return np.clip(base + bump, 0.0, 1.0), rain_days


@dataclass(frozen=True)
class SyntheticRadar:
    """The radar view of a :class:`SyntheticScene`, ready to render date by date.

    Attributes:
        dates: the T radar acquisition dates (their own, every 6–12 days).
        sigma0: (T, 2, F) float64 noise-free linear σ⁰ (VV, VH) of each field and date.
        biomass: (T, F) the biomass proxy B (0–1) of each field and date.
        moisture: (T,) the scene's relative soil moisture on each date.
        rain_days: days of year (1-based) with a rain event.
        fields: (H, W) field index 0..F-1 (the scene's).
        texture: (2, H, W) static multiplicative texture per polarisation.
        looks: the number of looks of the gamma speckle.
        nodata_date: date index with a no-data strip (value 0) at the left edge (-1: none).
        noise_date: date index with a border-noise strip (σ⁰ below −30 dB) at the right edge.
        date_seeds: one seed per date for :meth:`render`.
    """

    dates: list[dt.date]
    sigma0: np.ndarray
    biomass: np.ndarray
    moisture: np.ndarray
    rain_days: np.ndarray
    fields: np.ndarray
    texture: np.ndarray
    looks: float
    nodata_date: int
    noise_date: int
    date_seeds: list[np.random.SeedSequence] = field(repr=False)

    def render(self, t: int) -> np.ndarray:
        """Date ``t``: (2, H, W) float32 linear σ⁰ (VV, VH) with speckle; 0 where no data."""
        rng = np.random.default_rng(self.date_seeds[t])
        h, w = self.fields.shape
        mean = self.sigma0[t][:, self.fields] * self.texture  # (2, H, W)
        out = (mean * rng.gamma(self.looks, 1.0 / self.looks, size=mean.shape)).astype(np.float32)
        strip = max(1, w // 8)
        if t == self.nodata_date:
            out[:, :, :strip] = 0.0
        if t == self.noise_date:  # thermal noise at the swath border, about -33 dB
            out[:, :, w - strip:] = np.float32(10 ** (-3.3)) * rng.uniform(0.5, 1.0, (2, h, strip)).astype(np.float32)
        return out


def simulate_radar(scene: SyntheticScene, seed: int, looks: float = _LOOKS) -> SyntheticRadar:
    """The radar view of ``scene`` (drawn by :func:`~pimc_core.datasets.synthetic_scene.simulate_scene`
    with the same ``seed``), deterministic, from a random stream of its own.

    Args:
        scene: the simulated scene (its fields, classes and NDVI curves).
        seed: the scene's seed.
        looks: number of looks of the speckle (gamma shape; more looks, less speckle).
    """
    ss = np.random.SeedSequence([int(seed), 0x51A1])
    s_main, s_tex, *s_date = ss.spawn(2 + 400)
    rng = np.random.default_rng(s_main)
    year = scene.dates[0].year
    dates = _acquisition_days(rng, year)
    n_days = (dt.date(year, 12, 31) - dt.date(year, 1, 1)).days + 1
    moisture_daily, rain = _soil_moisture(rng, n_days)
    doys = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    moisture = moisture_daily[doys.astype(int) - 1]  # (T,)

    f_class = scene.field_class
    resp = [RADAR_RESPONSES[CLASSES[c - 1].name] for c in f_class]

    def terms(name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in resp])[None, :]  # (1, F)

    biomass = np.clip((scene.field_ndvi(doys).T - _NDVI_BARE) / (_NDVI_FULL - _NDVI_BARE), 0.0, 1.0)  # (T, F)
    drainage = rng.uniform(0.7, 1.3, f_class.size)[None, :]  # field-to-field soil moisture differences
    roughness = rng.normal(0.0, 1.0, f_class.size)[None, :]  # dB, per field (tillage)
    wind = rng.normal(0.0, 1.0, (len(dates), f_class.size)) * terms("wind_db")
    soil_vv_db = terms("soil_db") + roughness + terms("moisture_db") * np.clip(moisture[:, None] * drainage, 0, 1) + wind
    out = np.empty((len(dates), 2, f_class.size))
    for p, (pol, soil_offset) in enumerate((("vv", 0.0), ("vh", _VH_SOIL_DB))):
        tau2 = np.exp(-2.0 * terms(f"b_{pol}") * biomass)
        soil = 10.0 ** ((soil_vv_db + soil_offset) / 10.0)
        out[:, p] = terms(f"w_{pol}") + terms(f"a_{pol}") * biomass * (1.0 - tau2) + tau2 * soil
    rng_tex = np.random.default_rng(s_tex)
    size = scene.size
    texture = np.stack([10.0 ** (0.05 * smooth_noise(rng_tex, size, size, 2.0)) for _ in range(2)])
    n = len(dates)
    nodata_date, noise_date = (int(v) for v in rng.choice(np.arange(1, n), size=2, replace=False))
    return SyntheticRadar(
        dates=dates, sigma0=out, biomass=biomass, moisture=moisture, rain_days=rain + 1, fields=scene.fields,
        texture=texture, looks=float(looks), nodata_date=nodata_date, noise_date=noise_date,
        date_seeds=list(s_date[:n]))
