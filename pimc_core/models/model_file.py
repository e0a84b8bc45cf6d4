"""The ``.pimc`` model file: weights and metadata in ONE file, loadable without running code.

A ``.pimc`` file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_ file:

* an 8-byte little-endian header length, a JSON header (tensor names, dtypes, shapes, byte
  offsets) and the raw tensor bytes. Nothing in it is ever unpickled or executed, so a model
  file from an untrusted source cannot run code (unlike ``torch.save`` / pickle files, which
  :func:`load_model` refuses before reading them any further);
* tensor names are ``"<module>.<parameter>"``, e.g. ``"rp_encoder.stem.0.weight"``: the text
  before the first dot is the module (``rp_encoder``, ``patch_encoder``, ``series_encoder``,
  ``classifier``, ``forecaster``, ...), the rest is the key in that module's ``state_dict``;
* the safetensors ``__metadata__`` (a string → string map) holds exactly two keys:
  ``"format_version"`` (``"1"``) and ``"pimc"``, the JSON text of the metadata below.

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

Typical use::

    save_model("crops.pimc", {"rp_encoder": enc.state_dict(), "classifier": head.state_dict()},
               {"task": "pixel_classification", "indices": ["ndvi", "evi", "savi"], ...})
    weights, meta = load_model("crops.pimc")
    enc.load_state_dict(weights["rp_encoder"])
    check_compatible(meta, bands=series.band_names)   # BandError if e.g. 'blue' is missing
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pimc_core.errors import BandError, ConfigError, InputError

__all__ = [
    "FORMAT_VERSION",
    "ModelMetadata",
    "check_compatible",
    "load_model",
    "read_metadata",
    "save_model",
]

#: Version of the ``.pimc`` layout and metadata schema written by this PIMC.
FORMAT_VERSION = 1

_TASKS = ("pixel_classification", "forecast", "patch_classification", "embedding")
_DATE_MODES = ("grid", "observed")
_RP_THRESHOLDS = ("point", "distance")
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# safetensors refuses headers above 100 MB; anything bigger is not one of ours.
_MAX_HEADER = 100_000_000


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


def _opt_pos_int(value: Any, where: str) -> int | None:
    return None if value is None else _pos_int(value, where)


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


@dataclass
class ModelMetadata:
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

    format_version: int = FORMAT_VERSION
    created: str | None = None
    pimc_version: str | None = None
    task: str | None = None
    architecture: dict[str, dict[str, Any]] = field(default_factory=dict)
    indices: list[str] = field(default_factory=list)
    bands: list[str] = field(default_factory=list)
    n_dates: int | None = None
    dates: dict[str, Any] | None = None
    recurrence: dict[str, Any] | None = None
    normalisation: dict[str, dict[str, list[float]]] | None = None
    patch_size: int | None = None
    classes: list[dict[str, Any]] = field(default_factory=list)
    forecast_horizon: int | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

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
        fv = self.format_version
        if isinstance(fv, bool) or not isinstance(fv, int) or fv < 1:
            raise ConfigError(f"model metadata: format_version must be an integer >= 1; got {fv!r}")
        if fv > FORMAT_VERSION:
            raise InputError(
                f"model metadata has format_version {fv}, newer than this PIMC supports "
                f"({FORMAT_VERSION}); upgrade PIMC to read it"
            )
        for name in ("created", "pimc_version"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"model metadata: {name} must be a string; got {v!r}")
        if self.created is not None:
            try:
                _dt.datetime.fromisoformat(self.created.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(
                    f"model metadata: created must be an ISO 8601 time; got {self.created!r}"
                ) from None
        if self.task is not None and self.task not in _TASKS:
            raise ConfigError(f"model metadata: task must be one of {', '.join(_TASKS)}; got {self.task!r}")

        arch = _jsonable(self.architecture, "architecture")
        if not isinstance(arch, dict):
            raise ConfigError(f"model metadata: architecture must be a mapping; got {type(arch).__name__}")
        for mod, cfg in arch.items():
            _check_module_name(mod, "architecture")
            if not isinstance(cfg, dict):
                raise ConfigError(f"model metadata: architecture.{mod} must be a mapping; got {cfg!r}")
        self.architecture = arch

        self.indices = _str_list(self.indices, "indices")
        if self.indices:
            from pimc_core.series.indices import INDICES  # local: keeps this module import-light

            unknown = [i for i in self.indices if i not in INDICES]
            if unknown:
                raise ConfigError(
                    f"model metadata: unknown index {unknown[0]!r} in indices (known: {', '.join(INDICES)})"
                )
        self.bands = _str_list(self.bands, "bands")
        if self.bands:
            from pimc_core.io.sensors import CANONICAL_BANDS

            unknown = [b for b in self.bands if b not in CANONICAL_BANDS]
            if unknown:
                raise ConfigError(
                    f"model metadata: unknown band {unknown[0]!r} in bands (known: {', '.join(CANONICAL_BANDS)})"
                )

        self.n_dates = _opt_pos_int(self.n_dates, "n_dates")
        self.patch_size = _opt_pos_int(self.patch_size, "patch_size")
        self.forecast_horizon = _opt_pos_int(self.forecast_horizon, "forecast_horizon")
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


def _check_module_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or "." in name:
        raise ConfigError(f"{where}: module name must be a non-empty string without '.'; got {name!r}")
    return name


def _as_metadata(metadata: ModelMetadata | Mapping[str, Any]) -> ModelMetadata:
    if isinstance(metadata, ModelMetadata):
        return ModelMetadata.from_dict(metadata.to_dict())  # re-validate a possibly mutated object
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"model metadata must be a mapping; got {type(metadata).__name__}")
    return ModelMetadata.from_dict(metadata)


# --------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------


def _flatten(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """``{module: {param: T}}`` or ``{"module.param": T}`` → ``{"module.param": T}`` (cpu, contiguous)."""
    import torch

    if not isinstance(tensors, Mapping) or not tensors:
        raise ConfigError("save_model: tensors must be a non-empty mapping of module → state dict")
    nested = [isinstance(v, Mapping) for v in tensors.values()]
    flat: dict[str, Any] = {}
    if all(nested):
        for mod, sd in tensors.items():
            _check_module_name(mod, "save_model")
            if not sd:
                raise ConfigError(f"save_model: module {mod!r} has no tensors")
            for key, t in sd.items():
                if not isinstance(key, str) or not key:
                    raise ConfigError(f"save_model: module {mod!r} has a bad parameter name {key!r}")
                flat[f"{mod}.{key}"] = t
    elif not any(nested):
        for key, t in tensors.items():
            if not isinstance(key, str) or "." not in key or key.startswith(".") or key.endswith("."):
                raise ConfigError(
                    f"save_model: flat tensor name {key!r} must be 'module.parameter' "
                    "(e.g. 'rp_encoder.stem.0.weight')"
                )
            flat[key] = t
    else:
        raise ConfigError("save_model: tensors mixes state dicts and single tensors; give {module: state_dict}")

    out: dict[str, Any] = {}
    seen_storage: set[int] = set()
    for key, t in flat.items():
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"save_model: {key!r} is a {type(t).__name__}, not a torch.Tensor")
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen_storage or t.numel() != t.untyped_storage().nbytes() // max(t.element_size(), 1):
            t = t.clone()  # shared / tied / view tensors: safetensors wants one owner per storage
        if t.numel():
            seen_storage.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def save_model(
    path: str | Path,
    tensors: Mapping[str, Mapping[str, Any]] | Mapping[str, Any],
    metadata: ModelMetadata | Mapping[str, Any],
) -> Path:
    """Write weights and metadata to one ``.pimc`` (safetensors) file, atomically.

    Args:
        path: Output file (conventionally ``*.pimc``); its folder must exist. An existing file
            is replaced only once the new one is completely written (temporary file in the same
            folder + ``os.replace``).
        tensors: ``{module: state_dict}`` (e.g. ``{"rp_encoder": enc.state_dict()}``), or an
            already flat ``{"module.param": tensor}`` mapping. Tensors of any shape/dtype; they
            are saved detached, on CPU.
        metadata: A :class:`ModelMetadata` or a dict following the schema of this module.
            ``created`` and ``pimc_version`` are filled in when missing.

    Returns:
        The path written.

    Raises:
        ConfigError: Invalid metadata (message names the key) or malformed ``tensors``.
        InputError: The output folder does not exist or the file cannot be written.
    """
    from safetensors.torch import save_file

    from pimc_core import __version__
    from pimc_core.io.atomic import atomic_path

    meta = _as_metadata(metadata)
    if meta.created is None:
        meta.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if meta.pimc_version is None:
        meta.pimc_version = __version__
    flat = _flatten(tensors)
    header = {"format_version": str(FORMAT_VERSION), "pimc": json.dumps(meta.to_dict(), ensure_ascii=False)}
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            save_file(flat, str(tmp), metadata=header)
    except OSError as exc:
        raise InputError(f"{path}: cannot write model file ({exc.strerror or exc})") from None
    return path


def _read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    """Validate the safetensors framing WITHOUT interpreting the payload; return (header, bytes).

    Raises:
        InputError: Missing file, or a file that is not a safetensors file (pickle, zip, ...).
    """
    if not path.exists():
        raise InputError(f"{path}: model file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read model file ({exc.strerror or exc})") from None

    def not_ours(why: str) -> InputError:
        hint = ""
        if data[:1] == b"\x80" or data[:2] == b"PK":
            hint = " (it looks like a pickle / torch.save file, which PIMC never loads because it can run code)"
        return InputError(f"{path}: not a PIMC model file: {why}{hint}")

    if len(data) < 8:
        raise not_ours(f"only {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > _MAX_HEADER or 8 + n > len(data):
        raise not_ours("no safetensors header")
    raw = data[8 : 8 + n]
    if raw[:1] != b"{":
        raise not_ours("no safetensors header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise not_ours("corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise not_ours("corrupt safetensors header")
    return header, data


def _parse_metadata(path: Path, header: Mapping[str, Any]) -> dict[str, Any]:
    st_meta = header.get("__metadata__") or {}
    if not isinstance(st_meta, dict) or "pimc" not in st_meta:
        raise InputError(f"{path}: a safetensors file without PIMC metadata, not a .pimc model")
    version = st_meta.get("format_version")
    try:
        version_i = int(str(version))
    except ValueError:
        raise InputError(f"{path}: bad format_version {version!r}") from None
    if version_i > FORMAT_VERSION:
        raise InputError(
            f"{path}: model file format version {version_i} is newer than this PIMC supports "
            f"({FORMAT_VERSION}); upgrade PIMC to read it"
        )
    if version_i < 1:
        raise InputError(f"{path}: bad format_version {version!r}")
    try:
        meta = json.loads(st_meta["pimc"])
    except (TypeError, json.JSONDecodeError):
        raise InputError(f"{path}: PIMC metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: PIMC metadata is not a JSON object")
    try:
        return ModelMetadata.from_dict(meta).to_dict()
    except ConfigError as exc:
        raise InputError(f"{path}: {exc}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The validated metadata of a ``.pimc`` file, without building any tensor.

    Raises:
        InputError: Not a (readable) PIMC model file, or a newer format version.
    """
    path = Path(path)
    header, _ = _read_header(path)
    return _parse_metadata(path, header)


