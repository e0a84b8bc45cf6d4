"""Does a model fit a source? One check, before anything is computed, wherever a model meets a
stack: when either is chosen in the panel, in the Processing algorithms' parameter check, and in
every map run of the command line and the library (:class:`pimc_core.maps.run.MapRun`).

:func:`check_model_source` loads and binds the model, then refuses in one sentence that names
both sides:

* bands: a band the model's indices or patches need and the source lacks
  (``model landsat.pimc needs band 'blue' (for evi) …; source … has red, nir, swir1``);
* season and date grid (:func:`pimc_core.maps.season.check_season`), with the sensors of both
  sides when the model file recorded its training stack;
* pixel size: a model that reads image patches and a source whose pixels cover another ground
  size (more than 1.5 times apart: the patches would show another area). A pixel-only model is
  not tied to a resolution, and no model is tied to a CRS.

What fits is summed up in one line (:attr:`ModelFit.summary`) for status lines.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pimc_core.errors import BandError, ConfigError
from pimc_core.io.sensors import PRESETS
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.protocol import ModelInfo, PixelModel, load_model, model_info, prepare_model
from pimc_core.maps.season import check_season

__all__ = ["ModelFit", "check_model_source", "describe_trained", "model_name", "trained_stack"]

#: Pixel sizes further apart than this factor do not fit a model that reads image patches.
PIXEL_SIZE_FACTOR = 1.5
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class ModelFit:
    """A model bound to a source that fits it.

    Attributes:
        model: the loaded, prepared model.
        info: its attributes checked against the source (:func:`~pimc_core.maps.protocol.model_info`).
        name: how messages call it (its file name).
        summary: one line: ``"model m.pimc fits: ndvi, evi, savi from blue, red, nir; 24 dates …"``.
    """

    model: PixelModel
    info: ModelInfo
    name: str
    summary: str


def model_name(ref: Any, model: Any) -> str:
    """How messages call a model: its file name, else its class."""
    if isinstance(ref, functools.partial) and ref.args and isinstance(ref.args[0], (str, os.PathLike)):
        ref = ref.args[0]
    if isinstance(ref, (str, os.PathLike)):
        return Path(ref).name
    return type(model).__name__


def trained_stack(model: Any) -> Mapping[str, Any]:
    """What the model file recorded of its training stack (``TimeSeries.record``), or ``{}``."""
    meta = getattr(model, "metadata", None) or {}
    return (meta.get("training") or {}).get("stack") or {}


def _sensor(record: Mapping[str, Any]) -> str:
    preset = PRESETS.get(record.get("preset") or "")
    bands = ", ".join(record.get("bands") or ())
    return f"{preset.title if preset else 'unknown sensor'} data ({bands})" if bands else \
        (preset.title if preset else "unknown sensor")


def _source_sensor(source: TimeSeries) -> str:
    return _sensor({"preset": source.preset, "bands": source.band_names})


def _metres(size: float, geographic: bool) -> float:
    return size * _METRES_PER_DEGREE if geographic else size


def _check_bands(model: Any, source: TimeSeries, name: str) -> None:
    from pimc_core.io.sensors import RADAR_BANDS
    from pimc_core.series.indices import INDICES

    indices = tuple(str(i).lower() for i in getattr(model, "indices", ()) or ())
    patch_bands = tuple(getattr(model, "patch_bands", ()) or ()) if getattr(model, "patch_size", 0) else ()
    for band in [b for i in indices if i in INDICES for b in INDICES[i][1]] + list(patch_bands):
        if band in source.band_names:
            continue
        users = [i for i in indices if i in INDICES and band in INDICES[i][1]]
        why = f"for {', '.join(users)}" if users else "for its image patches"
        trained = trained_stack(model)
        origin = f", trained on {_sensor(trained)}" if trained else ""
        raise BandError(
            f"model {name} needs band '{band}' ({why}; it reads {', '.join(indices)}{origin}); source "
            f"{source.source} has {', '.join(source.band_names)} ({source.reading}): choose a source with "
            f"'{band}' or a model trained without it"
            + (" (a radar band: give the Sentinel-1 source with --sar S1_SOURCE)" if band in RADAR_BANDS else "")
        )


def _check_pixel_size(info: ModelInfo, trained: Mapping[str, Any], source: TimeSeries, name: str) -> None:
    size = trained.get("pixel_size")
    if not info.patch_size or not size:
        return
    t = source.grid.transform
    geographic = bool(source.grid.crs and source.grid.crs.is_geographic)
    ours = _metres(abs(float(t.a)), geographic)
    theirs = _metres(float(size[0]), bool(trained.get("geographic")))
    if max(ours, theirs) / max(min(ours, theirs), 1e-12) > PIXEL_SIZE_FACTOR:
        raise ConfigError(
            f"model {name} reads {info.patch_size}×{info.patch_size}-pixel patches of {theirs:g} m pixels (trained on "
            f"{_sensor(trained)}, {trained.get('crs', '?')}); source {source.source} has {ours:g} m pixels "
            f"({source.grid.crs and source.grid.crs.to_string() or 'no CRS'}): resample the source to {theirs:g} m "
            f"or use a model trained at its resolution"
        )


def check_model_source(model: Any, source: TimeSeries, name: str | None = None, device: Any = None) -> ModelFit:
    """Load ``model`` (a PixelModel, a ``.pimc`` path or a factory), bind it to ``source`` and check
    that it fits (see the module docstring); nothing is read from the source's pixels.

    Args:
        model: the model or its reference.
        source: the stack the map would be computed from.
        name: how messages call the model (default: its file name).
        device: where a model file's network runs (None: the CPU).

    Raises:
        BandError: a band the model needs is missing. ConfigError: another season or date grid,
            another pixel size for a patch model, or an unusable model. InputError: no model file.
    """
    loaded = load_model(model, device) if device is not None else load_model(model)
    name = name or model_name(model, loaded)
    select = getattr(loaded, "select_inputs", None)
    if callable(select):  # a model that reads what the source gives (a radar modality): before the band check
        select(source)
    _check_bands(loaded, source, name)
    prepare_model(loaded, source)
    info = model_info(loaded, source)
    trained = trained_stack(loaded)
    try:
        check_season(loaded, source, name)
    except ConfigError as e:
        if not trained:
            raise
        raise ConfigError(f"{e} (model: {_sensor(trained)}; source: {_source_sensor(source)})") from None
    _check_pixel_size(info, trained, source, name)
    dates = info.target_dates
    span = (f"a {len(dates)}-date grid {dates[0]}..{dates[-1]}" if dates else f"{len(source)} observed dates")
    summary = (f"model {name} fits {Path(str(source.source)).name}: {', '.join(info.indices)} from "
               f"{', '.join(info.bands)}; {span}; source read as {source.reading}")
    return ModelFit(loaded, info, name, summary)


def describe_trained(model: Any) -> str:
    """One line about the stack a model was trained on, or '' when the file did not record it."""
    rec = trained_stack(model)
    if not rec:
        return ""
    return f"trained on {_sensor(rec)} {rec.get('first')}..{rec.get('last')} ({rec.get('n_dates')} dates)"

