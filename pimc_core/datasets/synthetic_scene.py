"""The synthetic scene: a field mosaic whose classes each follow their own NDVI phenology
(:mod:`pimc_core.datasets.synthetic_classes`), seen through Sentinel-2 L2A-like acquisitions with
clouds, shadows and cirrus.

Every class's NDVI phenology (a sum of logistic steps) is jittered per field; all five
reflectances (blue, green, red, nir, swir1) are a linear mix of a background and a vegetation
endmember whose vegetation fraction is solved so that the clear-sky NDVI equals the phenology
curve. Several crop classes share the same endmembers, so they differ only by timing and
amplitude: temporal models matter. :func:`simulate_scene` draws a scene; its
:meth:`SyntheticScene.render` gives one date as digital numbers with an SCL band. Nothing here
writes files (:mod:`pimc_core.datasets.synthetic` does).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from pimc_core.datasets.synthetic_classes import (
    BAND_NAMES,
    CLASSES,
    ENDMEMBERS,
    SCL_BARE,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_SHADOW,
    SCL_VEGETATION,
    SCL_WATER,
    logistic,
)

__all__ = ["SyntheticScene", "simulate_scene", "smooth_noise"]

_SCALE = 1e-4  # reflectance = DN * 1e-4
_RED, _NIR = BAND_NAMES.index("red"), BAND_NAMES.index("nir")
_CLOUD_SPECTRUM = np.array([0.46, 0.44, 0.43, 0.46, 0.31], dtype=np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, corr: float) -> np.ndarray:
    """Stationary smooth random field (float32, ~N(0, 1)) with correlation length ~``corr`` px.

    White noise on a coarse grid, blurred, then bilinearly upsampled: O(h*w), no big FFTs.
    """
    from scipy.ndimage import gaussian_filter

    step = max(1.0, corr / 2.0)
    lh = int(math.ceil(h / step)) + 3
    lw = int(math.ceil(w / step)) + 3
    g = rng.standard_normal((lh, lw), dtype=np.float32)
    g = gaussian_filter(g, sigma=1.0, mode="wrap")
    g = (g - g.mean()) / (g.std() + 1e-12)
    r = np.arange(h, dtype=np.float32) / step + 1.0
    c = np.arange(w, dtype=np.float32) / step + 1.0
    r0 = r.astype(np.int64)
    c0 = c.astype(np.int64)
    fr = (r - r0)[:, None]
    fc = (c - c0)[None, :]
    a = g[r0] * (1.0 - fr) + g[r0 + 1] * fr  # (h, lw)
    return (a[:, c0] * (1.0 - fc) + a[:, c0 + 1] * fc).astype(np.float32, copy=False)



def _make_dates(rng: np.random.Generator, year: int, n: int) -> list[dt.date]:
    n_days = 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365
    step = n_days / n
    jitter = min(3.0, step / 3.0)
    doy = np.rint((np.arange(n) + 0.5) * step + rng.uniform(-jitter, jitter, n)).astype(int)
    doy = np.clip(doy, 1, n_days)
    for i in range(1, n):  # strictly increasing, within the year
        doy[i] = max(doy[i], doy[i - 1] + 1)
    for i in range(n - 1, -1, -1):
        doy[i] = min(doy[i], n_days - (n - 1 - i))
    start = dt.date(year, 1, 1)
    return [start + dt.timedelta(days=int(d) - 1) for d in doy]


def _make_fields(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    """Voronoi field mosaic with spatially varying density: ids 0..F-1 (int32, all present)."""
    from scipy.spatial import cKDTree

    mean_area = 10.0 * math.sqrt(size)
    n_seeds = max(3 * k, int(round(size * size / mean_area)))
    # density grid: fields are small where the density is high, large where it is low
    dens = np.exp(1.3 * smooth_noise(rng, size, size, max(4.0, size / 4.0)))[::2, ::2].ravel()
    cells = rng.choice(dens.size, size=n_seeds, replace=True, p=dens / dens.sum())
    dw = (size + 1) // 2
    sy = (cells // dw) * 2 + rng.uniform(0, 2, n_seeds)
    sx = (cells % dw) * 2 + rng.uniform(0, 2, n_seeds)
    # slight anisotropy (fields elongated along one axis) makes the cells look more like parcels
    aniso = 1.6
    tree = cKDTree(np.column_stack([sy * aniso, sx]))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    _, nearest = tree.query(np.column_stack([yy.ravel() * aniso, xx.ravel()]), k=1, workers=-1)
    _, ids = np.unique(nearest, return_inverse=True)  # contiguous, every id has >= 1 pixel
    return ids.reshape(size, size).astype(np.int32)


def _assign_classes(rng: np.random.Generator, n_fields: int, k: int) -> np.ndarray:
    """Class id (1..k) per field; every class gets >= 2 fields when there are >= 2k fields."""
    w = np.array([c.weight for c in CLASSES[:k]])
    cls = rng.choice(np.arange(1, k + 1), size=n_fields, p=w / w.sum())
    order = rng.permutation(n_fields)
    reps = 2 if n_fields >= 2 * k else 1
    guaranteed = np.tile(np.arange(1, k + 1), reps)
    cls[order[: guaranteed.size]] = guaranteed
    return cls.astype(np.int64)


def _sparse_fields(rng: np.random.Generator, field_class: np.ndarray, k: int, frac: float) -> np.ndarray:
    """Boolean per field: keeps its label in labels_sparse (>= 1 per class, >= 1 held out when
    the class has >= 2 fields)."""
    n = field_class.size
    keep = np.zeros(n, dtype=bool)
    if frac >= 1.0:
        keep[:] = True
        return keep
    reserved = np.zeros(n, dtype=bool)
    for c in range(1, k + 1):
        idx = rng.permutation(np.flatnonzero(field_class == c))
        keep[idx[0]] = True
        if idx.size >= 2:
            reserved[idx[1]] = True
    quota = max(int(round(frac * n)), int(keep.sum()))
    free = rng.permutation(np.flatnonzero(~keep & ~reserved))
    keep[free[: quota - int(keep.sum())]] = True
    return keep


def _field_draws(rng: np.random.Generator, n: int) -> np.ndarray:
    """(F, 11) standard-normal draws of each field's phenology: timing shift, amplitude, base,
    and one extra timing jitter per logistic step (8)."""
    shift = rng.standard_normal(n)
    amp = rng.standard_normal(n)
    base = rng.standard_normal(n)
    step_jit = rng.standard_normal((n, 8))
    return np.column_stack([shift, amp, base, step_jit])


#: The grassland class's id and its nominal cut: the indices of its two steps in ``ClassSpec.steps``.
_GRASSLAND = next(c.id for c in CLASSES if c.name == "grassland")
_GRASS_CUT_STEPS = (1, 2)


def _mowing(rng: np.random.Generator, field_class: np.ndarray) -> np.ndarray:
    """(F, 3, 2) each grassland field's own cuts as (day of year, NDVI drop), NaN rows for no cut.

    A meadow is cut 0 to 3 times (equally likely), on dates drawn between day 130 and 270 at least
    30 days apart, each cut taking away 0.12 to 0.35 of NDVI; other classes get no row. A meadow
    without a cut is a pasture: grazed, its level lowered by up to 0.1 from spring to autumn."""
    out = np.full((field_class.size, 3, 2), np.nan)
    grass = np.flatnonzero(field_class == _GRASSLAND)
    for f in grass:
        k = int(rng.integers(0, 4))
        days: list[float] = []
        while len(days) < k:
            d = float(rng.uniform(130, 270))
            if all(abs(d - e) >= 30 for e in days):
                days.append(d)
        for j, d in enumerate(sorted(days)):
            out[f, j] = (d, rng.uniform(0.12, 0.35))
        if k == 0:
            out[f, 0] = (-1.0, rng.uniform(0.0, 0.1))  # grazing: day -1 marks it
    return out


def _cut_curve(cuts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n, T) NDVI change of fields with ``cuts`` (n, 3, 2) at days ``t`` (1, T): each cut a drop
    over a few days and a regrowth of 80 % of it over the next three weeks; grazing (day -1) a
    lowering over the season."""
    v = np.zeros((cuts.shape[0], t.shape[-1]))
    for j in range(cuts.shape[1]):
        d, drop = cuts[:, j, :1], cuts[:, j, 1:]
        ok = np.isfinite(d) & (d >= 0)
        cut = -drop * logistic((t - d) / 2.0) + 0.8 * drop * logistic((t - d - 17.0) / 6.0)
        graze = -drop * (logistic((t - 110.0) / 15.0) - logistic((t - 290.0) / 15.0))
        v += np.where(ok, cut, np.where(np.isfinite(d), graze, 0.0))
    return v


