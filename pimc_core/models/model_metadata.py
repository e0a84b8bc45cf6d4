"""The metadata of a ``.pimc`` model: its schema (format version 1) and its validation.

Metadata schema (format version 1)
----------------------------------
A plain JSON object, validated by :class:`ModelMetadata` (unknown keys are refused with a
:class:`~pimc_core.errors.ConfigError` naming them). Every key but ``format_version`` is
optional (``null`` / absent when it does not apply)::

    {
      "format_version": 1,                     # int; files with a newer version are refused
      "created": "2025-05-01T12:00:00Z",       # ISO 8601 UTC, filled in by save_model
      "pimc_version": "0.1.0",                 # PIMC that wrote the file, filled in by save_model
      "task": "pixel_classification",          # pixel_classification | forecast |
                                               # patch_classification | embedding
      "architecture": {                        # module -> constructor config (free-form JSON);
        "rp_encoder": {"kind": "rp", "in_channels": 3, "width": 32, ...},   # the keys of the
        "classifier": {"kind": "classifier", "n_classes": 18, ...}          # weights' modules
      },
      "indices": ["ndvi", "evi", "savi"],      # index channels, in channel order
      "bands": ["blue", "green", "red", "nir"],# canonical reflectance bands the model reads
                                               # directly (e.g. patch encoder), channel order
      "n_dates": 37,                           # T of the series / recurrence plots
      "dates": {"mode": "grid", "start_doy": 244, "step_days": 10},
               # "grid": series are resampled (pimc_core.series.gapfill.resample_to_dates) onto
               #   n_dates dates every step_days days from day-of-year start_doy (1-366) of the
               #   season's first year; an optional "start" (ISO date) records the training grid
               # "observed": the acquisition dates are used as they are; data must have
               #   exactly n_dates time steps
      "recurrence": {"dimension": 1, "time_delay": 1, "threshold": null, "percentage": 10},
               # parameters of pimc_core.series.recurrence (dimension / time_delay: int >= 1 or a
               #   fraction in (0, 1); threshold: null, "point", "distance" or a number > 0;
               #   percentage 0-100; size: int or null are checked; other keys are kept as given)
      "normalisation": {                       # standardisation x' = (x - mean) / std
        "bands":   {"mean": [...], "std": [...]},   # one value per entry of "bands"
        "indices": {"mean": [...], "std": [...]}    # one value per entry of "indices"
      },
      "patch_size": 9,                         # k of the (B, k, k) image patches
      "classes": [{"id": 1, "name": "Meadow", "color": "#aec7e8"}, ...],
               # output classes; ids unique ints, color "#rrggbb" or null
      "forecast_horizon": 6,                   # forecast steps (task "forecast")
      "training": {                            # free-form JSON summary of the training run
        "config": {...}, "seeds": [0], "epochs": 50, "losses": {"train": [...], "val": [...]},
        "dataset": "PASTIS folds 1-3"
      }
    }

Every field is declared (:func:`pimc_core.config.param`): the scalar ones with their constraint,
the nested ones (``dates``, ``recurrence``, ``normalisation``, ``classes``, ``architecture``,
``training``, and the ``indices`` and ``bands`` names) as checked and normalised by
:meth:`ModelMetadata._check`. This module imports neither torch nor
safetensors: the QGIS plugin reads a model's metadata with it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pimc_core.config import NO_VALIDATION, POSITIVE_INT, Checked, StrOptions, declared, param
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.sensors import CANONICAL_BANDS, RADAR_BANDS
from pimc_core.series.indices import INDICES

__all__ = ["FORMAT_VERSION", "ModelMetadata", "as_metadata", "check_module_name"]

#: Version of the ``.pimc`` layout and metadata schema written by this PIMC.
FORMAT_VERSION = 1

_TASKS = ("pixel_classification", "forecast", "patch_classification", "embedding")
_DATE_MODES = ("grid", "observed")
_RP_THRESHOLDS = ("point", "distance")
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def _jsonable(value: Any, where: str) -> Any:
    """Deep-copy ``value`` into plain JSON types (numpy scalars/arrays, tuples, paths, dates ok).

    Raises:
        ConfigError: A value that has no JSON form (the message names its key path).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"model metadata: {where} has a non-string key {k!r}")
            out[k] = _jsonable(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    # numpy / torch scalars and arrays, without importing either here
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return _jsonable(tolist(), where)
    raise ConfigError(f"model metadata: {where} is not JSON-serialisable ({type(value).__name__})")


def _check_keys(d: Any, allowed: Iterable[str], where: str) -> dict:
    if not isinstance(d, Mapping):
        raise ConfigError(f"model metadata: {where} must be a mapping; got {type(d).__name__}")
    allowed = tuple(allowed)
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ConfigError(
            f"model metadata: unknown key(s) {', '.join(map(repr, unknown))} in {where} "
            f"(allowed: {', '.join(allowed)})"
        )
    return dict(d)


def _pos_int(value: Any, where: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        rng = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ConfigError(f"model metadata: {where} must be an integer {rng}; got {value!r}")
    return int(value)


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"model metadata: {where} must be a list of strings; got {value!r}")
    out = []
    for v in value:
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"model metadata: {where} must be a list of non-empty strings; got {v!r}")
        out.append(v.strip().lower())
    if len(set(out)) != len(out):
        raise ConfigError(f"model metadata: {where} lists a name twice: {out}")
    return out