def load_model(path: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Load a ``.pimc`` file. No pickle, no code execution: pickle payloads are refused unread.

    The whole file is read into memory (models are small), so the file is not kept open or
    memory-mapped afterwards and can be replaced while the model is in use.

    Args:
        path: The ``.pimc`` file.

    Returns:
        ``(weights, metadata)``: ``weights[module][param]`` are CPU tensors (the module's
        ``state_dict``, ready for ``load_state_dict``); ``metadata`` is the validated dict
        (schema in the module docstring).

    Raises:
        InputError: Missing file; not a safetensors file (e.g. a ``torch.save``/pickle file);
            safetensors without PIMC metadata; corrupt tensor data; a format version newer than
            :data:`FORMAT_VERSION`; invalid metadata.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    header, data = _read_header(path)
    meta = _parse_metadata(path, header)
    try:
        flat = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: corrupt model file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    weights: dict[str, dict[str, Any]] = {}
    for key in sorted(flat):
        mod, sep, param = key.partition(".")
        if not sep or not mod or not param:
            raise InputError(f"{path}: tensor name {key!r} is not 'module.parameter'")
        weights.setdefault(mod, {})[param] = flat[key]
    return weights, meta


# --------------------------------------------------------------------------------------------
# compatibility with data
# --------------------------------------------------------------------------------------------


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

    meta = _as_metadata(metadata)
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