def _field_ndvi(draws: np.ndarray, field_class: np.ndarray, doys: np.ndarray,
                cuts: np.ndarray | None = None) -> np.ndarray:
    """Per-field jittered NDVI curves at days of year ``doys``, shape (F, T) (draws: :func:`_field_draws`;
    ``cuts``: :func:`_mowing`, each meadow's own cuts instead of the class's one)."""
    n = field_class.size
    out = np.empty((n, doys.size), dtype=np.float64)
    shift, amp, base, step_jit = draws[:, 0], draws[:, 1], draws[:, 2], draws[:, 3:]
    for c in np.unique(field_class):
        spec = CLASSES[int(c) - 1]
        m = field_class == c
        t = doys[None, :]
        v = np.broadcast_to((spec.base + spec.base_sd * base[m])[:, None], (int(m.sum()), doys.size)).copy()
        a = 1.0 + spec.amp_sd * amp[m]
        own_cuts = cuts is not None and int(c) == _GRASSLAND
        for j, (d0, rate, delta) in enumerate(spec.steps):
            if own_cuts and j in _GRASS_CUT_STEPS:
                continue
            d = d0 + spec.timing_sd * shift[m]
            if spec.timing_sd > 0:
                d = d + 3.0 * step_jit[m, j]
            v += (delta * a)[:, None] * logistic((t - d[:, None]) / rate)
        if own_cuts:
            v += _cut_curve(cuts[m], t)
        out[m] = v
    return out