def _known_names(value: Any, where: str, what: str, known: Collection[str]) -> list[str]:
    """:func:`_str_list` whose names are all in ``known`` (``what``: one name, for the message)."""
    out = _str_list(value, where)
    unknown = [n for n in out if n not in known]
    if unknown:
        raise ConfigError(f"model metadata: unknown {what} {unknown[0]!r} in {where} (known: {', '.join(known)})")
    return out


def _numbers(value: Any, n: int, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ConfigError(f"model metadata: {where} must be a list of finite numbers; got {value!r}")
    if len(value) != n:
        raise ConfigError(f"model metadata: {where} has {len(value)} values; expected {n} (one per channel)")
    return [float(v) for v in value]


# --------------------------------------------------------------------------------------------
# metadata schema
# --------------------------------------------------------------------------------------------


@declared
@dataclass
class ModelMetadata(Checked):
    """Validated metadata of a ``.pimc`` model (see the module docstring for the schema).

    Attributes:
        format_version: Schema version, ``1``.
        created: ISO 8601 UTC creation time.
        pimc_version: PIMC version that wrote the file.
        task: ``pixel_classification``, ``forecast``, ``patch_classification`` or ``embedding``.
        architecture: Module name → constructor config (JSON mapping).
        indices: Vegetation-index channels, in order (names from :data:`pimc_core.series.indices.INDICES`).
        bands: Canonical reflectance bands read directly by the model, in order.
        n_dates: Number of time steps T.
        dates: ``{"mode": "grid", "start_doy", "step_days"[, "start"]}`` or ``{"mode": "observed"}``.
        recurrence: Recurrence-plot parameters.
        normalisation: ``{"bands": {"mean", "std"}, "indices": {"mean", "std"}}`` (either optional).
        patch_size: Side k of the image patches.
        classes: ``[{"id", "name", "color"}]``.
        forecast_horizon: Number of forecast steps.
        training: Free-form training summary (config, seeds, epochs, losses, ...).
    """

    # the nested fields (NO_VALIDATION) are checked and normalised by _check
    format_version: int = param(FORMAT_VERSION, POSITIVE_INT)
    created: str | None = param(None, str, None)
    pimc_version: str | None = param(None, str, None)
    task: str | None = param(None, StrOptions(set(_TASKS)), None)
    architecture: dict[str, dict[str, Any]] = param(NO_VALIDATION, factory=dict)
    indices: list[str] = param(NO_VALIDATION, factory=list)
    bands: list[str] = param(NO_VALIDATION, factory=list)
    n_dates: int | None = param(None, POSITIVE_INT, None)
    dates: dict[str, Any] | None = param(None, NO_VALIDATION)
    recurrence: dict[str, Any] | None = param(None, NO_VALIDATION)
    normalisation: dict[str, dict[str, list[float]]] | None = param(None, NO_VALIDATION)
    patch_size: int | None = param(None, POSITIVE_INT, None)
    classes: list[dict[str, Any]] = param(NO_VALIDATION, factory=list)
    forecast_horizon: int | None = param(None, POSITIVE_INT, None)
    training: dict[str, Any] = param(NO_VALIDATION, factory=dict)

    _config_name: ClassVar[str] = "model metadata"

    # ---------------------------------------------------------------- (de)serialisation

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Build and validate from a plain mapping (e.g. parsed JSON).

        Raises:
            ConfigError: Unknown keys (named in the message), wrong types or inconsistent values.
            InputError: ``format_version`` is newer than this PIMC understands.
        """
        known = [f.name for f in dataclasses.fields(cls)]
        d = _check_keys(data, known, "the top level")
        for key in ("architecture", "classes", "training", "indices", "bands"):
            if key in d and d[key] is None:  # null → empty default
                del d[key]
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return _jsonable(dataclasses.asdict(self), "metadata")

    # ---------------------------------------------------------------- validation

    def validate(self) -> None:
        """Check every field (called on construction); normalises names to lower case.

        Raises:
            ConfigError: A field has a wrong type or value (the message names it).
            InputError: ``format_version`` is newer than :data:`FORMAT_VERSION`.
        """
        Checked.__post_init__(self)

    def _check(self) -> None:
        if self.format_version > FORMAT_VERSION:
            raise InputError(
                f"model metadata has format_version {self.format_version}, newer than this PIMC supports "
                f"({FORMAT_VERSION}); upgrade PIMC to read it"
            )
        if self.created is not None:
            try:
                _dt.datetime.fromisoformat(self.created.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(
                    f"model metadata: created must be an ISO 8601 time; got {self.created!r}"
                ) from None

        arch = _jsonable(self.architecture, "architecture")
        if not isinstance(arch, dict):
            raise ConfigError(f"model metadata: architecture must be a mapping; got {type(arch).__name__}")
        for mod, cfg in arch.items():
            check_module_name(mod, "architecture")
            if not isinstance(cfg, dict):
                raise ConfigError(f"model metadata: architecture.{mod} must be a mapping; got {cfg!r}")
        self.architecture = arch

        self.indices = _known_names(self.indices, "indices", "index", INDICES)
        self.bands = _known_names(self.bands, "bands", "band", CANONICAL_BANDS + RADAR_BANDS)

        for name in ("n_dates", "patch_size", "forecast_horizon"):
            v = getattr(self, name)
            setattr(self, name, None if v is None else int(v))
        if self.task == "forecast" and self.forecast_horizon is None:
            raise ConfigError("model metadata: task 'forecast' needs forecast_horizon")

        self.dates = self._check_dates(self.dates)
        self.recurrence = self._check_recurrence(self.recurrence)
        self.normalisation = self._check_normalisation(self.normalisation)
        self.classes = self._check_classes(self.classes)
        training = _jsonable(self.training, "training")
        if not isinstance(training, dict):
            raise ConfigError(f"model metadata: training must be a mapping; got {type(training).__name__}")
        self.training = training

    def _check_dates(self, dates: Any) -> dict[str, Any] | None:
        if dates is None:
            return None
        d = _check_keys(dates, ("mode", "start_doy", "step_days", "start"), "dates")
        mode = d.get("mode")
        if mode not in _DATE_MODES:
            raise ConfigError(f"model metadata: dates.mode must be 'grid' or 'observed'; got {mode!r}")
        if mode == "observed":
            extra = [k for k in d if k != "mode"]
            if extra:
                raise ConfigError(f"model metadata: dates mode 'observed' takes no {', '.join(extra)}")
            return {"mode": "observed"}
        for key in ("start_doy", "step_days"):
            if key not in d:
                raise ConfigError(f"model metadata: dates mode 'grid' needs {key}")
        out = {
            "mode": "grid",
            "start_doy": _pos_int(d["start_doy"], "dates.start_doy", maximum=366),
            "step_days": _pos_int(d["step_days"], "dates.step_days"),
        }
        if d.get("start") is not None:
            start = d["start"]
            if isinstance(start, _dt.date):
                start = start.isoformat()
            try:
                _dt.date.fromisoformat(str(start))
            except ValueError:
                raise ConfigError(f"model metadata: dates.start must be a date YYYY-MM-DD; got {start!r}") from None
            out["start"] = str(start)
        return out

    def _check_recurrence(self, rp: Any) -> dict[str, Any] | None:
        if rp is None:
            return None
        rp = _jsonable(rp, "recurrence")
        if not isinstance(rp, dict):
            raise ConfigError(f"model metadata: recurrence must be a mapping; got {type(rp).__name__}")
        def real(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        for key in ("dimension", "time_delay"):  # pyts semantics: int >= 1 or a fraction of T
            v = rp.get(key)
            if v is not None and not (real(v) and (v >= 1 if isinstance(v, int) else 0 < v < 1)):
                raise ConfigError(
                    f"model metadata: recurrence.{key} must be an integer >= 1 or a fraction in (0, 1); got {v!r}"
                )
        if rp.get("size") is not None:
            _pos_int(rp["size"], "recurrence.size")
        thr = rp.get("threshold")
        if thr is not None and thr not in _RP_THRESHOLDS and not (real(thr) and thr > 0):
            raise ConfigError(
                f"model metadata: recurrence.threshold must be null, 'point', 'distance' or a number > 0; got {thr!r}"
            )
        pct = rp.get("percentage")
        if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100):
            raise ConfigError(f"model metadata: recurrence.percentage must be a number in 0..100; got {pct!r}")
        return rp

    def _check_normalisation(self, norm: Any) -> dict[str, dict[str, list[float]]] | None:
        if norm is None:
            return None
        d = _check_keys(norm, ("bands", "indices"), "normalisation")
        out: dict[str, dict[str, list[float]]] = {}
        for key, names in (("bands", self.bands), ("indices", self.indices)):
            if d.get(key) is None:
                continue
            if not names:
                raise ConfigError(f"model metadata: normalisation.{key} is given but the model has no {key}")
            stats = _check_keys(d[key], ("mean", "std"), f"normalisation.{key}")
            for s in ("mean", "std"):
                if s not in stats:
                    raise ConfigError(f"model metadata: normalisation.{key} needs '{s}'")
            mean = _numbers(stats["mean"], len(names), f"normalisation.{key}.mean")
            std = _numbers(stats["std"], len(names), f"normalisation.{key}.std")
            if any(s <= 0 for s in std):
                raise ConfigError(f"model metadata: normalisation.{key}.std must be > 0; got {std}")
            out[key] = {"mean": mean, "std": std}
        return out

    def _check_classes(self, classes: Any) -> list[dict[str, Any]]:
        if isinstance(classes, (str, Mapping)) or not isinstance(classes, (list, tuple)):
            raise ConfigError(f"model metadata: classes must be a list of {{id, name, color}}; got {classes!r}")
        out, seen = [], set()
        for i, c in enumerate(classes):
            c = _check_keys(c, ("id", "name", "color"), f"classes[{i}]")
            cid = c.get("id")
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise ConfigError(f"model metadata: classes[{i}].id must be an integer; got {cid!r}")
            if cid in seen:
                raise ConfigError(f"model metadata: class id {cid} appears twice in classes")
            seen.add(cid)
            name = c.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"model metadata: classes[{i}].name must be a non-empty string; got {name!r}")
            color = c.get("color")
            if color is not None and (not isinstance(color, str) or not _HEX_COLOR.match(color)):
                raise ConfigError(f"model metadata: classes[{i}].color must be '#rrggbb' or null; got {color!r}")
            out.append({"id": int(cid), "name": name, "color": color.lower() if color else None})
        return out


def check_module_name(name: Any, where: str) -> str:
    """``name`` when it is a module name (a non-empty string without '.'), else a ConfigError naming ``where``."""
    if not isinstance(name, str) or not name or "." in name:
        raise ConfigError(f"{where}: module name must be a non-empty string without '.'; got {name!r}")
    return name


def as_metadata(metadata: ModelMetadata | Mapping[str, Any]) -> ModelMetadata:
    """A validated :class:`ModelMetadata` from one (re-validated: it may have been changed) or a mapping."""
    if isinstance(metadata, ModelMetadata):
        return ModelMetadata.from_dict(metadata.to_dict())  # re-validate a possibly mutated object
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"model metadata must be a mapping; got {type(metadata).__name__}")
    return ModelMetadata.from_dict(metadata)
