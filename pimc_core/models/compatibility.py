"""Can these data be fed to that model? :func:`check_compatible` compares a model's metadata
(:mod:`pimc_core.models.model_metadata`) with the indices, bands, number of dates and patch size
of the data, and names what is missing or different (a band a model's index needs, another date
count, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pimc_core.errors import BandError, ConfigError
from pimc_core.models.model_metadata import ModelMetadata, as_metadata

__all__ = ["check_compatible"]


def check_compatible(
    metadata: ModelMetadata | Mapping[str, Any],
    *,
    indices: Iterable[str] | None = None,
    bands: Iterable[str] | None = None,
    n_dates: int | None = None,
    patch_size: int | None = None,
) -> tuple[str, ...]:
    """Check that data can be fed to a model; return the reflectance bands the model needs.

    Args:
        metadata: The model's metadata (dict from :func:`load_model` or :class:`ModelMetadata`).
        indices: Index names the caller intends to feed (e.g. from a config); must equal the
            model's ``indices`` (same names, same order). ``None`` skips the check.
        bands: Canonical band names available in the data (e.g. ``TimeSeries.band_names``):
            they must include every band needed by the model's indices and every band the
            model reads directly. ``None`` skips the check.
        n_dates: Time steps the data will have when it reaches the model (after resampling
            for a ``"grid"`` model). ``None`` skips the check.
        patch_size: Side of the image patches that will be extracted. ``None`` skips the check.

    Returns:
        Canonical band names the model needs, each once: index bands first (in order of first
        need), then directly-read bands.

    Raises:
        BandError: The data lacks a band, e.g. ``model expects indices ndvi,evi,savi; data lacks
            band 'blue' needed for evi``.
        ConfigError: Different indices, number of dates or patch size than the model's, or
            invalid metadata.
    """
    from pimc_core.series.indices import INDICES, required_bands

    meta = as_metadata(metadata)
    needed: dict[str, None] = {}
    if meta.indices:
        needed.update(dict.fromkeys(required_bands(meta.indices)))
    needed.update(dict.fromkeys(meta.bands))

    if indices is not None:
        given = [str(i).strip().lower() for i in ([indices] if isinstance(indices, str) else indices)]
        if given != meta.indices:
            raise ConfigError(
                f"model expects indices {','.join(meta.indices) or '(none)'} (in this order); "
                f"got {','.join(given) or '(none)'}"
            )
    if bands is not None:
        have = {str(b).strip().lower() for b in ([bands] if isinstance(bands, str) else bands)}
        for name in meta.indices:
            missing = [b for b in INDICES[name][1] if b not in have]
            if missing:
                what = "band" if len(missing) == 1 else "bands"
                raise BandError(
                    f"model expects indices {','.join(meta.indices)}; data lacks {what} "
                    f"{', '.join(repr(b) for b in missing)} needed for {name}"
                )
        missing = [b for b in meta.bands if b not in have]
        if missing:
            what = "band" if len(missing) == 1 else "bands"
            raise BandError(
                f"model reads bands {','.join(meta.bands)}; data lacks {what} {', '.join(repr(b) for b in missing)}"
            )
    if n_dates is not None and meta.n_dates is not None and int(n_dates) != meta.n_dates:
        how = (
            "resample the series onto the model's date grid"
            if meta.dates and meta.dates.get("mode") == "grid"
            else "the model uses the observed dates, so the data needs exactly that many"
        )
        raise ConfigError(f"model expects {meta.n_dates} dates; data has {int(n_dates)} ({how})")
    if patch_size is not None and meta.patch_size is not None and int(patch_size) != meta.patch_size:
        raise ConfigError(f"model expects {meta.patch_size}x{meta.patch_size} patches; got patch_size {int(patch_size)}")
    return tuple(needed)