#: (5,) relative path reflectance of an aerosol residual in blue, green, red, NIR, SWIR1
#: (Angstrom-like fall-off with wavelength, exponent 1.5, blue = 1).
_HAZE_WEIGHTS = (np.array([490.0, 560.0, 665.0, 842.0, 1610.0]) / 490.0) ** -1.5

_SUN_DIR = np.array([-1.0, -0.6]) / math.hypot(1.0, 0.6)  # (dy, dx): shadows fall north-west


def _render_date(r: np.random.Generator, size: int, spec: np.ndarray, scl_field: np.ndarray,
                 flat_fields: np.ndarray, texture: np.ndarray, noise: float, cover: float,
                 cirrus_date: bool, nodata_strip: bool, corr: float, leak: float = 0.0,
                 haze: np.ndarray | None = None) -> np.ndarray:
    """One date: (6, H, W) uint16 = 5 reflectance bands as DN + SCL band.

    ``spec`` (5, F) clear-sky reflectance per field, ``scl_field`` (F,) clear SCL per field.
    ``leak`` > 0: thin cloud around every cloud that the SCL band does not flag (a band along the
    cloud's edge, ``leak`` times a quarter of the cloud field's standard deviation wide, its opacity
    rising from 0 to the flagged cloud's 0.45 at the edge), as a real scene-classification mask
    misses cloud edges. ``haze`` (5, H, W): reflectance left by an imperfect atmospheric
    correction, added to the surface and flagged nowhere (:meth:`SyntheticScene.haze_residual`).
    """
    surf = np.take(spec, flat_fields, axis=1).reshape(5, size, size)  # float32
    surf *= texture[None]
    if noise > 0:
        eps = r.standard_normal(surf.shape, dtype=np.float32)
        eps *= np.float32(noise)
        surf += eps
        del eps
    if haze is not None:
        surf += haze
    scl = np.take(scl_field, flat_fields).reshape(size, size)
    if cover > 0.002:
        f_cirrus = 0.3 * cover if cirrus_date else 0.0
        f_cloud = cover - f_cirrus
        v = smooth_noise(r, size, size, corr)
        v += 0.35 * smooth_noise(r, size, size, corr / 4.0)
        sub = max(1, size // 128)
        thr = np.float32(np.quantile(v[::sub, ::sub], 1.0 - f_cloud))
        cloud = v > thr
        opacity = np.clip(np.float32(0.45) + np.float32(0.8) * (v - thr), 0.0, 1.0)
        opacity[~cloud] = 0.0
        if leak > 0:  # unflagged halo: no random draw, so the rest of the date is as without it
            thr_lo = thr - np.float32(0.25 * leak)  # a band along the cloud's edge (v is about N(0, 1))
            halo = (v > thr_lo) & ~cloud
            opacity[halo] = np.float32(0.45) * (v[halo] - thr_lo) / max(float(thr - thr_lo), 1e-6)
        # shadow: the cloud mask displaced along the sun direction, darkening the surface
        dist = corr * r.uniform(0.4, 0.9)
        dy, dx = int(round(_SUN_DIR[0] * dist)), int(round(_SUN_DIR[1] * dist))
        shadow = np.zeros_like(cloud)
        ys, yd = (slice(-dy, None), slice(None, size + dy)) if dy < 0 else (slice(None, size - dy), slice(dy, None))
        xs, xd = (slice(-dx, None), slice(None, size + dx)) if dx < 0 else (slice(None, size - dx), slice(dx, None))
        shadow[yd, xd] = cloud[ys, xs]
        shadow &= ~cloud
        surf *= np.where(shadow, np.float32(r.uniform(0.35, 0.5)), np.float32(1.0))[None]
        scl[shadow] = SCL_SHADOW
        if f_cirrus > 0:
            vc = smooth_noise(r, size, size, corr * 1.5)
            thr_c = np.quantile(vc[::sub, ::sub], 1.0 - f_cirrus)
            cirrus = (vc > thr_c) & ~cloud
            opacity[cirrus] = np.float32(r.uniform(0.12, 0.25))
            scl[cirrus] = SCL_CIRRUS
        # clouds and cirrus: blend towards a bright, flat cloud spectrum
        cspec = (_CLOUD_SPECTRUM * np.float32(r.uniform(0.9, 1.1)))[:, None, None]
        surf += (cspec - surf) * opacity[None]
        scl[cloud] = np.where(opacity[cloud] >= 0.8, SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM)
    dn = np.empty((6, size, size), dtype=np.uint16)
    surf *= np.float32(1.0 / _SCALE)
    np.rint(surf, out=surf)
    np.clip(surf, 1, 65535, out=surf)  # 0 is reserved for nodata
    dn[:5] = surf
    dn[5] = scl
    if nodata_strip:  # a slanted no-data strip along the east edge (orbit edge)
        w0 = max(1, size // 16)
        rows = np.arange(size)[:, None]
        edge = np.arange(size)[None, :] >= size - w0 - (rows * 0.15).astype(int)
        dn[:, edge] = 0
    return dn



@dataclass(frozen=True)
class SyntheticScene:
    """A simulated field mosaic and its acquisition conditions, ready to render date by date.

    Attributes:
        size: side of the square scene in pixels (H = W = size).
        k: number of classes (the first ``k`` of :data:`CLASSES`).
        dates: the T acquisition dates.
        fields: (H, W) int32 field index 0..F-1.
        field_class: (F,) class id 1..k of each field.
        keep: (F,) bool, fields whose label is kept in the sparse labels.
        spectra: (T, 5, F) float32 clear-sky reflectance of each field and date.
        scl: (T, F) uint16 clear-sky SCL code of each field and date.
        texture: (H, W) multiplicative per-pixel texture (the same for every band and date).
        noise: per-observation reflectance noise (standard deviation).
        cover: (T,) cloud cover of each date. cirrus: (T,) bool, dates with cirrus.
        nodata_date: the date index with a no-data strip (-1: none).
        corr: correlation length of the cloud fields, in pixels.
        mask_leak: width of the unflagged thin cloud along each cloud's edge (0: every
            contaminated pixel is flagged in the SCL band; :func:`_render_date`).
        haze: standard deviation of each date's atmospheric-correction residual in the blue
            band, as reflectance (0: none; :meth:`haze_residual`).
        cuts: (F, 3, 2) each meadow's own cuts (day of year, NDVI drop; :func:`_mowing`), or None:
            every grassland field has the class's one cut, jittered.
        date_seeds: one seed per date for :meth:`render`.
        draws: (F, 11) each field's phenology draws (timing, amplitude, base, step jitters).
        ndvi_range: (F, 2) the NDVI a field's background / vegetation mix can show (its curve
            is clipped to it).
    """

    size: int
    k: int
    dates: list[dt.date]
    fields: np.ndarray
    field_class: np.ndarray
    keep: np.ndarray
    spectra: np.ndarray
    scl: np.ndarray
    texture: np.ndarray
    noise: float
    cover: np.ndarray
    cirrus: np.ndarray
    nodata_date: int
    corr: float
    date_seeds: list[np.random.SeedSequence] = field(repr=False)
    draws: np.ndarray | None = field(default=None, repr=False)
    ndvi_range: np.ndarray | None = field(default=None, repr=False)
    mask_leak: float = 0.0
    haze: float = 0.0
    cuts: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_fields(self) -> int:
        return int(self.field_class.size)

    def labels(self) -> np.ndarray:
        """(H, W) uint8 class id of every pixel."""
        return self.field_class[self.fields].astype(np.uint8)

    def sparse_labels(self) -> np.ndarray:
        """(H, W) uint8 class id on the kept fields, 0 elsewhere."""
        return np.where(self.keep[self.fields], self.labels(), 0).astype(np.uint8)

    def field_ids(self) -> np.ndarray:
        """(H, W) field ids 1..F (uint16, or int32 from 65535 fields on)."""
        return (self.fields + 1).astype(np.uint16 if self.n_fields < 65535 else np.int32)

    def field_ndvi(self, doys: np.ndarray) -> np.ndarray:
        """(F, D) each field's clear-sky NDVI curve (noise-free, as rendered) at days of year ``doys``."""
        doys = np.asarray(doys, np.float64)
        v = _field_ndvi(self.draws, self.field_class, doys, self.cuts)
        return np.clip(v, self.ndvi_range[:, :1], self.ndvi_range[:, 1:])

    def season(self, fraction: float = 0.2, min_amplitude: float = 0.1) -> dict[str, np.ndarray]:
        """The generator's own growing season of every pixel: the TIMESAT metrics
        (:func:`pimc_core.series.phenology.phenology_metrics`, the same threshold rule at
        ``fraction`` of the amplitude) of each field's noise-free daily NDVI curve over the
        year (a 5-day Savitzky-Golay window, which leaves these curves as they are).

        Returns:
            ``{metric: (H, W) float32}``; ``sos``, ``pos``, ``eos`` as day of year of the
            scene's year; NaN where the field's amplitude is below ``min_amplitude`` (bare soil,
            water).
        """
        from pimc_core.series.phenology import PhenologyParams, phenology_metrics

        year = self.dates[0].year
        doys = np.arange(1, (dt.date(year, 12, 31) - dt.date(year, 1, 1)).days + 2, dtype=np.float64)
        params = PhenologyParams(step_days=1, window_days=5, fraction=fraction, min_amplitude=min_amplitude)
        per_field = phenology_metrics(self.field_ndvi(doys), doys, params)
        return {m: v[self.fields] for m, v in per_field.items()}

    def haze_residual(self, t: int) -> np.ndarray | None:
        """Date ``t``'s atmospheric-correction residual: (5, H, W) float32 reflectance, None
        without ``haze``.

        An aerosol error of the correction leaves (or removes) path reflectance that falls off
        with wavelength: ``a_t · (1 + 0.5 · s_t(x, y)) · (λ_b / 490 nm) ** -1.5`` for the bands
        (blue, green, red, NIR, SWIR1 at 490, 560, 665, 842, 1610 nm), with ``a_t ~ N(0, haze)``
        per date and ``s_t`` a smooth field over the scene (about N(0, 1), the clouds'
        correlation length x 2). Nothing flags it: it shifts the indices of every pixel of a date,
        EVI (blue) most. Drawn from a generator of its own, so the rest of the date is as without it.
        """
        if self.haze <= 0:
            return None
        ss = self.date_seeds[t]
        r = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 0x4A2E)))
        a = np.float32(r.normal(0.0, self.haze))
        spread = 1.0 + 0.5 * smooth_noise(r, self.size, self.size, self.corr * 2.0)
        return (a * spread[None] * _HAZE_WEIGHTS[:, None, None]).astype(np.float32)

    def render(self, t: int) -> np.ndarray:
        """Date ``t``: (6, H, W) uint16, five reflectance bands as DN and the SCL band."""
        return _render_date(
            np.random.default_rng(self.date_seeds[t]), self.size, self.spectra[t], self.scl[t],
            self.fields.ravel(), self.texture, self.noise, float(self.cover[t]), bool(self.cirrus[t]),
            t == self.nodata_date, self.corr, self.mask_leak, self.haze_residual(t))


def simulate_scene(size: int, n_dates: int, seed: int, year: int, k: int, cloud_fraction: float,
                   noise: float, sparse_label_fraction: float, variability: float = 1.0,
                   mask_leak: float = 0.0, haze: float = 0.0, mowing: bool = False) -> SyntheticScene:
    """The scene of :func:`pimc_core.datasets.synthetic.make_synthetic` (parameters checked there).

    ``mowing``: every meadow (grassland field) is managed its own way (:func:`_mowing`: 0 to 3 cuts
    on its own dates, or grazed) instead of the class's one cut at a jittered date.

    ``variability`` scales the field-to-field spread of a class: every field's phenology draws
    (timing shift, amplitude, base, the per-step timing jitter: the class's ``timing_sd``,
    ``amp_sd``, ``base_sd`` and the 3-day step jitter) and the spread of its vegetation
    endmember (5 %). 1.0 gives the scenes of earlier versions bit for bit; 2.0 fields of a class
    twice as different from each other (the other fields of a class look less like the labelled ones).

    Deterministic: the same arguments give the same scene (each part draws from its own
    ``numpy`` generator, spawned from ``seed``).
    """
    ss = np.random.SeedSequence([int(seed), 0x51D])
    s_scene, s_dates_seq, s_tex, *s_date = ss.spawn(3 + n_dates)
    rng = np.random.default_rng(s_scene)

    # ---- scene --------------------------------------------------------------------------
    dates = _make_dates(rng, year, n_dates)
    doys = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    fields0 = _make_fields(rng, size, k)  # 0..F-1
    n_fields = int(fields0.max()) + 1
    field_class = _assign_classes(rng, n_fields, k)
    keep = _sparse_fields(rng, field_class, k, float(sparse_label_fraction))
    draws = _field_draws(rng, n_fields) * float(variability)
    cuts = _mowing(np.random.default_rng(np.random.SeedSequence([int(seed), 0x51D, 0x30E])), field_class) \
        if mowing else None
    ndvi_f = _field_ndvi(draws, field_class, doys, cuts)  # (F, T)

    # endmembers per field, scaled per field (soil moisture / canopy structure)
    bg = np.array([ENDMEMBERS[CLASSES[c - 1].background] for c in field_class])  # (F, 5)
    veg = np.array([ENDMEMBERS[CLASSES[c - 1].vegetation] for c in field_class])
    bg = bg * rng.uniform(0.85, 1.15, (n_fields, 1))
    veg = veg * rng.normal(1.0, 0.05 * float(variability), (n_fields, 1))
    ndvi_bg = (bg[:, _NIR] - bg[:, _RED]) / (bg[:, _NIR] + bg[:, _RED])
    ndvi_veg = (veg[:, _NIR] - veg[:, _RED]) / (veg[:, _NIR] + veg[:, _RED])
    ndvi_range = np.column_stack([ndvi_bg + 0.002, ndvi_veg - 0.002])  # (F, 2) what a mix can show
    ndvi_f = np.clip(ndvi_f, ndvi_range[:, :1], ndvi_range[:, 1:])
    # vegetation fraction a giving exactly NDVI N for the mix a*veg + (1-a)*bg
    s_s = (bg[:, _NIR] + bg[:, _RED])[:, None]
    d_s = (bg[:, _NIR] - bg[:, _RED])[:, None]
    s_v = (veg[:, _NIR] + veg[:, _RED])[:, None]
    d_v = (veg[:, _NIR] - veg[:, _RED])[:, None]
    frac = (ndvi_f * s_s - d_s) / (d_v - d_s - ndvi_f * (s_v - s_s))
    frac = np.clip(frac, 0.0, 1.0)
    # (T, F, 5) clear-sky spectra per field and date
    spectra = (frac.T[:, :, None] * veg[None] + (1.0 - frac.T[:, :, None]) * bg[None]).astype(np.float32)
    is_water = np.array([CLASSES[c - 1].scl == SCL_WATER for c in field_class])
    is_bare = np.array([CLASSES[c - 1].scl == SCL_BARE for c in field_class])
    scl_f = np.where(is_water[None, :], SCL_WATER,
                     np.where(is_bare[None, :] | (ndvi_f.T < 0.3), SCL_BARE, SCL_VEGETATION)).astype(np.uint16)

    # per-pixel static texture (multiplicative, same for all bands: NDVI unchanged)
    rng_tex = np.random.default_rng(s_tex)
    texture = 1.0 + 0.03 * smooth_noise(rng_tex, size, size, 2.0)

    # ---- per-date acquisition conditions ---------------------------------------------------
    rd = np.random.default_rng(s_dates_seq)
    cf = float(cloud_fraction)
    if cf > 0:
        a_b = 0.8
        cover = np.minimum(rd.beta(a_b, a_b * (1 - cf) / cf, n_dates), 0.95)
    else:
        cover = np.zeros(n_dates)
    cirrus_date = rd.random(n_dates) < 0.3
    nodata_date = int(rd.integers(1, n_dates)) if n_dates >= 4 else -1
    corr = max(4.0, size / 6.0)

    return SyntheticScene(
        size=size, k=k, dates=dates, fields=fields0, field_class=field_class, keep=keep,
        spectra=np.ascontiguousarray(spectra.transpose(0, 2, 1)), scl=scl_f, texture=texture, noise=float(noise),
        cover=cover, cirrus=cirrus_date, nodata_date=nodata_date, corr=corr, date_seeds=list(s_date),
        draws=draws, ndvi_range=ndvi_range, mask_leak=float(mask_leak), haze=float(haze), cuts=cuts)
